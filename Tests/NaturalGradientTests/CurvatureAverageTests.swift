import Foundation
import NaturalGradientTestSupport
import Testing

@testable import NaturalGradient

/// `curvatureBiasCorrection`: the moving average normalised by its total weight, checked
/// against the average computed by hand in float64 from the batch estimates.
@Suite("curvature moving average")
struct CurvatureAverageTests {
    /// `Σ_k w_k F_k` with the weights of the k-th of `count` refreshes: `β^{K−k}(1 − β)`
    /// over `1 − β^K` with bias correction, else the plain average's (the first estimate
    /// weighs `β^{K−1}`).
    static func weights(count: Int, beta: Double, corrected: Bool) -> [Double] {
        (1...count).map { k in
            let plain = k == 1 ? pow(beta, Double(count - 1)) : pow(beta, Double(count - k)) * (1 - beta)
            return corrected ? pow(beta, Double(count - k)) * (1 - beta) / (1 - pow(beta, Double(count))) : plain
        }
    }

    /// The empirical Fisher `UᵀU / n` in float64.
    static func fisher(_ u: [Float], rows n: Int, dimension p: Int) -> [Double] {
        var f = [Double](repeating: 0, count: p * p)
        for r in 0..<n {
            for i in 0..<p {
                for j in 0..<p { f[i * p + j] += Double(u[r * p + i]) * Double(u[r * p + j]) / Double(n) }
            }
        }
        return f
    }

    /// A dense empirical Fisher refreshed every `period` steps with batches of 1, 3 and 5
    /// samples at P = 7: after three refreshes its matrix is the hand-computed average.
    @Test(arguments: [(true, 1), (true, 2), (false, 1)])
    func denseAverageMatchesTheHandComputedOne(corrected: Bool, period: Int) throws {
        let context = try TestDevice.context()
        let (p, beta) = (7, 0.8)
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        (options.representation, options.method) = (.dense, .cholesky)
        options.curvatureDecay = beta
        options.curvatureBiasCorrection = corrected
        options.curvatureRefreshPeriod = period
        options.inverseRefreshPeriod = period
        let optimizer = try NaturalGradientOptimizer<Float>(context: context, dimension: p, options: options)
        var parameters = [Float](repeating: 0, count: p)
        var estimates: [[Double]] = []
        for step in 0..<(2 * period + 1) {
            var input: CurvatureInput<Float>?
            if optimizer.needsCurvature {
                let rows = [1, 3, 5][estimates.count]
                let u: [Float] = randomValues(rows * p, seed: UInt64(70 + step))
                estimates.append(Self.fisher(u, rows: rows, dimension: p))
                input = .perSampleGradients(u, samples: rows)
            }
            try optimizer.step(parameters: &parameters, gradient: randomValues(p, seed: UInt64(90 + step)), curvature: input)
        }
        try #require(estimates.count == 3)
        let w = Self.weights(count: 3, beta: beta, corrected: corrected)
        let expected = (0..<(p * p)).map { i in (0..<3).reduce(0.0) { $0 + w[$1] * estimates[$1][i] } }
        guard case let .dense(matrix)? = try optimizer.state().curvature else {
            Issue.record("the state holds no dense curvature")
            return
        }
        #expect(relativeError(matrix, expected) < 1e-5, "\(matrix.prefix(4)) vs \(expected.prefix(4))")
        // The corrected weights sum to 1 (a weighted mean); the plain ones do too, but put
        // β^{K−1} on the first estimate.
        #expect(abs(w.reduce(0, +) - 1) < 1e-12)
    }

    /// K-FAC's factors A and G average the same way (one 3 x 5 layer, batches of 1, 7 and 4).
    @Test func kfacFactorsAreBiasCorrected() throws {
        let context = try TestDevice.context()
        let (outputs, inputs, beta) = (3, 5, 0.9)
        var options = NaturalGradientOptimizerOptions(curvature: .kfac(layers: [LayerShape(outputs: outputs, inputs: inputs)]))
        options.curvatureDecay = beta
        options.curvatureBiasCorrection = true
        let optimizer = try NaturalGradientOptimizer<Float>(context: context, dimension: outputs * inputs, options: options)
        var parameters = [Float](repeating: 0, count: outputs * inputs)
        var aEstimates: [[Double]] = []
        var gEstimates: [[Double]] = []
        for (step, n) in [1, 7, 4].enumerated() {
            let a: [Float] = randomValues(n * inputs, seed: UInt64(10 + step))
            let g: [Float] = randomValues(n * outputs, seed: UInt64(20 + step))
            aEstimates.append(Self.fisher(a, rows: n, dimension: inputs))
            gEstimates.append(Self.fisher(g, rows: n, dimension: outputs))
            try optimizer.step(
                parameters: &parameters, gradient: randomValues(outputs * inputs, seed: UInt64(30 + step)),
                curvature: .layers([LayerStatistics(activations: a, outputGradients: g)], samples: n))
        }
        let kronecker = try #require(optimizer.curvature as? KroneckerCurvature<Float>)
        let (a, g) = try kronecker.layerFactors(0)
        // Each factor is its batch mean (aᵀa / n, gᵀg / n), averaged with the corrected weights.
        let w = Self.weights(count: 3, beta: beta, corrected: true)
        let aExpected = (0..<(inputs * inputs)).map { i in (0..<3).reduce(0.0) { $0 + w[$1] * aEstimates[$1][i] } }
        let gExpected = (0..<(outputs * outputs)).map { i in (0..<3).reduce(0.0) { $0 + w[$1] * gEstimates[$1][i] } }
        #expect(relativeError(a, aExpected) < 1e-5, "A \(a.prefix(3)) vs \(aExpected.prefix(3))")
        #expect(relativeError(g, gExpected) < 1e-5, "G \(g.prefix(3)) vs \(gExpected.prefix(3))")
        // Without the correction the first (one-sample) estimate would keep weight β² = 0.81.
        let plain = Self.weights(count: 3, beta: beta, corrected: false)
        let aPlain = (0..<(inputs * inputs)).map { i in (0..<3).reduce(0.0) { $0 + plain[$1] * aEstimates[$1][i] } }
        #expect(relativeError(aPlain, aExpected) > 1e-2)
    }
}
