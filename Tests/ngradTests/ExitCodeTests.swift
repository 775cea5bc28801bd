import Foundation
import NumPyFormat
import Testing
import NaturalGradientTestSupport

/// The exit-code contract (README, "Exit codes and output files"), one row per class of
/// outcome, across every command: 0 success, 1 the work ran but did not succeed (or its
/// results could not be written), 2 usage and input errors, 3 no usable OpenCL.
@Suite("exit codes")
struct ExitCodeTests {
    /// Input files for the solve rows: a well-posed problem and a singular one.
    final class Files {
        let directory: String
        init() throws {
            directory = NSTemporaryDirectory() + "ngrad-exit-\(UInt64.random(in: 0...UInt64.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try NumPyArray(shape: [16, 32], elementType: .float64, values: randomValues(16 * 32, seed: 1))
                .write(to: path("U.npy"))
            try NumPyArray(shape: [32], elementType: .float64, values: randomValues(32, seed: 2)).write(to: path("g.npy"))
            try FileManager.default.createDirectory(atPath: path("empty-vendors"), withIntermediateDirectories: true)
            try "__kernel void broken(__global float* x) { x[0] = not_declared; }\n".write(
                toFile: path("broken.cl"), atomically: true, encoding: .utf8)
        }
        deinit { try? FileManager.default.removeItem(atPath: directory) }
        func path(_ name: String) -> String { directory + "/" + name }
    }

    struct Row: CustomStringConvertible {
        let arguments: [String]
        let status: Int32
        /// Text standard error must contain (empty: anything, for successes).
        let mentions: String
        var noPlatform = false
        var toFullDisk = false
        var description: String { arguments.joined(separator: " ") }
    }

