import Foundation
import NaturalGradientTestSupport
import SVGCharts

/// Every method trained on the same data, with the best setting of each, and what
/// `ngrad train` prints and writes about them.
public struct TrainingComparison: Sendable {
    /// Every run, every setting, in the order they ran.
    public let runs: [TrainRun]
    /// The best run per method (the methods' order): the fewest steps to the threshold,
    /// else the lowest final loss.
    public let best: [TrainRun]
    /// The train-loss threshold runs are ranked by.
    public let threshold: Double
    /// The steps each run was given.
    public let steps: Int

    /// Trains each method with each setting of its learning-rate grid.
    public static func run(
        methods: [TrainMethod], trainer: Trainer, threshold: Double, steps: Int
    ) throws
        -> TrainingComparison
    {
        var runs: [TrainRun] = []
        var best: [TrainRun] = []
        for method in methods {
            var candidates: [TrainRun] = []
            for rate in method.learningRates {
                let label = method.learningRates.count > 1 ? "\(method.title) lr=\(rate)" : method.title
                candidates.append(try trainer.run(method, learningRate: rate, label: label))
            }
            runs += candidates
            if let first = candidates.first {
                best.append(candidates.min { rank($0, threshold) < rank($1, threshold) } ?? first)
            }
        }
        return TrainingComparison(runs: runs, best: best, threshold: threshold, steps: steps)
    }

    /// Orders runs: those that reach the threshold first by steps, then the rest by final loss.
    static func rank(_ run: TrainRun, _ threshold: Double) -> (Int, Double) {
        if let hit = run.firstBelow(threshold) { return (hit.step, 0) }
        return (Int.max, run.finalLoss.isFinite ? run.finalLoss : .infinity)
    }

    /// One row per method: its setting, steps and seconds to the threshold, final loss,
    /// test accuracy and training time.
    public func table() -> TextTable {
        var table = TextTable([
            "method", "setting", "steps to loss ≤ \(threshold)", "seconds to it", "final train loss", "test accuracy",
            "seconds", "warm-up s",
        ])
        for run in best {
            let hit = run.firstBelow(threshold)
            table.append([
                run.method.title, run.variant.isEmpty ? "-" : run.variant, hit.map { "\($0.step)" } ?? "not reached",
                hit.map { String(format: "%.2f", $0.seconds) } ?? "-", String(format: "%.3g", run.finalLoss),
                String(format: "%.1f%%", run.testAccuracy * 100),
                String(format: "%.2f", run.records.last?.seconds ?? 0), String(format: "%.2f", run.warmupSeconds),
            ])
        }
        return table
    }

    /// How the best natural-gradient method compares with the best first-order one
    /// (empty when either is missing or the natural-gradient one never reached the threshold).
    public func summaryLine() -> String {
        let firstOrder = best.filter { $0.method == .sgd || $0.method == .adam }
        let natural = best.filter { $0.method != .sgd && $0.method != .adam }
        let byRank = { (a: TrainRun, b: TrainRun) in Self.rank(a, threshold) < Self.rank(b, threshold) }
        guard let baseline = firstOrder.min(by: byRank), let contender = natural.min(by: byRank),
            let fast = contender.firstBelow(threshold)
        else { return "" }
        guard let slow = baseline.firstBelow(threshold) else {
            return "\(contender.method.title) reached loss ≤ \(threshold) in \(fast.step) steps; "
                + "\(baseline.method.title) did not within \(steps)."
        }
        return String(
            format: "%@ reached loss ≤ %g in %@ (%d vs %d) and %@ (%.2f s vs %.2f s) than %@ %@.",
            contender.method.title, threshold,
            Self.ratioPhrase(Double(fast.step), Double(slow.step), less: "fewer steps", more: "more steps"), fast.step,
            slow.step, Self.ratioPhrase(fast.seconds, slow.seconds, less: "less time", more: "more time"), fast.seconds,
            slow.seconds, baseline.method.title, baseline.variant)
    }

