/// Why an iterative solve stopped for one right-hand side.
public enum SolveStatus: String, Sendable, Equatable, Codable {
    /// The relative residual reached the tolerance.
    case converged
    /// The iteration cap was reached first.
    case iterationCap = "iteration cap"
    /// Martens' progress rule: the quadratic model stopped improving.
    case progressStalled = "progress stalled"
    /// The operator showed non-positive curvature along a search direction (pᵀAp ≤ 0);
    /// the solution is the last iterate before it.
    case negativeCurvature = "negative curvature"
    /// A NaN or infinity appeared; the solution is the last finite iterate.
    case nonFinite = "non-finite"
}

/// The outcome of a solve for one right-hand side.
public struct ColumnReport: Sendable, Equatable, Codable {
    /// Iterations performed (0 for a direct method or an immediate stop).
    public var iterations: Int
    /// `‖b − (F + λI)x‖ / ‖b‖`, recomputed from x at the end (not the recurrence).
    public var relativeResidual: Double
    /// The quadratic model `φ(x) = ½ xᵀ(F + λI)x − bᵀx` at the returned x.
    public var objective: Double
    /// Why it stopped.
    public var status: SolveStatus
}
