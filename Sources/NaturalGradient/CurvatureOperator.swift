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

// MARK: - Implicit

/// F kept as its factor U, never formed: each product reads U once (fused kernel).
/// The representation for P too large for a P x P matrix.
public final class ImplicitCurvature<Element: DeviceScalar>: CurvatureOperator {
    /// The factor U, weights and sample count.
    public let factor: CurvatureFactor<Element>
    private let product: ImplicitProduct<Element>

    /// F as `factor`, never formed.
    public init(factor: CurvatureFactor<Element>) throws {
        self.factor = factor
        product = try ImplicitProduct(context: factor.context)
    }

    public var context: Context { factor.context }
    public var dimension: Int { factor.dimension }

    public func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        try validate(x, y)
        try product.apply(factor, x, damping: damping, into: y)
    }

    public func diagonal() throws -> Buffer<Element> {
        let diagonal = try Buffer<Element>(context: context, count: dimension)
        try FisherAccumulation<Element>(context: context).accumulateDiagonal(factor, into: diagonal)
        return diagonal
    }

    /// Woodbury where it is exact and cheap (M ≤ P, λ > 0: an M x M factorisation),
    /// otherwise CG (the Woodbury identity divides by λ).
    public func preferredMethod(damping: Double) -> SolveMethod {
        Self.preferredMethod(rows: factor.rows, dimension: dimension, damping: damping)
    }

    /// The rule of `preferredMethod(damping:)` for a factor of `rows` x `dimension`.
    static func preferredMethod(rows: Int, dimension: Int, damping: Double) -> SolveMethod {
        rows <= dimension && damping > 0 ? .woodbury : .cg
    }

    /// The Woodbury identity (`WoodburySolver`).
    public var inverseMethod: SolveMethod? { .woodbury }

    /// A `WoodburySolver` factored for λ (> 0).
    public func makeInverse(damping: Element) throws -> any CurvatureInverse<Element> {
        try WoodburySolver(factor: factor, damping: damping)
    }
}

extension ImplicitCurvature: ExportableCurvature {
    /// The factor, its weights and sample count.
    public func exportState() throws -> SavedCurvature {
        try factor.savedState()
    }
}

extension CurvatureFactor {
    /// The factor as saved in an optimizer state (values in float64).
    func savedState() throws -> SavedCurvature {
        .factor(
            matrix: try matrix.downloadFloat64(0..<(rows * dimension)), rows: rows, samples: samples,
            weights: try weights?.downloadFloat64(0..<rows))
    }
}

// MARK: - Diagonal

/// F approximated by its diagonal: `(F + λI) x = (d + λ) ∘ x`.
public final class DiagonalCurvature<Element: DeviceScalar>: CurvatureOperator {
    /// The diagonal d (P values).
    public let values: Buffer<Element>
    public let dimension: Int
    private let product: DiagonalProduct<Element>

    /// The diagonal of the Fisher of `factor`: `d = (1/N) Σ w u²`.
    public convenience init(factor: CurvatureFactor<Element>) throws {
        let values = try Buffer<Element>(context: factor.context, count: factor.dimension)
        try FisherAccumulation<Element>(context: factor.context).accumulateDiagonal(factor, into: values)
        try self.init(values: values, dimension: factor.dimension)
    }

    /// A diagonal the caller already has on the device.
    public init(values: Buffer<Element>, dimension: Int) throws {
        try require(dimension > 0 && values.count >= dimension, "values", "holds \(values.count) for \(dimension)")
        self.values = values
        self.dimension = dimension
        product = try DiagonalProduct(context: values.context)
    }

    public var context: Context { values.context }

    public func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        try validate(x, y)
        try product.apply(values, x, damping: damping, into: y)
    }

    public func diagonal() throws -> Buffer<Element> {
        let copy = try Buffer<Element>(context: context, count: dimension)
        try copy.copy(from: values, range: 0..<dimension)
        return copy
    }

    /// PCG, decided once for the solver and the optimizer alike: the Jacobi preconditioner
    /// is this operator's own diagonal, so it costs one vector and no product, and it
    /// shrinks the condition number κ of `diag(d) + λI` to `κ^0.25` (exponent 0.75), so PCG
    /// needs fewer iterations than CG for the same work per iteration.
    public func preferredMethod(damping _: Double) -> SolveMethod { .pcg }
}

extension DiagonalCurvature: FactorAccumulatingCurvature {
    /// `d ← βd + α Σ w u²` on the device; α = 1/N by default.
    public func accumulate(_ factor: CurvatureFactor<Element>, alpha: Element? = nil, beta: Element = 1) throws {
        try require(
            factor.dimension == dimension, "factor", "has dimension \(factor.dimension), the diagonal \(dimension)")
        try FisherAccumulation<Element>(context: context).accumulateDiagonal(
            factor, into: values, alpha: alpha, beta: beta)
    }
}

extension DiagonalCurvature: ExportableCurvature {
    /// The P diagonal values.
    public func exportState() throws -> SavedCurvature {
        .diagonal(values: try values.downloadFloat64(0..<dimension))
    }
}
