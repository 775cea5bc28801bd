import OpenCLHost

/// F as one dense symmetric P x P matrix (P up to about 16k on a 24 GiB machine).
/// The single-block case of `BlockDiagonalCurvature`, with the matrix at hand.
public final class DenseCurvature<Element: DeviceScalar>: CurvatureOperator {
    private let storage: BlockDiagonalCurvature<Element>

    /// A zero P x P matrix, to `accumulate` chunks into.
    public init(context: Context, dimension: Int) throws {
        try require(dimension > 0, "dimension", "must be positive, got \(dimension)")
        storage = try BlockDiagonalCurvature(context: context, blockSizes: [dimension])
    }

    /// `F = (1/N) Uᵀ diag(w) U` of `factor`.
    public convenience init(factor: CurvatureFactor<Element>) throws {
        try self.init(context: factor.context, dimension: factor.dimension)
        try accumulate(factor, beta: 0)
    }

    /// F, row-major P x P (both triangles written).
    public var matrix: Buffer<Element> { storage.matrices }
    public var context: Context { storage.context }
    public var dimension: Int { storage.dimension }

    /// `F ← βF + α Uᵀ diag(w) U`; α = 1/N by default. See
    /// `BlockDiagonalCurvature.accumulate` for streaming chunks and moving averages.
    public func accumulate(_ factor: CurvatureFactor<Element>, alpha: Element? = nil, beta: Element = 1) throws {
        try storage.accumulate(factor, alpha: alpha, beta: beta)
    }

    public func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        try storage.apply(x, damping: damping, into: y)
    }

    public func diagonal() throws -> Buffer<Element> { try storage.diagonal() }

    /// F, read back to the host (row-major).
    public func download() throws -> [Element] { try storage.blockMatrix(0) }
}

extension DenseCurvature: FactorAccumulatingCurvature, ExportableCurvature {
    /// Cholesky up to `NaturalGradientSolver.denseLimit` parameters (a float64 P³/3
    /// factorisation on the host), CG above.
    public func preferredMethod(damping _: Double) -> SolveMethod {
        dimension <= NaturalGradientSolver.denseLimit ? .cholesky : .cg
    }

    /// Dense float64 Cholesky with fallbacks (`CholeskySolver`).
    public var inverseMethod: SolveMethod? { .cholesky }

    /// A `CholeskySolver` factored for λ from the matrix as it is now.
    public func makeInverse(damping: Element) throws -> any CurvatureInverse<Element> {
        try CholeskySolver(curvature: self, damping: damping)
    }

    /// The P x P matrix, row-major.
    public func exportState() throws -> SavedCurvature {
        .dense(matrix: try matrix.downloadFloat64(0..<(dimension * dimension)))
    }
}
