import OpenCLHost

/// The EKFAC solve: per layer `x = Q_G ((Q_Gᵀ B Q_A) ⊘ (S + λ)) Q_Aᵀ`, which is exactly
/// `(F + λI)⁻¹ b` for the EKFAC F. The reciprocals are formed on the host in float64 and the
/// bases copied when the solver is made, so it stays valid (for the curvature as it was)
/// while the curvature is accumulated into or refreshed.
public final class EigenvalueCorrectedKroneckerSolver<Element: DeviceScalar>: CurvatureInverse {
    /// The curvature this inverse was made from.
    public let curvature: EigenvalueCorrectedKroneckerCurvature<Element>
    private let rotation: EigenbasisRotation<Element>
    private let reciprocals: Buffer<Element>
    private let lambda: Element
    private let smallest: Double, largest: Double

    /// The inverse for λ. λ may be 0 only where every corrected eigenvalue is positive.
    /// - Throws: `invalidArgument("damping", …)` for a negative or non-finite λ, or one
    ///   that leaves some `S_kj + λ` at or below 0, or whose reciprocal overflows the element
    ///   type.
    public init(curvature: EigenvalueCorrectedKroneckerCurvature<Element>, damping: Element) throws {
        try validateDamping(damping)
        let shifted = curvature.packedEigenvalues.map { $0 + damping.float64 }
        let smallest = shifted.min() ?? 0
        try require(
            smallest > 0, "damping",
            "\(damping) leaves \(shifted.filter { $0 <= 0 }.count) corrected eigenvalues S + λ at or below 0 "
                + "(the smallest is \(smallest)); the EKFAC inverse needs λ > 0 there")
        let values = shifted.map { 1 / $0 }
        let narrowed = Element.narrowed(values)
        try require(
            narrowed.allSatisfy(\.isFinite), "damping",
            "\(damping) is too small: 1 / (S + λ) = \(1 / smallest) overflows \(Element.self)")
        self.curvature = curvature
        self.smallest = smallest
        largest = shifted.max() ?? 0
        lambda = damping
        rotation = try EigenbasisRotation(
            context: curvature.context, shapes: curvature.layers.map { ($0.outputs, $0.inputs) },
            defines: curvature.rotationDefines)
        try rotation.upload(bases: curvature.packedBases)
        reciprocals = try Buffer(context: curvature.context, copying: narrowed)
    }

    /// `x = Q_G ((Q_Gᵀ B Q_A) ⊘ (S + λ)) Q_Aᵀ` for every vector of `b`.
    public func solve(_ b: VectorBatch<Element>) throws -> VectorBatch<Element> {
        try require(b.dimension == dimension, "b", "has dimension \(b.dimension), the operator \(dimension)")
        try require(b.buffer.context === context, "b", "belongs to another context")
        let x = try VectorBatch<Element>(context: context, dimension: dimension, count: b.count)
        try rotation.apply(b, scale: reciprocals, damping: 0, into: x)
        return x
    }

    // MARK: CurvatureInverse

    public var context: Context { curvature.context }
    public var dimension: Int { curvature.dimension }
    /// `.kfac`.
    public var method: SolveMethod { .kfac }
    /// The λ it inverts for.
    public var damping: Element? { lambda }
    /// `min(S + λ) / max(S + λ)`: the exact reciprocal condition of `F + λI`.
    public var systemReciprocalCondition: Double? { largest > 0 ? smallest / largest : nil }
}
