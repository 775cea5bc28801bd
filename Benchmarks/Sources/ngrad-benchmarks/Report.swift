import Foundation
import NaturalGradientTestSupport

// MARK: - Results

enum Operation: String, Codable {
    case accumulation = "accumulation"
    case implicitProduct = "implicit-product"
    /// One iteration of our CG against one implicit product (both ours).
    case cgIteration = "cg-iteration"
    /// A 50-iteration CG solve, ours against a CBLAS CG.
    case cgSolve = "cg-50"
    /// A Woodbury solve from a fresh factor (Gram matrix included), ours against CBLAS + LAPACKE.
    case woodbury = "woodbury-solve"
    /// Per-layer blocks of one factor accumulated in one launch.
    case blockAccumulation = "block-accumulation"
    /// `(F + λI) x` with a dense symmetric F.
    case denseProduct = "dense-product"
    /// K-FAC `vec(G V A)` per layer.
    case kroneckerProduct = "kronecker-product"
    /// A full CG solve to a relative residual of 1e-6 (below what float32 products resolve
    /// at (512, 100000): see `sweepCGTolerance`).
    case cgTolerance = "cg-solve-1e-6"
    /// A full CG solve to 1e-5, above the float32 products' rounding: equal true residuals.
    case cgToleranceResolved = "cg-solve-1e-5"
    /// Plain CG against Jacobi PCG (both ours) on an empirical-Fisher-like factor, float64.
    case pcgFisherSpectrum = "cg-vs-pcg-fisher"
    /// Host to device, device to host.
    case upload = "upload"
    case download = "download"

    /// What `work` counts and the rate's unit.
    var unit: String {
        switch self {
        case .accumulation, .woodbury, .blockAccumulation, .kroneckerProduct: "GFLOP/s"
        case .implicitProduct, .cgIteration, .cgSolve, .denseProduct, .cgTolerance, .cgToleranceResolved,
            .pcgFisherSpectrum, .upload, .download:
            "GB/s"
        }
    }

    /// The chart's horizontal axis: what grows along the size sweep.
    var sizeMeasure: String {
        switch self {
        case .denseProduct: "P"
        case .upload, .download: "bytes"
        case .kroneckerProduct: "parameters P"
        default: "M·P (factor entries)"
        }
    }
}

enum Contestant: String, Codable {
    case ours = "ours"
    case openBLAS = "OpenBLAS"
    case clblast = "CLBlast"
    /// Our implicit product, the yardstick of a CG iteration (cg-iteration rows).
    case oursProduct = "ours product"
    /// A part of ours' measurement, shown for context and never compared: the CG solves
    /// with caps 51 and 1 behind a CG iteration's time, the Woodbury solver's set-up and
    /// solve on their own. Its label says which.
    case oursPart = "ours (part)"
    /// A host-only reference contestant (memcpy beside the transfers).
    case host = "host"
}

/// One contestant's timing of one operation at one size.
struct ContestantResult: Encodable {
    let contestant: Contestant
    /// The name in the table (the contestant's, unless a case says more).
    let label: String
    let routine: String
    let medianSeconds: Double
    let minSeconds: Double
    let maxSeconds: Double
    /// Every timed run, in order.
    let seconds: [Double]
    /// Work per median time, in the operation's unit (GFLOP/s or GB/s).
    let rate: Double
    /// Other work on the machine during the timed runs.
    let interference: Interference?
    /// Median device time between profiling markers around each run (device contestants).
    var deviceMedianSeconds: Double?
    /// Rates at the median from the case's FLOPs and minimum bytes, and the fraction of
    /// the roofline (min(SGEMM ceiling, intensity x bandwidth ceiling)) reached.
    var gflops: Double?
    var gbytes: Double?
    var rooflineFraction: Double?

    init(_ contestant: Contestant, label: String? = nil, routine: String, timing: Timing, work: Double) {
        self.contestant = contestant
        self.label = label ?? contestant.rawValue
        self.routine = routine
        medianSeconds = timing.median
        minSeconds = timing.min
        maxSeconds = timing.max
        seconds = timing.seconds
        rate = work / timing.median / 1e9
        interference = timing.interference
    }
}

/// A comparison of results between contestants (or a property of ours). An infinite
/// tolerance marks a value printed for information ("info"), which never fails the run.
struct Check: Encodable {
    let name: String
    let value: Double
    let tolerance: Double
    var passed: Bool { value <= tolerance }
    var informational: Bool { tolerance == .infinity }

