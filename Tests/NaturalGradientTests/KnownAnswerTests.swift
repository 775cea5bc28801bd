import Foundation
import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

/// Curvatures with closed forms (DESIGN.md section 2), in float64 with tight tolerances.
@Suite("Known answers")
struct KnownAnswerTests {
    /// The Fisher of N(μ, σ²) in (μ, σ) is diag(1/σ², 2/σ²). It is E[s sᵀ] for the score
    /// s = ((x − μ)/σ², ((x − μ)² − σ²)/σ³), a degree-4 polynomial in x, so 3-point
    /// Gauss-Hermite quadrature (nodes 0, ±√3, weights 2/3, 1/6, 1/6) is exact: a weighted
    /// factor of three rows.
    @Test(arguments: [0.7, 1.3, 2.5]) func univariateGaussianInMeanAndScale(sigma: Double) throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let mu = -0.4
        let nodes = [0, 3.0.squareRoot(), -(3.0.squareRoot())]
        let scores = nodes.flatMap { node -> [Double] in
            let x = mu + sigma * node
            return [(x - mu) / (sigma * sigma), ((x - mu) * (x - mu) - sigma * sigma) / (sigma * sigma * sigma)]
        }
        let factor = try CurvatureFactor(
            context: context, matrix: scores, rows: 3, dimension: 2, samples: 1, weights: [2.0 / 3, 1.0 / 6, 1.0 / 6])
        let fisher = try DenseCurvature(factor: factor).download()
        let expected = [1 / (sigma * sigma), 0, 0, 2 / (sigma * sigma)]
        #expect(relativeError(fisher, expected) < 1e-12)
    }

    /// With J = I, the exact-Fisher factor of a softmax output is B itself, so F = BᵀB must
    /// equal diag(p) − ppᵀ.
    @Test(arguments: [2, 3, 10]) func softmaxMetric(outputs: Int) throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let logits: [Double] = randomValues(outputs, seed: UInt64(outputs))
        let exponentials = logits.map { exp($0 * 3) }
        let p = exponentials.map { $0 / exponentials.reduce(0, +) }
        let identity = (0..<(outputs * outputs)).map { $0 / outputs == $0 % outputs ? 1.0 : 0.0 }
        let factor = try CurvatureFactor.exactFisher(
            outputJacobians: Buffer(context: context, copying: identity), samples: 1, outputs: outputs,
            dimension: outputs, metric: .softmaxCrossEntropy(probabilities: Buffer(context: context, copying: p)))
        let fisher = try DenseCurvature(factor: factor).download()
        let expected = (0..<(outputs * outputs)).map { index -> Double in
            let (i, j) = (index / outputs, index % outputs)
            return (i == j ? p[i] : 0) - p[i] * p[j]
        }
        #expect(relativeError(fisher, expected) < 1e-12)
    }

    /// Random Jacobians, several samples: F = (1/N) Σ Jᵀ (diag p − ppᵀ) J for softmax,
    /// (1/N) Σ p(1−p) J Jᵀ for a sigmoid, and (1/N) Σ JᵀJ/σ² for a Gaussian mean.
    @Test func exactFisherOfEachOutputMetric() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (samples, outputs, dimension) = (4, 3, 7)
        let jacobians: [Double] = randomValues(samples * outputs * dimension, seed: 5)
        let raw: [Double] = randomValues(samples * outputs, seed: 6).map { $0 + 1.5 }
        var p: [Double] = []
        for s in 0..<samples {
            let row = raw[(s * outputs)..<((s + 1) * outputs)]
            let total = row.reduce(0, +)
            p += row.map { $0 / total }
        }
        func fisher(_ factor: CurvatureFactor<Double>) throws -> [Double] { try DenseCurvature(factor: factor).download() }
        func pullback(_ metric: (Int) -> [Double], outputs: Int, jacobians: [Double]) -> [Double] {
            var f = [Double](repeating: 0, count: dimension * dimension)
            for s in 0..<samples {
                let m = metric(s)
                let j = Array(jacobians[(s * outputs * dimension)..<((s + 1) * outputs * dimension)])
                for a in 0..<dimension {
                    for b in 0..<dimension {
                        var sum = 0.0
                        for c in 0..<outputs {
                            for d in 0..<outputs { sum += j[c * dimension + a] * m[c * outputs + d] * j[d * dimension + b] }
                        }
                        f[a * dimension + b] += sum / Double(samples)
                    }
                }
            }
            return f
        }
        let jacobianBuffer = try Buffer(context: context, copying: jacobians)

        let softmax = try fisher(
            .exactFisher(
                outputJacobians: jacobianBuffer, samples: samples, outputs: outputs, dimension: dimension,
                metric: .softmaxCrossEntropy(probabilities: Buffer(context: context, copying: p))))
        func softmaxMetric(_ s: Int) -> [Double] {
            var m = [Double](repeating: 0, count: outputs * outputs)
            for c in 0..<outputs {
                for d in 0..<outputs {
                    let pc: Double = p[s * outputs + c]
                    let pd: Double = p[s * outputs + d]
                    m[c * outputs + d] = (c == d ? pc : 0) - pc * pd
                }
            }
            return m
        }
        let softmaxReference = pullback(softmaxMetric, outputs: outputs, jacobians: jacobians)
        #expect(relativeError(softmax, softmaxReference) < 1e-12)

        let single = Array(jacobians[0..<(samples * dimension)])
        let probabilities = Array(p[0..<samples])
        let bernoulli = try fisher(
            .exactFisher(
                outputJacobians: Buffer(context: context, copying: single), samples: samples, outputs: 1,
                dimension: dimension, metric: .bernoulli(probabilities: Buffer(context: context, copying: probabilities))))
        let bernoulliReference = pullback(
            { s -> [Double] in [probabilities[s] * (1 - probabilities[s])] }, outputs: 1, jacobians: single)
        #expect(relativeError(bernoulli, bernoulliReference) < 1e-12)

        let sigma = 0.6
        let gaussian = try fisher(
            .exactFisher(
                outputJacobians: jacobianBuffer, samples: samples, outputs: outputs, dimension: dimension,
                metric: .gaussianMean(sigma: sigma)))
        let gaussianReference = pullback(
            { _ -> [Double] in (0..<(outputs * outputs)).map { $0 / outputs == $0 % outputs ? 1 / (sigma * sigma) : 0 } },
            outputs: outputs, jacobians: jacobians)
        #expect(relativeError(gaussian, gaussianReference) < 1e-12)
    }

    /// The empirical Fisher mean is over samples N, not rows M: two draws per sample with
    /// the Monte-Carlo factor weigh each draw 1/2.
    @Test func meanIsOverSamplesNotRows() throws {
        let context = try TestDevice.context()
        let gradients: [Float] = [1, 0, 0, 2, 3, 0, 0, 4] // 2 samples x 2 draws, P = 2
        let buffer = try Buffer(context: context, copying: gradients)
        let fisher = try DenseCurvature(
            factor: .monteCarloFisher(sampledGradients: buffer, samples: 2, draws: 2, dimension: 2)
        ).download()
        // (1/2) Σ_i (1/2) Σ_s u uᵀ = (1/4)(diag(1, 4) + diag(9, 16)).
        #expect(fisher == [2.5, 0, 0, 5])
        let exact = try DenseCurvature(
            factor: .empiricalFisher(perSampleGradients: buffer, samples: 4, dimension: 2)
        ).download()
        #expect(exact == [2.5, 0, 0, 5])
    }
}
