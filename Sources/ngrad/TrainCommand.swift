import ArgumentParser
import Foundation
import NaturalGradient
import SVGCharts

/// `ngrad train`: trains a small MLP on the handwritten digits with first-order and
/// natural-gradient methods and compares them (table, per-step CSV, SVG plot).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train an MLP on the digits data with SGD, Adam, K-FAC and natural gradient; compare.",
        discussion: """
            A 64-128-64-10 tanh network, a fixed 80/20 train/test split from --seed, the same \
            initial parameters and batch order for every method. SGD (momentum 0.9) and Adam each \
            try a small learning-rate grid and keep the best. Natural-gradient methods go through \
            the library's NaturalGradientOptimizer. Seconds count the training steps, not the \
            whole-training-set loss evaluated after every step for the table and the plot. \
            Writes steps.csv (every step of every run), summary.csv and loss.svg into --output.
            """,
        version: NaturalGradientVersion.string
    )

    @Option(name: .long, help: "Comma-separated methods: \(TrainMethod.allCases.map(\.rawValue).joined(separator: ", ")).")
    var methods: String = TrainMethod.allCases.map(\.rawValue).joined(separator: ",")

    @Option(name: .long, help: "Training steps per run.")
    var steps: Int = 400

    @Option(name: .long, help: "Samples per mini-batch.")
    var batchSize: Int = 512

    @Option(name: .long, help: "Seed of the split, the initial parameters and the batch order.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "The train-loss threshold the table counts steps and seconds to.")
    var threshold: Double = 0.001

    @Option(name: .long, help: "Directory for steps.csv, summary.csv and loss.svg.")
    var output: String = "train-output"

    @Option(name: .long, help: "Train on only the first N samples of the training split (quick runs; default all).")
    var trainSamples: Int?

    @Option(name: .long, help: "The digits CSV (default: Data/digits.csv.gz of the package).")
    var data: String?

    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard threshold.isFinite, threshold > 0 else { throw ValidationError("--threshold must be positive") }
        if let trainSamples, trainSamples < 1 {
            throw ValidationError("--train-samples must be at least 1, got \(trainSamples)")
        }
        _ = try selectedMethods()
    }

    func selectedMethods() throws -> [TrainMethod] {
        let names = methods.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("--methods is empty") }
        return try names.map { name in
            guard let method = TrainMethod(rawValue: name) else {
                throw ValidationError(
                    "--methods: unknown method '\(name)' (choose from \(TrainMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return method
        }
    }

    func run() throws {
        let methods = try selectedMethods()
        var data = try DigitsData.load(path: DigitsData.locate(explicit: data), seed: seed)
        if let trainSamples, trainSamples < data.trainCount {
            data.trainInputs = Array(data.trainInputs.prefix(trainSamples * DigitsData.features))
            data.trainLabels = Array(data.trainLabels.prefix(trainSamples))
        }
        guard batchSize <= data.trainCount else {
            throw ValidationError("--batch-size \(batchSize) exceeds the \(data.trainCount) training samples")
        }
        let device = try deviceOptions.selectDevice()
        let context = try Context(device: device)
        let model = MLP(sizes: [DigitsData.features, 128, 64, DigitsData.classes])
        print(
            "digits: \(data.trainCount) train / \(data.testCount) test samples; MLP \(model.sizes.map(String.init).joined(separator: "-")) tanh, "
                + "\(model.parameterCount) parameters; \(steps) steps of \(batchSize); device \(device.name)")
        fflush(nil)  // the header before the progress lines on stderr
        let trainer = Trainer(
            model: model, data: data, steps: steps, batchSize: batchSize, seed: seed, context: context,
            stopBelow: threshold / 100, progress: ProgressBar())

        var runs: [TrainRun] = []
        var best: [TrainRun] = []
        for method in methods {
            var candidates: [TrainRun] = []
            for rate in method.learningRates {
                let label = method.learningRates.count > 1 ? "\(method.title) lr=\(rate)" : method.title
                candidates.append(try trainer.run(method, learningRate: rate, label: label))
            }
            runs += candidates
            best.append(candidates.min { rank($0) < rank($1) } ?? candidates[0])
        }

        print()
        print(table(best).render())
        print(summaryLine(best))
        try write(runs: runs, best: best)
        print("wrote \(output)/steps.csv, \(output)/summary.csv, \(output)/loss.svg")
    }

    /// Orders runs: those that reach the threshold first by steps, then the rest by final loss.
    private func rank(_ run: TrainRun) -> (Int, Double) {
        if let hit = run.firstBelow(threshold) { return (hit.step, 0) }
        return (Int.max, run.finalLoss.isFinite ? run.finalLoss : .infinity)
    }

    private func table(_ best: [TrainRun]) -> TextTable {
        var table = TextTable([
            "method", "setting", "steps to loss ≤ \(threshold)", "seconds to it", "final train loss", "test accuracy",
            "seconds",
        ])
        for run in best {
            let hit = run.firstBelow(threshold)
            table.append([
                run.method.title, run.variant.isEmpty ? "-" : run.variant, hit.map { "\($0.step)" } ?? "not reached",
                hit.map { String(format: "%.2f", $0.seconds) } ?? "-", String(format: "%.3g", run.finalLoss),
                String(format: "%.1f%%", run.testAccuracy * 100),
                String(format: "%.2f", run.records.last?.seconds ?? 0),
            ])
        }
        return table
    }

    /// How the best natural-gradient method compares with the best first-order one.
    private func summaryLine(_ best: [TrainRun]) -> String {
        let firstOrder = best.filter { $0.method == .sgd || $0.method == .adam }
        let natural = best.filter { $0.method != .sgd && $0.method != .adam }
        guard let baseline = firstOrder.min(by: { rank($0) < rank($1) }),
            let contender = natural.min(by: { rank($0) < rank($1) }), let fast = contender.firstBelow(threshold)
        else { return "" }
        guard let slow = baseline.firstBelow(threshold) else {
            return "\(contender.method.title) reached loss ≤ \(threshold) in \(fast.step) steps; "
                + "\(baseline.method.title) did not within \(steps)."
        }
        return String(
            format: "%@ reached loss ≤ %g in %.1fx fewer steps (%d vs %d) and %.1fx less time (%.2f s vs %.2f s) than %@ %@.",
            contender.method.title, threshold, Double(slow.step) / Double(max(fast.step, 1)), fast.step, slow.step,
            slow.seconds / max(fast.seconds, 1e-9), fast.seconds, slow.seconds, baseline.method.title, baseline.variant)
    }

    private func write(runs: [TrainRun], best: [TrainRun]) throws {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        var steps = "method,setting,best,step,seconds,train_loss\n"
        for run in runs {
            let isBest = best.contains { $0.method == run.method && $0.variant == run.variant }
            for record in run.records {
                steps += "\(run.method.rawValue),\(run.variant),\(isBest ? 1 : 0),\(record.step),"
                    + String(format: "%.6f,%.8g\n", record.seconds, record.trainLoss)
            }
        }
        try steps.write(toFile: output + "/steps.csv", atomically: true, encoding: .utf8)

        var summary = "method,setting,threshold,steps_to_threshold,seconds_to_threshold,final_train_loss,test_accuracy,seconds\n"
        for run in best {
            let hit = run.firstBelow(threshold)
            summary += "\(run.method.rawValue),\(run.variant),\(threshold),\(hit.map { "\($0.step)" } ?? ""),"
                + "\(hit.map { String(format: "%.6f", $0.seconds) } ?? ""),"
                + String(format: "%.8g,%.6f,%.6f\n", run.finalLoss, run.testAccuracy, run.records.last?.seconds ?? 0)
        }
        try summary.write(toFile: output + "/summary.csv", atomically: true, encoding: .utf8)

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
        try LineChart.svg(panels: [bySteps, bySeconds]).write(toFile: output + "/loss.svg", atomically: true, encoding: .utf8)
    }
}