    enum CodingKeys: String, CodingKey { case name, value, tolerance, passed }

    init(name: String, value: Double, tolerance: Double) {
        self.name = name
        self.value = value
        self.tolerance = tolerance
    }

    /// A value printed for information only.
    static func info(_ name: String, _ value: Double) -> Check {
        Check(name: name, value: value, tolerance: .infinity)
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(value, forKey: .value)
        try container.encode(tolerance, forKey: .tolerance)
        try container.encode(passed, forKey: .passed)
    }
}

/// One operation at one size, every contestant.
struct CaseResult: Encodable {
    let operation: Operation
    let rows: Int
    let dimension: Int
    /// FLOPs (accumulation, Woodbury) or minimum bytes (implicit product, CG) of one run.
    let work: Double
    var contestants: [ContestantResult]
    let checks: [Check]
    /// How the case was measured, where the table alone does not say (printed under it).
    var notes: [String] = []
    /// `float` or `double`.
    var element = "float"
    /// The size in words where (M, P) does not say it (blocks, layers, bytes).
    var shape: String?
    /// FLOPs and fewest bytes moved per run (nil: not counted).
    var flops: Double?
    var bytes: Double?
    /// Peak resident memory of the process after the case.
    var residentBytes: Int?

    var sizeLabel: String { shape ?? "M=\(rows) P=\(dimension)" }

    /// The sweep's horizontal coordinate.
    var sizeCoordinate: Double {
        switch operation {
        case .denseProduct, .kroneckerProduct: Double(dimension)
        case .upload, .download: bytes ?? Double(dimension)
        default: Double(rows) * Double(dimension)
        }
    }

    /// Fills each contestant's GFLOP/s, GB/s and fraction of the roofline.
    mutating func applyRoofline(flopCeiling: Double?, bandwidthCeiling: Double?) {
        for index in contestants.indices {
            let median = contestants[index].medianSeconds
            if let flops, flops > 0 { contestants[index].gflops = flops / median / 1e9 }
            if let bytes, bytes > 0 { contestants[index].gbytes = bytes / median / 1e9 }
            guard let flops, let bytes, flops > 0, bytes > 0, let flopCeiling, let bandwidthCeiling else { continue }
            let attainable = min(flopCeiling, flops / bytes * bandwidthCeiling)
            contestants[index].rooflineFraction = flops / median / 1e9 / attainable
        }
    }

    func result(_ contestant: Contestant) -> ContestantResult? {
        contestants.first { $0.contestant == contestant }
    }

    /// How many times faster ours is than `peer` (median over median; > 1: ours is faster);
    /// NaN against an OpenBLAS that runs generic kernels (``PeerCore``).
    func speedRatio(over peer: Contestant) -> Double {
        guard let ours = result(.ours), let other = result(peer) else { return .nan }
        if peer == .openBLAS && PeerCore.current.ratiosWithheld { return .nan }
        return other.medianSeconds / ours.medianSeconds
    }

    /// Ours' median time over `peer`'s (< 1: ours takes less time).
    func timeRatio(over peer: Contestant) -> Double { 1 / speedRatio(over: peer) }

    enum CodingKeys: String, CodingKey {
        case operation, rows, dimension, work, unit, contestants, checks, notes, speedRatioOverOpenBLAS,
            speedRatioOverCLBlast, speedRatioOverProduct, element, size, flops, bytes, residentBytes
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(operation, forKey: .operation)
        try container.encode(rows, forKey: .rows)
        try container.encode(dimension, forKey: .dimension)
        try container.encode(work, forKey: .work)
        try container.encode(operation.unit, forKey: .unit)
        try container.encode(element, forKey: .element)
        try container.encode(sizeLabel, forKey: .size)
        try container.encodeIfPresent(flops, forKey: .flops)
        try container.encodeIfPresent(bytes, forKey: .bytes)
        try container.encodeIfPresent(residentBytes, forKey: .residentBytes)
        try container.encode(contestants, forKey: .contestants)
        try container.encode(checks, forKey: .checks)
        if !notes.isEmpty { try container.encode(notes, forKey: .notes) }
        for (peer, key) in [
            (Contestant.openBLAS, CodingKeys.speedRatioOverOpenBLAS), (.clblast, .speedRatioOverCLBlast),
            (.oursProduct, .speedRatioOverProduct),
        ] where result(peer) != nil {
            try container.encode(speedRatio(over: peer), forKey: key)
        }
    }
}

