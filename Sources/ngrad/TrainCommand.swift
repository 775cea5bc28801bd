import ArgumentParser
import Foundation
import NaturalGradient
import NaturalGradientExamples

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
            whole-training-set loss evaluated after every step for the table and the plot, nor the \
            untimed warm-up (two throwaway steps that build every kernel program and launch shape \
            first: the 'warm-up s' column). Writes steps.csv (every step of every run), summary.csv, \
            summary.json (with the warm-up seconds) and loss.svg into --output.
            """,
        version: NaturalGradientVersion.string
    )

    @Option(
        name: .long,
        help:
            "Comma-separated methods: \(TrainMethod.allCases.map(\.rawValue).joined(separator: ", ")) (default: all but kfac-fixed)."
    )
    var methods: String = TrainMethod.defaults.map(\.rawValue).joined(separator: ",")

    /// The bounds of the count options.
    static let stepRange = 1...100_000
    static let batchSizeRange = 1...100_000
    static let trainSamplesRange = 1...1_000_000

    @Option(name: .long, help: "Training steps per run (\(TrainCommand.stepRange.text)).")
    var steps: Int = 400

    @Option(name: .long, help: "Samples per mini-batch (at most the training samples).")
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

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Data-parallel over MPI: run under 'mpirun -np N'; the global --batch-size is split over the ranks.",
            discussion: "One device per rank (the local rank's GPU unless --device names one); only rank 0 prints and writes."))
    var distributed = false

    @Flag(name: .long, help: "Print each method's memory plan (representation, device and host bytes) and train nothing.")
    var dryRun = false

    func validate() throws {
        try validateDistributed()
        try CountOption.check(steps, "--steps", in: Self.stepRange)
        try CountOption.check(batchSize, "--batch-size", in: Self.batchSizeRange)
        guard threshold.isFinite, threshold > 0 else {
            throw ValidationError("--threshold \(threshold): must be finite and positive")
        }
        if let trainSamples { try CountOption.check(trainSamples, "--train-samples", in: Self.trainSamplesRange) }
        _ = try selectedMethods()
    }

    func selectedMethods() throws -> [TrainMethod] {
        let names = methods.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("--methods is empty") }
        return try names.map { name in
            guard let method = TrainMethod(rawValue: name) else {
                throw ValidationError(
                    "--methods: unknown method '\(name)' (choose from \(TrainMethod.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            return method
        }
    }

    /// The files of a run, written as one set into --output.
    static let outputNames = ["steps.csv", "summary.csv", "summary.json", "loss.svg"]

    func run() throws {
        #if NGRAD_MPI
            if distributed { return runDistributed() }
        #endif
        try train(parallel: nil, device: deviceOptions.selectDevice())
    }

    /// Trains every selected method and writes the outputs; in a data-parallel job every
    /// rank trains, and only rank 0 prints and writes.
    func train(parallel: (any DataParallel)?, device: Device) throws {
        let lead = (parallel?.rank ?? 0) == 0
        let methods = try selectedMethods()
        if dryRun {
            guard lead else { return }
            let model = MLP(sizes: [DigitsData.features, 128, 64, DigitsData.classes])
            try StandardOutput.print(
                "ngrad train --dry-run: MLP \(model.sizes.map(String.init).joined(separator: "-")), \(model.parameterCount) parameters, "
                    + "batch \(batchSize), float32 on \(device.name)")
            try StandardOutput.print(
                try TrainingComparison.memoryPlans(
                    methods: methods, model: model, batchSize: batchSize, context: Context(device: device)))
            return
        }
        var data = try loadData()
        // Checked before any work: a file, an unwritable directory or '' fails now.
        let outputDirectory = try OutputDirectory(option: "--output", path: output, names: Self.outputNames)
        if let trainSamples { data.limitTraining(to: trainSamples) }
        guard batchSize <= data.trainCount else {
            throw ValidationError("--batch-size \(batchSize) exceeds the \(data.trainCount) training samples")
        }
        let context = try Context(device: device)
        // Ranks share the machine's cores; one process keeps OpenBLAS's own thread count.
        if parallel != nil { MLP.preferOneBLASThread() }
        let model = MLP(sizes: [DigitsData.features, 128, 64, DigitsData.classes])
        let ranks =
            parallel.map { "; \($0.size) ranks, \(batchSize / $0.size)-\((batchSize + $0.size - 1) / $0.size) samples each" }
            ?? ""
        if lead {
            try StandardOutput.print(
                "digits: \(data.trainCount) train / \(data.testCount) test samples; MLP \(model.sizes.map(String.init).joined(separator: "-")) tanh, "
                    + "\(model.parameterCount) parameters; \(steps) steps of \(batchSize); device \(device.name)\(ranks)")
            try StandardOutput.finish() // the header before the progress lines on stderr
        }
        let trainer = Trainer(
            model: model, data: data, steps: steps, batchSize: batchSize, seed: seed, context: context,
            stopBelow: threshold / 100, progress: ProgressBar(enabled: lead), parallel: parallel)
        let comparison = try TrainingComparison.run(methods: methods, trainer: trainer, threshold: threshold, steps: steps)
        let traffic = try parallel.map { try Self.trafficLine($0, runs: comparison.runs) }
        guard lead else { return }

        try StandardOutput.print()
        try StandardOutput.print(comparison.table().render())
        try StandardOutput.print(comparison.summaryLine())
        if let traffic { try StandardOutput.print(traffic) }
        try outputDirectory.write([
            "steps.csv": Array(comparison.stepsCSV().utf8), "summary.csv": Array(comparison.summaryCSV().utf8),
            "summary.json": Array(comparison.summaryJSON().utf8), "loss.svg": Array(comparison.chart().utf8),
        ])
        try StandardOutput.print("wrote " + Self.outputNames.map(outputDirectory.path(of:)).joined(separator: ", "))
    }

    /// The digits data from `--data` or the committed copy; a file that cannot be read or
    /// parsed is a usage error naming it.
    private func loadData() throws -> DigitsData {
        guard let path = data ?? DigitsData.locateCommittedCopy() else {
            throw ValidationError(
                "cannot find Data/\(DigitsData.fileName) beside the package or in the current directory; pass --data PATH")
        }
        do {
            return try DigitsData.load(path: path, seed: seed)
        } catch let error as DataFileError {
            throw ValidationError(data == nil ? error.description : "--data \(error.description)")
        }
    }
}
