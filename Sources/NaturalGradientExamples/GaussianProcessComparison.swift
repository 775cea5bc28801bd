import Foundation
import NaturalGradientTestSupport
import SVGCharts

/// The three metrics, each tuned over the step-size grid, and the summary of their best runs.
public struct GaussianProcessComparison: Sendable {
    /// The chosen run per metric, in `ParameterMetric.allCases` order.
    public let runs: [GaussianProcessRun]
    /// The lowest NLL any run (any metric, any η) reached.
    public let best: Double
    /// "Converged": within this much (nats) of `best`.
    public let tolerance: Double
    /// The iterations each run was given.
    public let iterations: Int

    /// Runs every metric at every step size from `start` and keeps the best run of each.
    public static func run(
        model: GaussianProcessModel, stepSizes: [Double], iterations: Int, start: RBFHyperparameters,
        tolerance: Double
    ) -> GaussianProcessComparison {
        let all = ParameterMetric.allCases.map { metric in
            stepSizes.map {
                GaussianProcessRun.run(model: model, metric: metric, stepSize: $0, iterations: iterations, start: start)
            }
        }
        let best = all.joined().flatMap(\.negativeLogLikelihoods).filter(\.isFinite).min() ?? .nan
        // Per metric: the fewest iterations to stay within tolerance of the best; failing
        // that, the lowest final NLL of a run that did not diverge (then of any run).
        let chosen = all.compactMap { runs -> GaussianProcessRun? in
            let reaching = runs.compactMap { run in run.iterationsToReach(best, tolerance: tolerance).map { (run, $0) } }
            if let fastest = reaching.min(by: { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0.stepSize > $1.0.stepSize) }) {
                return fastest.0
            }
            func finalValue(_ run: GaussianProcessRun) -> Double {
                (run.diverged ? 1e300 : 0) + (run.negativeLogLikelihoods.last ?? .infinity)
            }
            return runs.min { finalValue($0) < finalValue($1) }
        }
        return GaussianProcessComparison(runs: chosen, best: best, tolerance: tolerance, iterations: iterations)
    }

    /// One row per metric: its η, iterations to converge, final NLL and hyperparameters.
    public func table() -> TextTable {
        var table = TextTable([
            "metric", "best η", "iterations to converge", "final NLL", "length scale", "signal var", "noise var",
        ])
        for run in runs {
            let reached = run.iterationsToReach(best, tolerance: tolerance).map(String.init) ?? "not reached"
            table.append([
                run.metric.label, "\(run.stepSize)", reached + (run.diverged ? " (diverged)" : ""),
                String(format: "%.6f", run.negativeLogLikelihoods.last ?? .nan),
                String(format: "%.4f", run.final.lengthScale), String(format: "%.4f", run.final.signalVariance),
                String(format: "%.5f", run.final.noiseVariance),
            ])
        }
        return table
    }

    /// One line: which metric converged first, and by how many iterations.
    public func verdict() -> String? {
        let reached = runs.compactMap { run in run.iterationsToReach(best, tolerance: tolerance).map { (run, $0) } }
            .sorted { $0.1 < $1.1 }
        guard let first = reached.first else { return "no metric reached the best NLL within the iterations given" }
        let others = runs.filter { $0.metric != first.0.metric }.map { run -> String in
            if let count = run.iterationsToReach(best, tolerance: tolerance) {
                return "\(run.metric.label) \(count) (\(String(format: "%.1f", Double(count) / Double(max(first.1, 1))))x)"
            }
            return "\(run.metric.label) not within \(iterations)"
        }
        return "fastest: \(first.0.metric.label) in \(first.1) iterations; " + others.joined(separator: ", ")
    }

    /// The smallest gap to the best NLL that the log-scale panel draws.
    public static let smallestGap = 1e-9

    /// NLL against iteration, and the gap to the best NLL on a log scale.
    public func chart(points: Int) -> String {
        let series = runs.map { run in
            LineChart.Series(
                label: "\(run.metric.label) (η = \(run.stepSize))",
                points: run.negativeLogLikelihoods.enumerated().map { (x: Double($0.offset), y: $0.element) })
        }
        let gaps = runs.map { run in
            LineChart.Series(
                label: run.metric.label,
                points: run.negativeLogLikelihoods.enumerated().map { iteration, value in
                    // Gaps below 1e-9 are rounding, not progress: leave them out of the log axis.
                    (x: Double(iteration), y: value - best >= Self.smallestGap ? value - best : .nan)
                })
        }
        return LineChart.svg(panels: [
            LineChart(
                title: "GP marginal likelihood, \(points) points", xLabel: "iteration", yLabel: "negative log likelihood",
                series: series),
            LineChart(
                title: "Distance to the best NLL", xLabel: "iteration", yLabel: "NLL − best NLL",
                yScale: .logarithmic, series: gaps),
        ])
    }

    /// Every iteration's NLL per metric (empty where a run stopped early).
    public func csv() -> String {
        let length = runs.map(\.negativeLogLikelihoods.count).max() ?? 0
        var lines = ["iteration," + runs.map { $0.metric.rawValue }.joined(separator: ",")]
        for iteration in 0..<length {
            let values = runs.map { run in
                iteration < run.negativeLogLikelihoods.count
                    ? String(format: "%.12g", run.negativeLogLikelihoods[iteration]) : ""
            }
            lines.append("\(iteration)," + values.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
