import Foundation
import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

@Suite("NaturalGradientOptimizer")
struct OptimizerTests {
    /// A convex quadratic `f(θ) = ½ (θ − θ*)ᵀ F (θ − θ*)` with `F = (1/N) UᵀU` (N > P, so F
    /// is positive definite): with the exact curvature and λ → 0 one step lands on θ*.
    @Test(arguments: ["dense-cholesky", "dense-cg", "implicit-cg", "implicit-pcg", "quadratic-model"])
    func quadraticConvergesInOneStep(variant: String) throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (n, p) = (19, 7)
        let u: [Double] = randomValues(n * p, seed: 31)
        let target: [Double] = randomValues(p, seed: 32)
        let start: [Double] = randomValues(p, seed: 33)
        let f = hostFisher(u, rows: n, dimension: p)
        let gradient = multiply(f, zip(start, target).map { $0 - $1 }, p)

        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        options.damping = .fixed(1e-12)
        options.conjugateGradient = ConjugateGradientOptions(tolerance: 1e-12, maxIterations: 50)
        switch variant {
        case "dense-cholesky": (options.representation, options.method) = (.dense, .cholesky)
        case "dense-cg": (options.representation, options.method) = (.dense, .cg)
        case "implicit-cg": (options.representation, options.method) = (.implicit, .cg)
        case "implicit-pcg": (options.representation, options.method) = (.implicit, .pcg)
        default: (options.representation, options.method, options.stepSize) = (.dense, .cholesky, .quadraticModel(maximum: 10))
        }
        let optimizer = try NaturalGradientOptimizer<Double>(context: context, dimension: p, options: options)
        var parameters = start
        let report = try optimizer.step(
            parameters: &parameters, gradient: gradient, curvature: .perSampleGradients(u, samples: n))
        #expect(relativeError(parameters, target) < 1e-8, "\(variant): \(parameters) vs \(target)")
        if variant == "quadratic-model" { #expect(abs(report.stepSize - 1) < 1e-8) }
        // The predicted change of the exact model is the actual change of the quadratic.
        if let predicted = report.predictedChange {
            let initialLoss = 0.5 * dot(zip(start, target).map { $0 - $1 }, gradient)
            #expect(abs(predicted + initialLoss) < 1e-8 * max(1, initialLoss))
        }
    }

