import OpenCLHost

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
            matrix: try downloadFloat64(), rows: rows, samples: samples,
            weights: try weights?.downloadFloat64(0..<rows))
    }
}
