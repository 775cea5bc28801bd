import Foundation
import NaturalGradient
import Testing
import NaturalGradientTestSupport

/// The device factors `B(z_i) J_i` of every family and measure, through three
/// representations, against `(1/N) Σ J_iᵀ M(z_i) J_i` built on the host in float64.
@Suite struct SimilarityFactorTests {
    static let (samples, dimension) = (5, 13)

    /// Valid outputs for sample s: z scaled by (1 + s/10), which keeps scales positive and
    /// covariances definite.
    static func outputs(_ z: [Double]) -> [Double] {
        (0..<samples).flatMap { s in z.map { $0 * (1 + Double(s) / 10) } }
    }

    static func hostCurvature(
        family: PredictiveFamily, measure: SimilarityMeasure, z: [Double], jacobians: [Double]
    ) throws -> [Double] {
        let (o, p) = (family.outputCount, dimension)
        var g = [Double](repeating: 0, count: p * p)
        for s in 0..<samples {
            let m = try measure.metric(for: family, at: Array(z[(s * o)..<((s + 1) * o)]))
            let j = Array(jacobians[(s * o * p)..<((s + 1) * o * p)])
            for a in 0..<p {
                for b in 0..<p {
                    var sum = 0.0
                    for c in 0..<o { for d in 0..<o { sum += j[c * p + a] * m[c * o + d] * j[d * p + b] } }
                    g[a * p + b] += sum / Double(samples)
                }
            }
        }
        return g
    }

