import OpenCLHost

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