    /// `value` against `baseline` as a ratio of at least 1: "2.8x less time" where the value
    /// is smaller, "1.7x more time" where it is larger (never "0.6x less time").
    public static func ratioPhrase(_ value: Double, _ baseline: Double, less: String, more: String) -> String {
        let (value, baseline) = (max(value, 1e-9), max(baseline, 1e-9))
        return value <= baseline
            ? String(format: "%.1fx %@", baseline / value, less) : String(format: "%.1fx %@", value / baseline, more)
    }

    /// steps.csv: every step of every run, the best runs flagged.
    public func stepsCSV() -> String {
        var text = "method,setting,best,step,seconds,train_loss\n"
        for run in runs {
            let isBest = best.contains { $0.method == run.method && $0.variant == run.variant }
            for record in run.records {
                text +=
                    "\(run.method.rawValue),\(run.variant),\(isBest ? 1 : 0),\(record.step),"
                    + String(format: "%.6f,%.8g\n", record.seconds, record.trainLoss)
            }
        }
        return text
    }

    /// summary.csv: one line per method's best run.
    public func summaryCSV() -> String {
        var text = "method,setting,threshold,steps_to_threshold,seconds_to_threshold,final_train_loss,test_accuracy,seconds\n"
        for run in best {
            let hit = run.firstBelow(threshold)
            text +=
                "\(run.method.rawValue),\(run.variant),\(threshold),\(hit.map { "\($0.step)" } ?? ""),"
                + "\(hit.map { String(format: "%.6f", $0.seconds) } ?? ""),"
                + String(format: "%.8g,%.6f,%.6f\n", run.finalLoss, run.testAccuracy, run.records.last?.seconds ?? 0)
        }
        return text
    }

    /// One method's best run in summary.json.
    struct SummaryEntry: Encodable {
        let method: String, setting: String, threshold: Double
        let stepsToThreshold: Int?, secondsToThreshold: Double?
        let finalTrainLoss: Double?, testAccuracy: Double, seconds: Double
        /// The untimed warm-up (program builds, per-shape compilation, its steps' work).
        let warmupSeconds: Double
        /// Programs compiled or loaded from disk during the timed steps (0: none in them).
        let programBuildsInTimedSteps: Int
    }

    /// summary.json: summary.csv's fields per method's best run, plus the warm-up seconds
    /// kept out of the timed steps and the programs built during them (snake_case keys; a
    /// non-finite final loss is null).
    public func summaryJSON() throws -> String {
        let entries = best.map { run in
            let hit = run.firstBelow(threshold)
            return SummaryEntry(
                method: run.method.rawValue, setting: run.variant, threshold: threshold, stepsToThreshold: hit?.step,
                secondsToThreshold: hit?.seconds, finalTrainLoss: run.finalLoss.isFinite ? run.finalLoss : nil,
                testAccuracy: run.testAccuracy, seconds: run.records.last?.seconds ?? 0,
                warmupSeconds: run.warmupSeconds, programBuildsInTimedSteps: run.programBuildsInTimedSteps)
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(entries), as: UTF8.self) + "\n"
    }

    /// loss.svg: the best runs' training loss against steps and against seconds.
    public func chart() -> String {
        func series(_ x: (TrainRecord) -> Double) -> [LineChart.Series] {
            best.map { run in
                LineChart.Series(
                    label: run.variant.isEmpty ? run.method.title : "\(run.method.title) \(run.variant)",
                    points: run.records.map { (x: x($0), y: $0.trainLoss) })
            }
        }
        let bySteps = LineChart(
            title: "Digits MLP: training loss per step", xLabel: "step", yLabel: "train loss (cross-entropy)",
            xScale: .linear, yScale: .logarithmic, series: series { Double($0.step) })
        let bySeconds = LineChart(
            title: "Training loss against time", xLabel: "seconds of training steps (log)",
            yLabel: "train loss (cross-entropy)", xScale: .logarithmic, yScale: .logarithmic,
            series: series { $0.seconds })
        return LineChart.svg(panels: [bySteps, bySeconds])
    }
}
