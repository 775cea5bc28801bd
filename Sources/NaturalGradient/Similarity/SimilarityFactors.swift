import OpenCLHost

/// The built-in output metrics of an exact Fisher / GGN factor (DESIGN.md section 2), each
/// one point of the family × measure space (``PredictiveFamily`` × ``SimilarityMeasure``)
/// given where the caller holds the distribution's parameters rather than its logits:
/// softmax cross-entropy is `.categorical` × `.kullbackLeibler` at p, the sigmoid
/// `.bernoulli` × `.kullbackLeibler` at p, a Gaussian mean a `.gaussian` × `.kullbackLeibler`
/// with σ held fixed. ``family(outputs:)`` and ``measure`` name that point; the factor is
/// built by the same kernels as ``CurvatureFactor/formalMetric(outputJacobians:outputs:samples:dimension:family:measure:)``.
public enum OutputMetric<Element: DeviceScalar> {
    /// Softmax cross-entropy on logits: `M = diag(p) − ppᵀ`, `B = diag(√p) − √p pᵀ`.
    /// `probabilities` holds p, samples x outputs, each row summing to 1.
    case softmaxCrossEntropy(probabilities: Buffer<Element>)
    /// Bernoulli / sigmoid on the logit: `M = p(1 − p)`, `B = √(p(1 − p))`, one output per
    /// sample; `probabilities` holds the N values of p. Given p, `1 − p` is exact but p
    /// itself rounds to 1 for large logits; where the logits are at hand, the similarity
    /// measure path (`CurvatureFactor.formalMetric`) computes `σ(z)σ(−z)` from them.
    case bernoulli(probabilities: Buffer<Element>)
    /// Gaussian mean with fixed standard deviation σ: `M = I/σ²`, `B = I/σ`.
    case gaussianMean(sigma: Element)

    /// The predictive family for `outputs` values per sample (the Jacobian's rows).
    public func family(outputs: Int) -> PredictiveFamily {
        switch self {
        case .softmaxCrossEntropy: .categorical(classes: outputs)
        case .bernoulli: .bernoulli
        case .gaussianMean: .gaussian(dimension: outputs, parametrization: .meanStandardDeviation)
        }
    }

    /// The similarity measure whose Hessian the metric is: Kullback-Leibler for all three.
    public var measure: SimilarityMeasure { .kullbackLeibler }

    /// Where the metric is evaluated.
    var point: SimilarityFactors<Element>.Point {
        switch self {
        case let .softmaxCrossEntropy(probabilities), let .bernoulli(probabilities): .probabilities(probabilities)
        case let .gaussianMean(sigma): .fixedStandardDeviation(sigma)
        }
    }
}

/// Launch plans for `SimilarityFactors.cl`: builds the rows `B_i J_i` of a factor.
final class SimilarityFactors<Element: DeviceScalar> {
    /// Where a family's metric is evaluated: at the model's outputs z in the family's
    /// layout, or (the built-in ``OutputMetric``s) at a categorical or Bernoulli
    /// distribution's probabilities, or for a Gaussian whose σ is fixed (the outputs, and the
    /// Jacobian's rows, are then its d means only).
    enum Point {
        case outputs(Buffer<Element>)
        case probabilities(Buffer<Element>)
        case fixedStandardDeviation(Element)
    }

    let context: Context
    private let program: Program

    init(context: Context) throws {
        self.context = context
        program = try context.build(KernelConfiguration(.similarityFactors, element: Element.self, device: context.device))
            .program
    }

    /// A new (samples·outputs) x dimension buffer holding the rows of `B_i J_i` for a
    /// built-in metric: its family and measure at its point.
    func factor(
        jacobians: Buffer<Element>, samples: Int, outputs: Int, dimension: Int, metric: OutputMetric<Element>
    )
        throws -> Buffer<Element>
    {
        try factor(
            jacobians: jacobians, samples: samples, outputs: outputs, dimension: dimension,
            family: metric.family(outputs: outputs), measure: metric.measure, at: metric.point)
    }

