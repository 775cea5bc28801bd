import ArgumentParser
import Foundation
import NaturalGradientTestSupport
import NaturalGradient

/// `ngrad-benchmarks`: our kernels against OpenBLAS (host CPU) and CLBlast (the same
/// OpenCL device and queue), side by side in one run.
@main
struct Benchmarks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ngrad-benchmarks",
        abstract: "Times NaturalGradient's kernels against OpenBLAS and CLBlast in one run.",
        discussion: """
            Every kernel family against OpenBLAS (host CPU) and CLBlast (the same device and queue), \
            float and double where the peer has the routine, over a size sweep: dense and \
            batched-block accumulation (syrk), implicit product (two gemv), dense product (symv), \
            Kronecker product (two gemm per layer), transfers (memcpy), one CG iteration against one \
            product, a 50-iteration CG and a CG to 1e-6 and to 1e-5 (CBLAS CG), a Woodbury solve (syrk + \
            LAPACKE). Each result is checked against a float64 reference before timing; a \
            disagreement exits 1. Rows give the median wall time and spread, device time from \
            profiling markers, GFLOP/s, GB/s, the fraction of the roofline (ceilings measured in the \
            same run) and the speed ratio to each peer (> 1: ours is faster). See README.md.
            """,
        version: NaturalGradientVersion.string
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "OpenCL device for ours and CLBlast: an index from 'ngrad devices', 'gpu', 'cpu', or part of the name.",
            discussion: "Defaults to $NGRAD_DEVICE, else the first GPU, else the first CPU device."))
    var device: String?

    @Option(name: .long, help: "Timed runs per operation, size and contestant.")
    var repetitions = 10

    @Option(name: .long, help: "Untimed warm-up runs before the timed ones.")
    var warmup = 2

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Timed runs of the solver rows (cg-iteration, cg-50, woodbury-solve).",
            discussion: "Fewer than --repetitions by default, as a run takes up to 2.5 s; "
                + "they get min(--warmup, 1) warm-up runs."))
    var solverRepetitions = 7

    @Option(name: .long, help: ArgumentHelp("Also write every measurement to this file as JSON.", valueName: "file"))
    var json: String?

    @Option(name: .long, help: ArgumentHelp("Also write one line per contestant and case to this CSV file.", valueName: "file"))
    var csv: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Also write the README's Markdown table (one row per case) to this file.", valueName: "file"))
    var markdown: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Also write an SVG chart (rate against size per operation, ours against the peers) to this file.",
            valueName: "file"))
    var svg: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "full: small, medium and large sizes (about 8 minutes on 2 PoCL cores); quick: small and medium; "
                + "tiny: every operation at a tiny size, for CI (the rates mean nothing); large: the large-model "
                + "sections (factor-inversion, large-kfac, large-factor; about 10 minutes, 12 GB)."))
    var suite: Suite = .full

    @Option(
        name: .long, parsing: .upToNextOption,
        help: ArgumentHelp(
            "Run only these operations (accumulation, block-accumulation, implicit-product, dense-product, "
                + "kronecker-product, transfers, cg-iteration, solvers, large-input; with --suite large: "
                + "factor-inversion, large-kfac, large-factor).", valueName: "operation"))
    var only: [String] = []

    @Flag(
        name: .long,
        help: "Run --suite large at small sizes (orders 33 and 65, layers 33→65→33, batch 17, a 33x4097 factor): a smoke test.")
    var largeSmoke = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Dense layers of the large-kfac step, alternating 1024→4096 and 4096→1024 (default 8, 33.6M parameters; "
                + "16 gives the issue's 67M).", valueName: "count"))
    var largeLayers = 8

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The large-input factor as ROWSxCOLUMNS float32 (default by suite: tiny 33x4097, quick 256x65536, "
                + "full 512x262144 = 512 MiB); 512x2500000 is the 5 GB beyond-4-GiB run (needs 10 GB free disk, 13 GB memory).",
            valueName: "shape"))
    var largeInputShape: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The ngrad binary whose solve the large-input measurement runs (default: $NGRAD_BINARY, else ../.build/release/ngrad, "
                + "else ../.build/debug/ngrad; none found: the solve is skipped).", valueName: "path"))
    var ngrad: String?

    @Flag(name: .long, help: "Re-read the --json, --csv and --svg files after writing them and check them (CI).")
    var checkOutputs = false

    mutating func validate() throws {
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1, got \(repetitions)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        guard (1...64).contains(largeLayers) else {
            throw ValidationError("--large-layers must be in 1...64, got \(largeLayers)")
        }
        guard solverRepetitions >= 1 else {
            throw ValidationError("--solver-repetitions must be at least 1, got \(solverRepetitions)")
        }
    }

    func run() throws {
        // Before anything is measured (and before OpenCL starts threads): may re-run the suite.
        let peer = PeerCore.current
        let selector = try DeviceSelector.resolve(explicit: device, environment: ProcessInfo.processInfo.environment)
        let context = try Context(selector: selector)
        var settings = Settings(warmup: warmup, repetitions: repetitions)
        settings.solverWarmup = min(warmup, 1)
        settings.solverRepetitions = solverRepetitions
        let cpu = hostCPUName()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let initialLoad = loadAverage()

        let device = context.device
        print("device:   \(device.name) (\(device.kind.rawValue), \(device.computeUnits) compute units)")
        print("platform: \(context.device.platform.version), driver \(context.device.driverVersion)")
        print("host:     \(cpu), \(cores) cores")
        print("OpenBLAS: \(OpenBLAS.configuration) (core \(OpenBLAS.coreName), \(OpenBLAS.threads) threads)")
        print("peer:     \(peer.header)")
        print("load:     \(initialLoad) (1, 5, 15 min) at start")
        print("suite:    \(suite.rawValue)")
        print(
            "runs:     1 sizing + \(warmup) warm-up + up to \(repetitions) timed per contestant (at least 3, about "
                + "\(settings.budget) s of timed runs for slow ones), \(settings.copies) input copies rotated")
        print(
            "          solver rows: \(settings.solverWarmup) warm-up + \(settings.solverRepetitions) timed runs "
                + "(fewer, as a run takes up to 2.5 s; cg-iteration times 4 products per run)")
        print("")

        if let spec = ProcessInfo.processInfo.environment["NGRAD_AB"] {
            let sections = spec.split(separator: ";", omittingEmptySubsequences: false)
            let parts = sections[0].split(separator: ",").map { Int($0) } // split keeps at least one section
            guard sections.count == 3, parts.count == 3, let m = parts[0], let p = parts[1], let rounds = parts[2],
                m >= 1, p >= 1, (1...100_000).contains(rounds)
            else {
                throw ValidationError(
                    "NGRAD_AB must be \"M,P,ROUNDS;A;B\" (M, P >= 1, ROUNDS in 1...100000; A and B tunable overrides "
                        + "such as WGS=64), got \"\(spec)\"")
            }
            try abImplicitProduct(
                context: context, rows: m, dimension: p, a: String(sections[1]), b: String(sections[2]), rounds: rounds)
            return
        }
        let fp64 = device.supportsFloat64
        let selected = Set(only.flatMap { $0.split(separator: ",").map(String.init) })
        let known: Set = [
            "accumulation", "block-accumulation", "implicit-product", "dense-product", "kronecker-product", "transfers",
            "cg-iteration", "solvers", "large-input", "factor-inversion", "large-kfac", "large-factor",
        ]
        if let unknown = selected.subtracting(known).sorted().first {
            throw ValidationError("--only: unknown operation '\(unknown)'; choose from \(known.sorted().joined(separator: ", "))")
        }
        func runs(_ operation: String) -> Bool { selected.isEmpty || selected.contains(operation) }
        var cases: [CaseResult] = []
        if suite == .large {
            try runLargeSuite(context: context, runs: runs)
        }
        if runs("large-input"), suite != .large || selected.contains("large-input") {
            let (rows, columns) = try largeInputDimensions()
            progress("large input \(rows) x \(columns) (read throughput, ngrad solve's peak memory)")
            if let result = try LargeInput.measure(
                rows: rows, columns: columns, directory: NSTemporaryDirectory(), ngrad: ngradBinary(),
                repetitions: max(3, min(repetitions, 5)))
            {
                print("large input (a child ngrad solve; its peak RSS is its own VmHWM, peakResidentBytes of its JSON):")
                print(result.table)
                print("")
            }
        }
        for (m, p) in suite.accumulation where runs("accumulation") {
            progress("accumulation float M=\(m) P=\(p)")
            cases.append(try sweepAccumulation(Float.self, context: context, rows: m, dimension: p, settings: settings))
        }
        for (m, p) in suite.accumulationDouble where fp64 && runs("accumulation") {
            progress("accumulation double M=\(m) P=\(p)")
            cases.append(try sweepAccumulation(Double.self, context: context, rows: m, dimension: p, settings: settings))
        }
        for (m, sizes) in suite.blocks where runs("block-accumulation") {
            progress("block accumulation float M=\(m) blocks \(sizes)")
            cases.append(try sweepBlockAccumulation(Float.self, context: context, rows: m, blockSizes: sizes, settings: settings))
            if fp64 {
                progress("block accumulation double M=\(m) blocks \(sizes)")
                cases.append(
                    try sweepBlockAccumulation(Double.self, context: context, rows: m, blockSizes: sizes, settings: settings))
            }
        }
        for (m, p) in suite.product where runs("implicit-product") {
            progress("implicit product float M=\(m) P=\(p)")
            cases.append(try sweepImplicitProduct(Float.self, context: context, rows: m, dimension: p, settings: settings))
        }
        for (m, p) in suite.productDouble where fp64 && runs("implicit-product") {
            progress("implicit product double M=\(m) P=\(p)")
            cases.append(try sweepImplicitProduct(Double.self, context: context, rows: m, dimension: p, settings: settings))
        }
        for p in suite.dense where runs("dense-product") {
            progress("dense product float P=\(p)")
            cases.append(try sweepDenseProduct(Float.self, context: context, dimension: p, settings: settings))
        }
        for p in suite.denseDouble where fp64 && runs("dense-product") {
            progress("dense product double P=\(p)")
            cases.append(try sweepDenseProduct(Double.self, context: context, dimension: p, settings: settings))
        }
        for (n, shapes) in suite.kronecker where runs("kronecker-product") {
            progress("Kronecker product float N=\(n) layers \(shapes)")
            cases.append(try sweepKroneckerProduct(Float.self, context: context, samples: n, shapes: shapes, settings: settings))
            if fp64 {
                progress("Kronecker product double N=\(n) layers \(shapes)")
                cases.append(
                    try sweepKroneckerProduct(Double.self, context: context, samples: n, shapes: shapes, settings: settings))
            }
        }
        for bytes in suite.transfers where runs("transfers") {
            progress("transfers \(byteLabel(bytes))")
            cases += try sweepTransfers(context: context, bytes: bytes, settings: settings)
        }
        for (m, p) in suite.cgIteration where runs("cg-iteration") {
            progress("CG iteration vs implicit product M=\(m) P=\(p)")
            let problem = try SolverProblem(context: context, rows: m, dimension: p, copies: settings.copies)
            cases.append(try benchmarkCGIteration(context: context, problem: problem, settings: settings))
        }
        for (m, p) in suite.solvers where runs("solvers") {
            let problem = try SolverProblem(context: context, rows: m, dimension: p, copies: settings.copies)
            progress("50-iteration CG M=\(m) P=\(p)")
            cases.append(try benchmarkCGSolve(context: context, problem: problem, settings: settings))
            progress("CG to 1e-6 M=\(m) P=\(p)")
            cases.append(
                try sweepCGTolerance(
                    context: context, problem: problem, settings: settings, tolerance: 1e-6, operation: .cgTolerance))
            progress("CG to 1e-5 M=\(m) P=\(p)")
            cases.append(
                try sweepCGTolerance(
                    context: context, problem: problem, settings: settings, tolerance: 1e-5,
                    operation: .cgToleranceResolved))
            progress("Woodbury solve M=\(m) P=\(p)")
            cases.append(try benchmarkWoodbury(context: context, problem: problem, settings: settings))
        }
        if fp64, runs("solvers") {
            let (m, p) = suite == .tiny ? (16, 513) : (64, 4097)
            progress("CG vs PCG on an empirical-Fisher-like spectrum M=\(m) P=\(p)")
            cases.append(try benchmarkPCGOnFisherSpectrum(context: context, settings: settings, rows: m, dimension: p))
        }

        progress("ceilings (OpenBLAS and CLBlast GEMM, SGEMV, copies)")
        let ceilings = try measureHostCeilings(context: context, settings: settings, tiny: suite == .tiny)
        let bandwidth = ceilings.filter { $0.kind == .bandwidth }.map(\.rate).max()
        for index in cases.indices {
            let element = cases[index].element
            let flops = ceilings.filter { $0.kind == .flops && $0.element == element }.map(\.rate).max()
            cases[index].applyRoofline(flopCeiling: flops, bandwidthCeiling: bandwidth)
        }

        var targets = Target.all
        for index in targets.indices {
            targets[index].measured = targets[index].evaluate(in: cases)
        }

        let finalLoad = loadAverage()
        print("load:     \(finalLoad) (1, 5, 15 min) at end")
        print("")
        print(renderTable(cases))
        print("")
        print(renderChecks(cases))
        print("")
        print(renderTargets(targets))
        print("")
        print(renderCeilings(ceilings))
        print(String(format: "\npeak resident memory: %.0f MiB", Double(peakResidentBytes()) / 1048576))

        let date = ISO8601DateFormatter().string(from: Date())
        if let json {
            let report = Report(
                date: date, device: context.device.name,
                loadAverageAtStart: initialLoad, loadAverageAtEnd: finalLoad,
                platform: context.device.platform.version, driverVersion: context.device.driverVersion,
                computeUnits: context.device.computeUnits, hostCPU: cpu, hostCores: cores,
                openBLAS: OpenBLAS.configuration, openBLASCore: OpenBLAS.coreName, openBLASThreads: OpenBLAS.threads,
                openBLASPeer: peer,
                suite: suite.rawValue, warmup: warmup, repetitions: repetitions, solverWarmup: settings.solverWarmup,
                solverRepetitions: settings.solverRepetitions, inputCopies: settings.copies,
                peakResidentBytes: peakResidentBytes(), cases: cases, targets: targets, hostCeilings: ceilings)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(
                positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            try encoder.encode(report).write(to: URL(fileURLWithPath: json))
            print("\nwrote \(json)")
        }
        if let csv {
            try renderCSV(cases).write(toFile: csv, atomically: true, encoding: .utf8)
            print("wrote \(csv)")
        }
        if let markdown {
            try renderMarkdown(cases).write(toFile: markdown, atomically: true, encoding: .utf8)
            print("wrote \(markdown)")
        }
        if let svg {
            let title = "\(context.device.name), \(date.prefix(10))"
            try renderChart(cases, title: title).write(toFile: svg, atomically: true, encoding: .utf8)
            print("wrote \(svg)")
        }

        if checkOutputs {
            try OutputCheck.run(cases: cases, json: json, csv: csv, svg: svg)
            print("outputs checked: \([json, csv, svg].compactMap { $0 }.joined(separator: ", "))")
        }

        let failed = cases.flatMap { result in
            result.checks.filter { !$0.passed }.map {
                "\(result.operation.rawValue) \(result.element) \(result.sizeLabel): \($0.name)"
            }
        }
        if !failed.isEmpty {
            throw MismatchError(checks: failed)
        }
    }
}

