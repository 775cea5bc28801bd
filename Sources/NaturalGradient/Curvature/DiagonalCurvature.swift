import OpenCLHost

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
