import Foundation
import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

/// The capabilities the built-in representations declare through the protocol: the one
/// automatic-method policy, exact inverses as operators, accumulation and state export.
@Suite("Curvature capabilities")
struct CurvatureCapabilityTests {
    /// A random weighted factor, the dense float64 F it stands for, and the context.
    private func factor(
        rows: Int, dimension: Int, seed: UInt64
    ) throws
        -> (factor: CurvatureFactor<Double>, f: [Double], context: Context)
    {
        let context = try TestDevice.context()
        let u: [Double] = randomValues(rows * dimension, seed: seed)
        let weights = (randomValues(rows, seed: seed + 1) as [Double]).map { abs($0) + 0.1 }
        let samples = max(1, rows / 2)
        let factor = try CurvatureFactor(
            context: context, matrix: u, rows: rows, dimension: dimension, samples: samples, weights: weights)
        return (
            factor, referenceAccumulation(u, rows: rows, dim: dimension, weights: weights, alpha: 1 / Double(samples)), context
        )
    }

    private func damped(_ f: [Double], _ dimension: Int, _ lambda: Double) -> [Double] {
        var f = f
        for i in 0..<dimension { f[i * dimension + i] += lambda }
        return f
    }

    /// Woodbury and Cholesky from `makeInverse`: their method, λ and factorisation path, and
    /// `solve` against the float64 dense solve, for two right-hand sides at once.
    @Test(arguments: [(1, 7), (7, 33), (33, 257)])
    func exactInversesSolveAgainstTheFloat64Reference(rows: Int, dimension: Int) throws {
        try #require(deviceSupports(Double.self))
        let (factor, f, context) = try factor(rows: rows, dimension: dimension, seed: UInt64(rows))
        let lambda = 0.2
        let bs: [[Double]] = (0..<2).map { randomValues(dimension, seed: UInt64(90 + $0)) }
        let reference = bs.flatMap { referenceSolve(damped(f, dimension, lambda), dimension: dimension, $0) }
        let g = try VectorBatch<Double>(context: context, vectors: bs)
        for curvature in [
            try ImplicitCurvature(factor: factor) as any CurvatureOperator<Double>, try DenseCurvature(factor: factor),
        ] {
            let method = try #require(curvature.inverseMethod)
            let inverse = try curvature.makeInverse(damping: lambda)
            #expect(inverse.method == method && inverse.damping == lambda && inverse.dimension == dimension)
            #expect(inverse.factorization?.path == .cholesky, "\(method)")
            #expect(relativeError(try inverse.solve(g).download().flatMap { $0 }, reference) < 1e-11, "\(method)")
        }
    }

    /// An inverse holds what it factored: accumulating into the dense matrix or the K-FAC
    /// factors afterwards leaves it the inverse of the curvature as it was.
    @Test func anInverseOutlivesAccumulation() throws {
        try #require(deviceSupports(Double.self))
        let (rows, dimension, lambda) = (9, 7, 0.3)
        let (factor, f, context) = try factor(rows: rows, dimension: dimension, seed: 5)
        let b: [Double] = randomValues(dimension, seed: 6)
        let g = try VectorBatch<Double>(context: context, vectors: [b])
        let dense = try DenseCurvature(factor: factor)
        let inverse = try dense.makeInverse(damping: lambda)
        try dense.accumulate(factor, alpha: 5, beta: 1)
        let expected = referenceSolve(damped(f, dimension, lambda), dimension: dimension, b)
        #expect(relativeError(try inverse.solve(g).download()[0], expected) < 1e-12)

        let shapes = [(outputs: 3, inputs: 4), (outputs: 2, inputs: 5)]
        let layers = try shapes.enumerated().map { index, shape in
            KFACLayer(
                activations: try Buffer<Double>(
                    context: context, copying: randomValues(8 * shape.inputs, seed: UInt64(20 + index))),
                outputGradients: try Buffer<Double>(
                    context: context, copying: randomValues(8 * shape.outputs, seed: UInt64(30 + index))),
                inputs: shape.inputs, outputs: shape.outputs)
        }
        let kronecker = try KroneckerCurvature(layers: layers, samples: 8)
        let x = try VectorBatch<Double>(context: context, vectors: [randomValues(kronecker.dimension, seed: 7)])
        let kfacG = try kronecker.apply(x, damping: 0.01)
        let kfac = try kronecker.makeInverse(damping: 0.01)
        #expect(kfac.method == .kfac && kfac.damping == 0.01)
        try kronecker.accumulate(layers, samples: 8, alpha: 3, beta: 1)
        #expect(relativeError(try kfac.solve(kfacG).download()[0], try x.download()[0].map { $0 }) < 1e-10)
    }

    /// Representations without an exact inverse say so, and refuse by naming `method`.
    @Test func representationsWithoutAnInverseRefuse() throws {
        let context = try TestDevice.context()
        let factor = try CurvatureFactor<Float>(
            context: context, matrix: randomValues(3 * 5, seed: 1), rows: 3, dimension: 5, samples: 3)
        for curvature in [
            try DiagonalCurvature(factor: factor) as any CurvatureOperator<Float>,
            try BlockDiagonalCurvature(factor: factor, blockSizes: [2, 3]),
        ] {
            #expect(curvature.inverseMethod == nil)
            let error = #expect(throws: NaturalGradientError.self) { _ = try curvature.makeInverse(damping: 0.1) }
            #expect(error?.description.contains("'method'") == true)
        }
        #expect(throws: NaturalGradientError.self) { _ = try WoodburySolver(factor: factor, damping: 0) }
        let unrefreshed = try KroneckerSolver(curvature: KroneckerCurvature<Float>(context: context, shapes: [(2, 3)]))
        #expect(unrefreshed.damping == nil)
        #expect(throws: NaturalGradientError.self) { _ = try unrefreshed.exportState() }
    }

