import ArgumentParser
import Foundation
import NaturalGradient
import SVGCharts

/// `ngrad example`: small, self-contained demonstrations of the library.
struct ExampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example",
        abstract: "Run a self-contained example (host float64, no OpenCL device needed).",
        version: NaturalGradientVersion.string,
        subcommands: [GaussianProcessExampleCommand.self]
    )
}

/// `ngrad example gp`: Gaussian-process model selection by natural gradients under the
/// Fisher-Rao, Wasserstein-2 and Euclidean metrics (Mallasto, Dela Haije, Feragen 2019, Fig. 1).
struct GaussianProcessExampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gp",
        abstract: "Fit a GP's RBF hyperparameters by natural gradient: Fisher-Rao vs Wasserstein-2 vs Euclidean.",
        discussion: """
            Maximises the marginal likelihood of a Gaussian process (RBF kernel: length scale, \
            signal variance, noise variance) on a synthetic 1-D data set, with the step \
            θ ← θ − η (G + λI)⁻¹ ∇NLL on θ = log hyperparameters and G the metric of \
            θ ↦ N(0, K_θ): Fisher-Rao, the Hessian of W2², or the identity. Each metric gets its \
            best constant η from the same grid (fewest iterations to reach the best NLL), so \
            the comparison is between geometries, not units. Prints a table and writes \
            gp-nll.svg and gp-nll.csv to --output.
            """,
        version: NaturalGradientVersion.string
    )

    /// The shared grid of constant step sizes each metric is tuned over (1-2-5 steps). Each
    /// metric's chosen η lies inside it, not at an end, for the default settings.
    static let stepSizes: [Double] = [2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005]
    /// "Converged": within this much (nats) of the best NLL any run found.
    static let tolerance = 1e-3
    /// The starting hyperparameters, the same for every run.
    static let start = RBFHyperparameters(lengthScale: 3, signalVariance: 0.2, noiseVariance: 1)

    @Option(name: .long, help: "Iterations per run (1-100000).")
    var iterations = 200

    @Option(name: .long, help: "Seed of the synthetic data set.")
    var seed: UInt64 = 7

    @Option(name: .long, help: "Number of data points (3-400).")
    var points = 40

    @Option(name: .long, help: "Directory for gp-nll.svg and gp-nll.csv (created if missing).")
    var output = "gp-output"

    func validate() throws {
        guard (1...100_000).contains(iterations) else {
            throw ValidationError("--iterations must be between 1 and 100000, got \(iterations)")
        }
        guard (3...400).contains(points) else {
            throw ValidationError("--points must be between 3 and 400, got \(points)")
        }
        guard !output.isEmpty else { throw ValidationError("--output must not be empty") }
    }

    func run() throws {
        let data = GaussianProcessData.synthetic(points: points, seed: seed)
        let model = GaussianProcessModel(data: data)
        let result = GaussianProcessComparison.run(
            model: model, stepSizes: Self.stepSizes, iterations: iterations, start: Self.start,
            tolerance: Self.tolerance)

        print(
            "Gaussian-process model selection: \(points) points, seed \(seed), \(iterations) iterations, "
                + "start ℓ = \(Self.start.lengthScale), σf² = \(Self.start.signalVariance), σn² = \(Self.start.noiseVariance)")
        print("best NLL found: \(String(format: "%.6f", result.best)); converged = within \(Self.tolerance) of it\n")
        print(result.table().render())
        if let verdict = result.verdict() { print("\n" + verdict) }

        try write(result)
    }

    private func write(_ result: GaussianProcessComparison) throws {
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            let svgPath = (output as NSString).appendingPathComponent("gp-nll.svg")
            let csvPath = (output as NSString).appendingPathComponent("gp-nll.csv")
            try result.chart(points: points).write(toFile: svgPath, atomically: true, encoding: .utf8)
            try result.csv().write(toFile: csvPath, atomically: true, encoding: .utf8)
            print("\nwrote \(svgPath) and \(csvPath)")
        } catch {
            throw ExampleOutputError(directory: output, underlying: error)
        }
    }
}

/// The output directory could not be created or written.
struct ExampleOutputError: Error, CustomStringConvertible {
    let directory: String
    let underlying: Error
    var description: String {
        "cannot write the results to --output \(directory): \((underlying as NSError).localizedDescription)"
    }
}

/// The three metrics, each tuned over the step-size grid, and the summary of their best runs.
struct GaussianProcessComparison {
    /// The chosen run per metric, in `ParameterMetric.allCases` order.
    let runs: [GaussianProcessRun]
    /// The lowest NLL any run (any metric, any η) reached.
    let best: Double
    let tolerance: Double
    /// The iterations each run was given.
    let iterations: Int

    static func run(
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

    func table() -> TextTable {
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
    func verdict() -> String? {
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
    static let smallestGap = 1e-9

    /// NLL against iteration, and the gap to the best NLL on a log scale.
    func chart(points: Int) -> String {
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
    func csv() -> String {
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