    /// A Gaussian fitted by its own parameters z = θ = (μ, σ) (J = I): with the KL measure
    /// one step of rate 1 is Fisher scoring, μ → the sample mean and σ → (σ + S/σ)/2 with
    /// S the mean squared deviation from μ; with squared W2 (metric 2I) it is −g/2.
    @Test func similarityMeasuresPlugIntoTheOptimizer() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let data = [0.3, 1.9, -0.4, 2.2, 0.8]
        let (mu, sigma) = (0.1, 0.7)
        let n = Double(data.count)
        let mean = data.reduce(0, +) / n
        let s = data.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / n
        let gradient = [-(mean - mu) / (sigma * sigma), 1 / sigma - s / (sigma * sigma * sigma)]
        let family = PredictiveFamily.gaussian(dimension: 1, parametrization: .meanStandardDeviation)
        for measure in [SimilarityMeasure.kullbackLeibler, .wasserstein2] {
            var options = NaturalGradientOptimizerOptions(curvature: .exactFisher)
            (options.representation, options.method, options.damping) = (.dense, .cholesky, .fixed(1e-14))
            let optimizer = try NaturalGradientOptimizer<Double>(context: context, dimension: 2, options: options)
            var parameters = [mu, sigma]
            try optimizer.step(
                parameters: &parameters, gradient: gradient,
                curvature: .outputJacobians(
                    [1, 0, 0, 1], samples: 1, outputs: 2,
                    measure: .similarity(family: family, measure: measure, outputs: [mu, sigma])))
            let expected =
                measure.description == SimilarityMeasure.kullbackLeibler.description
                ? [mean, (sigma + s / sigma) / 2] : [mu - gradient[0] / 2, sigma - gradient[1] / 2]
            #expect(relativeError(parameters, expected) < 1e-12, "\(measure)")
        }
        // The family must match the outputs per sample.
        let optimizer = try NaturalGradientOptimizer<Double>(
            context: context, dimension: 2, options: NaturalGradientOptimizerOptions(curvature: .exactFisher))
        var parameters = [mu, sigma]
        #expect(throws: NaturalGradientError.self) {
            try optimizer.step(
                parameters: &parameters, gradient: gradient,
                curvature: .outputJacobians(
                    [1, 0, 0, 1], samples: 1, outputs: 2,
                    measure: .similarity(family: .bernoulli, measure: .kullbackLeibler, outputs: [0])))
        }
    }

    /// A one-layer linear model with one sample: the per-sample gradient is `g ⊗ a`, so the
    /// exact Fisher `uuᵀ` is exactly `ggᵀ ⊗ aaᵀ` and K-FAC's step equals the exact
    /// natural-gradient step `−u/‖u‖²` as λ → 0.
    @Test func kfacMatchesExactNaturalGradientForOneSample() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (outputs, inputs) = (3, 5)
        let a: [Double] = KFACLayer<Double>.appendingBiasColumn(randomValues(inputs - 1, seed: 41), rows: 1, columns: inputs - 1)
        let g: [Double] = randomValues(outputs, seed: 42)
        let u = g.flatMap { gi in a.map { gi * $0 } } // row-major vec(g aᵀ)
        let parameters: [Double] = randomValues(outputs * inputs, seed: 43)

        var kfacOptions = NaturalGradientOptimizerOptions(
            curvature: .kfac(layers: [LayerShape(outputs: outputs, inputs: inputs)]))
        // Factored: γ_A, γ_G ≈ √λ = 1e-5, so K-FAC's bias is ~1e-5 relative; explicit inverses
        // at much smaller γ would lose the digits to their condition number instead.
        kfacOptions.damping = .fixed(1e-10)
        let kfac = try NaturalGradientOptimizer<Double>(context: context, dimension: u.count, options: kfacOptions)
        let kfacUpdate = try kfac.update(
            parameters: parameters, gradient: u,
            curvature: .layers([LayerStatistics(activations: a, outputGradients: g)], samples: 1)
        ).update

        var exactOptions = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        // Woodbury is exact for the rank-1 F at any λ > 0 (a dense Cholesky of uuᵀ + λI would
        // need jitter at this λ).
        (exactOptions.method, exactOptions.damping) = (.woodbury, .fixed(1e-9))
        let exact = try NaturalGradientOptimizer<Double>(context: context, dimension: u.count, options: exactOptions)
        let exactUpdate = try exact.update(
            parameters: parameters, gradient: u, curvature: .perSampleGradients(u, samples: 1)
        ).update

        let norm = dot(u, u)
        let expected = u.map { -$0 / norm }
        #expect(relativeError(exactUpdate, expected) < 1e-6)
        #expect(relativeError(kfacUpdate, exactUpdate.map { $0 }) < 1e-4)
    }

    /// Save after a few steps (through JSON), restore into a fresh optimizer, and the next
    /// step is bitwise the one the original takes.
    @Test(arguments: ["kfac", "woodbury", "dense-ema"])
    func saveAndRestoreGivesTheIdenticalNextStep(variant: String) throws {
        let context = try TestDevice.context()
        let shapes = [LayerShape(outputs: 4, inputs: 6), LayerShape(outputs: 3, inputs: 5)]
        let p = shapes.reduce(0) { $0 + $1.outputs * $1.inputs }
        let samples = 9
        var options: NaturalGradientOptimizerOptions
        switch variant {
        case "kfac":
            options = NaturalGradientOptimizerOptions(curvature: .kfac(layers: shapes))
            options.curvatureDecay = 0.9
            options.inverseRefreshPeriod = 3
        case "woodbury":
            options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
            options.method = .woodbury
            options.curvatureRefreshPeriod = 2
            options.inverseRefreshPeriod = 3
        default:
            options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
            (options.representation, options.method, options.curvatureDecay) = (.dense, .cholesky, 0.8)
        }
        options.damping = .levenbergMarquardt(initial: 0.5)
        options.stepSize = .quadraticModel(maximum: 1)
        options.momentum = 0.7
        options.maxUpdateNorm = 0.5

        func input(_ step: Int) -> CurvatureInput<Float> {
            if case .kfac = options.curvature {
                return .layers(
                    shapes.enumerated().map { index, shape in
                        LayerStatistics(
                            activations: randomValues(samples * shape.inputs, seed: UInt64(100 * step + index)),
                            outputGradients: randomValues(samples * shape.outputs, seed: UInt64(100 * step + 50 + index)))
                    }, samples: samples)
            }
            return .perSampleGradients(randomValues(samples * p, seed: UInt64(7 + step)), samples: samples)
        }
        // A made-up loss whose value depends on the candidate, so λ moves.
        let loss: ([Float]) throws -> Double = { candidate in candidate.reduce(0.0) { $0 + Double($1 * $1) } }

        let original = try NaturalGradientOptimizer<Float>(context: context, dimension: p, options: options)
        var parameters: [Float] = randomValues(p, seed: 5)
        for step in 0..<4 {
            let gradient: [Float] = randomValues(p, seed: UInt64(200 + step))
            try original.step(
                parameters: &parameters, gradient: gradient, curvature: original.needsCurvature ? input(step) : nil,
                lossAt: loss)
        }
        let saved = try JSONDecoder().decode(
            NaturalGradientOptimizerState.self, from: JSONEncoder().encode(try original.state()))
        #expect(saved == (try original.state()))
        let restored = try NaturalGradientOptimizer<Float>(context: context, dimension: p, options: options)
        try restored.restore(saved)
        #expect(restored.stepCount == 4 && restored.damping == original.damping)
        #expect(restored.needsCurvature == original.needsCurvature)

        let gradient: [Float] = randomValues(p, seed: 300)
        let next = original.needsCurvature ? input(4) : nil
        let a = try original.update(parameters: parameters, gradient: gradient, curvature: next, lossAt: loss)
        let b = try restored.update(parameters: parameters, gradient: gradient, curvature: next, lossAt: loss)
        #expect(a.update == b.update)
        #expect(a.nextDamping == b.nextDamping)
        #expect(a.update.contains { $0 != 0 })
    }

    /// Bad options and arguments throw `invalidArgument` naming the argument.
    @Test func errorsNameTheArgument() throws {
        let context = try TestDevice.context()
        func name(_ body: () throws -> Void) -> String? {
            do {
                try body()
                return nil
            } catch let NaturalGradientError.invalidArgument(name, _) {
                return name
            } catch {
                return "unexpected \(error)"
            }
        }
        func make(_ change: (inout NaturalGradientOptimizerOptions) -> Void) throws -> NaturalGradientOptimizer<Float> {
            var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
            change(&options)
            return try NaturalGradientOptimizer<Float>(context: context, dimension: 4, options: options)
        }
        #expect(name { _ = try make { $0.momentum = 1 } } == "momentum")
        #expect(name { _ = try make { $0.damping = .fixed(-1) } } == "damping")
        #expect(name { _ = try make { $0.stepSize = .learningRate(.nan) } } == "learningRate")
        #expect(name { _ = try make { $0.curvatureDecay = 0.5 } } == "curvatureDecay") // implicit keeps no EMA
        #expect(name { _ = try make { $0.curvatureRefreshPeriod = 0 } } == "curvatureRefreshPeriod")
        #expect(name { _ = try make { $0.inverseRefreshPeriod = 0 } } == "inverseRefreshPeriod")
        #expect(name { _ = try make { $0.maxUpdateNorm = 0 } } == "maxUpdateNorm")
        #expect(name { _ = try make { $0.method = .kfac } } == "method")
        #expect(name { _ = try make { ($0.representation, $0.method) = (.dense, .woodbury) } } == "method")
        #expect(name { _ = try make { $0.representation = .blockDiagonal(blockSizes: [1, 2]) } } == "representation")
        #expect(name { _ = try make { $0.curvature = .kfac(layers: [LayerShape(outputs: 2, inputs: 3)]) } } == "curvature")
        #expect(name { _ = try make { $0.damping = .levenbergMarquardt(initial: 1, minimum: 2, maximum: 1) } } == "maximum")

        let optimizer = try make { _ in }
        let good: [Float] = [1, 2, 3, 4]
        let rows: CurvatureInput<Float> = .perSampleGradients([1, 0, 0, 1, 0, 1, 1, 0], samples: 2)
        #expect(name { _ = try optimizer.update(parameters: [1], gradient: good, curvature: rows) } == "parameters")
        #expect(name { _ = try optimizer.update(parameters: good, gradient: [1, .nan, 0, 0], curvature: rows) } == "gradient")
        #expect(name { _ = try optimizer.update(parameters: good, gradient: good) } == "curvature")
        #expect(
            name { _ = try optimizer.update(parameters: good, gradient: good, curvature: .perSampleGradients([1], samples: 2)) }
                == "perSampleGradients")
        #expect(
            name { _ = try optimizer.update(parameters: good, gradient: good, curvature: .layers([], samples: 2)) } == "curvature"
        )
        let adaptive = try make { $0.damping = .levenbergMarquardt(initial: 1) }
        #expect(name { _ = try adaptive.update(parameters: good, gradient: good, curvature: rows) } == "lossAt")
        var state = try optimizer.state()
        state.dimension = 5
        #expect(name { try optimizer.restore(state) } == "state")
        #expect(optimizer.stepCount == 0)
    }

    // MARK: - Host helpers

    private func hostFisher(_ u: [Double], rows n: Int, dimension p: Int) -> [Double] {
        var f = [Double](repeating: 0, count: p * p)
        for row in 0..<n {
            for i in 0..<p { for j in 0..<p { f[i * p + j] += u[row * p + i] * u[row * p + j] / Double(n) } }
        }
        return f
    }

    private func multiply(_ matrix: [Double], _ x: [Double], _ p: Int) -> [Double] {
        (0..<p).map { i in (0..<p).reduce(0.0) { $0 + matrix[i * p + $1] * x[$1] } }
    }

    private func dot(_ x: [Double], _ y: [Double]) -> Double { zip(x, y).reduce(0) { $0 + $1.0 * $1.1 } }
}