extension Benchmarks {
    /// `--large-input-shape`, else the suite's size.
    func largeInputDimensions() throws -> (Int, Int) {
        guard let largeInputShape else {
            switch suite {
            case .tiny: return (33, 4097)
            case .quick: return (256, 65536)
            case .full: return (512, 262_144)
            case .large: return largeSmoke ? (33, 4097) : (512, 2_500_000)
            }
        }
        let parts = largeInputShape.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ $0 > 0 }), parts[0].multipliedReportingOverflow(by: parts[1]).overflow == false
        else {
            throw ValidationError("--large-input-shape must be ROWSxCOLUMNS with positive integers, got '\(largeInputShape)'")
        }
        return (parts[0], parts[1])
    }

    /// The large-model sections (`--suite large`), each printed as it finishes, with the
    /// peak resident memory after each.
    func runLargeSuite(context: Context, runs: (String) -> Bool) throws {
        let smoke = largeSmoke
        if runs("factor-inversion") {
            print(
                try LargeModel.factorInversion(
                    context: context, orders: smoke ? [33, 65] : [256, 512, 1024, 2048, 4096], samples: smoke ? 17 : 512,
                    projectedFrom: smoke ? 65 : 2048))
            print(String(format: "peak resident memory: %.0f MiB\n", Double(peakResidentBytes()) / 1048576))
        }
        if runs("large-kfac") {
            print(
                try LargeModel.kfacStep(
                    context: context,
                    shapes: LargeModel.shapes(narrow: smoke ? 33 : 1024, wide: smoke ? 65 : 4096, count: largeLayers),
                    batch: smoke ? 17 : 512, refreshEvery: 10, repetitions: smoke ? 2 : 3))
            print(String(format: "peak resident memory: %.0f MiB\n", Double(peakResidentBytes()) / 1048576))
        }
        if runs("large-factor") {
            let (rows, columns) = try largeInputDimensions()
            let bytes = rows * columns * MemoryLayout<Float>.stride
            if let available = LargeInput.availableMemoryBytes(), available < bytes + bytes / 2 + (1 << 30) {
                print(
                    "large factor \(rows) x \(columns): skipped, it needs about \(formatBytes(UInt64(bytes + bytes / 2 + (1 << 30)))) "
                        + "of memory and \(formatBytes(UInt64(available))) is available\n")
            } else {
                print(try LargeModel.largeFactor(context: context, rows: rows, columns: columns, repetitions: smoke ? 2 : 3))
            }
            print(String(format: "peak resident memory: %.0f MiB\n", Double(peakResidentBytes()) / 1048576))
        }
    }

    /// The ngrad binary: --ngrad, $NGRAD_BINARY, then the root package's release and debug builds.
    func ngradBinary() -> String? {
        let candidates = [
            ngrad, ProcessInfo.processInfo.environment["NGRAD_BINARY"], "../.build/release/ngrad", "../.build/debug/ngrad",
        ]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// The size sweeps.
enum Suite: String, ExpressibleByArgument, CaseIterable {
    case full, quick, tiny, large

    private func pick<T>(tiny: [T], small: [T], medium: [T], large: [T]) -> [T] {
        switch self {
        case .tiny: tiny
        case .quick: small + medium
        case .full: small + medium + large
        case .large: [] // The large suite runs its own sections (LargeModel.swift).
        }
    }

    var accumulation: [(Int, Int)] { pick(tiny: [(33, 65)], small: [(256, 1024)], medium: [(1024, 4096)], large: [(2048, 4096)]) }
    var accumulationDouble: [(Int, Int)] { pick(tiny: [(33, 65)], small: [(256, 1024)], medium: [(1024, 2048)], large: []) }
    var blocks: [(Int, [Int])] {
        pick(
            tiny: [(33, [9, 17, 33, 7])], small: [(128, [200, 100, 50, 10])], medium: [(512, [1024, 512, 300, 100, 10])],
            large: [])
    }
    var product: [(Int, Int)] {
        pick(tiny: [(33, 257)], small: [(256, 16384)], medium: [(1024, 65536)], large: [(2048, 65536)])
    }
    var productDouble: [(Int, Int)] { pick(tiny: [(33, 257)], small: [(256, 16384)], medium: [(1024, 32768)], large: []) }
    var dense: [Int] { pick(tiny: [65], small: [1024], medium: [4096], large: [8192]) }
    var denseDouble: [Int] { pick(tiny: [65], small: [1024], medium: [4096], large: []) }
    var kronecker: [(Int, [(outputs: Int, inputs: Int)])] {
        pick(
            tiny: [(17, [(9, 17), (5, 10)])], small: [(256, [(64, 129), (10, 65)])],
            medium: [(256, [(256, 513), (128, 257), (10, 129)])], large: [(512, [(1024, 1025), (512, 1025), (10, 513)])])
    }
    var transfers: [Int] { pick(tiny: [1 << 16], small: [1 << 20], medium: [16 << 20], large: [256 << 20]) }
    var cgIteration: [(Int, Int)] { pick(tiny: [(33, 1025)], small: [], medium: [(1024, 65536)], large: [(512, 100_000)]) }
    var solvers: [(Int, Int)] { pick(tiny: [(33, 1025)], small: [], medium: [], large: [(512, 100_000)]) }
}

/// Contestants disagreed: a broken peer call or a broken kernel; the timings mean nothing.
struct MismatchError: Error, CustomStringConvertible {
    let checks: [String]
    var description: String { "results disagree: " + checks.joined(separator: "; ") }
}

/// A progress line on standard error, so the table on standard output stays clean.
func progress(_ message: String) {
    FileHandle.standardError.write(Data("running \(message)...\n".utf8))
}

/// The host CPU's model name from /proc/cpuinfo, or "unknown CPU".
func hostCPUName() -> String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
        if let colon = line.firstIndex(of: ":") {
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
    return "unknown CPU"
}

/// The first three fields of /proc/loadavg (the machine is shared: a high load means the
/// timings are noisy), or "unknown".
func loadAverage() -> String {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}
