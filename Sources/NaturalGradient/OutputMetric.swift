import OpenCLHost

/// The output-space metric `M = BᵀB` of an exact Fisher / GGN factor, with its analytic
/// square root B (DESIGN.md section 2).
public enum OutputMetric<Element: DeviceScalar> {
    /// Softmax cross-entropy on logits: `M = diag(p) − ppᵀ`, `B = diag(√p) − √p pᵀ`.
    /// `probabilities` holds p, samples x outputs, each row summing to 1.
    case softmaxCrossEntropy(probabilities: Buffer<Element>)
    /// Bernoulli / sigmoid on the logit: `M = p(1 − p)`, `B = √(p(1 − p))`, one output per
    /// sample; `probabilities` holds the N values of p.
    case bernoulli(probabilities: Buffer<Element>)
    /// Gaussian mean with fixed standard deviation σ: `M = I/σ²`, `B = I/σ`.
    case gaussianMean(sigma: Element)
}

/// Launch plans for `OutputMetrics.cl`: builds the rows `B_i J_i` of a factor.
final class OutputMetricFactors<Element: DeviceScalar> {
    let context: Context
    private let program: Program

    init(context: Context) throws {
        self.context = context
        program = try context.build(KernelConfiguration(.outputMetrics, element: Element.self, device: context.device))
            .program
    }

    /// A new (samples·outputs) x dimension buffer holding the rows of `B_i J_i`.
    func factor(jacobians: Buffer<Element>, samples: Int, outputs: Int, dimension: Int, metric: OutputMetric<Element>)
        throws -> Buffer<Element>
    {
        try require(samples > 0, "samples", "must be positive (an empty batch), got \(samples)")
        try require(outputs > 0, "outputs", "must be positive, got \(outputs)")
        try require(dimension > 0, "dimension", "must be positive, got \(dimension)")
        let rows = samples * outputs
        try require(
            jacobians.count >= rows * dimension, "outputJacobians",
            "holds \(jacobians.count) values, fewer than \(samples) x \(outputs) x \(dimension)")
        let u = try Buffer<Element>(context: context, count: rows * dimension)
        let (n, o, p) = (try uint32(samples, "samples"), try uint32(outputs, "outputs"), try uint32(dimension, "dimension"))
        switch metric {
        case let .softmaxCrossEntropy(probabilities):
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
            try kernel.setArguments(n, o, p, probabilities, jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: samples)
        case let .bernoulli(probabilities):
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
            try kernel.setArguments(n, p, probabilities, jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: samples)
        case let .gaussianMean(sigma):
            try require(sigma.isFinite && sigma > 0, "sigma", "must be finite and positive, got \(sigma)")
            let kernel = try program.makeKernel(named: "gaussian_mean_factor")
            try kernel.setArguments(try uint32(rows, "rows"), p, 1 / sigma, jacobians, u)
            try context.enqueue2D(kernel, columns: dimension, rows: rows)
        }
        return u
    }
}
