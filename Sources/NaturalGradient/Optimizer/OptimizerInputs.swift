import OpenCLHost

/// How output Jacobians become an exact-Fisher / GGN factor: a built-in output metric, or
/// any builder of the rows `B_i J_i` (for example one over a similarity measure).
public enum OutputMeasure<Element: DeviceScalar> {
    /// A built-in metric with an analytic square root (`CurvatureFactor.exactFisher`): a
    /// family × measure point given by probabilities or a fixed σ (``OutputMetric``).
    case metric(OutputMetric<Element>)
    /// The formal natural gradient of a similarity measure (`CurvatureFactor.formalMetric`):
    /// the metric `M(z_i)` of `measure` for `family` at the model's outputs z_i, given here
    /// as samples x `family.outputCount` values in the family's layout (for example the
    /// logits, with `.categorical` and `.kullbackLeibler` for the exact Fisher of a
    /// classifier, or a Gaussian's (μ, σ) with `.wasserstein2`).
    case similarity(family: PredictiveFamily, measure: SimilarityMeasure, outputs: [Element])
    /// Any factor builder: it receives the Jacobians on the device (samples·outputs x
    /// dimension, sample-major), the sample count, the outputs per sample and P, and returns
    /// the factor whose rows are `B_i J_i`.
    case custom(
        (_ jacobians: Buffer<Element>, _ samples: Int, _ outputs: Int, _ dimension: Int) throws -> CurvatureFactor<Element>)
}

/// One layer's K-FAC statistics on the host: per-sample inputs (with the trailing 1 of a
/// bias column) and per-sample gradients of the loss with respect to the layer's outputs.
public struct LayerStatistics<Element: DeviceScalar> {
    /// samples x inputs, row-major.
    public var activations: [Element]
    /// samples x outputs, row-major.
    public var outputGradients: [Element]

    /// Statistics of one layer.
    public init(activations: [Element], outputGradients: [Element]) {
        self.activations = activations
        self.outputGradients = outputGradients
    }
}

/// The curvature data of one step, matching the optimizer's `CurvatureSource`.
public enum CurvatureInput<Element: DeviceScalar> {
    /// Empirical Fisher: one loss gradient per sample, samples x P row-major.
    case perSampleGradients([Element], samples: Int)
    /// Exact Fisher / GGN: per-sample Jacobians of the model output, (samples·outputs) x P
    /// row-major with each sample's `outputs` rows together, and how to weigh the outputs.
    case outputJacobians([Element], samples: Int, outputs: Int, measure: OutputMeasure<Element>)
    /// K-FAC: each layer's statistics, in parameter order.
    case layers([LayerStatistics<Element>], samples: Int)
    /// A factor the caller built on the device (empirical or exact Fisher).
    case factor(CurvatureFactor<Element>)
}
