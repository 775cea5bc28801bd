import ArgumentParser
import Foundation
import NaturalGradient
import NaturalGradientTestSupport

/// `ngrad bench`: what this device does with each kernel, in under a minute.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the kernels' throughput on a device (a quick version of the benchmark suite).",
        discussion: """
            Runs each operation (dense and batched-block accumulation, implicit, dense and Kronecker \
            products, one CG iteration, host-device transfers) at one size per element type: first once, \
            checked against a float64 host reference, then --warmup untimed and --repetitions timed runs. \
            Reports the median wall time with its spread, GFLOP/s, GB/s of the fewest bytes the operation \
            must move, and for memory-bound operations the fraction of the device's own copy bandwidth \
            (measured first). Exits 1 if a result is wrong. The peers (OpenBLAS, CLBlast) are in the \
            separate suite under Benchmarks/.
            """,
        version: NaturalGradientVersion.string
    )

    enum Precision: String, ExpressibleByArgument, CaseIterable {
        case float, all
    }

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "Problem sizes: quick (default), or tiny (a smoke test: the rates mean little).")
    var size: QuickBenchmark.Size = .quick

    @Option(name: .long, help: "float, or all (also double where the device supports fp64).")
    var precision: Precision = .float

    /// The bounds of --repetitions and --warmup.
    static let repetitionRange = 1...10_000
    static let warmupRange = 0...1_000

    @Option(name: .long, help: "Timed runs per operation (\(BenchCommand.repetitionRange.text)).")
    var repetitions = 5

    @Option(name: .long, help: "Untimed runs per operation before the timed ones (\(BenchCommand.warmupRange.text)).")
    var warmup = 1

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    mutating func validate() throws {
        try CountOption.check(repetitions, "--repetitions", in: Self.repetitionRange)
        try CountOption.check(warmup, "--warmup", in: Self.warmupRange)
    }

    struct Output: Encodable {
        let date: String
        let device: String
        let driverVersion: String
        let platform: String
        let computeUnits: Int
        let size: QuickBenchmark.Size
        let warmup: Int
        let repetitions: Int
        let tuningCache: String
        let peakResidentBytes: Int
        let rows: [QuickBenchmark.Row]
    }

    func run() throws {
        let device = try deviceOptions.selectDevice()
        let context = try Context(device: device)
        let interactive = isatty(STDERR_FILENO) != 0
        var suite = QuickBenchmark(context: context, size: size, warmup: warmup, repetitions: repetitions)
        let started = ContinuousClock.now
        suite.progress = { index, total, name in
            let elapsed = (ContinuousClock.now - started).seconds
            let line = String(format: "[%d/%d] %@ (%.0f s)", index, total, name, elapsed)
            FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + line : line + "\n").utf8))
        }
        let rows = try suite.run(doubles: precision == .all && device.supportsFloat64)
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        let cache = TuningCache.current
        let tuned = [KernelFamily.fisherAccumulation, .curvatureProducts].filter {
            cache.isTuned($0, on: device, element: "float")
        }
        let cacheNote =
            tuned.isEmpty
            ? "device defaults (no tuned values; run 'ngrad tune')"
            : "tuned values for \(tuned.map(\.rawValue).joined(separator: ", ")) from \(cache.location?.path ?? "-")"

        if json {
            try printJSON(
                Output(
                    date: ISO8601DateFormatter().string(from: Date()), device: device.name,
                    driverVersion: device.driverVersion, platform: device.platform.version,
                    computeUnits: device.computeUnits, size: size, warmup: warmup, repetitions: repetitions,
                    tuningCache: cacheNote, peakResidentBytes: peakResidentBytes(), rows: rows))
        } else {
            try StandardOutput.print("Device: \(device)  driver \(device.driverVersion), \(device.computeUnits) compute units")
            try StandardOutput.print("Kernels: \(cacheNote)")
            try StandardOutput.print(
                "Runs: \(warmup) warm-up + \(repetitions) timed per operation; times are wall clock, enqueue to finish")
            var table = TextTable([
                "operation", "type", "size", "median ms", "min-max ms", "GFLOP/s", "GB/s", "of copy BW", "error", "check",
            ])
            for row in rows {
                let timed = row.medianSeconds.isFinite
                table.append([
                    row.operation, row.element, row.shape, timed ? String(format: "%.3f", row.medianSeconds * 1e3) : "-",
                    timed ? String(format: "%.3f-%.3f", row.minSeconds * 1e3, row.maxSeconds * 1e3) : "(noise)",
                    row.flops > 0 && timed ? String(format: "%.1f", row.gflops) : "-",
                    timed ? String(format: "%.1f", row.gbytes) : "-",
                    row.rooflineFraction.map { String(format: "%.0f%%", $0 * 100) } ?? "-",
                    row.relativeError.map { String(format: "%.1e", $0) } ?? "-", row.passed ? "ok" : "WRONG",
                ])
            }
            try StandardOutput.print(table.render())
            try StandardOutput.print(
                "GB/s counts the fewest bytes each operation must move (U once for the implicit product and a CG "
                    + "iteration); 'of copy BW' divides it by the device copy's rate (bytes read + written).")
            try StandardOutput.print(String(format: "Peak resident memory: %.0f MiB", Double(peakResidentBytes()) / 1048576))
        }
        let wrong = rows.filter { !$0.passed }
        if !wrong.isEmpty {
            FileHandle.standardError.write(
                Data(
                    ("ngrad: error: wrong results: "
                        + wrong.map { "\($0.operation) \($0.element) (\($0.failure ?? "error \($0.relativeError ?? .nan)"))" }
                        .joined(separator: "; ") + "\n").utf8))
            throw ExitCode(ExitStatus.failure)
        }
    }
}
