import OpenCLHost

/// The dense solve: `F + λI` factored on the host in float64 (Cholesky, falling back to
/// jitter, then to a clamped eigendecomposition; `DenseSymmetricFactorization`), cached
/// per λ until the matrix is accumulated again.
public final class CholeskySolver<Element: DeviceScalar> {
    /// The matrix.
    public let curvature: DenseCurvature<Element>
    private var factorization: (damping: Element, value: DenseSymmetricFactorization)?

    public init(curvature: DenseCurvature<Element>) {
        self.curvature = curvature
    }

    /// The factorisation used by the last solve: which path, and the condition estimate.
    public var lastFactorization: DenseSymmetricFactorization? { factorization?.value }

    /// Forgets the cached factorisation (call after accumulating into the matrix).
    public func invalidate() { factorization = nil }

    /// `x = (F + λI)⁻¹ b` for every vector of `b`.
    public func solve(_ b: VectorBatch<Element>, damping: Element) throws -> VectorBatch<Element> {
        try validateDamping(damping)
        try require(b.dimension == curvature.dimension, "b", "has dimension \(b.dimension), F \(curvature.dimension)")
        let factorization: DenseSymmetricFactorization
        if let cached = self.factorization, cached.damping == damping {
            factorization = cached.value
        } else {
            factorization = try DenseSymmetricFactorization(
                matrix: curvature.matrix.downloadFloat64(0..<(curvature.dimension * curvature.dimension)), dimension: curvature.dimension, damping: damping.float64)
            self.factorization = (damping, factorization)
        }
        let right = try b.buffer.downloadFloat64(0..<(b.dimension * b.count))
        let solution = try factorization.solve(right, count: b.count)
        let x = try VectorBatch<Element>(context: curvature.context, dimension: b.dimension, count: b.count)
        try x.buffer.upload(float64: solution)
        return x
    }
}

/// The K-FAC solve: per layer `(G + γ_G I)⁻¹ V (A + γ_A I)⁻¹` with the factored damping.
/// The damped factors are inverted on the host in float64 by `refresh(damping:)` and kept
/// until the next refresh, so a caller refreshes every few steps and applies every step.
public final class KroneckerSolver<Element: DeviceScalar> {
    /// The K-FAC curvature whose factors are inverted.
    public let curvature: KroneckerCurvature<Element>
    /// The λ of the last refresh, nil before the first.
    public private(set) var refreshedDamping: Element?
    private let inverses: KroneckerCurvature<Element>

    public init(curvature: KroneckerCurvature<Element>) throws {
        self.curvature = curvature
        inverses = try KroneckerCurvature(
            context: curvature.context, shapes: curvature.layers.map { ($0.outputs, $0.inputs) })
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
}