/// A host reference measurement (OpenBLAS alone or a plain copy), not a contestant.
struct Ceiling: Encodable {
    let name: String
    let rows: Int
    let dimension: Int
    let unit: String
    let work: Double
    let medianSeconds: Double
    let minSeconds: Double
    let maxSeconds: Double
    let rate: Double
    let interference: Interference?

    /// Which roof it measures: compute (GFLOP/s) or bandwidth (GB/s).
    enum Kind: String, Encodable { case flops, bandwidth }
    let kind: Kind
    let element: String

    init(
        name: String, rows: Int, dimension: Int, unit: String, work: Double, timing: Timing, kind: Kind,
        element: String
    ) {
        self.kind = kind
        self.element = element
        self.name = name
        self.rows = rows
        self.dimension = dimension
        self.unit = unit
        self.work = work
        medianSeconds = timing.median
        minSeconds = timing.min
        maxSeconds = timing.max
        rate = work / timing.median / 1e9
        interference = timing.interference
    }
}

/// A performance target of the project, or a ratio the project reports without one.
struct Target: Encodable {
    enum Measure: String, Encodable {
        /// `peer`'s median time over ours' (> 1: ours is faster); the target is a minimum.
        case speedRatio = "speed ratio"
        /// Ours' median time over `peer`'s; the target is a maximum.
        case timeRatio = "time ratio"
    }

    let operation: Operation
    let rows: Int
    let dimension: Int
    let peer: Contestant
    let measure: Measure
    /// The bound (a minimum speed ratio or a maximum time ratio); nil: reported, no target.
    let limit: Double?
    var measured: Double = .nan
    /// Whether the bound holds; nil where there is no bound.
    var met: Bool? {
        guard let limit else { return nil }
        return measure == .speedRatio ? measured >= limit : measured <= limit
    }

    static func speed(
        _ operation: Operation, _ rows: Int, _ dimension: Int, over peer: Contestant, atLeast: Double?
    )
        -> Target
    {
        Target(operation: operation, rows: rows, dimension: dimension, peer: peer, measure: .speedRatio, limit: atLeast)
    }

    static let all = [
        speed(.accumulation, 1024, 4096, over: .openBLAS, atLeast: 0.7),
        speed(.accumulation, 1024, 4096, over: .clblast, atLeast: 4),
        speed(.implicitProduct, 1024, 65536, over: .openBLAS, atLeast: 1.5),
        speed(.implicitProduct, 1024, 65536, over: .clblast, atLeast: 4),
        Target(
            operation: .cgIteration, rows: 1024, dimension: 65536, peer: .oursProduct, measure: .timeRatio,
            limit: 1.15),
        Target(
            operation: .cgIteration, rows: 512, dimension: 100_000, peer: .oursProduct, measure: .timeRatio, limit: 1.15
        ),
        speed(.cgSolve, 512, 100_000, over: .openBLAS, atLeast: 1.3),
        speed(.cgToleranceResolved, 512, 100_000, over: .openBLAS, atLeast: 1.0),
        speed(.woodbury, 512, 100_000, over: .openBLAS, atLeast: nil),
    ]

    /// The ratio in `cases`, or NaN where the case did not run.
    func evaluate(in cases: [CaseResult]) -> Double {
        guard
            let result = cases.first(where: {
                $0.operation == operation && $0.rows == rows && $0.dimension == dimension && $0.element == "float"
            })
        else { return .nan }
        return measure == .speedRatio ? result.speedRatio(over: peer) : result.timeRatio(over: peer)
    }

    /// What is compared, in words.
    var description: String {
        switch (operation, measure) {
        case (.cgIteration, _): "\(operation.rawValue) M=\(rows) P=\(dimension): time of 1 CG iteration / 1 product"
        case (_, .speedRatio): "\(operation.rawValue) M=\(rows) P=\(dimension): ours/\(peer.rawValue)"
        case (_, .timeRatio): "\(operation.rawValue) M=\(rows) P=\(dimension): time ours / \(peer.rawValue)"
        }
    }

    enum CodingKeys: String, CodingKey {
        case operation, rows, dimension, peer, measure, minimum, maximum, measured, met
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(operation, forKey: .operation)
        try container.encode(rows, forKey: .rows)
        try container.encode(dimension, forKey: .dimension)
        try container.encode(peer, forKey: .peer)
        try container.encode(measure, forKey: .measure)
        try container.encode(limit, forKey: measure == .speedRatio ? .minimum : .maximum)
        try container.encode(measured, forKey: .measured)
        try container.encode(met, forKey: .met)
    }
}

