import OpenCLHost

/// How `NaturalGradientSolver` solves `(F + λI) x = g`.
public enum SolveMethod: String, CaseIterable, Sendable, Codable {
    /// Woodbury for an `ImplicitCurvature` with M ≤ P and λ > 0, Cholesky for a
    /// `DenseCurvature` of P ≤ `NaturalGradientSolver.denseLimit`, K-FAC for a
    /// `KroneckerCurvature`, CG otherwise.
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
    /// Wall time of each stage in seconds, in order (for example "factor", "solve", "check").
    public let stageSeconds: [(stage: String, seconds: Double)]
}

/// One entry point for `x = (F + λI)⁻¹ g`: picks a solver from the representation and the
/// sizes (overridable), runs it, and checks the answer with one extra product.
public enum NaturalGradientSolver {
    /// The largest P for which `.automatic` factors a `DenseCurvature` on the host.
    public static let denseLimit = 4096

    /// The method `.automatic` resolves to for `curvature` and λ.
    public static func automaticMethod<Operator: CurvatureOperator>(for curvature: Operator, damping: Double) -> SolveMethod {
        switch curvature {
        case let implicit as ImplicitCurvature<Operator.Element>:
            implicit.factor.rows <= implicit.dimension && damping > 0 ? .woodbury : .cg
        case let dense as DenseCurvature<Operator.Element>:
            dense.dimension <= denseLimit ? .cholesky : .cg
        case is KroneckerCurvature<Operator.Element>:
            .kfac
        default:
            .cg
        }
    }

    /// Solves `(F + λI) x = g` for every vector of `g`.
    public static func solve<Operator: CurvatureOperator>(
        _ curvature: Operator, _ g: VectorBatch<Operator.Element>, damping: Operator.Element,
        method: SolveMethod = .automatic, options: ConjugateGradientOptions = ConjugateGradientOptions()
    ) throws -> NaturalGradientSolution<Operator.Element> {
        typealias Element = Operator.Element
        try validateDamping(damping)
        try require(g.dimension == curvature.dimension, "g", "has dimension \(g.dimension), F \(curvature.dimension)")
        let resolved = method == .automatic ? automaticMethod(for: curvature, damping: damping.float64) : method
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
        func direct(
            _ x: VectorBatch<Element>, path: DenseSolvePath?, condition: Double?, check: DirectSolveCheck<Element>? = nil
        ) throws -> NaturalGradientSolution<Element> {
            // Measured, refined once where that pays, and labelled by what x is worth.
            let (x, reports) = try timed("check") {
                try checkedDirectSolution(curvature, g, x, damping: damping, check: check)
            }
            return NaturalGradientSolution(
                x: x, method: resolved, reports: reports, densePath: path, reciprocalCondition: condition,
                stageSeconds: stages)
        }

        switch resolved {
        case .automatic, .cg, .pcg:
            var options = options
            if resolved == .pcg, options.preconditioner == .none { options.preconditioner = .jacobi(exponent: 0.75) }
            let solver = try timed("prepare") { try ConjugateGradient<Element>(context: curvature.context) }
            let (x, reports) = try timed("iterate") { try solver.solve(curvature, g, damping: damping, options: options) }
            return NaturalGradientSolution(
                x: x, method: resolved == .automatic ? .cg : resolved, reports: reports, densePath: nil,
                reciprocalCondition: nil, stageSeconds: stages)
        case .woodbury:
            guard let implicit = curvature as? ImplicitCurvature<Element> else {
                throw NaturalGradientError.invalidArgument(
                    name: "method", reason: "woodbury needs an implicit (factor) curvature, not \(type(of: curvature))")
            }
            let solver = try timed("gram") { try WoodburySolver(factor: implicit.factor) }
            let x = try timed("solve") { try solver.solve(g, damping: damping) }
            return try direct(
                x, path: solver.lastFactorization?.path, condition: solver.lastFactorization?.reciprocalCondition,
                check: DirectSolveCheck(solver, damping: damping))
        case .cholesky:
            guard let dense = curvature as? DenseCurvature<Element> else {
                throw NaturalGradientError.invalidArgument(
                    name: "method", reason: "cholesky needs a dense curvature, not \(type(of: curvature))")
            }
            let solver = CholeskySolver(curvature: dense)
            let x = try timed("factor and solve") { try solver.solve(g, damping: damping) }
            return try direct(
                x, path: solver.lastFactorization?.path, condition: solver.lastFactorization?.reciprocalCondition,
                check: DirectSolveCheck(solver, damping: damping))
        case .kfac:
            guard let kronecker = curvature as? KroneckerCurvature<Element> else {
                throw NaturalGradientError.invalidArgument(
                    name: "method", reason: "kfac needs a Kronecker (K-FAC) curvature, not \(type(of: curvature))")
            }
            let solver = try timed("invert factors") {
                let solver = try KroneckerSolver(curvature: kronecker)
                try solver.refresh(damping: damping)
                return solver
            }
            let x = try timed("solve") { try solver.solve(g) }
            return try direct(x, path: nil, condition: nil)
        }
    }
}
