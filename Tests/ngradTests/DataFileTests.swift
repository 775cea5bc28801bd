import Foundation
import NaturalGradientExamples
import NaturalGradientTestSupport
import Testing

/// Reading `--data`: plain and gzipped files, pipes and FIFOs, odd names, and broken gzip,
/// in process (`DataFile`, `DigitsData`) and through the binary.
@Suite("data files and streams")
struct DataFileTests {
    /// A digits-format CSV of `rows` random rows (pixels 0-16, labels 0-9), reproducible.
    static func csv(rows: Int, seed: UInt64) -> [UInt8] {
        var generator = SplitMix64(seed: seed)
        var text = ""
        for _ in 0..<rows {
            let pixels = (0..<64).map { _ in String(generator.next() % 17) }
            text += pixels.joined(separator: ",") + ",\(generator.next() % 10)\n"
        }
        return Array(text.utf8)
    }

    /// `bytes` compressed by the system's gzip (only to make fixtures; ngrad itself uses zlib).
    static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-c", "-n"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let writer = input.fileHandleForWriting
        Thread.detachNewThread {
            try? writer.write(contentsOf: Data(bytes))
            try? writer.close()
        }
        let compressed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        return Array(compressed)
    }

    static let limit = 1 << 24

    @Test func plainAndGzippedFilesReadTheSameBytes() throws {
        let scratch = try ScratchDirectory(prefix: "ngrad-data")
        for rows in [1, 33, 257] {
            let plain = Self.csv(rows: rows, seed: UInt64(rows))
            let gz = try Self.gzip(plain)
            #expect(try DataFile.read(scratch.write("plain-\(rows).csv", plain), limit: Self.limit) == plain)
            // Detected by the magic bytes, not by the name.
            #expect(try DataFile.read(scratch.write("gz-\(rows).csv", gz), limit: Self.limit) == plain)
            // Concatenated members decompress to the concatenation, as with gzip -dc.
            let second = Self.csv(rows: 7, seed: 99)
            let members = gz + (try Self.gzip(second))
            #expect(try DataFile.read(scratch.write("two-\(rows).gz", members), limit: Self.limit) == plain + second)
        }
    }

    @Test func truncatedAndCorruptGzipNameTheFile() throws {
        let scratch = try ScratchDirectory(prefix: "ngrad-data")
        let gz = try Self.gzip(Self.csv(rows: 257, seed: 3))
        for keep in [2, 10, gz.count / 2, gz.count - 1] {
            let file = try scratch.write("cut-\(keep).csv.gz", Array(gz.prefix(keep)))
            let error = try #require(throws: DataFileError.self) { try DataFile.read(file, limit: Self.limit) }
            #expect(error.path == file)
            #expect(error.reason.contains("truncated"), "\(keep) bytes: \(error)")
        }
        var corrupt = gz
        for index in stride(from: 20, to: corrupt.count - 8, by: 97) { corrupt[index] ^= 0x5A }
        let file = try scratch.write("corrupt.csv.gz", corrupt)
        let error = try #require(throws: DataFileError.self) { try DataFile.read(file, limit: Self.limit) }
        #expect(error.description.hasPrefix(file + ": "))
        // Trailing bytes that are not another member are refused, not ignored.
        let trailing = try scratch.write("trailing.csv.gz", gz + [0x41, 0x42, 0x43])
        #expect(throws: DataFileError.self) { try DataFile.read(trailing, limit: Self.limit) }
    }

    @Test func theLimitBoundsBothTheFileAndWhatItDecompressesTo() throws {
        let scratch = try ScratchDirectory(prefix: "ngrad-data")
        let plain = [UInt8](repeating: UInt8(ascii: "7"), count: 100_000)
        let big = try scratch.write("big.csv", plain)
        let error = try #require(throws: DataFileError.self) { try DataFile.read(big, limit: 99_999) }
        #expect(error.reason.contains("99999"))
        let bomb = try scratch.write("bomb.gz", try Self.gzip(plain)) // a few hundred bytes
        let inflated = try #require(throws: DataFileError.self) { try DataFile.read(bomb, limit: 50_000) }
        #expect(inflated.reason.contains("decompresses to more than"))
        #expect(try DataFile.read(bomb, limit: 100_000) == plain)
    }

    @Test func aFIFOReadsLikeAFile() throws {
        let scratch = try ScratchDirectory(prefix: "ngrad-data")
        let plain = Self.csv(rows: 300, seed: 8) // larger than a pipe's buffer
        let gz = try Self.gzip(plain)
        let fifo = scratch.path + "/stream.gz"
        try #require(mkfifo(fifo, 0o600) == 0)
        Thread.detachNewThread {
            // Opening blocks until the reader opens its end.
            try? Data(gz).write(to: URL(fileURLWithPath: fifo))
        }
        #expect(try DataFile.read(fifo, limit: Self.limit) == plain)
    }

    @Test func unreadablePathsNameTheFile() throws {
        let scratch = try ScratchDirectory(prefix: "ngrad-data")
        for path in [scratch.path + "/missing.csv", scratch.path] {
            let error = try #require(throws: DataFileError.self) { try DataFile.read(path, limit: Self.limit) }
            #expect(error.path == path)
        }
    }

    // MARK: Through the binary

    /// One cheap training run on `--data`: SGD, one step on 32 samples.
    static let quickRun = ["train", "--methods", "sgd", "--steps", "1", "--batch-size", "16", "--train-samples", "32"]

    /// The committed digits data, as gzip bytes.
    static func committedDigits() throws -> [UInt8] {
        let path = try #require(DigitsData.locateCommittedCopy())
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func trainReadsAPipeANameStartingWithADashAndAPlainCSV() throws {
        let scratch = try ScratchDirectory(prefix: "ngrad-data")
        let gz = try Self.committedDigits()
        let plain = try DataFile.read(try scratch.write("digits.csv.gz", gz), limit: Self.limit)
        _ = try scratch.write("-dash.csv.gz", gz)
        _ = try scratch.write("plain.csv", plain)
        let output = scratch.path + "/out"
        let runs: [(String, [String], Data?)] = [
            ("a pipe on standard input", ["--data", "/dev/stdin"], Data(gz)),
            ("a name starting with '-'", ["--data=-dash.csv.gz"], nil),
            ("a plain CSV", ["--data", "plain.csv"], nil),
        ]
        for (what, data, input) in runs {
            let result = try runNgrad(Self.quickRun + data + ["--output", output], input: input, directory: scratch.path)
            #expect(result.status == 0, "\(what): \(result.stderr)")
            #expect(result.stdout.contains("digits: 32 train / 359 test samples"), "\(what): \(result.stdout)")
        }
    }

    @Test func trainNamesATruncatedGzipFile() throws {
        let scratch = try ScratchDirectory(prefix: "ngrad-data")
        let gz = try Self.committedDigits()
        let file = try scratch.write("cut.csv.gz", Array(gz.prefix(gz.count / 3)))
        let result = try runNgrad(Self.quickRun + ["--data", file, "--output", scratch.path + "/out"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("--data \(file): is a truncated gzip file"), "\(result.stderr)")
        #expect(!result.stderr.contains("gzip installed"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}
