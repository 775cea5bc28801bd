import ArgumentParser
import Foundation
import NaturalGradient
import NaturalGradientTestSupport

/// `ngrad tune`: searches a small space of kernel parameters on the chosen device, checks
/// each candidate against a float64 reference, and stores the winners in the tuning cache,
/// which every later run on that device (same driver version) uses automatically.
struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Find the fastest kernel parameters for a device and store them in the tuning cache.",
        discussion: """
            Times the dense accumulation's micro-tiles (RM x VW) and the implicit product's work-group \
            size and work-groups per pass (WGS, GROUPS) on the device; every candidate's result is \
            compared with a float64 host reference first, and a wrong one is rejected. The winners are \
            written to $NGRAD_TUNING_CACHE, else $XDG_CACHE_HOME/naturalgradient/tuning.json, else \
            ~/.cache/naturalgradient/tuning.json, keyed by device name, driver version, kernel file and \
            element type, and used by every later run there. NGRAD_TUNING_CACHE=off disables the cache. \
            The default sizes take about a minute on a 2-core CPU device.
            """,
        version: NaturalGradientVersion.string
    )

    enum Precision: String, ExpressibleByArgument, CaseIterable {
        case float, double, all
    }

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "Problem sizes: standard, or tiny (a smoke test: 3 candidates each, not for choosing).")
    var size: KernelTuner.Size = .standard

    @Option(name: .long, help: "Element types: float, double or all (double only where fp64 is supported).")
    var precision: Precision = .float

    @Option(name: .long, help: "Timed runs per candidate.")
    var repetitions = 5

    @Option(name: .long, help: "Untimed runs per candidate before the timed ones.")
    var warmup = 1

    @Flag(name: .long, help: "Measure and report, but do not write the cache.")
    var dryRun = false

    @Flag(name: .long, help: "Only print the cache's location, state and entries.")
    var show = false

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    mutating func validate() throws {
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1, got \(repetitions)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
    }

    struct Output: Encodable {
        let device: String
        let driverVersion: String
        let cache: String?
        let cacheState: String
        let stored: Bool
        let searches: [KernelTuner.Search]
    }

    struct ShowOutput: Encodable {
        let cache: String?
        let cacheState: String
        let entries: [TuningCache.Entry]
    }

    func run() throws {
        let cache = TuningCache()
        if show {
            if json {
                try printJSON(ShowOutput(cache: cache.location?.path, cacheState: describe(cache.state), entries: cache.entries))
                return
            }
            print("tuning cache: \(cache.location?.path ?? "disabled (\(TuningCache.environmentVariable))")")
            print("state:        \(describe(cache.state))")
            var table = TextTable(["device", "driver", "file", "type", "values", "date"])
            for entry in cache.entries {
                table.append([entry.device, entry.driverVersion, entry.family, entry.element, entry.values, entry.date ?? "-"])
            }
            print(cache.entries.isEmpty ? "no entries" : table.render())
            return
        }

        let device = try deviceOptions.selectDevice()
        if precision == .double && !device.supportsFloat64 {
            throw ValidationError("\(device.name) does not support double precision (cl_khr_fp64)")
        }
        let interactive = isatty(STDERR_FILENO) != 0
        var tuner = try KernelTuner(context: Context(device: device), size: size, warmup: warmup, repetitions: repetitions)
        tuner.progress = { message in
            let line = "tuning \(message)"
            FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + line : line + "\n").utf8))
        }
        var searches: [KernelTuner.Search] = []
        if precision != .double { searches += try tuner.searches(Float.self) }
        if precision != .float && device.supportsFloat64 { searches += try tuner.searches(Double.self) }
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }

        // Tiny sizes say nothing about real ones: their winners go only to a cache that
        // NGRAD_TUNING_CACHE names explicitly (tests), never to the user's default one.
        let explicitCache = !(ProcessInfo.processInfo.environment[TuningCache.environmentVariable] ?? "").isEmpty
        let skipStore = dryRun || (size == .tiny && !explicitCache)
        let stored = !skipStore && cache.location != nil ? try tuner.store(searches, in: cache).stored : false

        if json {
            try printJSON(
                Output(
                    device: device.name, driverVersion: device.driverVersion, cache: cache.location?.path,
                    cacheState: describe(cache.state), stored: stored, searches: searches))
            return
        }
        print("Device: \(device)  driver \(device.driverVersion)")
        var table = TextTable(["kernel", "type", "M", "P", "candidate", "median ms", "min-max ms", "error", "result"])
        for search in searches {
            for (index, candidate) in search.candidates.enumerated() {
                let values = candidate.tunables.description
                let result =
                    candidate.rejection.map { "rejected: \($0)" }
                    ?? (candidate.winner ? "winner" : "ok") + (candidate.isDefault ? " (default)" : "")
                table.append([
                    index == 0 ? search.family : "", index == 0 ? search.element : "",
                    index == 0 ? "\(search.rows)" : "", index == 0 ? "\(search.dimension)" : "", values,
                    candidate.medianSeconds.isFinite ? String(format: "%.3f", candidate.medianSeconds * 1e3) : "-",
                    candidate.minSeconds.isFinite
                        ? String(format: "%.3f-%.3f", candidate.minSeconds * 1e3, candidate.maxSeconds * 1e3) : "-",
                    candidate.relativeError.isFinite ? String(format: "%.1e", candidate.relativeError) : "-", result,
                ])
            }
        }
        print(table.render())
        for search in searches where search.speedupOverDefault.isFinite {
            print(String(format: "%@ %@: winner %.2fx the default's speed", search.family, search.element, search.speedupOverDefault))
        }
        if skipStore {
            print(dryRun ? "dry run: cache not written" : "--size tiny: cache not written (only to an explicit \(TuningCache.environmentVariable))")
        } else if let location = cache.location {
            print("stored in \(location.path)" + (cache.state == .loaded || cache.state == .missing ? "" : " (replaced: \(describe(cache.state)))"))
        } else {
            print("tuning cache disabled (\(TuningCache.environmentVariable)): nothing stored")
        }
    }

    private func describe(_ state: TuningCache.State) -> String {
        switch state {
        case .disabled: "disabled"
        case .missing: "no file yet"
        case .loaded: "loaded"
        case let .ignored(reason): "ignored: \(reason)"
        }
    }
}

extension KernelTuner.Size: ExpressibleByArgument {}
