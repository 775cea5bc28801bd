import Foundation
import OpenCLHost

/// What one curvature representation, with its solve, needs on the device and on the host,
/// in bytes, computed from the shapes alone before anything is allocated.
public struct MemoryRequirement: Sendable, Equatable {
    /// The representation and solve, as the messages name it: `dense F`, `implicit`,
    /// `woodbury`, `diagonal`, `block-diagonal`, `kronecker`.
    public let representation: String
    /// Device memory: the representation's buffers, the solver's scratch and its vectors.
    public let deviceBytes: UInt64
    /// Host memory: the float64 copies the host factorisations work on.
    public let hostBytes: UInt64
    /// The largest buffer that cannot be split (a dense matrix), which must fit one
    /// allocation; factors are split into row pieces and do not count here.
    public let largestBufferBytes: UInt64
}

/// The memory a context offers: the device's global memory and largest allocation, and the
/// host's available memory (`MemAvailable` of /proc/meminfo; on a CPU device the two are
/// the same memory, so the device figure is the smaller of both).
public struct MemoryAvailability: Sendable, Equatable {
    /// Device memory in bytes.
    public var deviceBytes: UInt64
    /// Host memory available now, in bytes.
    public var hostBytes: UInt64
    /// The largest single allocation on the device, in bytes.
    public var maxAllocationBytes: UInt64

    /// The given figures (tests, what-if plans).
    public init(deviceBytes: UInt64, hostBytes: UInt64, maxAllocationBytes: UInt64) {
        self.deviceBytes = deviceBytes
        self.hostBytes = hostBytes
        self.maxAllocationBytes = maxAllocationBytes
    }

    /// What `context`'s device and this host offer now.
    public init(context: Context) {
        let host = Self.hostAvailableBytes() ?? context.device.globalMemoryBytes
        let device = context.device.globalMemoryBytes
        self.init(
            deviceBytes: context.device.kind == .cpu ? min(device, host) : device, hostBytes: host,
            maxAllocationBytes: context.device.maxAllocationBytes)
    }

    /// `MemAvailable` from /proc/meminfo, nil where it cannot be read.
    public static func hostAvailableBytes() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kibibytes = UInt64(fields[1]) { return kibibytes * 1024 }
        }
        return nil
    }
}

/// The memory plan of a solve or an optimizer configuration: every candidate
/// representation's requirement against what is available, so a request that cannot fit is
/// refused before anything is allocated, with the bytes needed, the bytes available and the
/// representations that would fit.
public struct MemoryPlan: Sendable {
    /// The candidates, in the order they are offered as alternatives.
    public let requirements: [MemoryRequirement]
    /// What the device and host offer.
    public let available: MemoryAvailability
    /// P, for the messages.
    public let dimension: Int

    /// Whether `requirement` fits the device, the host and one allocation.
    public func fits(_ requirement: MemoryRequirement) -> Bool {
        requirement.deviceBytes <= available.deviceBytes && requirement.hostBytes <= available.hostBytes
            && requirement.largestBufferBytes <= available.maxAllocationBytes
    }

    /// The requirement of `representation`, nil when it is not a candidate.
    public func requirement(_ representation: String) -> MemoryRequirement? {
        requirements.first { $0.representation == representation }
    }

    /// Throws `NaturalGradientError.insufficientMemory` when `representation` does not fit:
    /// `dense F for P = 100,000 needs 40.0 GB; the device has 10.7 GB; use implicit or diagonal`.
    public func check(_ representation: String) throws {
        guard let requirement = requirement(representation), !fits(requirement) else { return }
        let (place, needed, has): (String, UInt64, UInt64) =
            if requirement.deviceBytes > available.deviceBytes {
                ("the device has", requirement.deviceBytes, available.deviceBytes)
            } else if requirement.largestBufferBytes > available.maxAllocationBytes {
                ("the device's largest allocation is", requirement.largestBufferBytes, available.maxAllocationBytes)
            } else {
                ("the host has", requirement.hostBytes, available.hostBytes)
            }
        throw NaturalGradientError.insufficientMemory(
            what: "\(representation) for P = \(Self.grouped(dimension))", neededBytes: needed, place: place,
            availableBytes: has,
            alternatives: requirements.filter { $0.representation != representation && fits($0) }.map(\.representation))
    }

