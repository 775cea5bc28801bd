import Foundation
import NaturalGradient
import Testing
import NaturalGradientTestSupport

/// The Swift examples of `Docs/SimilarityMeasures.md`, as written there (keep them in step).
@Suite struct DocumentationExampleTests {
    @Test func formalMetricExample() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let factor = try CurvatureFactor<Double>.formalMetric(
            outputJacobians: Buffer(context: context, copying: [1, 0, 0, 1]),
            outputs: Buffer(context: context, copying: [0.7, 1.69]),
            samples: 1, dimension: 2,
            family: .gaussian(dimension: 1, parametrization: .meanVariance),
            measure: .wasserstein2)
        let g = try VectorBatch(context: context, vectors: [[0.3, -0.2]])
        let step = try NaturalGradientSolver.solve(DenseCurvature(factor: factor), g, damping: 1e-4)
        // W2² in (μ, σ²) is diag(2, 1/(2σ²)).
        let x = try step.x.download()[0]
        #expect(abs(x[0] - 0.3 / (2 + 1e-4)) < 1e-12)
        #expect(abs(x[1] - -0.2 / (1 / (2 * 1.69) + 1e-4)) < 1e-9)
    }

    @Test func customMeasureExample() throws {
        @Sendable func softmax(_ z: [Double]) -> [Double] {
            let e = z.map { exp($0 - (z.max() ?? 0)) }
            return e.map { $0 / e.reduce(0, +) }
        }
        let hellinger = try CustomSimilarity(name: "Hellinger on softmax") { z, w in
            let (p, q) = (softmax(z), softmax(w))
            return zip(p, q).reduce(0) { $0 + pow($1.0.squareRoot() - $1.1.squareRoot(), 2) }
        }
        let metric = try SimilarityMeasure.custom(hellinger).metric(for: .categorical(classes: 3), at: [0.1, 1, -2])
        let (m, error) = try hellinger.metricEstimate(at: [0.1, 1, -2])
        let builtIn = try SimilarityMeasure.fDivergence(.squaredHellinger).metric(
            for: .categorical(classes: 3), at: [0.1, 1, -2])
        #expect(metric == m)
        #expect(zip(m, builtIn).allSatisfy { abs($0 - $1) < 1e-7 } && error < 1e-4)
    }
}
