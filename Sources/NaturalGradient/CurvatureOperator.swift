import OpenCLHost

/// A curvature matrix F (P x P, symmetric positive semi-definite) in some representation.
///
/// Every representation applies `F + λI` to a batch of vectors and gives its diagonal and
/// trace; solvers take this protocol, so a new representation gets every solver for free.
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
}