    /// The rows of `B J` for `family` × `measure` from a distribution's parameters: p for
    /// categorical (samples x outputs) and Bernoulli (one per sample) families, checked to be
    /// probabilities on the host, or a fixed σ for a Gaussian's means.
    private func factor(
        jacobians: Buffer<Element>, samples: Int, outputs: Int, dimension: Int, family: PredictiveFamily,
        measure: SimilarityMeasure, at point: Point
    ) throws -> Buffer<Element> {
        if case let .outputs(z) = point {
            return try factor(
                jacobians: jacobians, outputs: z, samples: samples, dimension: dimension, family: family, measure: measure)
        }
        try require(samples > 0, "samples", "must be positive (an empty batch), got \(samples)")
        try require(outputs > 0, "outputs", "must be positive, got \(outputs)")
        try require(dimension > 0, "dimension", "must be positive, got \(dimension)")
        guard let multiple = measure.fisherMultiple else {
            throw NaturalGradientError.invalidArgument(
                name: "measure", reason: "\(measure) has no metric from a distribution's parameters; pass the outputs z")
        }
        let rows = samples * outputs
        try require(
            jacobians.count >= rows * dimension, "outputJacobians",
            "holds \(jacobians.count) values, fewer than \(samples) x \(outputs) x \(dimension)")
        let u = try Buffer<Element>(context: context, count: rows * dimension)
        let (n, o, p) = (try uint32(samples, "samples"), try uint32(outputs, "outputs"), try uint32(dimension, "dimension"))
        // √f''(1): exactly 1 for Kullback-Leibler, so the built-ins' bits are the plain B's.
        let scale = Element(float64: multiple.squareRoot())
        switch (family, point) {
        case let (.categorical, .probabilities(probabilities)):
            try require(
                probabilities.count >= rows, "probabilities",
                "holds \(probabilities.count) values, fewer than \(samples) x \(outputs)")
            let values = try probabilities.download(0..<rows)
            for sample in 0..<samples {
                let row = values[(sample * outputs)..<((sample + 1) * outputs)]
                let sum = row.reduce(0.0) { $0 + $1.float64 }
                guard row.allSatisfy({ $0 >= 0 && $0 <= 1 }), abs(sum - 1) <= 1e-3 else {
                    throw NaturalGradientError.invalidArgument(
                        name: "probabilities", reason: "row \(sample) is not a distribution (sum \(sum))")
                }
            }
            let kernel = try program.makeKernel(named: "softmax_factor")
            try kernel.setArguments(n, o, p, scale, probabilities, jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: samples)
        case let (.bernoulli, .probabilities(probabilities)):
            try require(outputs == 1, "outputs", "a Bernoulli output is one logit per sample, got \(outputs)")
            try require(
                probabilities.count >= samples, "probabilities",
                "holds \(probabilities.count) values, fewer than \(samples) samples")
            let values = try probabilities.download(0..<samples)
            if let index = values.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
                throw NaturalGradientError.invalidArgument(
                    name: "probabilities", reason: "value \(index) is \(values[index]), outside [0, 1]")
            }
            let kernel = try program.makeKernel(named: "bernoulli_factor")
            try kernel.setArguments(n, p, scale, probabilities, jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: samples)
        case let (.gaussian, .fixedStandardDeviation(sigma)):
            try require(sigma.isFinite && sigma > 0, "sigma", "must be finite and positive, got \(sigma)")
            let kernel = try program.makeKernel(named: "gaussian_mean_factor")
            try kernel.setArguments(try uint32(rows, "rows"), p, scale / sigma, jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: rows)
        default:
            throw NaturalGradientError.invalidArgument(
                name: "family", reason: "\(family) has no metric at a distribution's parameters; pass the outputs z")
        }
        return u
    }

    /// A new (samples·O) x dimension buffer holding the rows of `B(z_i) J_i` for a
    /// similarity measure's output metric, O = `family.outputCount`.
    ///
    /// The outputs are read back once and checked on the host in float64 (lengths, finite
    /// values, positive scales, definite covariances); built-in measures then evaluate B on
    /// the device, while full-covariance Gaussians and custom measures compute each
    /// sample's B on the host (small outputs) and upload it.
    func factor(
        jacobians: Buffer<Element>, outputs: Buffer<Element>, samples: Int, dimension: Int,
        family: PredictiveFamily, measure: SimilarityMeasure
    ) throws -> Buffer<Element> {
        try measure.validate(for: family)
        try require(samples > 0, "samples", "must be positive (an empty batch), got \(samples)")
        try require(dimension > 0, "dimension", "must be positive, got \(dimension)")
        let o = family.outputCount
        let rows = samples * o
        try require(
            jacobians.count >= rows * dimension, "outputJacobians",
            "holds \(jacobians.count) values, fewer than \(samples) x \(o) x \(dimension)")
        try require(outputs.count >= rows, "outputs", "holds \(outputs.count) values, fewer than \(samples) x \(o)")
        let z = try outputs.downloadFloat64(0..<rows)
        for sample in 0..<samples {
            try family.validate(output: Array(z[(sample * o)..<((sample + 1) * o)]), name: "outputs (sample \(sample))")
        }
        let u = try Buffer<Element>(context: context, count: rows * dimension)
        let (n, p) = (try uint32(samples, "samples"), try uint32(dimension, "dimension"))
        let scale = Element(float64: (measure.fisherMultiple ?? 1).squareRoot())
        switch (family, measure) {
        case (_, .squaredEuclidean):
            let kernel = try program.makeKernel(named: "gaussian_mean_factor")
            try kernel.setArguments(try uint32(rows, "rows"), p, Element(1), jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: rows)
        case (.categorical, .kullbackLeibler), (.categorical, .fDivergence):
            let probabilities = try Buffer<Element>(context: context, count: rows)
            let softmax = try program.makeKernel(named: "softmax_probabilities")
            try softmax.setArguments(n, try uint32(o, "classes"), outputs, probabilities)
            try context.enqueue1D(softmax, items: samples)
            let kernel = try program.makeKernel(named: "softmax_factor")
            try kernel.setArguments(n, try uint32(o, "classes"), p, scale, probabilities, jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: samples)
        case (.bernoulli, .kullbackLeibler), (.bernoulli, .fDivergence):
            // √(σ(z)σ(−z)) straight from the logit: a probability rounded to 1 would lose
            // 1 − p (float32 from a logit of about 17).
            let roots = try Buffer<Element>(context: context, count: samples)
            let rootKernel = try program.makeKernel(named: "sigmoid_metric_roots")
            try rootKernel.setArguments(n, scale, outputs, roots)
            try context.enqueue1D(rootKernel, items: samples)
            let kernel = try program.makeKernel(named: "diagonal_factor")
            try kernel.setArguments(n, p, roots, jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: samples)
        case let (.gaussian(d, parametrization), .kullbackLeibler),
            let (.gaussian(d, parametrization), .fDivergence),
            let (.gaussian(d, parametrization), .wasserstein2):
            let roots = try Buffer<Element>(context: context, count: rows)
            let measureCode: UInt32 = measure.fisherMultiple == nil ? 1 : 0
            let rootKernel = try program.makeKernel(named: "gaussian_metric_roots")
            try rootKernel.setArguments(
                n, try uint32(d, "dimension"), parametrization.kernelCode, measureCode, scale, outputs, roots)
            try context.enqueue2D(rootKernel, columns: d, rows: samples)
            let kernel = try program.makeKernel(named: "diagonal_factor")
            try kernel.setArguments(try uint32(rows, "rows"), p, roots, jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: rows)
        default:
            // Full-covariance Gaussians and custom measures: B_i on the host.
            var roots = [Double]()
            roots.reserveCapacity(samples * o * o)
            for sample in 0..<samples {
                roots += try measure.squareRoot(for: family, at: Array(z[(sample * o)..<((sample + 1) * o)]))
            }
            let rootBuffer = try Buffer<Element>(context: context, count: roots.count)
            try rootBuffer.upload(float64: roots)
            let kernel = try program.makeKernel(named: "dense_factor")
            try kernel.setArguments(n, try uint32(o, "outputs"), p, rootBuffer, jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: samples)
        }
        return u
    }
}
