import OpenCLHost

/// The dense solve: `F + λI` factored on the host in float64 (Cholesky, falling back to
/// jitter, then to a clamped eigendecomposition; `DenseSymmetricFactorization`), cached
/// per λ until the matrix is accumulated again.
public final class CholeskySolver<Element: DeviceScalar>: CurvatureInverse, ExportableInverse {
    /// The matrix.
    public let curvature: DenseCurvature<Element>
    /// The factorisation, its λ and the float64 matrix it was computed from.
    private var factored: (damping: Element, value: DenseSymmetricFactorization, source: [Double])?

    /// A solver that factors at its first `solve(_:damping:)`.
    public init(curvature: DenseCurvature<Element>) {
        self.curvature = curvature
    }

    /// `(F + λI)⁻¹`, factored now from the matrix as it is (`DenseCurvature.makeInverse`).
    public convenience init(curvature: DenseCurvature<Element>, damping: Element) throws {
        self.init(curvature: curvature)
        _ = try currentFactorization(damping)
    }

    /// The factorisation used by the last solve: which path, and the condition estimate.
    public var lastFactorization: DenseSymmetricFactorization? { factored?.value }

    /// Forgets the cached factorisation (call after accumulating into the matrix).
    public func invalidate() { factored = nil }

    /// `x = (F + λI)⁻¹ b` for every vector of `b`, refactoring when λ changes.
    public func solve(_ b: VectorBatch<Element>, damping: Element) throws -> VectorBatch<Element> {
        try validateDamping(damping)
        try require(b.dimension == curvature.dimension, "b", "has dimension \(b.dimension), F \(curvature.dimension)")
        let factorization = try currentFactorization(damping)
        let right = try b.buffer.downloadFloat64(0..<(b.dimension * b.count))
        let solution = try factorization.solve(right, count: b.count)
        let x = try VectorBatch<Element>(context: curvature.context, dimension: b.dimension, count: b.count)
        try x.buffer.upload(float64: solution)
        return x
    }

    private func currentFactorization(_ damping: Element) throws -> DenseSymmetricFactorization {
        try validateDamping(damping)
        if let factored, factored.damping == damping { return factored.value }
        let n = curvature.dimension
        let source = try curvature.matrix.downloadFloat64(0..<(n * n))
        let value = try DenseSymmetricFactorization(matrix: source, dimension: n, damping: damping.float64)
        factored = (damping, value, source)
        return value
    }

    // MARK: CurvatureInverse

    public var context: Context { curvature.context }
    public var dimension: Int { curvature.dimension }
    /// `.cholesky`.
    public var method: SolveMethod { .cholesky }
    /// The λ of the cached factorisation.
    public var damping: Element? { factored?.damping }
    /// The cached factorisation.
    public var factorization: DenseSymmetricFactorization? { lastFactorization }

    /// `x = (F + λI)⁻¹ b` with the cached factorisation's λ.
    public func solve(_ b: VectorBatch<Element>) throws -> VectorBatch<Element> {
        try solve(b, damping: requireDamping())
    }

    /// The matrix as it was factored, and λ.
    public func exportState() throws -> SavedInverse {
        guard let factored else { throw NaturalGradientError.invalidArgument(name: "damping", reason: "nothing factored yet") }
        return SavedInverse(source: .dense(matrix: factored.source), damping: factored.damping.float64)
    }
}
