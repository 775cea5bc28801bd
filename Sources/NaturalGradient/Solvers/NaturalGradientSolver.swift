import OpenCLHost

/// How `NaturalGradientSolver` solves `(F + λI) x = g`.
public enum SolveMethod: String, CaseIterable, Sendable, Codable {
    /// What the representation prefers for λ (`CurvatureOperator.preferredMethod(damping:)`):
    /// Woodbury for an `ImplicitCurvature` with M ≤ P and λ > 0, Cholesky for a
    /// `DenseCurvature` of P ≤ `NaturalGradientSolver.denseLimit`, K-FAC for a
    /// `KroneckerCurvature`, PCG for a `DiagonalCurvature`, CG otherwise.
    case automatic
    /// Conjugate gradient.
    case cg
    /// Jacobi-preconditioned CG (`(diag F + λ)^−0.75` unless the options say otherwise).
    case pcg
    /// The Woodbury identity (an `ImplicitCurvature` only).
    case woodbury
    /// Dense float64 Cholesky with fallbacks (a `DenseCurvature` only).
    case cholesky
    /// Inverted Kronecker factors (a `KroneckerCurvature` only).
    case kfac

    /// Whether the method is a representation's exact inverse (`makeInverse`), not CG.
    var isDirect: Bool { self == .woodbury || self == .cholesky || self == .kfac }
}

/// A natural-gradient direction and how it was found.
public struct NaturalGradientSolution<Element: DeviceScalar> {
    /// x, one vector per right-hand side.
    public let x: VectorBatch<Element>
    /// The method that ran (never `.automatic`).
    public let method: SolveMethod
    /// Per right-hand side: iterations, true relative residual, φ, status.
    public let reports: [ColumnReport]
    /// For Cholesky and Woodbury: the factorisation path (Cholesky, jitter, eigen).
    public let densePath: DenseSolvePath?
    /// For Cholesky and Woodbury: the reciprocal condition estimate of the factored matrix.
    public let reciprocalCondition: Double?
    /// Wall time of each stage in seconds, in order (for example "invert", "solve", "check").
    public let stageSeconds: [(stage: String, seconds: Double)]
}

/// One entry point for `x = (F + λI)⁻¹ g`: picks a solver from the representation and the
/// sizes (overridable), runs it, and checks the answer with one extra product.
///
/// It knows no representation by name: `.automatic` is the representation's
/// `preferredMethod(damping:)`, a direct method is its `makeInverse(damping:)`, and CG or
/// PCG need only `apply` (and `diagonal` for the preconditioner).
public enum NaturalGradientSolver {
    /// The largest P for which `.automatic` factors a `DenseCurvature` on the host.
    public static let denseLimit = 4096

    /// The largest P for which `automaticMethod(forFactorRows:dimension:damping:)` forms F
    /// from a factor to factor it: forming costs M·P² with M > P (else Woodbury applies), at
    /// least three times the P³/3 of the factorisation, so the limit is lower than
    /// `denseLimit` for a matrix one already has.
    static let formedDenseLimit = denseLimit / 2

    /// The method `.automatic` resolves to for `curvature` and λ: the one policy, which the
    /// solver, `NaturalGradientOptimizer` and `ngrad solve` all use.
    public static func automaticMethod<Operator: CurvatureOperator>(for curvature: Operator, damping: Double) -> SolveMethod {
        curvature.preferredMethod(damping: damping)
    }

    /// The method `.automatic` resolves to for F given as a factor U of `rows` x `dimension`
    /// when the caller may hold it either way (`ngrad solve`): what an `ImplicitCurvature`
    /// prefers, except that where that is CG and P ≤ `denseLimit / 2` it is Cholesky, for
    /// which the caller forms a `DenseCurvature`.
    public static func automaticMethod(forFactorRows rows: Int, dimension: Int, damping: Double) -> SolveMethod {
        let implicit = ImplicitCurvature<Float>.preferredMethod(rows: rows, dimension: dimension, damping: damping)
        return implicit == .cg && dimension <= formedDenseLimit ? .cholesky : implicit
    }

    /// Solves `(F + λI) x = g` for every vector of `g`.
    public static func solve<Operator: CurvatureOperator>(
        _ curvature: Operator, _ g: VectorBatch<Operator.Element>, damping: Operator.Element,
        method: SolveMethod = .automatic, options: ConjugateGradientOptions = ConjugateGradientOptions()
    ) throws -> NaturalGradientSolution<Operator.Element> {
        typealias Element = Operator.Element
        try validateDamping(damping)
        try require(g.dimension == curvature.dimension, "g", "has dimension \(g.dimension), F \(curvature.dimension)")
        let resolved = resolve(method, for: curvature, damping: damping.float64)
        let clock = ContinuousClock()
        var stages: [(String, Double)] = []
        func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
            let start = clock.now
            let value = try body()
            try? curvature.context.finish()
            let elapsed = (clock.now - start).components
            stages.append((stage, Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18))
            return value
        }

        guard resolved.isDirect else {
            let solver = try timed("prepare") { try ConjugateGradient<Element>(context: curvature.context) }
            let (x, reports) = try timed("iterate") {
                try solver.solve(curvature, g, damping: damping, options: options.forMethod(resolved))
            }
            return NaturalGradientSolution(
                x: x, method: resolved, reports: reports, densePath: nil, reciprocalCondition: nil, stageSeconds: stages)
        }
        try requireInverse(resolved, of: curvature)
        let inverse = try timed("invert") { try curvature.makeInverse(damping: damping) }
        let x = try timed("solve") { try inverse.solve(g) }
        // Measured, refined once where that pays, and labelled by what x is worth.
        let (checkedX, reports) = try timed("check") {
            try checkedDirectSolution(curvature, g, x, damping: damping, check: DirectSolveCheck(inverse))
        }
        return NaturalGradientSolution(
            x: checkedX, method: resolved, reports: reports, densePath: inverse.factorization?.path,
            reciprocalCondition: inverse.factorization?.reciprocalCondition, stageSeconds: stages)
    }

    /// `method`, or for `.automatic` the representation's preference (CG should a
    /// representation answer `.automatic` itself).
    static func resolve<Operator: CurvatureOperator>(
        _ method: SolveMethod, for curvature: Operator, damping: Double
    )
        -> SolveMethod
    {
        guard method == .automatic else { return method }
        let preferred = automaticMethod(for: curvature, damping: damping)
        return preferred == .automatic ? .cg : preferred
    }

    /// Throws `invalidArgument("method", …)` unless `method` is `curvature`'s exact inverse.
    static func requireInverse<Operator: CurvatureOperator>(_ method: SolveMethod, of curvature: Operator) throws {
        guard curvature.inverseMethod != method else { return }
        throw NaturalGradientError.invalidArgument(
            name: "method", reason: "\(method.rawValue) does not fit \(Operator.self), which solves with \(curvature.methodList)")
    }
}

extension ConjugateGradientOptions {
    /// The options for `method` (`.cg` or `.pcg`): PCG without a preconditioner of its own
    /// gets the Jacobi `(diag F + λ)^−0.75`.
    func forMethod(_ method: SolveMethod) -> ConjugateGradientOptions {
        var options = self
        if method == .pcg, options.preconditioner == .none { options.preconditioner = .jacobi(exponent: 0.75) }
        return options
    }
}
