/// The training problem's curvature inputs at the initial parameters, for solver studies
/// on real spectra (issue 17: PCG against CG on a tanh MLP's GGN and empirical Fisher).
///
/// The first `samples` training rows of `data` through the `ngrad train` network at its
/// initial parameters from `seed`: the output Jacobians and logits the exact Fisher (GGN)
/// factor is built from (as `ngrad train`'s fisher-cg method builds it), the per-sample
/// gradients that are the empirical Fisher's factor, and the mean gradient, the right-hand
/// side of the natural-gradient system.
public struct TrainingCurvatureSample: Sendable {
    /// P.
    public let dimension: Int
    /// N, the samples the curvature is taken over.
    public let samples: Int
    /// C, the classes (model outputs).
    public let classes: Int
    /// `∂z/∂θ` per sample: (N·C) x P row-major, sample-major.
    public let outputJacobians: [Float]
    /// The logits z (N x C).
    public let logits: [Float]
    /// The per-sample loss gradients at the labels (N x P): the empirical Fisher's rows.
    public let perSampleGradients: [Float]
    /// The mean loss gradient over the N samples (P values).
    public let gradient: [Float]

    /// The sample of `samples` rows (1 through the training split's size) of `data`, for
    /// the network of layer widths `sizes` (`ngrad train`'s 64-128-64-10 by default).
    public init(data: DigitsData, samples: Int, seed: UInt64, sizes: [Int] = [64, 128, 64, 10]) {
        let model = MLP(sizes: sizes)
        let n = max(1, min(samples, data.trainCount))
        let inputs = Array(data.trainInputs.prefix(n * model.sizes[0]))
        let labels = Array(data.trainLabels.prefix(n))
        let parameters = model.initialParameters(seed: seed)
        let pass = model.forward(parameters, inputs: inputs, count: n)
        let dz = model.backward(parameters, pass, logitGradients: model.outputGradients(pass, labels: labels))
        dimension = model.parameterCount
        self.samples = n
        classes = model.classes
        outputJacobians = model.outputJacobians(parameters, pass, count: n)
        logits = pass.logits
        perSampleGradients = model.perSampleGradients(pass, outputGradients: dz)
        gradient = model.parameterGradient(pass, outputGradients: dz, scale: 1 / Float(n))
    }
}
