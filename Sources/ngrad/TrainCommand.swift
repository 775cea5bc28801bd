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
        help: "Comma-separated methods: \(TrainMethod.allCases.map(\.rawValue).joined(separator: ", ")) (default: all but kfac-adaptive).")
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

    func validate() throws {
        try CountOption.check(steps, "--steps", in: Self.stepRange)
        try CountOption.check(batchSize, "--batch-size", in: Self.batchSizeRange)
        guard threshold.isFinite, threshold > 0 else { throw ValidationError("--threshold must be positive") }
        if let trainSamples { try CountOption.check(trainSamples, "--train-samples", in: Self.trainSamplesRange) }
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
        var data = try loadData()
        if let trainSamples { data.limitTraining(to: trainSamples) }
        guard batchSize <= data.trainCount else {
            throw ValidationError("--batch-size \(batchSize) exceeds the \(data.trainCount) training samples")
        }
        let device = try deviceOptions.selectDevice()
        let context = try Context(device: device)
        MLP.preferOneBLASThread()
        let model = MLP(sizes: [DigitsData.features, 128, 64, DigitsData.classes])
        print(
            "digits: \(data.trainCount) train / \(data.testCount) test samples; MLP \(model.sizes.map(String.init).joined(separator: "-")) tanh, "
                + "\(model.parameterCount) parameters; \(steps) steps of \(batchSize); device \(device.name)")
        fflush(nil)  // the header before the progress lines on stderr
        let trainer = Trainer(
            model: model, data: data, steps: steps, batchSize: batchSize, seed: seed, context: context,
            stopBelow: threshold / 100, progress: ProgressBar())
        let comparison = try TrainingComparison.run(methods: methods, trainer: trainer, threshold: threshold, steps: steps)

        print()
        print(comparison.table().render())
        print(comparison.summaryLine())
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try comparison.stepsCSV().write(toFile: output + "/steps.csv", atomically: true, encoding: .utf8)
        try comparison.summaryCSV().write(toFile: output + "/summary.csv", atomically: true, encoding: .utf8)
        try comparison.summaryJSON().write(toFile: output + "/summary.json", atomically: true, encoding: .utf8)
        try comparison.chart().write(toFile: output + "/loss.svg", atomically: true, encoding: .utf8)
        print("wrote \(output)/steps.csv, \(output)/summary.csv, \(output)/summary.json, \(output)/loss.svg")
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
