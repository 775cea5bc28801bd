import Foundation
import NaturalGradientTestSupport

/// The handwritten-digits data (1797 8x8 images, 10 classes; Data/NOTICE.md), features
/// scaled to [0, 1], split once into a training and a test set.
public struct DigitsData: Sendable {
    /// Pixels per image (8 x 8).
    public static let features = 64
    /// Digits 0-9.
    public static let classes = 10
    /// The committed copy's name under Data/.
    public static let fileName = "digits.csv.gz"
    /// The most bytes a data file may hold or decompress to (the committed copy is about
    /// 0.3 MiB uncompressed).
    public static let sizeLimit = 64 << 20

    /// Row-major training samples x 64 features in [0, 1].
    public var trainInputs: [Float]
    /// The training labels, 0-9.
    public var trainLabels: [Int]
    /// Row-major test samples x 64 features in [0, 1].
    public var testInputs: [Float]
    /// The test labels, 0-9.
    public var testLabels: [Int]

    /// Training samples.
    public var trainCount: Int { trainLabels.count }
    /// Test samples.
    public var testCount: Int { testLabels.count }

    /// A data set from samples already split (row-major samples x 64 features in [0, 1]).
    public init(trainInputs: [Float], trainLabels: [Int], testInputs: [Float], testLabels: [Int]) {
        self.trainInputs = trainInputs
        self.trainLabels = trainLabels
        self.testInputs = testInputs
        self.testLabels = testLabels
    }

    /// Keeps only the first `count` training samples (quick runs).
    public mutating func limitTraining(to count: Int) {
        guard count < trainCount else { return }
        trainInputs = Array(trainInputs.prefix(count * Self.features))
        trainLabels = Array(trainLabels.prefix(count))
    }

    /// Reads the CSV (gzipped or plain; a file, pipe or FIFO) and splits it: a seeded
    /// shuffle, then the first `trainFraction` of the rows for training.
    ///
    /// - Throws: `DataFileError` naming `path` for a file that cannot be read, truncated or
    ///   corrupt gzip, or a line that is not 64 pixels in 0-16 and a label 0-9.
    public static func load(path: String, seed: UInt64, trainFraction: Double = 0.8) throws -> DigitsData {
        let text = String(decoding: try DataFile.read(path, limit: sizeLimit), as: UTF8.self)
        var inputs: [Float] = []
        var labels: [Int] = []
        for (lineIndex, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(separator: ",")
            guard fields.count == features + 1,
                let label = Int(fields[features]), (0..<classes).contains(label)
            else {
                throw DataFileError(path: path, reason: "line \(lineIndex + 1) is not 64 pixels and a label 0-9")
            }
            for field in fields.prefix(features) {
                guard let value = Float(field), value >= 0, value <= 16 else {
                    throw DataFileError(path: path, reason: "line \(lineIndex + 1) has a pixel outside 0-16")
                }
                inputs.append(value / 16)
            }
            labels.append(label)
        }
        guard labels.count >= 20 else {
            throw DataFileError(path: path, reason: "holds only \(labels.count) rows (at least 20 needed)")
        }
        var order = Array(labels.indices)
        var generator = SplitMix64(seed: seed)
        order.shuffle(using: &generator)
        let trainCount = Int((Double(labels.count) * trainFraction).rounded())
        func gather(_ indices: ArraySlice<Int>) -> ([Float], [Int]) {
            (indices.flatMap { inputs[($0 * features)..<(($0 + 1) * features)] }, indices.map { labels[$0] })
        }
        let (trainInputs, trainLabels) = gather(order[..<trainCount])
        let (testInputs, testLabels) = gather(order[trainCount...])
        return DigitsData(trainInputs: trainInputs, trainLabels: trainLabels, testInputs: testInputs, testLabels: testLabels)
    }

    /// The committed copy: `Data/digits.csv.gz` in the package the binary was built in
    /// (searched upwards from the executable), else in the current directory; nil if
    /// neither exists.
    public static func locateCommittedCopy() -> String? {
        var candidates: [URL] = []
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            candidates.append(directory.appendingPathComponent("Data/\(fileName)"))
            directory = directory.deletingLastPathComponent()
        }
        candidates.append(
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Data/\(fileName)"))
        return candidates.first { FileManager.default.isReadableFile(atPath: $0.path) }?.path
    }
}
