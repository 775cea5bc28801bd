import ArgumentParser
import Foundation
import NaturalGradient
import NaturalGradientExamples

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

    /// The bounds of --iterations and --points.
    static let iterationRange = 1...100_000
    static let pointRange = 3...400

    @Option(name: .long, help: "Iterations per run (\(GaussianProcessExampleCommand.iterationRange.text)).")
    var iterations = 200

    @Option(name: .long, help: "Seed of the synthetic data set.")
    var seed: UInt64 = 7

    @Option(name: .long, help: "Number of data points (\(GaussianProcessExampleCommand.pointRange.text)).")
    var points = 40

    @Option(name: .long, help: "Directory for gp-nll.svg and gp-nll.csv (created if missing).")
    var output = "gp-output"

    func validate() throws {
        try CountOption.check(iterations, "--iterations", in: Self.iterationRange)
        try CountOption.check(points, "--points", in: Self.pointRange)
        guard !output.isEmpty else { throw ValidationError("--output must not be empty") }
    }

    /// The files of a run, written as one set into --output.
    static let outputNames = ["gp-nll.svg", "gp-nll.csv"]

    func run() throws {
        // Checked before any work: a file, an unwritable directory or '' fails now.
        let outputDirectory = try OutputDirectory(option: "--output", path: output, names: Self.outputNames)
        let data = GaussianProcessData.synthetic(points: points, seed: seed)
        let model = GaussianProcessModel(data: data)
        let result = GaussianProcessComparison.run(
            model: model, stepSizes: Self.stepSizes, iterations: iterations, start: Self.start,
            tolerance: Self.tolerance)

        try StandardOutput.print(
            "Gaussian-process model selection: \(points) points, seed \(seed), \(iterations) iterations, "
                + "start ℓ = \(Self.start.lengthScale), σf² = \(Self.start.signalVariance), σn² = \(Self.start.noiseVariance)")
        try StandardOutput.print(
            "best NLL found: \(String(format: "%.6f", result.best)); converged = within \(Self.tolerance) of it\n")
        try StandardOutput.print(result.table().render())
        if let verdict = result.verdict() { try StandardOutput.print("\n" + verdict) }

        try outputDirectory.write([
            "gp-nll.svg": Array(result.chart(points: points).utf8), "gp-nll.csv": Array(result.csv().utf8),
        ])
        try StandardOutput.print(
            "\nwrote \(outputDirectory.path(of: "gp-nll.svg")) and \(outputDirectory.path(of: "gp-nll.csv"))")
    }
}