    /// The plan as a table: each candidate's device and host bytes and whether it fits.
    public var text: String {
        var lines = [
            "memory: device \(Self.formatted(available.deviceBytes)) (largest allocation "
                + "\(Self.formatted(available.maxAllocationBytes))), host \(Self.formatted(available.hostBytes)) available"
        ]
        for requirement in requirements {
            lines.append(
                "  \(requirement.representation.padding(toLength: 15, withPad: " ", startingAt: 0))"
                    + " device \(Self.formatted(requirement.deviceBytes).leftPadded(9))"
                    + "  host \(Self.formatted(requirement.hostBytes).leftPadded(9))"
                    + "  \(fits(requirement) ? "fits" : "does not fit")")
        }
        return lines.joined(separator: "\n")
    }

    /// Decimal gigabytes (and MB, kB below them) with one decimal: `40.0 GB`, as the
    /// messages print bytes.
    public static func formatted(_ bytes: UInt64) -> String {
        let value = Double(bytes)
        if value >= 1e9 { return String(format: "%.1f GB", value / 1e9) }
        if value >= 1e6 { return String(format: "%.1f MB", value / 1e6) }
        if value >= 1e3 { return String(format: "%.1f kB", value / 1e3) }
        return "\(bytes) B"
    }

    /// `100,000`.
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return (value < 0 ? "-" : "") + out
    }
}

// MARK: - The automatic representation

extension MemoryPlan {
    /// `CurvatureRepresentation.automatic`'s choice for factors of `rows` rows: `dense F`
    /// where it fits and P ≤ M (F is then no larger than the factor, so forming it once
    /// saves work in every product of the solve); else `implicit` where it fits and no
    /// moving average is kept (`averaging` false); else `dense F` where it fits, else
    /// `diagonal`. Throws the plan's `insufficientMemory` when nothing fits.
    public func automaticRepresentation(rows: Int, averaging: Bool) throws -> String {
        let fitting = requirements.filter(fits).map(\.representation)
        if fitting.contains("dense F"), dimension <= rows || averaging { return "dense F" }
        if !averaging, fitting.contains("implicit") { return "implicit" }
        if fitting.contains("dense F") { return "dense F" }
        if fitting.contains("diagonal") { return "diagonal" }
        try check(averaging ? "diagonal" : "implicit")
        return "diagonal"
    }
}

// MARK: - The requirements

extension MemoryPlan {
    /// The plan of a solve `(F + λI) X = G` for a factor of `rows` x `dimension` elements of
    /// `elementBytes` each and `vectors` right-hand sides: the factor on the device for every
    /// method (in row pieces); `implicit` (CG or PCG) adds the product's partial sums and
    /// CG's vectors; `woodbury` the M x M Gram on the device and its float64 copies on the
    /// host; `dense F` (Cholesky) the P x P matrix in one allocation on the device and two
    /// float64 copies on the host (the downloaded matrix and its factor).
    public static func solve(
        rows: Int, dimension: Int, vectors: Int, elementBytes: Int, deviceKind: Device.Kind,
        available: MemoryAvailability
    ) -> MemoryPlan {
        let (m, p, k, s) = (UInt64(rows), UInt64(dimension), UInt64(max(1, vectors)), UInt64(elementBytes))
        let factor = m * p * s
        let vectorBytes = p * k * s
        // The implicit product's partials: at most 16 groups on a CPU, 256 on a GPU, and
        // 256 MiB (ImplicitProduct's rule); CG keeps about seven P x k batches.
        let groups: UInt64 = deviceKind == .cpu ? 16 : 256
        let partials = min(256 << 20, min(groups, m) * p * min(k, 8) * s)
        let implicit = MemoryRequirement(
            representation: "implicit", deviceBytes: factor + partials + 7 * vectorBytes,
            hostBytes: 2 * p * k * 8, largestBufferBytes: max(partials, vectorBytes))
        let gram = m * m
        let woodbury = MemoryRequirement(
            representation: "woodbury", deviceBytes: factor + gram * s + m * 2048 * s + 4 * vectorBytes,
            hostBytes: 3 * gram * 8 + 2 * p * k * 8, largestBufferBytes: max(gram * s, vectorBytes))
        let dense = MemoryRequirement(
            representation: "dense F", deviceBytes: factor + p * p * s + 3 * vectorBytes, hostBytes: 2 * p * p * 8,
            largestBufferBytes: p * p * s)
        let diagonal = MemoryRequirement(
            representation: "diagonal", deviceBytes: factor + p * s + 7 * vectorBytes, hostBytes: 2 * p * k * 8,
            largestBufferBytes: vectorBytes)
        return MemoryPlan(requirements: [dense, implicit, woodbury, diagonal], available: available, dimension: dimension)
    }

