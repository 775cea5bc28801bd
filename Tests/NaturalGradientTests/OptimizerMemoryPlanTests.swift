import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

/// The optimizer and the memory plan: `.automatic` picks the representation by it, and an
/// explicit representation that cannot fit is refused before it allocates.
@Suite("Optimizer memory plan")
struct OptimizerMemoryPlanTests {
    /// `.automatic` forms dense F when P ≤ M (and it fits) and keeps the factor otherwise; the
    /// step is the exact natural-gradient step either way.
    @Test(arguments: [(rows: 19, dimension: 7), (rows: 5, dimension: 33)])
    func automaticPicksByThePlan(shape: (rows: Int, dimension: Int)) throws {
        let context = try TestDevice.context()
        let (n, p) = shape
        let u: [Float] = randomValues(n * p, seed: 71)
        let gradient: [Float] = randomValues(p, seed: 72)
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        options.representation = .automatic
        options.damping = .fixed(0.5)
        options.conjugateGradient = ConjugateGradientOptions(tolerance: 1e-7, maxIterations: 200)
        let optimizer = try NaturalGradientOptimizer<Float>(context: context, dimension: p, options: options)
        var parameters = [Float](repeating: 0, count: p)
        _ = try optimizer.step(parameters: &parameters, gradient: gradient, curvature: .perSampleGradients(u, samples: n))
        if n >= p {
            #expect(optimizer.curvature is DenseCurvature<Float>)
        } else {
            #expect(optimizer.curvature is ImplicitCurvature<Float>)
        }
        // −Δ with (F + λI) Δ = g: (F + λI)(−θ) reproduces g.
        let product = referenceImplicitProduct(
            u, rows: n, dim: p, samples: n, xs: [parameters.map { -$0 }], damping: 0.5)
        #expect(relativeError(gradient, product[0]) < 1e-4)
    }

    @Test func denseThatCannotFitIsRefusedBeforeAllocating() throws {
        let context = try TestDevice.context()
        let p = 200_000
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        options.representation = .dense
        let optimizer = try NaturalGradientOptimizer<Float>(context: context, dimension: p, options: options)
        var parameters = [Float](repeating: 0, count: p)
        let error = #expect(throws: NaturalGradientError.self) {
            try optimizer.step(
                parameters: &parameters, gradient: randomValues(p, seed: 1),
                curvature: .perSampleGradients(randomValues(2 * p, seed: 2), samples: 2))
        }
        let text = error?.description ?? ""
        #expect(text.hasPrefix("dense F for P = 200,000 needs 160.0 GB; the device has "), "\(text)")
        #expect(text.hasSuffix("; use implicit, woodbury or diagonal"), "\(text)")
    }
}
