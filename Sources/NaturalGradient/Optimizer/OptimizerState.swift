/// Curvature data as saved in a `NaturalGradientOptimizerState` (values in float64, which
/// holds float32 exactly, so a restored run continues bit for bit).
public enum SavedCurvature: Sendable, Equatable, Codable {
    /// A factor U (rows x P), its sample count and optional row weights.
    case factor(matrix: [Double], rows: Int, samples: Int, weights: [Double]?)
    /// A dense P x P matrix, row-major.
    case dense(matrix: [Double])
    /// Packed block-diagonal matrices.
    case blockDiagonal(matrices: [Double])
    /// The diagonal.
    case diagonal(values: [Double])
    /// Packed K-FAC factors (A_l, G_l per layer, as `KroneckerCurvature.factors`).
    case kronecker(factors: [Double])
}

/// A cached inverse as saved: the curvature it was computed from and its λ.
public struct SavedInverse: Sendable, Equatable, Codable {
    /// The curvature at the inverse's refresh.
    public var source: SavedCurvature
    /// The λ it was computed for.
    public var damping: Double

    /// An inverse of `source + damping`.
    public init(source: SavedCurvature, damping: Double) {
        self.source = source
        self.damping = damping
    }
}

/// Everything a `NaturalGradientOptimizer` carries from one step to the next: the step
/// count, λ, the previous update (momentum), the current curvature (including its moving
/// average) and the cached inverse. `Codable`: save it with any encoder, restore it into an
/// optimizer with the same options, and the next step is identical to the uninterrupted run.
public struct NaturalGradientOptimizerState: Sendable, Equatable, Codable {
    /// The format version (1).
    public var version: Int = 1
    /// P, the number of parameters.
    public var dimension: Int
    /// Steps taken so far.
    public var step: Int
    /// The current λ.
    public var damping: Double
    /// The last update δ, for momentum (nil before the first step or without momentum).
    public var previousUpdate: [Double]?
    /// The curvature as of the last refresh (nil before the first).
    public var curvature: SavedCurvature?
    /// The cached inverse (nil for CG, or before the first).
    public var inverse: SavedInverse?
}