    /// The plan of an optimizer configuration for a model of `dimension` parameters whose
    /// steps bring factors of `rowsPerStep` rows (the caller's buffers, not counted): what
    /// each representation keeps between steps and its solve needs. K-FAC needs its factors
    /// (`(inputs + 1)² + outputs²` per layer) on the device and their float64 inverses on
    /// the host.
    public static func optimizer(
        _ options: NaturalGradientOptimizerOptions, dimension: Int, rowsPerStep: Int, elementBytes: Int,
        deviceKind: Device.Kind, available: MemoryAvailability
    ) -> MemoryPlan {
        let (p, s) = (UInt64(dimension), UInt64(elementBytes))
        // Parameters, gradient, update, momentum and the solver's vectors.
        let vectors = 10 * p * s
        if case let .kfac(layers) = options.curvature {
            let elements = layers.reduce(UInt64(0)) {
                $0 + UInt64(($1.inputs + 1) * ($1.inputs + 1) + $1.outputs * $1.outputs)
            }
            let largest = layers.map { UInt64(max(($0.inputs + 1) * ($0.inputs + 1), $0.outputs * $0.outputs)) }.max() ?? 0
            let kronecker = MemoryRequirement(
                representation: "kronecker", deviceBytes: 2 * elements * s + vectors, hostBytes: 2 * elements * 8,
                largestBufferBytes: largest * s)
            return MemoryPlan(requirements: [kronecker], available: available, dimension: dimension)
        }
        let solvePlan = solve(
            rows: rowsPerStep, dimension: dimension, vectors: 1, elementBytes: elementBytes, deviceKind: deviceKind,
            available: available)
        let factor = UInt64(rowsPerStep) * p * s
        var requirements: [MemoryRequirement] = []
        for planned in solvePlan.requirements {
            // The step's factor is the caller's; the representation's own storage remains
            // (the implicit and Woodbury solves keep the factor).
            requirements.append(
                MemoryRequirement(
                    representation: planned.representation,
                    deviceBytes: planned.deviceBytes - (["implicit", "woodbury"].contains(planned.representation) ? 0 : factor)
                        + vectors,
                    hostBytes: planned.hostBytes, largestBufferBytes: planned.largestBufferBytes))
        }
        if case let .blockDiagonal(sizes) = options.representation {
            let elements = sizes.reduce(UInt64(0)) { $0 + UInt64($1 * $1) }
            requirements.append(
                MemoryRequirement(
                    representation: "block-diagonal", deviceBytes: elements * s + vectors, hostBytes: 0,
                    largestBufferBytes: elements * s))
        }
        return MemoryPlan(requirements: requirements, available: available, dimension: dimension)
    }
}

extension NaturalGradientOptimizerOptions {
    /// The name the memory plan gives what these options allocate: `woodbury` for an
    /// implicit representation solved by Woodbury (it forms the Gram), `kronecker` for
    /// K-FAC, else the representation's; nil for `.automatic`, which the plan resolves.
    public var plannedName: String? {
        if case .kfac = curvature { return "kronecker" }
        if representation == .implicit, method == .woodbury { return "woodbury" }
        return representation.plannedName
    }
}

extension CurvatureRepresentation {
    /// The name the memory plan gives the representation; nil for `.automatic`, which the
    /// plan resolves.
    public var plannedName: String? {
        switch self {
        case .implicit: "implicit"
        case .dense: "dense F"
        case .blockDiagonal: "block-diagonal"
        case .diagonal: "diagonal"
        case .automatic: nil
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
