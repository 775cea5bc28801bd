import Foundation
import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

/// Status honesty of the direct solves (`SolveStatus.perturbed`, `.inaccurate`,
/// `.illConditioned`) and the refinement step, against float64 references.
@Suite("Direct solve accuracy")
struct DirectSolveAccuracyTests {
    /// A factor U (rows x dimension) whose F = UᵀU/rows has eigenvalues spread over
    /// `decades` (U = diag(s) Q with Q orthonormal rows), so the condition is known.
    static func conditionedFactor(rows n: Int, decades: Double, seed: UInt64) -> [Double] {
        var q: [[Double]] = []
        for row in 0..<n {
            var v: [Double] = randomValues(n, seed: seed + UInt64(row))
            for u in q {
                let dot = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
                v = zip(v, u).map { $0 - dot * $1 }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            q.append(v.map { $0 / norm })
        }
        return (0..<n).flatMap { row in
            let s = pow(10, -decades * Double(row) / Double(max(n - 1, 1)) / 2) * Double(n).squareRoot()
            return q[row].map { $0 * s }
        }
    }

    @Test(arguments: [false, true])
    func aSingularSystemIsPerturbed(double: Bool) throws {
        if double { try #require(deviceSupports(Double.self)) }
        try double ? singular(Double.self) : singular(Float.self)
    }

    private func singular<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let factor = try CurvatureFactor<T>(
            context: context, matrix: randomValues(16 * 32, seed: 1), rows: 16, dimension: 32, samples: 16)
        let g = try VectorBatch<T>(context: context, vectors: [randomValues(32, seed: 2), randomValues(32, seed: 3)])
        let solution = try NaturalGradientSolver.solve(DenseCurvature(factor: factor), g, damping: 0)
        #expect(solution.densePath?.isPerturbed == true)
        #expect(solution.reports.map(\.status) == [.perturbed, .perturbed], "\(solution.reports)")
    }

    /// Well-posed float32 and float64 solves at awkward sizes stay `converged`, with a
    /// backward error far below the bound.
    @Test(arguments: [(1, 7), (7, 33), (33, 257), (300, 257)])
    func wellPosedSolvesConverge(rows: Int, dimension: Int) throws {
        let context = try TestDevice.context()
        let factor = try CurvatureFactor<Float>(
            context: context, matrix: randomValues(rows * dimension, seed: 10), rows: rows, dimension: dimension,
            samples: rows)
        let g = try VectorBatch<Float>(context: context, vectors: [randomValues(dimension, seed: 11)])
        var solutions = [try NaturalGradientSolver.solve(DenseCurvature(factor: factor), g, damping: 0.1, method: .cholesky)]
        if rows <= dimension {
            solutions.append(
                try NaturalGradientSolver.solve(ImplicitCurvature(factor: factor), g, damping: 0.1, method: .woodbury))
        }
        for solution in solutions {
            #expect(solution.reports[0].status == .converged, "\(solution.method): \(solution.reports)")
        }
    }

    /// κ = 1e4 in float32: ill-conditioned but within the precision, so an accurate solve
    /// passes the backward-error test, and x is as accurate as κ·ε allows.
    @Test func anIllConditionedButAccurateFloatSolvePasses() throws {
        let context = try TestDevice.context()
        let n = 33
        let u = Self.conditionedFactor(rows: n, decades: 4, seed: 20)
        let factor = try CurvatureFactor<Float>(context: context, matrix: Float.narrowed(u), rows: n, dimension: n, samples: n)
        let b: [Double] = randomValues(n, seed: 21)
        let solution = try NaturalGradientSolver.solve(
            DenseCurvature(factor: factor), VectorBatch(context: context, vectors: [Float.narrowed(b)]), damping: 0,
            method: .cholesky)
        #expect(solution.densePath == .cholesky)
        #expect(solution.reports[0].status == .converged, "\(solution.reports)")
        // Reference: F from the float32-rounded U, solved in float64.
        let rounded = Float.widened(Float.narrowed(u))
        let f = referenceAccumulation(rounded, rows: n, dim: n, weights: nil, alpha: 1 / Double(n))
        let expected = referenceSolve(f, dimension: n, b)
        #expect(relativeError(try solution.x.download()[0], expected) < 1e4 * Double(Float.ulpOfOne) * 10)
    }

    /// Woodbury with λ/‖F‖ below float32's epsilon: `illConditioned` in float, while the
    /// same system in double is `converged` (the advice the CLI gives).
    @Test func beyondTheWorkingPrecisionIsIllConditioned() throws {
        let context = try TestDevice.context()
        let u: [Double] = randomValues(7 * 33, seed: 30)
        let b: [Double] = randomValues(33, seed: 31)
        let float = try NaturalGradientSolver.solve(
            ImplicitCurvature(
                factor: CurvatureFactor<Float>(context: context, matrix: Float.narrowed(u), rows: 7, dimension: 33, samples: 7)),
            VectorBatch(context: context, vectors: [Float.narrowed(b)]), damping: 1e-9, method: .woodbury)
        #expect(float.reports[0].status == .illConditioned, "\(float.reports)")
        try #require(deviceSupports(Double.self))
        let double = try NaturalGradientSolver.solve(
            ImplicitCurvature(factor: CurvatureFactor<Double>(context: context, matrix: u, rows: 7, dimension: 33, samples: 7)),
            VectorBatch(context: context, vectors: [b]), damping: 1e-9, method: .woodbury)
        #expect(double.reports[0].status == .converged, "\(double.reports)")
    }

    /// At small λ one refinement step cuts float32 Woodbury's residual (its `(b − v)/λ`
    /// cancels); the solver returns the refined x.
    @Test func refinementPaysForFloatWoodbury() throws {
        let context = try TestDevice.context()
        let (rows, dimension) = (33, 257)
        let columnScales = (0..<dimension).map { pow(10, -2 * Double($0) / Double(dimension)) }
        let values: [Double] = randomValues(rows * dimension, seed: 40)
        let u = values.indices.map { values[$0] * columnScales[$0 % dimension] }
        let factor = try CurvatureFactor<Float>(
            context: context, matrix: Float.narrowed(u), rows: rows, dimension: dimension, samples: rows)
        let g = try VectorBatch<Float>(context: context, vectors: [randomValues(dimension, seed: 41)])
        let damping: Float = 1e-5
        let implicit = try ImplicitCurvature(factor: factor)
        let raw = try WoodburySolver(factor: factor).solve(g, damping: damping)
        let rawReport = try measureSolution(implicit, g, raw, damping: damping, iterations: [0], statuses: [.converged])
        let solution = try NaturalGradientSolver.solve(implicit, g, damping: damping, method: .woodbury)
        #expect(
            solution.reports[0].relativeResidual < rawReport[0].relativeResidual / 2,
            "refined \(solution.reports[0].relativeResidual) vs \(rawReport[0].relativeResidual)")
        #expect(solution.reports[0].status == .converged, "\(solution.reports)")
    }