    func check<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let p = Self.dimension
        let blocks = [6, p - 6]
        for (index, (family, base, measure)) in SimilarityCases.all.enumerated() {
            let o = family.outputCount
            let z = Self.outputs(base)
            let jacobians: [Double] = randomValues(Self.samples * o * p, seed: UInt64(index + 1))
            let reference = try Self.hostCurvature(family: family, measure: measure, z: z, jacobians: jacobians)
            let factor = try CurvatureFactor<T>.formalMetric(
                outputJacobians: Buffer(context: context, copying: T.narrowed(jacobians)),
                outputs: Buffer(context: context, copying: T.narrowed(z)), samples: Self.samples, dimension: p,
                family: family, measure: measure)
            let label = "\(family), \(measure), \(T.self)"

            let dense = try DenseCurvature(factor: factor).download()
            #expect(relativeError(dense, reference) < tolerance(for: T.self), "dense: \(label)")

            let v: [Double] = randomValues(p, seed: UInt64(100 + index))
            let expected = (0..<p).map { a in (0..<p).reduce(0.0) { $0 + reference[a * p + $1] * v[$1] } }
            let x = try VectorBatch(context: context, vectors: [T.narrowed(v)])
            let implicit = try ImplicitCurvature(factor: factor).apply(x).download()[0]
            #expect(relativeError(implicit, expected) < tolerance(for: T.self), "implicit: \(label)")

            let blockExpected = (0..<p).map { a in
                let range = a < blocks[0] ? 0..<blocks[0] : blocks[0]..<p
                return range.reduce(0.0) { $0 + reference[a * p + $1] * v[$1] }
            }
            let blockDiagonal = try BlockDiagonalCurvature(factor: factor, blockSizes: blocks).apply(x).download()[0]
            #expect(relativeError(blockDiagonal, blockExpected) < tolerance(for: T.self), "block diagonal: \(label)")
        }
    }

    @Test func everyFamilyAndMeasureInDouble() throws {
        try #require(deviceSupports(Double.self))
        try check(Double.self)
    }

    @Test func everyFamilyAndMeasureInFloat() throws { try check(Float.self) }

    /// Logits of ±80 overflow a naive softmax or sigmoid in float32.
    @Test func extremeLogitsStayFinite() throws {
        let context = try TestDevice.context()
        let z: [Float] = [80, -80, 0, 79.5, -80, 80]
        let jacobians: [Float] = randomValues(6 * 4, seed: 3)
        for (family, samples) in [(PredictiveFamily.categorical(classes: 3), 2), (.bernoulli, 6)] {
            let factor = try CurvatureFactor<Float>.formalMetric(
                outputJacobians: Buffer(context: context, copying: jacobians), outputs: Buffer(context: context, copying: z),
                samples: samples, dimension: 4, family: family, measure: .kullbackLeibler)
            #expect(try factor.nonFiniteCount() == 0, "\(family)")
        }
    }

    /// Natural-gradient steps for KL agree, to first order, whether the Gaussian is written
    /// in (μ, σ) or (μ, σ²), once the second step is mapped back (dσ = dv / 2σ).
    @Test func klStepIsInvariantUnderReparametrisation() throws {
        let context = try TestDevice.context()
        let data = [0.3, 1.9, -0.4, 2.2, 0.8]
        let (mu, sigma) = (0.1, 0.7)
        // Gradient of the mean negative log-likelihood in (μ, σ), and by the chain rule in (μ, v).
        let n = Double(data.count)
        let gradMu = data.reduce(0) { $0 - ($1 - mu) } / (n * sigma * sigma)
        let gradSigma = data.reduce(0) { $0 + 1 / sigma - pow($1 - mu, 2) / pow(sigma, 3) } / n
        let identity: [Double] = [1, 0, 0, 1]
        func step(_ parametrization: GaussianParametrization, z: [Double], g: [Double]) throws -> [Double] {
            let factor = try CurvatureFactor<Double>.formalMetric(
                outputJacobians: Buffer(context: context, copying: identity), outputs: Buffer(context: context, copying: z),
                samples: 1, dimension: 2, family: .gaussian(dimension: 1, parametrization: parametrization),
                measure: .kullbackLeibler)
            let solution = try NaturalGradientSolver.solve(
                DenseCurvature(factor: factor), VectorBatch(context: context, vectors: [g]), damping: 0)
            return try solution.x.download()[0]
        }
        try #require(deviceSupports(Double.self))
        let standard = try step(.meanStandardDeviation, z: [mu, sigma], g: [gradMu, gradSigma])
        let variance = try step(.meanVariance, z: [mu, sigma * sigma], g: [gradMu, gradSigma / (2 * sigma)])
        let mappedBack = [variance[0], variance[1] / (2 * sigma)]
        #expect(maxRelativeError(mappedBack, standard) < 1e-12)
        // And the step moves μ to the sample mean, as the Fisher step on a Gaussian does.
        #expect(abs(mu - standard[0] - data.reduce(0, +) / n) < 1e-12)
    }

    @Test func badBuffersAndOutputsNameTheArgument() throws {
        let context = try TestDevice.context()
        let jacobians = try Buffer(context: context, copying: [Float](repeating: 1, count: 2 * 2 * 3))
        let family = PredictiveFamily.gaussian(dimension: 1, parametrization: .meanStandardDeviation)
        func attempt(
            _ outputs: [Float], samples: Int = 2, measure: SimilarityMeasure = .kullbackLeibler,
            family: PredictiveFamily = family
        ) throws {
            _ = try CurvatureFactor<Float>.formalMetric(
                outputJacobians: jacobians, outputs: Buffer(context: context, copying: outputs), samples: samples,
                dimension: 3, family: family, measure: measure)
        }
        func expectInvalid(_ name: String, _ body: () throws -> Void) {
            #expect {
                try body()
            } throws: { error in
                guard case let .invalidArgument(argument, _) = error as? NaturalGradientError else { return false }
                return argument == name
            }
        }
        expectInvalid("outputs") { try attempt([0, 1, 0]) }
        expectInvalid("outputJacobians") { try attempt([0, 1, 0, 1, 0, 1], samples: 3) }
        expectInvalid("outputs (sample 1)") { try attempt([0, 1, 0, -1]) }
        expectInvalid("measure") { try attempt([0, 0, 0, 0], measure: .wasserstein2, family: .categorical(classes: 2)) }
        #expect(throws: Never.self) { try attempt([0, 1, 0, 2]) }
    }

    /// Each built-in `OutputMetric` is its family × measure point: the factor from the
    /// probabilities (or σ) equals the formal metric of `metric.family` × `metric.measure` at
    /// the logits (or at (μ, σ), the Jacobian's σ rows zero), up to the softmax's rounding.
    @Test func builtInMetricsAreTheirFamilyAndMeasure() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (n, p, classes) = (Self.samples, Self.dimension, 4)
        func curvature(_ factor: CurvatureFactor<Double>) throws -> [Double] { try DenseCurvature(factor: factor).download() }

        let logits: [Double] = randomValues(n * classes, seed: 41).map { 3 * $0 }
        var probabilities: [Double] = []
        for s in 0..<n {
            let e = logits[(s * classes)..<((s + 1) * classes)].map { exp($0) }
            probabilities += e.map { $0 / e.reduce(0, +) }
        }
        let jacobians: [Double] = randomValues(n * classes * p, seed: 42)
        let softmax = OutputMetric<Double>.softmaxCrossEntropy(
            probabilities: try Buffer(context: context, copying: probabilities))
        #expect(softmax.family(outputs: classes) == .categorical(classes: classes))
        let fromProbabilities = try curvature(
            .exactFisher(
                outputJacobians: Buffer(context: context, copying: jacobians), samples: n, outputs: classes, dimension: p,
                metric: softmax))
        let fromLogits = try curvature(
            .formalMetric(
                outputJacobians: Buffer(context: context, copying: jacobians), outputs: Buffer(context: context, copying: logits),
                samples: n, dimension: p, family: softmax.family(outputs: classes), measure: softmax.measure))
        #expect(relativeError(fromProbabilities, fromLogits) < 1e-12)

        let single = Array(jacobians[0..<(n * p)])
        let bernoulliLogits = Array(logits[0..<n])
        let bernoulli = OutputMetric<Double>.bernoulli(
            probabilities: try Buffer(context: context, copying: bernoulliLogits.map { 1 / (1 + exp(-$0)) }))
        let bernoulliFromProbabilities = try curvature(
            .exactFisher(
                outputJacobians: Buffer(context: context, copying: single), samples: n, outputs: 1, dimension: p,
                metric: bernoulli))
        let bernoulliFromLogits = try curvature(
            .formalMetric(
                outputJacobians: Buffer(context: context, copying: single),
                outputs: Buffer(context: context, copying: bernoulliLogits), samples: n, dimension: p,
                family: bernoulli.family(outputs: 1), measure: bernoulli.measure))
        #expect(relativeError(bernoulliFromProbabilities, bernoulliFromLogits) < 1e-12)

        // A Gaussian mean with σ = 0.7: the (μ, σ) family's metric with the σ rows of J zero.
        let (d, sigma) = (2, 0.7)
        let meanJacobians: [Double] = randomValues(n * d * p, seed: 43)
        var padded: [Double] = []
        for s in 0..<n {
            padded += meanJacobians[(s * d * p)..<((s + 1) * d * p)]
            padded += [Double](repeating: 0, count: d * p)
        }
        let means: [Double] = randomValues(n * d, seed: 44)
        var z: [Double] = []
        for s in 0..<n { z += means[(s * d)..<((s + 1) * d)] + [Double](repeating: sigma, count: d) }
        let gaussian = OutputMetric<Double>.gaussianMean(sigma: sigma)
        let fixed = try curvature(
            .exactFisher(
                outputJacobians: Buffer(context: context, copying: meanJacobians), samples: n, outputs: d, dimension: p,
                metric: gaussian))
        let formal = try curvature(
            .formalMetric(
                outputJacobians: Buffer(context: context, copying: padded), outputs: Buffer(context: context, copying: z),
                samples: n, dimension: p, family: gaussian.family(outputs: d), measure: gaussian.measure))
        #expect(relativeError(fixed, formal) < 1e-12)
        // The factor's rows are not all zero: the comparison above compared something.
        #expect(fixed.contains { abs($0) > 1e-3 })
    }
}
