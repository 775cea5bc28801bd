import Foundation

// MARK: - Results

enum Operation: String, Codable {
    case accumulation = "accumulation"
    case implicitProduct = "implicit-product"

    /// What `work` counts and the rate's unit.
    var unit: String { self == .accumulation ? "GFLOP/s" : "GB/s" }
}

enum Contestant: String, Codable {
    case ours = "ours"
    case openBLAS = "OpenBLAS"
    case clblast = "CLBlast"
}

/// One contestant's timing of one operation at one size.
struct ContestantResult: Encodable {
    let contestant: Contestant
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

    init(_ contestant: Contestant, routine: String, timing: Timing, work: Double) {
        self.contestant = contestant
        self.routine = routine
        medianSeconds = timing.median
        minSeconds = timing.min
        maxSeconds = timing.max
        seconds = timing.seconds
        rate = work / timing.median / 1e9
        interference = timing.interference
    }
}

/// A comparison of results between contestants (or a property of ours).
struct Check: Encodable {
    let name: String
    let value: Double
    let tolerance: Double
    var passed: Bool { value <= tolerance }

    enum CodingKeys: String, CodingKey { case name, value, tolerance, passed }

    init(name: String, value: Double, tolerance: Double) {
        self.name = name
        self.value = value
        self.tolerance = tolerance
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
    /// FLOPs (accumulation) or minimum bytes (implicit product) of one run.
    let work: Double
    let contestants: [ContestantResult]
    let checks: [Check]

    func result(_ contestant: Contestant) -> ContestantResult? {
        contestants.first { $0.contestant == contestant }
    }

    /// How many times faster ours is than `peer` (median over median; > 1: ours is faster).
    func speedRatio(over peer: Contestant) -> Double {
        guard let ours = result(.ours), let other = result(peer) else { return .nan }
        return other.medianSeconds / ours.medianSeconds
    }

    enum CodingKeys: String, CodingKey {
        case operation, rows, dimension, work, unit, contestants, checks, speedRatioOverOpenBLAS, speedRatioOverCLBlast
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(operation, forKey: .operation)
        try container.encode(rows, forKey: .rows)
        try container.encode(dimension, forKey: .dimension)
        try container.encode(work, forKey: .work)
        try container.encode(operation.unit, forKey: .unit)
        try container.encode(contestants, forKey: .contestants)
        try container.encode(checks, forKey: .checks)
        try container.encode(speedRatio(over: .openBLAS), forKey: .speedRatioOverOpenBLAS)
        try container.encode(speedRatio(over: .clblast), forKey: .speedRatioOverCLBlast)
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

    init(name: String, rows: Int, dimension: Int, unit: String, work: Double, timing: Timing) {
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

/// A performance target of the project: ours at least `minimum` times as fast as `peer`.
struct Target: Encodable {
    let operation: Operation
    let rows: Int
    let dimension: Int
    let peer: Contestant
    let minimum: Double
    var measured: Double = .nan
    var met: Bool { measured >= minimum }

    static let all = [
        Target(operation: .accumulation, rows: 1024, dimension: 4096, peer: .openBLAS, minimum: 0.5),
        Target(operation: .accumulation, rows: 1024, dimension: 4096, peer: .clblast, minimum: 2.5),
        Target(operation: .implicitProduct, rows: 1024, dimension: 65536, peer: .openBLAS, minimum: 1.2),
    ]

    enum CodingKeys: String, CodingKey { case operation, rows, dimension, peer, minimum, measured, met }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(operation, forKey: .operation)
        try container.encode(rows, forKey: .rows)
        try container.encode(dimension, forKey: .dimension)
        try container.encode(peer, forKey: .peer)
        try container.encode(minimum, forKey: .minimum)
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
    let warmup: Int
    let repetitions: Int
    let inputCopies: Int
    let cases: [CaseResult]
    let targets: [Target]
    let hostCeilings: [Ceiling]
}

// MARK: - Text output

/// A left-aligned plain-text table with a header rule.
struct TextTable {
    let header: [String]
    var rows: [[String]] = []

    init(_ header: [String]) { self.header = header }

    mutating func append(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let widths = header.indices.map { column in
            ([header] + rows).map { column < $0.count ? $0[column].count : 0 }.max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }
}

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
/// "others" is the share of the machine other processes and the hypervisor took meanwhile.
func renderTable(_ cases: [CaseResult]) -> String {
    var table = TextTable([
        "operation", "M", "P", "contestant", "median ms", "min ms", "max ms", "rate", "ours/this", "others",
    ])
    for result in cases {
        for (index, entry) in result.contestants.enumerated() {
            let first = index == 0
            table.append([
                first ? result.operation.rawValue : "", first ? "\(result.rows)" : "",
                first ? "\(result.dimension)" : "",
                entry.contestant.rawValue, milliseconds(entry.medianSeconds), milliseconds(entry.minSeconds),
                milliseconds(entry.maxSeconds), String(format: "%.1f %@", entry.rate, result.operation.unit),
                entry.contestant == .ours ? "-" : ratio(result.speedRatio(over: entry.contestant)),
                share(entry.interference),
            ])
        }
    }
    return table.render()
}

func renderChecks(_ cases: [CaseResult]) -> String {
    var table = TextTable(["operation", "M", "P", "check", "value", "limit", "result"])
    for result in cases {
        for check in result.checks {
            table.append([
                result.operation.rawValue, "\(result.rows)", "\(result.dimension)", check.name,
                String(format: "%.2e", check.value), String(format: "%.0e", check.tolerance),
                check.passed ? "ok" : "MISMATCH",
            ])
        }
    }
    return table.render()
}

func renderTargets(_ targets: [Target]) -> String {
    var table = TextTable(["target", "needed", "measured", "result"])
    for target in targets {
        table.append([
            "\(target.operation.rawValue) M=\(target.rows) P=\(target.dimension): ours/\(target.peer.rawValue)",
            String(format: ">= %.1fx", target.minimum), ratio(target.measured),
            target.measured.isNaN ? "not run" : (target.met ? "met" : "missed"),
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
