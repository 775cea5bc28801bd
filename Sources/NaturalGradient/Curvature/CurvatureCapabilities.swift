import OpenCLHost

/// A representation a factor's Fisher can be added into, `F ← βF + α Uᵀ diag(w) U`: to
/// stream chunks of rows, or to keep the exponential moving average the optimizer's
/// `curvatureDecay` asks for. `DenseCurvature`, `BlockDiagonalCurvature` and
/// `DiagonalCurvature` conform; an implicit factor cannot be averaged.
public protocol FactorAccumulatingCurvature<Element>: CurvatureOperator {
    /// The element type of vectors and data.
    associatedtype Element

    /// `F ← βF + α Uᵀ diag(w) U` (α = 1/N when nil), in this representation.
    func accumulate(_ factor: CurvatureFactor<Element>, alpha: Element?, beta: Element) throws
}

/// A representation built from per-layer statistics (K-FAC's activations and output
/// gradients) rather than from a factor. `KroneckerCurvature` conforms.
public protocol LayerAccumulatingCurvature<Element>: CurvatureOperator {
    /// The element type of vectors and data.
    associatedtype Element

    /// Every layer's statistics `← β · old + α Σ w (outer products)`, α = 1/samples when nil.
    func accumulate(
        _ layers: [KFACLayer<Element>], samples: Int, weights: Buffer<Element>?, alpha: Element?, beta: Element
    ) throws
}

/// A representation whose contents can be saved in float64 (which holds float32 exactly),
/// for the optimizer's `state()`. Restoring is the job of the `CurvatureBuilder` that
/// knows the shapes (block sizes, layers).
public protocol ExportableCurvature<Element>: CurvatureOperator {
    /// The element type of vectors and data.
    associatedtype Element

    /// The contents, in the layout of one `SavedCurvature` case.
    func exportState() throws -> SavedCurvature
}
