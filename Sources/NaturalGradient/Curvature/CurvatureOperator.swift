import OpenCLHost

/// A curvature matrix F (P x P, symmetric positive semi-definite) in some representation.
///
/// Every representation applies `F + λI` to a batch of vectors and gives its diagonal and
/// trace; solvers take this protocol, so a new representation gets CG and PCG for free.
/// What a representation can do beyond that is declared here too, with defaults in the
/// extension: its preferred method for a λ (the one automatic-method policy that
/// `NaturalGradientSolver`, `NaturalGradientOptimizer` and `ngrad solve` all ask), and an
/// exact inverse where it has one (`makeInverse(damping:)`, a `CurvatureInverse`).
/// Accumulation and state export are the separate protocols `FactorAccumulatingCurvature`,
/// `LayerAccumulatingCurvature` and `ExportableCurvature`.
/// Representations hold kernel objects, so an instance serves one thread at a time.
public protocol CurvatureOperator<Element>: AnyObject {
    /// The element type of vectors and data.
    associatedtype Element: DeviceScalar

    /// The context the data lives in.
    var context: Context { get }
    /// P, the number of parameters.
    var dimension: Int { get }

    /// `y ← (F + λI) x` for every vector of the batch. `λ` must be finite and ≥ 0, and `y`
    /// must not share `x`'s buffer.
    func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws

    /// `diag(F)` (without damping) as a new device vector of P values.
    func diagonal() throws -> Buffer<Element>

    /// `tr F`, accumulated on the host in float64.
    func trace() throws -> Double

    /// The method `SolveMethod.automatic` resolves to for λ (never `.automatic`). The
    /// default is CG.
    func preferredMethod(damping: Double) -> SolveMethod

    /// The direct method `makeInverse(damping:)` implements (`.woodbury`, `.cholesky`,
    /// `.kfac`), nil (the default) where the representation has no exact inverse.
    var inverseMethod: SolveMethod? { get }

    /// `(F + λI)⁻¹` for λ as an operator of its own, factored now. The default throws:
    /// a representation without an exact inverse is solved by CG or PCG.
    func makeInverse(damping: Element) throws -> any CurvatureInverse<Element>
}

extension CurvatureOperator {
    /// `(F + λI) x` into a new batch.
    public func apply(_ x: VectorBatch<Element>, damping: Element = 0) throws -> VectorBatch<Element> {
        let y = try VectorBatch<Element>(context: context, dimension: x.dimension, count: x.count)
        try apply(x, damping: damping, into: y)
        return y
    }

    /// The sum of `diagonal()`, in float64.
    public func trace() throws -> Double {
        try diagonal().downloadFloat64(0..<dimension).reduce(0, +)
    }

    /// CG: it needs only `apply`.
    public func preferredMethod(damping _: Double) -> SolveMethod { .cg }

    /// No exact inverse.
    public var inverseMethod: SolveMethod? { nil }

    /// Throws `invalidArgument("method", …)`: there is no exact inverse.
    public func makeInverse(damping _: Element) throws -> any CurvatureInverse<Element> {
        throw NaturalGradientError.invalidArgument(
            name: "method", reason: "\(Self.self) has no exact inverse; it solves with \(methodList)")
    }

    /// The methods this representation solves with, for error messages ("cg, pcg or woodbury").
    var methodList: String {
        inverseMethod.map { "cg, pcg or \($0.rawValue)" } ?? "cg or pcg"
    }

    /// Throws unless `x` and `y` fit this operator (shared by the representations).
    func validate(_ x: VectorBatch<Element>, _ y: VectorBatch<Element>) throws {
        try require(x.dimension == dimension, "x", "has dimension \(x.dimension), the operator \(dimension)")
        try x.requireSameShape(y, "y")
        try require(x.buffer.context === context, "x", "belongs to another context")
    }
}
