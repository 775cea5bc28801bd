import OpenCLHost

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
    /// The recurrence's residual reached the tolerance several times, but the residual
    /// recomputed from x stayed above it after as many residual replacements: the tolerance
    /// is finer than this element type resolves for this system.
    case stagnated
    /// A direct solve (Cholesky, Woodbury) whose factorisation had to perturb the system
    /// (added jitter or clamped eigenvalues, `DenseSolvePath.isPerturbed`) because it is
    /// singular to float64: x solves the perturbed system, not `(F + λI) x = b`. Add
    /// damping (λ > 0) to make the system definite.
    case perturbed
    /// A direct solve whose true residual, after one step of iterative refinement, is still
    /// above what the working precision explains: its normwise backward error
    /// `‖b − Ax‖ / (‖A‖‖x‖ + ‖b‖)` exceeds `DirectSolveAccuracy.backwardErrorBound`.
    case inaccurate
    /// A direct solve whose residual is as small as the working precision allows, but
    /// whose system's reciprocal condition estimate is below the working precision's
    /// machine epsilon, so x may have no correct digits: solve in float64 (or with more
    /// damping).
    case illConditioned = "ill-conditioned"
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

/// Reports for the solutions `x` of `(F + λI) x = b`: the true relative residual and the
/// quadratic model φ, recomputed from x with one product (`scratch` receives it).
func measureSolution<Operator: CurvatureOperator>(
    _ curvature: Operator, _ b: VectorBatch<Operator.Element>, _ x: VectorBatch<Operator.Element>,
    damping: Operator.Element, scratch: VectorBatch<Operator.Element>? = nil, iterations: [Int], statuses: [SolveStatus]
) throws -> [ColumnReport] {
    try measureSolutionValues(
        curvature, b, x, damping: damping, scratch: scratch, iterations: iterations, statuses: statuses
    ).reports
}

/// `measureSolution`, also returning the product `(F + λI)x` in float64 (all columns, one
/// after another); `hostB` is b in float64 where the caller has it.
func measureSolutionValues<Operator: CurvatureOperator>(
    _ curvature: Operator, _ b: VectorBatch<Operator.Element>, _ x: VectorBatch<Operator.Element>,
    damping: Operator.Element, scratch: VectorBatch<Operator.Element>? = nil, hostB: [Double]? = nil,
    iterations: [Int], statuses: [SolveStatus]
) throws -> (reports: [ColumnReport], products: [Double]) {
    let product = try scratch ?? VectorBatch(context: curvature.context, dimension: b.dimension, count: b.count)
    try curvature.apply(x, damping: damping, into: product)
    let count = b.dimension * b.count
    let (ax, bValues, xValues) = (
        try product.buffer.downloadFloat64(0..<count), try hostB ?? b.buffer.downloadFloat64(0..<count),
        try x.buffer.downloadFloat64(0..<count)
    )
    let reports = (0..<b.count).map { column in
        var residual = 0.0
        var norm = 0.0
        var objective = 0.0
        for i in 0..<b.dimension {
            let index = column * b.dimension + i
            let (axi, bi, xi) = (ax[index], bValues[index], xValues[index])
            residual += (bi - axi) * (bi - axi)
            norm += bi * bi
            objective += xi * (0.5 * axi - bi)
        }
        let relative = norm > 0 ? (residual / norm).squareRoot() : residual.squareRoot()
        var status = statuses[column]
        if !(relative.isFinite && objective.isFinite) { status = .nonFinite }
        return ColumnReport(
            iterations: iterations[column], relativeResidual: relative, objective: objective, status: status)
    }
    return (reports, ax)
}
