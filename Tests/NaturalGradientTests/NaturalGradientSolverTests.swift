import Foundation
import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

@Suite("Natural-gradient solvers")
struct NaturalGradientSolverTests {
    /// The dense damped Fisher of a random factor, its solution of b, and the device objects.
    private func problem(
        rows: Int, dimension: Int, damping: Double, seed: UInt64, weighted: Bool = false
    )
        throws -> (factor: CurvatureFactor<Double>, b: [Double], expected: [Double])
    {
        let context = try TestDevice.context()
        let u: [Double] = randomValues(rows * dimension, seed: seed)
        let weights: [Double]? = weighted ? randomValues(rows, seed: seed + 1).map { abs($0) + 0.1 } : nil
        let factor = try CurvatureFactor(
            context: context, matrix: u, rows: rows, dimension: dimension, samples: max(1, rows / 2), weights: weights)
        var f = referenceAccumulation(u, rows: rows, dim: dimension, weights: weights, alpha: 1 / Double(max(1, rows / 2)))
        for i in 0..<dimension { f[i * dimension + i] += damping }
        let b: [Double] = randomValues(dimension, seed: seed + 2)
        return (factor, b, referenceSolve(f, dimension: dimension, b))
    }

    @Test(arguments: [(1, 7), (7, 33), (33, 257), (100, 1000)])
    func woodburyAgreesWithDenseSolve(rows: Int, dimension: Int) throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (factor, b, expected) = try problem(rows: rows, dimension: dimension, damping: 0.3, seed: 40, weighted: true)
        let solution = try NaturalGradientSolver.solve(
            ImplicitCurvature(factor: factor), VectorBatch(context: context, vectors: [b]), damping: 0.3)
        #expect(solution.method == .woodbury)
        #expect(solution.densePath == .cholesky)
        #expect(relativeError(try solution.x.download()[0], expected) < 1e-12)
        #expect(solution.reports[0].relativeResidual < 1e-12)
    }

    /// Condition about 1e8: a rank-deficient F (M < P) with a tiny λ. Woodbury, Cholesky and
    /// PCG against the float64 solve; the error bound is κ·ε.
    @Test func illConditionedAcrossMethods() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (rows, dimension, damping) = (20, 50, 1e-8)
        let (factor, b, expected) = try problem(rows: rows, dimension: dimension, damping: damping, seed: 90)
        let g = try VectorBatch(context: context, vectors: [b])
        let implicit = try ImplicitCurvature(factor: factor)
        let dense = try DenseCurvature(factor: factor)
        let woodbury = try NaturalGradientSolver.solve(implicit, g, damping: damping, method: .woodbury)
        #expect(relativeError(try woodbury.x.download()[0], expected) < 1e-6)
        let cholesky = try NaturalGradientSolver.solve(dense, g, damping: damping, method: .cholesky)
        #expect(relativeError(try cholesky.x.download()[0], expected) < 1e-6)
        #expect(try #require(cholesky.reciprocalCondition) < 1e-6)
        let pcg = try NaturalGradientSolver.solve(
            dense, g, damping: damping, method: .pcg,
            options: ConjugateGradientOptions(tolerance: 1e-13, maxIterations: 5000))
        // The recurrence residual drifts from the true one at κ ≈ 1e8 (κ·ε ≈ 1e-8); the report
        // gives the true residual, which is what this bounds. The true residual cannot reach
        // 1e-13, so the solve stops as stagnated (after residual replacements) or at the cap,
        // never as converged.
        #expect(pcg.reports[0].relativeResidual < 1e-6)
        #expect([SolveStatus.stagnated, .iterationCap].contains(pcg.reports[0].status))
    }

    /// P spans several Gram chunks: the Gram matrix matches float64 (float32: summed per
    /// chunk, chunks added in float64) and the double solve matches the dense reference.
    @Test func woodburyAcrossGramChunks() throws {
        let context = try TestDevice.context()
        let (rows, dimension) = (33, 2 * WoodburySolver<Float>.gramChunk + 77)
        let u: [Float] = randomValues(rows * dimension, seed: 12)
        let solver = try WoodburySolver(
            factor: CurvatureFactor(context: context, matrix: u, rows: rows, dimension: dimension, samples: rows))
        let reference = (0..<(rows * rows)).map { index -> Double in
            let (a, b) = (index / rows, index % rows)
            return (0..<dimension).reduce(0.0) { $0 + Double(u[a * dimension + $1]) * Double(u[b * dimension + $1]) }
                / Double(rows)
        }
        #expect(relativeError(solver.gram, reference) < 1e-6)

        // In float64, checked by its residual through the implicit product (a dense reference
        // solve at this P is too slow for a test).
        try #require(deviceSupports(Double.self))
        let weights: [Double] = randomValues(20, seed: 71).map { abs($0) + 0.1 }
        let factor = try CurvatureFactor<Double>(
            context: context, matrix: randomValues(20 * 4500, seed: 70), rows: 20, dimension: 4500, samples: 10,
            weights: weights)
        let b = try VectorBatch<Double>(context: context, vectors: [randomValues(4500, seed: 72)])
        let x = try WoodburySolver(factor: factor).solve(b, damping: 0.2)
        let report = try measureSolution(
            ImplicitCurvature(factor: factor), b, x, damping: 0.2, iterations: [0], statuses: [.converged])
        #expect(report[0].relativeResidual < 1e-13)
    }

    @Test func woodburyNeedsPositiveDamping() throws {
        let context = try TestDevice.context()
        let factor = try CurvatureFactor<Float>(
            context: context, matrix: randomValues(12, seed: 1), rows: 3, dimension: 4, samples: 3)
        let b = try VectorBatch<Float>(context: context, vectors: [[1, 2, 3, 4]])
        #expect(throws: NaturalGradientError.self) { try WoodburySolver(factor: factor).solve(b, damping: 0) }
        // .automatic falls back to CG at λ = 0.
        #expect(NaturalGradientSolver.automaticMethod(for: try ImplicitCurvature(factor: factor), damping: 0) == .cg)
    }

    /// CG, PCG, Woodbury and Cholesky agree on one problem with three right-hand sides.
    @Test func everyMethodAgrees() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (rows, dimension, damping) = (40, 97, 0.05)
        let (factor, _, _) = try problem(rows: rows, dimension: dimension, damping: damping, seed: 50)
        let bs: [[Double]] = (0..<3).map { randomValues(dimension, seed: UInt64(60 + $0)) }
        let g = try VectorBatch(context: context, vectors: bs)
        let implicit = try ImplicitCurvature(factor: factor)
        let dense = try DenseCurvature(factor: factor)
        let options = ConjugateGradientOptions(tolerance: 1e-12, maxIterations: 1000)
        let reference = try NaturalGradientSolver.solve(dense, g, damping: damping).x.download().flatMap { $0 }
        for (curvature, method) in [
            (implicit as any CurvatureOperator<Double>, SolveMethod.cg), (implicit, .pcg), (implicit, .woodbury),
            (dense, .cg), (dense, .cholesky),
        ] {
            let solution = try NaturalGradientSolver.solve(curvature, g, damping: damping, method: method, options: options)
            #expect(solution.method == method)
            #expect(relativeError(try solution.x.download().flatMap { $0 }, reference) < 1e-9, "\(method)")
            #expect(solution.reports.allSatisfy { $0.relativeResidual < 1e-10 }, "\(method)")
        }
    }

    @Test func methodsThatDoNotFitTheRepresentationAreRejected() throws {
        let context = try TestDevice.context()
        let factor = try CurvatureFactor<Float>(
            context: context, matrix: randomValues(12, seed: 1), rows: 3, dimension: 4, samples: 3)
        let g = try VectorBatch<Float>(context: context, vectors: [[1, 2, 3, 4]])
        let dense = try DenseCurvature(factor: factor)
        let implicit = try ImplicitCurvature(factor: factor)
        for (curvature, method) in [
            (dense as any CurvatureOperator<Float>, SolveMethod.woodbury), (implicit, .cholesky), (implicit, .kfac),
        ] {
            let error = #expect(throws: NaturalGradientError.self) {
                try NaturalGradientSolver.solve(curvature, g, damping: 0.1, method: method)
            }
            #expect(error?.description.contains("'method'") == true)
        }
        #expect(NaturalGradientSolver.automaticMethod(for: dense, damping: 0.1) == .cholesky)
        #expect(NaturalGradientSolver.automaticMethod(for: implicit, damping: 0.1) == .woodbury)
    }

    /// A singular dense F with λ = 0 goes down the fallback chain and says so.
    @Test func choleskyFallbackOnASingularMatrix() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let factor = try CurvatureFactor<Double>(
            context: context, matrix: randomValues(2 * 6, seed: 3), rows: 2, dimension: 6, samples: 2)
        let dense = try DenseCurvature(factor: factor)
        // b in the range of F, so a solution exists.
        let u = try factor.matrix.download()
        let b = (0..<6).map { u[$0] + 0.5 * u[6 + $0] }
        let solution = try NaturalGradientSolver.solve(dense, VectorBatch(context: context, vectors: [b]), damping: 0)
        #expect(solution.method == .cholesky)
        #expect(solution.densePath != .cholesky)
        #expect(try solution.x.download()[0].allSatisfy(\.isFinite))
        #expect(solution.reports[0].relativeResidual < 1e-6)
    }

    @Test func kfacSolveInvertsTheFactoredOperator() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let samples = 9
        let shapes = [(outputs: 4, inputs: 6), (outputs: 3, inputs: 5)]
        let layers = try shapes.enumerated().map { index, shape in
            KFACLayer(
                activations: try Buffer<Double>(
                    context: context, copying: randomValues(samples * shape.inputs, seed: UInt64(index))),
                outputGradients: try Buffer<Double>(
                    context: context, copying: randomValues(samples * shape.outputs, seed: UInt64(10 + index))),
                inputs: shape.inputs, outputs: shape.outputs)
        }
        let curvature = try KroneckerCurvature(layers: layers, samples: samples)
        let g = try VectorBatch<Double>(context: context, vectors: [randomValues(curvature.dimension, seed: 5)])
        let solution = try NaturalGradientSolver.solve(curvature, g, damping: 0.01)
        #expect(solution.method == .kfac)
        // Applying the (factored-damped) operator to x gives g back.
        #expect(relativeError(try curvature.apply(solution.x, damping: 0.01).download()[0], try g.download()[0]) < 1e-10)
        #expect(solution.reports[0].relativeResidual < 1e-10)

        let solver = try KroneckerSolver(curvature: curvature)
        #expect(throws: NaturalGradientError.self) { try solver.solve(g) }
    }

    /// The known answer: one natural-gradient step with unit step size on the mean
    /// NLL of a univariate Gaussian in (μ, σ) moves μ to the sample mean and σ to
    /// (σ + S/σ)/2, S the mean squared deviation about the old μ.
    @Test(arguments: [SolveMethod.cg, .cholesky]) func gaussianNaturalGradientStep(method: SolveMethod) throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let data: [Double] = randomValues(50, seed: 77).map { 2 + 3 * $0 }
        let (mu, sigma) = (0.5, 1.7)
        let mean = data.reduce(0, +) / Double(data.count)
        let s = data.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(data.count)
        // ∇ of the mean NLL: (−(x̄ − μ)/σ², 1/σ − S/σ³).
        let gradient = [-(mean - mu) / (sigma * sigma), 1 / sigma - s / (sigma * sigma * sigma)]
        // Fisher diag(1/σ², 2/σ²) from its exact 3-point Gauss-Hermite factor of scores.
        let nodes = [0, 3.0.squareRoot(), -(3.0.squareRoot())]
        let scores = nodes.flatMap { node in [node / sigma, (node * node - 1) / sigma] }
        let fisher = try DenseCurvature(
            factor: CurvatureFactor(
                context: context, matrix: scores, rows: 3, dimension: 2, samples: 1, weights: [2.0 / 3, 1.0 / 6, 1.0 / 6]))
        let step = try NaturalGradientSolver.solve(
            fisher, VectorBatch(context: context, vectors: [gradient]), damping: 0, method: method,
            options: ConjugateGradientOptions(tolerance: 1e-14)
        ).x.download()[0]
        #expect(abs((mu - step[0]) - mean) < 1e-12)
        #expect(abs((sigma - step[1]) - (sigma + s / sigma) / 2) < 1e-12)
    }

    @Test func levenbergMarquardtFollowsItsRule() throws {
        var policy = try LevenbergMarquardtDamping(initial: 1, minimum: 0.5, maximum: 3)
        let script: [(rho: Double, expected: Double)] = [
            (0.1, 1.5), (Double.nan, 2.25), (0.5, 2.25), (0.25, 2.25), (0.75, 2.25), (0.8, 1.5), (2, 1),
            (1, 2.0 / 3), (1, 0.5), (-3, 0.75), (0.2, 1.125), (0, 1.6875), (-.infinity, 2.53125), (0.1, 3), (0.1, 3),
        ]
        for (index, step) in script.enumerated() {
            policy.update(reductionRatio: step.rho)
            #expect(abs(policy.damping - step.expected) < 1e-12, "step \(index) with ρ = \(step.rho)")
        }
        #expect(throws: NaturalGradientError.self) { try LevenbergMarquardtDamping(initial: 1, minimum: 2, maximum: 1) }
        #expect(throws: NaturalGradientError.self) { try FixedDamping(.nan) }
        var fixed = try FixedDamping(0.1)
        fixed.update(reductionRatio: 0)
        #expect(fixed.damping == 0.1)
    }

    @Test func factoredDampingSplitsByTraces() {
        // tr A/dim A = 4, tr G/dim G = 1: π = 2.
        let split = FactoredDamping.split(damping: 0.25, traceA: 12, dimensionA: 3, traceG: 5, dimensionG: 5)
        #expect(abs(split.a - 1) < 1e-15 && abs(split.g - 0.25) < 1e-15)
        let degenerate = FactoredDamping.split(damping: 4, traceA: 0, dimensionA: 3, traceG: 5, dimensionG: 5)
        #expect(degenerate.a == 2 && degenerate.g == 2)
    }
}