    static func rows(_ files: Files) -> [Row] {
        let solve = ["solve", "--factor", files.path("U.npy"), "--gradient", files.path("g.npy")]
        let metric = ["metric", "--family", "gaussian", "--measure", "kl"]
        let train = ["train", "--methods", "sgd", "--steps", "1", "--batch-size", "8", "--train-samples", "16"]
        let gp = ["example", "gp", "--iterations", "2", "--points", "5"]
        return [
            // 0: success
            Row(arguments: ["--version"], status: 0, mentions: ""),
            Row(arguments: ["devices", "--json"], status: 0, mentions: ""),
            Row(arguments: solve + ["--damping", "0.5", "--output", files.path("x.npy")], status: 0, mentions: ""),
            Row(arguments: metric + ["--at", "0.5,2"], status: 0, mentions: ""),
            // 1: the work ran but did not succeed, or its results could not be written
            Row(arguments: solve + ["--damping", "0", "--output", files.path("x.npy")], status: 1, mentions: "perturbed"),
            Row(
                arguments: solve + ["--damping", "0.5", "--output", files.path("no-such-directory/x.npy")], status: 1,
                mentions: "--output"),
            Row(arguments: solve + ["--damping", "0.5", "--output", files.directory], status: 1, mentions: "directory"),
            Row(arguments: metric + ["--at=0,1e-200"], status: 1, mentions: "--at"),
            Row(arguments: ["kernels", "--source", files.path("broken.cl")], status: 1, mentions: "not_declared"),
            Row(arguments: ["devices", "--json"], status: 1, mentions: "standard output", toFullDisk: true),
            Row(
                arguments: solve + ["--damping", "0.5", "--output", files.path("x.npy")], status: 1,
                mentions: "standard output", toFullDisk: true),
            Row(arguments: metric + ["--at", "0.5,2"], status: 1, mentions: "standard output", toFullDisk: true),
            Row(arguments: ["kernels", "--precision", "float"], status: 1, mentions: "standard output", toFullDisk: true),
            Row(
                arguments: ["bench", "--size", "tiny", "--repetitions", "1", "--warmup", "0"], status: 1,
                mentions: "standard output", toFullDisk: true),
            Row(arguments: ["tune", "--show"], status: 1, mentions: "standard output", toFullDisk: true),
            Row(arguments: ["tune", "--show", "--json"], status: 1, mentions: "standard output", toFullDisk: true),
            Row(arguments: train + ["--output", files.path("train")], status: 1, mentions: "standard output", toFullDisk: true),
            Row(arguments: gp + ["--output", files.path("gp")], status: 1, mentions: "standard output", toFullDisk: true),
            Row(arguments: train + ["--output", files.path("U.npy")], status: 1, mentions: "--output"),
            Row(arguments: gp + ["--output", files.path("U.npy") + "/gp"], status: 1, mentions: "--output"),
            // 2: usage and input errors
            Row(arguments: ["frobnicate"], status: 2, mentions: "frobnicate"),
            Row(arguments: ["devices", "--bogus"], status: 2, mentions: "--bogus"),
            Row(arguments: ["kernels", "--device", "no-such-device"], status: 2, mentions: "no-such-device"),
            Row(arguments: ["kernels", "--source", files.path("missing.cl")], status: 2, mentions: "missing.cl"),
            Row(
                arguments: [
                    "solve", "--factor", files.path("missing.npy"), "--gradient", files.path("g.npy"),
                    "--damping", "1", "--output", files.path("x.npy"),
                ], status: 2, mentions: "--factor"),
            Row(arguments: solve + ["--damping", "1", "--output", files.path("U.npy")], status: 2, mentions: "same file"),
            Row(arguments: solve + ["--damping", "-1", "--output", files.path("x.npy")], status: 2, mentions: "≥ 0"),
            Row(arguments: solve + ["--damping", "1", "--output", ""], status: 2, mentions: "--output"),
            Row(
                arguments: metric + ["--at", Array(repeating: "1", count: 600).joined(separator: ",")], status: 2,
                mentions: "limit"),
            Row(
                arguments: ["metric", "--family", "gaussian", "--measure", "klx", "--at", "1,2"], status: 2,
                mentions: "kl, reverse-kl"),
            Row(arguments: ["bench", "--repetitions", "0"], status: 2, mentions: "--repetitions"),
            Row(arguments: ["tune", "--repetitions", "0"], status: 2, mentions: "--repetitions"),
            Row(arguments: ["train", "--steps", "0"], status: 2, mentions: "--steps"),
            Row(arguments: ["example", "gp", "--iterations", "0"], status: 2, mentions: "--iterations"),
            Row(arguments: ["tune", "--warmup=-1"], status: 2, mentions: "--warmup"),
            Row(arguments: train + ["--output", ""], status: 2, mentions: "--output"),
            Row(arguments: gp + ["--output", ""], status: 2, mentions: "--output"),
            Row(arguments: ["train", "--data", files.directory], status: 2, mentions: "--data"),
            Row(arguments: ["example", "frobnicate"], status: 2, mentions: "frobnicate"),
            // 3: no usable OpenCL (the ICD loader pointed at an empty vendors directory)
            Row(arguments: ["devices"], status: 3, mentions: "pocl-opencl-icd", noPlatform: true),
            Row(arguments: ["devices", "--json"], status: 3, mentions: "pocl-opencl-icd", noPlatform: true),
            Row(arguments: ["kernels"], status: 3, mentions: "pocl-opencl-icd", noPlatform: true),
            Row(
                arguments: solve + ["--damping", "0.5", "--output", files.path("x3.npy")], status: 3,
                mentions: "pocl-opencl-icd", noPlatform: true),
            Row(arguments: metric + ["--at", "0.5,2"], status: 3, mentions: "pocl-opencl-icd", noPlatform: true),
            Row(arguments: ["bench", "--size", "tiny"], status: 3, mentions: "pocl-opencl-icd", noPlatform: true),
            Row(arguments: ["tune", "--size", "tiny", "--dry-run"], status: 3, mentions: "pocl-opencl-icd", noPlatform: true),
            Row(arguments: ["train", "--steps", "1"], status: 3, mentions: "pocl-opencl-icd", noPlatform: true),
            // The GP example runs on the host: no OpenCL needed, so it succeeds without a platform.
            Row(arguments: gp + ["--output", files.path("gp3")], status: 0, mentions: "", noPlatform: true),
            // --show reads the cache file only: it works without a platform (entries not checked).
            Row(arguments: ["tune", "--show"], status: 0, mentions: "", noPlatform: true),
        ]
    }

    @Test func everyCommandHoldsTheContract() throws {
        let files = try Files()
        for row in Self.rows(files) {
            let environment = row.noPlatform ? ["OCL_ICD_VENDORS": files.path("empty-vendors")] : [:]
            let result = try runNgrad(row.arguments, environment: environment, standardOutput: row.toFullDisk ? "/dev/full" : nil)
            #expect(result.status == row.status, "\(row): \(result.stderr)")
            if !row.mentions.isEmpty {
                #expect(result.stderr.contains(row.mentions), "\(row): \(result.stderr)")
                #expect(!result.stderr.contains("NSCocoaErrorDomain") && !result.stderr.contains("Error Domain"), "\(row)")
            }
        }
    }

    /// The message for a negative number after a space where an option does not take one.
    @Test func negativeNumbersAfterASpace() throws {
        let files = try Files()
        // Options of solve and metric take them (and the rule then speaks).
        let metric = try runNgrad(["metric", "--family", "gaussian", "--measure", "kl", "--at", "-1,2", "--json"])
        #expect(metric.status == 0, "\(metric.stderr)")
        let samples = try runNgrad([
            "solve", "--factor", files.path("U.npy"), "--gradient", files.path("g.npy"), "--damping", "1", "--samples", "-3",
            "--output", files.path("x.npy"),
        ])
        #expect(samples.status == 2 && samples.stderr.contains("--samples must be positive"), "\(samples.stderr)")
        // Elsewhere the message says how to write it.
        let bench = try runNgrad(["bench", "--repetitions", "-3"])
        #expect(bench.status == 2 && bench.stderr.contains("--repetitions=-3"), "\(bench.stderr)")
    }
}