/// Everything one run measured, for `--json`.
struct Report: Encodable {
    let date: String
    let device: String
    let loadAverageAtStart: String
    let loadAverageAtEnd: String
    let platform: String
    let driverVersion: String
    let computeUnits: Int
    let hostCPU: String
    let hostCores: Int
    let openBLAS: String
    let openBLASCore: String
    let openBLASThreads: Int
    /// The peer's core checked against the CPU, whether the suite re-ran itself with
    /// `OPENBLAS_CORETYPE`, and whether ratios against OpenBLAS are withheld.
    let openBLASPeer: PeerCore
    let suite: String
    let warmup: Int
    let repetitions: Int
    /// Warm-up and timed runs of the solver rows (cg-iteration, cg-50, woodbury-solve).
    let solverWarmup: Int
    let solverRepetitions: Int
    let inputCopies: Int
    let peakResidentBytes: Int
    let cases: [CaseResult]
    let targets: [Target]
    let hostCeilings: [Ceiling]
}

// MARK: - Text output

func milliseconds(_ seconds: Double) -> String { String(format: "%.3f", seconds * 1e3) }

/// The share of the machine other work took during a measurement (processes + steal);
/// "short" where the measurement was too short for /proc/stat's 10 ms ticks.
func share(_ interference: Interference?) -> String {
    guard let interference else { return "?" }
    guard interference.capacitySeconds >= 0.5 else { return "short" }
    return String(format: "%.0f%%", interference.total * 100)
}

func ratio(_ value: Double) -> String { value.isFinite ? String(format: "%.2fx", value) : "\(value)" }

/// The side-by-side table: one row per operation, size and contestant; the ratio column
/// says how many times faster ours is than that row's contestant (> 1: ours is faster);
/// "roof" is the fraction of the roofline reached; "others" is the share of the machine
/// other processes and the hypervisor took meanwhile.
func renderTable(_ cases: [CaseResult]) -> String {
    var table = TextTable([
        "operation", "type", "size", "contestant", "median ms", "min-max ms", "device ms", "GFLOP/s", "GB/s", "roof",
        "ours/this", "others",
    ])
    for result in cases {
        for (index, entry) in result.contestants.enumerated() {
            let first = index == 0
            table.append([
                first ? result.operation.rawValue : "", first ? result.element : "", first ? result.sizeLabel : "",
                entry.label, milliseconds(entry.medianSeconds),
                milliseconds(entry.minSeconds) + "-" + milliseconds(entry.maxSeconds),
                entry.deviceMedianSeconds.map(milliseconds) ?? "-",
                entry.gflops.map { String(format: "%.1f", $0) }
                    ?? (result.operation.unit == "GFLOP/s" ? String(format: "%.1f", entry.rate) : "-"),
                entry.gbytes.map { String(format: "%.1f", $0) }
                    ?? (result.operation.unit == "GB/s" ? String(format: "%.1f", entry.rate) : "-"),
                entry.rooflineFraction.map { String(format: "%.0f%%", $0 * 100) } ?? "-",
                entry.contestant == .ours || entry.contestant == .oursPart
                    ? "-"
                    : entry.contestant == .openBLAS && PeerCore.current.ratiosWithheld
                        ? "withheld" : ratio(result.speedRatio(over: entry.contestant)),
                share(entry.interference),
            ])
        }
    }
    let notes = cases.flatMap { result in
        result.notes.map { "\(result.operation.rawValue) \(result.sizeLabel): \($0)" }
    }
    return ([table.render()] + (notes.isEmpty ? [] : [""] + notes)).joined(separator: "\n")
}

