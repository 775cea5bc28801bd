import Foundation
import ArgumentParser

/// The handwritten-digits data (1797 8x8 images, 10 classes; Data/NOTICE.md), features
/// scaled to [0, 1], split once into a training and a test set.
struct DigitsData {
    static let features = 64
    static let classes = 10
    static let fileName = "digits.csv.gz"

    /// Row-major samples x 64 features in [0, 1].
    var trainInputs: [Float]
    var trainLabels: [Int]
    var testInputs: [Float]
    var testLabels: [Int]

    var trainCount: Int { trainLabels.count }
    var testCount: Int { testLabels.count }

    /// Reads the CSV (gzipped or plain) and splits it: a seeded shuffle, then the first
    /// `trainFraction` of the rows for training.
    static func load(path: String, seed: UInt64, trainFraction: Double = 0.8) throws -> DigitsData {
        let text = try readText(path)
        var inputs: [Float] = []
        var labels: [Int] = []
        for (lineIndex, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(separator: ",")
            guard fields.count == features + 1,
                let label = Int(fields[features]), (0..<classes).contains(label)
            else {
                throw ValidationError("\(path): line \(lineIndex + 1) is not 64 pixels and a label 0-9")
            }
            for field in fields.prefix(features) {
                guard let value = Float(field), value >= 0, value <= 16 else {
                    throw ValidationError("\(path): line \(lineIndex + 1) has a pixel outside 0-16")
                }
                inputs.append(value / 16)
            }
            labels.append(label)
        }
        guard labels.count >= 20 else { throw ValidationError("\(path): only \(labels.count) rows") }
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

    /// The committed copy: `--data` if given, else `Data/digits.csv.gz` in the package the
    /// binary was built in (searched upwards from the executable), else in the current
    /// directory.
    static func locate(explicit: String?) throws -> String {
        if let explicit {
            guard FileManager.default.isReadableFile(atPath: explicit) else {
                throw ValidationError("--data: cannot read '\(explicit)'")
            }
            return explicit
        }
        var candidates: [URL] = []
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            candidates.append(directory.appendingPathComponent("Data/\(fileName)"))
            directory = directory.deletingLastPathComponent()
        }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Data/\(fileName)"))
        for candidate in candidates where FileManager.default.isReadableFile(atPath: candidate.path) {
            return candidate.path
        }
        throw ValidationError("cannot find Data/\(fileName) beside the package or in the current directory; pass --data PATH")
    }

    private static func readText(_ path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.starts(with: [0x1F, 0x8B]) else { return String(decoding: data, as: UTF8.self) }
        // gzip: decompressed by the system's gzip (Foundation on Linux has no inflate).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-dc", path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("\(path): gzip could not decompress it (is gzip installed?)")
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension SplitMix64 {
    /// A uniform Float in [0, 1) (SplitMix64 is shared with the Gaussian-process example).
    mutating func nextUnit() -> Float { Float(next() >> 40) / Float(1 << 24) }
}