    /// The one policy: what each representation prefers, the factor-level rule `ngrad solve`
    /// asks, and the diagonal's PCG in the solver and the optimizer alike.
    @Test func oneAutomaticMethodPolicy() throws {
        try #require(deviceSupports(Double.self))
        let (factor, _, context) = try factor(rows: 6, dimension: 11, seed: 3)
        #expect(NaturalGradientSolver.automaticMethod(for: try DiagonalCurvature(factor: factor), damping: 0.1) == .pcg)
        let blocks = try BlockDiagonalCurvature(factor: factor, blockSizes: [5, 6])
        #expect(NaturalGradientSolver.automaticMethod(for: blocks, damping: 0.1) == .cg)
        #expect(NaturalGradientSolver.automaticMethod(for: try DenseCurvature(factor: factor), damping: 0) == .cholesky)
        #expect(NaturalGradientSolver.automaticMethod(for: try ImplicitCurvature(factor: factor), damping: 0.1) == .woodbury)

        // A factor that may be formed: Woodbury where it applies, else Cholesky of the formed F
        // up to denseLimit / 2 parameters, else CG.
        let limit = NaturalGradientSolver.denseLimit / 2
        for (rows, dimension, lambda, expected) in [
            (3, 4, 0.1, SolveMethod.woodbury), (10, 3000, 0.1, .woodbury), (40, 25, 0.05, .cholesky), (3, 4, 0, .cholesky),
            (limit + 1, limit, 0.1, .cholesky), (limit + 2, limit + 1, 0.1, .cg), (10, limit + 1, 0, .cg),
        ] {
            #expect(
                NaturalGradientSolver.automaticMethod(forFactorRows: rows, dimension: dimension, damping: lambda) == expected,
                "\(rows) x \(dimension), λ = \(lambda)")
        }

        // The solver and the optimizer both run PCG on a diagonal.
        let d = (randomValues(11, seed: 4) as [Double]).map { abs($0) + 0.1 }
        let diagonal = try DiagonalCurvature(values: Buffer(context: context, copying: d), dimension: 11)
        let b: [Double] = randomValues(11, seed: 8)
        let solution = try NaturalGradientSolver.solve(
            diagonal, VectorBatch(context: context, vectors: [b]), damping: 0.05,
            options: ConjugateGradientOptions(tolerance: 1e-13, maxIterations: 100))
        #expect(solution.method == .pcg)
        #expect(relativeError(try solution.x.download()[0], b.indices.map { b[$0] / (d[$0] + 0.05) }) < 1e-11)
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        options.representation = .diagonal
        let optimizer = try NaturalGradientOptimizer<Double>(context: context, dimension: 11, options: options)
        let report = try optimizer.update(
            parameters: b, gradient: b, curvature: .perSampleGradients(randomValues(3 * 11, seed: 9), samples: 3))
        #expect(report.method == .pcg)
    }

    /// Save and restore through the protocols for the representations the optimizer tests do
    /// not cover (diagonal and block-diagonal moving averages, implicit CG): the next step is
    /// bitwise the original's.
    @Test(arguments: ["diagonal", "block-diagonal", "implicit"])
    func saveAndRestoreForEveryRepresentation(variant: String) throws {
        let context = try TestDevice.context()
        let (p, samples) = (13, 6)
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        switch variant {
        case "diagonal": (options.representation, options.curvatureDecay) = (.diagonal, 0.7)
        case "block-diagonal": (options.representation, options.curvatureDecay) = (.blockDiagonal(blockSizes: [6, 7]), 0.7)
        default: options.method = .cg
        }
        options.stepSize = .quadraticModel(maximum: 1)
        options.momentum = 0.5
        func input(_ step: Int) -> CurvatureInput<Float> {
            .perSampleGradients(randomValues(samples * p, seed: UInt64(40 + step)), samples: samples)
        }
        let original = try NaturalGradientOptimizer<Float>(context: context, dimension: p, options: options)
        var parameters: [Float] = randomValues(p, seed: 2)
        for step in 0..<3 {
            try original.step(parameters: &parameters, gradient: randomValues(p, seed: UInt64(60 + step)), curvature: input(step))
        }
        let saved = try JSONDecoder().decode(
            NaturalGradientOptimizerState.self, from: JSONEncoder().encode(try original.state()))
        #expect(saved.inverse == nil)
        let restored = try NaturalGradientOptimizer<Float>(context: context, dimension: p, options: options)
        try restored.restore(saved)
        let gradient: [Float] = randomValues(p, seed: 70)
        let a = try original.update(parameters: parameters, gradient: gradient, curvature: input(3))
        let b = try restored.update(parameters: parameters, gradient: gradient, curvature: input(3))
        #expect(a.update == b.update && a.update.contains { $0 != 0 })

        // A state of another representation does not fit.
        var other = options
        other.representation = variant == "diagonal" ? .dense : .diagonal
        other.method = .automatic
        other.curvatureDecay = 0
        let mismatched = try NaturalGradientOptimizer<Float>(context: context, dimension: p, options: other)
        let error = #expect(throws: NaturalGradientError.self) { try mismatched.restore(saved) }
        #expect(error?.description.contains("'state'") == true)
    }
}