/// One line per case and contestant, for spreadsheets.
func renderCSV(_ cases: [CaseResult]) -> String {
    func field(_ value: String) -> String {
        value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
            ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
    }
    func number(_ value: Double?) -> String { value.map { $0.isFinite ? String(format: "%.6g", $0) : "" } ?? "" }
    var lines = [
        "operation,element,size,rows,dimension,contestant,routine,median_ms,min_ms,max_ms,device_median_ms,runs,"
            + "gflops,gbytes_per_s,roofline_fraction,speed_ratio_ours_over_this,checks_passed,peak_resident_mib"
    ]
    for result in cases {
        let passed = result.checks.allSatisfy(\.passed)
        for entry in result.contestants {
            let ratio: Double? =
                entry.contestant == .ours || entry.contestant == .oursPart ? nil : result.speedRatio(over: entry.contestant)
            lines.append(
                [
                    result.operation.rawValue, result.element, field(result.sizeLabel), "\(result.rows)",
                    "\(result.dimension)", field(entry.label), field(entry.routine), number(entry.medianSeconds * 1e3),
                    number(entry.minSeconds * 1e3), number(entry.maxSeconds * 1e3),
                    number(entry.deviceMedianSeconds.map { $0 * 1e3 }), "\(entry.seconds.count)",
                    number(entry.gflops ?? (result.operation.unit == "GFLOP/s" ? entry.rate : nil)),
                    number(entry.gbytes ?? (result.operation.unit == "GB/s" ? entry.rate : nil)),
                    number(entry.rooflineFraction), number(ratio), passed ? "true" : "false",
                    number(result.residentBytes.map { Double($0) / 1048576 }),
                ].joined(separator: ","))
        }
    }
    return lines.joined(separator: "\n") + "\n"
}

/// One Markdown table row per case (the README's table): ours' median and rate, then each
/// other contestant's median and ours' speed ratio over it (> 1: ours is faster).
func renderMarkdown(_ cases: [CaseResult]) -> String {
    func number(_ value: Double, _ digits: Int = 3) -> String {
        guard value.isFinite else { return "-" }
        return value >= 100 ? String(format: "%.1f", value) : String(format: "%.\(digits)g", value)
    }
    var lines = [
        "| operation | type | size | ours median ms | ours rate | roof | others: median ms (ours' speed ratio) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in cases {
        guard let ours = result.result(.ours) else { continue }
        let others = result.contestants.filter { $0.contestant != .ours && $0.contestant != .oursPart }.map { entry in
            let withheld = entry.contestant == .openBLAS && PeerCore.current.ratiosWithheld
            return "\(entry.label) \(number(entry.medianSeconds * 1e3)) "
                + (withheld
                    ? "(ratio withheld: generic OpenBLAS core)" : "(\(number(entry.medianSeconds / ours.medianSeconds, 2))x)")
        }
        lines.append(
            "| \(result.operation.rawValue) | \(result.element) | \(result.sizeLabel) | \(number(ours.medianSeconds * 1e3)) | "
                + "\(number(ours.rate)) \(result.operation.unit) | \(ours.rooflineFraction.map { String(format: "%.0f%%", $0 * 100) } ?? "-") | "
                + "\(others.isEmpty ? "-" : others.joined(separator: "; ")) |")
    }
    return lines.joined(separator: "\n") + "\n"
}

func renderChecks(_ cases: [CaseResult]) -> String {
    var table = TextTable(["operation", "type", "size", "check", "value", "limit", "result"])
    for result in cases {
        for check in result.checks {
            table.append([
                result.operation.rawValue, result.element, result.sizeLabel, check.name,
                String(format: "%.2e", check.value),
                check.informational ? "-" : String(format: "%.0e", check.tolerance),
                check.informational ? "info" : (check.passed ? "ok" : "MISMATCH"),
            ])
        }
    }
    return table.render()
}

func renderTargets(_ targets: [Target]) -> String {
    var table = TextTable(["target", "needed", "measured", "result"])
    for target in targets {
        let needed =
            target.limit.map {
                String(format: target.measure == .speedRatio ? ">= %.2gx" : "<= %.3gx", $0)
            } ?? "none (reported)"
        let verdict = target.met.map { $0 ? "met" : "missed" } ?? "-"
        table.append([
            target.description, needed,
            target.measure == .timeRatio && target.measured.isFinite
                ? String(format: "%.3fx", target.measured) : ratio(target.measured),
            target.peer == .openBLAS && PeerCore.current.ratiosWithheld
                ? "withheld (generic OpenBLAS core)" : target.measured.isNaN ? "not run" : verdict,
        ])
    }
    return table.render()
}

func renderCeilings(_ ceilings: [Ceiling]) -> String {
    var table = TextTable([
        "host reference (not a contestant)", "M", "P", "median ms", "min ms", "max ms", "rate", "others",
    ])
    for ceiling in ceilings {
        table.append([
            ceiling.name, "\(ceiling.rows)", "\(ceiling.dimension)", milliseconds(ceiling.medianSeconds),
            milliseconds(ceiling.minSeconds), milliseconds(ceiling.maxSeconds),
            String(format: "%.1f %@", ceiling.rate, ceiling.unit), share(ceiling.interference),
        ])
    }
    return table.render()
}
