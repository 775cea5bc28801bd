import OpenCLHost

/// Where `KroneckerSolver.refresh(damping:)` inverts each damped K-FAC factor `A + γI`: on
/// the host in float64 (`DenseSymmetricFactorization.inverse()`, LAPACK `dpotrf` + `dpotri`,
/// about n³ flops), or on the device by Newton-Schulz iterations `X ← 2X − X (A + γI) X`
/// (two GEMMs of 2n³ flops each per iteration through the Kronecker kernels, about
/// `log₂(κ) + 5` iterations), checked by a sampled residual and redone on the host when the
/// check fails.
///
/// The choice is by the factor's order: the device pays about 4n³ flops per iteration
/// against the host's n³ once, so it wins only where its GEMM rate is tens of times the
/// host's float64 rate, as on a GPU. On the 2-core PoCL CPU device this project measures
/// on, the host wins at every size (Benchmarks/NOTES.md, issue 15, "K-FAC inversions"), so
/// CPU devices default to the host path for every factor.
public struct FactorInversionPolicy: Sendable, Hashable, Codable {
    /// Factors of at least this order are inverted on the device; smaller ones on the host.
    /// `Int.max` keeps every factor on the host.
    public var deviceMinimumOrder: Int
    /// The largest sampled relative residual `max_z ‖(A + γI) X z − z‖ / ‖z‖` (float64, on
    /// the host, over `probes` random vectors z) a device inverse X may have; above it the
    /// factor is inverted on the host instead.
    public var residualTolerance: Double
    /// The most Newton-Schulz iterations before the residual decides.
    public var maximumIterations: Int
    /// The random probe vectors of the residual check (each costs two n x n products in
    /// float64 on the host, against the n³ flops of an inversion).
    public var probes: Int

    /// A policy; each value is checked when a solver is made with it.
    public init(deviceMinimumOrder: Int, residualTolerance: Double, maximumIterations: Int = 60, probes: Int = 2) {
        self.deviceMinimumOrder = deviceMinimumOrder
        self.residualTolerance = residualTolerance
        self.maximumIterations = maximumIterations
        self.probes = probes
    }

    /// Every factor on the host in float64 (what a CPU device gets).
    public static let host = FactorInversionPolicy(deviceMinimumOrder: .max, residualTolerance: 0)

    /// The factor order from which a GPU or an accelerator inverts on the device: the
    /// issue's "layers of 1024 and more" (not measured on a GPU yet; see the README).
    public static let deviceMinimumOrderOnGPUs = 1024

    /// The default for `element` on `device`: CPU (and unknown) devices invert on the host;
    /// GPUs and accelerators invert factors of order ≥ ``deviceMinimumOrderOnGPUs`` on the
    /// device, accepting a residual up to 1e-3 in float32 (about what rounding the exact
    /// inverse to float32 leaves at a condition number of 1e4) and 1e-8 in float64.
    public static func defaults<Element: DeviceScalar>(for device: Device, element _: Element.Type) -> Self {
        switch device.kind {
        case .gpu, .accelerator:
            FactorInversionPolicy(
                deviceMinimumOrder: deviceMinimumOrderOnGPUs, residualTolerance: Element.requiresFloat64 ? 1e-8 : 1e-3)
        case .cpu, .other:
            .host
        }
    }

    /// Throws `NaturalGradientError.invalidArgument` naming the field and its rule.
    func validate() throws {
        try require(deviceMinimumOrder >= 1, "policy.deviceMinimumOrder", "must be at least 1, got \(deviceMinimumOrder)")
        try require(
            residualTolerance.isFinite && residualTolerance >= 0, "policy.residualTolerance",
            "must be finite and not negative, got \(residualTolerance)")
        try require(
            (1...1000).contains(maximumIterations), "policy.maximumIterations",
            "must be in 1...1000, got \(maximumIterations)")
        try require((1...64).contains(probes), "policy.probes", "must be in 1...64, got \(probes)")
    }
}

/// How one damped factor was inverted at the last refresh.
public enum FactorInversionPath: Sendable, Equatable, CustomStringConvertible {
    /// On the host in float64, by the factorisation's path.
    case host(DenseSolvePath)
    /// On the device: the Newton-Schulz iterations run and the sampled residual.
    case device(iterations: Int, residual: Double)
    /// On the device first, then on the host because the residual (or a non-finite value)
    /// failed the check.
    case deviceRejected(iterations: Int, residual: Double, host: DenseSolvePath)

    public var description: String {
        switch self {
        case let .host(path): "host (\(path))"
        case let .device(iterations, residual): "device (\(iterations) Newton-Schulz iterations, residual \(residual))"
        case let .deviceRejected(iterations, residual, host):
            "device rejected (\(iterations) iterations, residual \(residual)), then host (\(host))"
        }
    }
}

/// One factor's inversion at the last refresh.
public struct FactorInversionReport: Sendable, Equatable {
    /// Which of a layer's two factors.
    public enum Side: String, Sendable, Equatable {
        /// `A`, the input side (inputs x inputs).
        case a = "A"
        /// `G`, the output-gradient side (outputs x outputs).
        case g = "G"
    }
    /// The layer's index.
    public let layer: Int
    /// The factor.
    public let side: Side
    /// The factor's order.
    public let order: Int
    /// How it was inverted.
    public let path: FactorInversionPath
}
