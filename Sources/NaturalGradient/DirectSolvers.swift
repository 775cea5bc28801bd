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

/// The K-FAC solve: per layer `(G + γ_G I)⁻¹ V (A + γ_A I)⁻¹` with the factored damping.
/// The damped factors are inverted on the host in float64 by `refresh(damping:)` and kept
/// until the next refresh, so a caller refreshes every few steps and applies every step.
public final class KroneckerSolver<Element: DeviceScalar>: CurvatureInverse, ExportableInverse {
    /// The K-FAC curvature whose factors are inverted.
    public let curvature: KroneckerCurvature<Element>
    /// The λ of the last refresh, nil before the first.
    public private(set) var refreshedDamping: Element?
    private let inverses: KroneckerCurvature<Element>
    /// The packed factors of the last refresh, in float64 (for `exportState`).
    private var source: [Double]?

    /// A solver with nothing inverted yet: call `refresh(damping:)` before solving.
    public init(curvature: KroneckerCurvature<Element>) throws {
        self.curvature = curvature
        inverses = try KroneckerCurvature(
            context: curvature.context, shapes: curvature.layers.map { ($0.outputs, $0.inputs) })
    }

    /// The inverse for λ from the factors as they are now (`KroneckerCurvature.makeInverse`).
    public convenience init(curvature: KroneckerCurvature<Element>, damping: Element) throws {
        try self.init(curvature: curvature)
        try refresh(damping: damping)
    }

    /// Inverts every layer's damped factors for λ from the factors as they are now.
    public func refresh(damping: Element) throws {
        try validateDamping(damping)
        let dampings = try curvature.factoredDampings(damping)
        var packed = [Element](repeating: 0, count: inverses.factors.count)
        for (index, layer) in curvature.layers.enumerated() {
            let (a, g) = try curvature.layerFactors(index)
            for (factor, size, offset, shift) in [
                (a, layer.inputs, layer.aOffset, dampings[index].a), (g, layer.outputs, layer.gOffset, dampings[index].g),
            ] {
                let inverse = try DenseSymmetricFactorization(
                    matrix: Element.widened(factor), dimension: size, damping: shift
                ).solve(identity(size), count: size)
                packed.replaceSubrange(offset..<(offset + size * size), with: Element.narrowed(inverse))
            }
        }
        try inverses.factors.upload(packed)
        source = try curvature.factors.downloadFloat64()
        refreshedDamping = damping
    }

    /// `x = ((G + γ_G I) ⊗ (A + γ_A I))⁻¹ b` with the inverses of the last refresh.
    public func solve(_ b: VectorBatch<Element>) throws -> VectorBatch<Element> {
        guard refreshedDamping != nil else {
            throw NaturalGradientError.invalidArgument(
                name: "damping", reason: "call refresh(damping:) before the first K-FAC solve")
        }
        return try inverses.apply(b, damping: 0)
    }

    private func identity(_ n: Int) -> [Double] {
        (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 }
    }

    // MARK: CurvatureInverse

    public var context: Context { curvature.context }
    public var dimension: Int { curvature.dimension }
    /// `.kfac`.
    public var method: SolveMethod { .kfac }
    /// The λ of the last refresh.
    public var damping: Element? { refreshedDamping }

    /// The factors as they were at the last refresh, and its λ.
    public func exportState() throws -> SavedInverse {
        guard let source, let refreshedDamping else {
            throw NaturalGradientError.invalidArgument(name: "damping", reason: "nothing refreshed yet")
        }
        return SavedInverse(source: .kronecker(factors: source), damping: refreshedDamping.float64)
    }
}