    /// A solve that refinement cannot repair (its re-solve returns nothing useful) and
    /// whose residual is far above the bound is `inaccurate`, not `converged`.
    @Test func anUnrepairedResidualIsInaccurate() throws {
        let context = try TestDevice.context()
        let n = 33
        let factor = try CurvatureFactor<Float>(
            context: context, matrix: randomValues(40 * n, seed: 50), rows: 40, dimension: n, samples: 40)
        let dense = try DenseCurvature(factor: factor)
        let solver = CholeskySolver(curvature: dense)
        let b = try VectorBatch<Float>(context: context, vectors: [randomValues(n, seed: 51)])
        let x = try solver.solve(b, damping: 0.1)
        var wrong = try x.download()[0]
        wrong[3] *= 1.5
        let damaged = try VectorBatch<Float>(context: context, vectors: [wrong])
        let factorization = try #require(solver.lastFactorization)
        let check = DirectSolveCheck<Float>(
            factorization: factorization, systemReciprocalCondition: factorization.reciprocalCondition,
            resolve: { try VectorBatch<Float>(context: context, dimension: $0.dimension, count: $0.count) })
        let (_, reports) = try checkedDirectSolution(dense, b, damaged, damping: 0.1, check: check)
        #expect(reports[0].status == .inaccurate, "\(reports)")
        // The same x undamaged passes.
        let (_, clean) = try checkedDirectSolution(dense, b, x, damping: 0.1, check: check)
        #expect(clean[0].status == .converged, "\(clean)")
    }

    /// `norm` is the 1-norm of `A + damping·I`: the largest absolute column sum.
    @Test func factorizationNormIsTheOneNorm() throws {
        for n in [1, 7, 33] {
            let a: [Double] = randomValues(n * n, seed: UInt64(60 + n))
            var symmetric = [Double](repeating: 0, count: n * n)
            for i in 0..<n {
                for j in 0..<n { symmetric[i * n + j] = (a[i * n + j] + a[j * n + i]) / 2 + (i == j ? Double(n) : 0) }
            }
            let damping = 0.25
            let factorization = try DenseSymmetricFactorization(matrix: symmetric, dimension: n, damping: damping)
            var expected = 0.0
            for j in 0..<n {
                var column = 0.0
                for i in 0..<n { column += abs(symmetric[i * n + j] + (i == j ? damping : 0)) }
                expected = max(expected, column)
            }
            #expect(abs(factorization.norm - expected) <= 1e-12 * expected, "n = \(n)")
        }
        #expect(DirectSolveAccuracy.backwardErrorBound(dimension: 1, epsilon: 1) == 8)
    }
}
