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

    /// The bounds of --repetitions and --warmup.
    static let repetitionRange = 1...10_000
    static let warmupRange = 0...1_000

    @Option(name: .long, help: "Timed runs per candidate (\(TuneCommand.repetitionRange.text)).")
    var repetitions = 5

    @Option(name: .long, help: "Untimed runs per candidate before the timed ones (\(TuneCommand.warmupRange.text)).")
    var warmup = 1

    @Flag(name: .long, help: "Measure and report, but do not write the cache.")
    var dryRun = false

    @Flag(name: .long, help: "Only print the cache's location, state and entries.")
    var show = false

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    mutating func validate() throws {
        try CountOption.check(repetitions, "--repetitions", in: Self.repetitionRange)
        try CountOption.check(warmup, "--warmup", in: Self.warmupRange)
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
        /// One per entry: "used", "rejected: <the rule it breaks>", or "not checked: <why>".
        let entryStates: [String]
    }

    /// Whether each cache entry is used where this machine can check it: an entry for a
    /// device that is present is "used" or "rejected" with the rule its values break
    /// (such an entry is ignored, the kernels take the defaults); one for a device that is
    /// not present cannot be checked here.
    static func entryStates(_ entries: [TuningCache.Entry]) -> [String] {
        let devices = (try? Device.all()) ?? []
        return entries.map { entry in
            guard let device = devices.first(where: { $0.name == entry.device && $0.driverVersion == entry.driverVersion })
            else {
                return devices.contains { $0.name == entry.device }
                    ? "not checked: another driver version is installed" : "not checked: no such device here"
            }
            return TuningCache.rejection(of: entry, on: device).map { "rejected: \($0)" } ?? "used"
        }
    }

    func run() throws {
        let cache = TuningCache()
        if show {
            let states = Self.entryStates(cache.entries)
            if json {
                try printJSON(
                    ShowOutput(
                        cache: cache.location?.path, cacheState: describe(cache.state), entries: cache.entries,
                        entryStates: states))
                return
            }
            try StandardOutput.print("tuning cache: \(cache.location?.path ?? "disabled (\(TuningCache.environmentVariable))")")
            try StandardOutput.print("state:        \(describe(cache.state))")
            var table = TextTable(["device", "driver", "file", "type", "values", "date", "state"])
            for (entry, state) in zip(cache.entries, states) {
                table.append([
                    entry.device, entry.driverVersion, entry.family, entry.element, entry.values, entry.date ?? "-", state,
                ])
            }
            try StandardOutput.print(cache.entries.isEmpty ? "no entries" : table.render())
            return
        }

        let device = try deviceOptions.selectDevice()
        // A device without a feature the run needs is exit 3, as everywhere else.
        if precision == .double && !device.supportsFloat64 {
            throw OpenCLError.unsupported(device: device.name, feature: "double precision (cl_khr_fp64); use --precision float")
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
        try StandardOutput.print("Device: \(device)  driver \(device.driverVersion)")
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
        try StandardOutput.print(table.render())
        for search in searches where search.speedupOverDefault.isFinite {
            try StandardOutput.print(
                String(
                    format: "%@ %@: winner %.2fx the default's speed", search.family, search.element, search.speedupOverDefault))
        }
        if skipStore {
            try StandardOutput.print(
                dryRun
                    ? "dry run: cache not written"
                    : "--size tiny: cache not written (only to an explicit \(TuningCache.environmentVariable))")
        } else if let location = cache.location {
            try StandardOutput.print(
                "stored in \(location.path)"
                    + (cache.state == .loaded || cache.state == .missing ? "" : " (replaced: \(describe(cache.state)))"))
        } else {
            try StandardOutput.print("tuning cache disabled (\(TuningCache.environmentVariable)): nothing stored")
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
