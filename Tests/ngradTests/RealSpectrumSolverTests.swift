import Foundation
import NaturalGradient
import NaturalGradientExamples
import NaturalGradientTestSupport
import Testing

/// CG against Jacobi-preconditioned CG on the spectra natural-gradient solves meet: the
/// GGN and the empirical Fisher of `ngrad train`'s tanh MLP on the digits, at λ = 1e-5 in
/// double (issue 17). Their factor U has far fewer rows than P and the gradient lies in
/// the row space of U, so plain CG never leaves that space and needs about rank(U)
/// iterations whatever λ is; a diagonal preconditioner mixes in the null space, whose
/// eigenvalues λ·m_i are tiny and spread over the preconditioner's range, and PCG needs
/// several times more. The automatic policy must not pick it there.
@Suite("solvers on real spectra", .enabled(if: deviceSupports(Double.self)))
struct RealSpectrumSolverTests {
    static let damping = 1e-5

    struct Case: CustomTestStringConvertible {
        let name: String
        let samples: Int
        var testDescription: String { "\(name), \(samples) samples" }
    }

    /// The factor of one curvature of the sample, in double on the test device.
    static func curvature(
        _ name: String, _ sample: TrainingCurvatureSample, context: Context
    ) throws
        -> ImplicitCurvature<Double>
    {
        let factor: CurvatureFactor<Double>
        if name == "GGN" {
            factor = try CurvatureFactor<Double>.formalMetric(
                outputJacobians: Buffer(context: context, copying: sample.outputJacobians.map(Double.init)),
                outputs: Buffer(context: context, copying: sample.logits.map(Double.init)), samples: sample.samples,
                dimension: sample.dimension, family: .categorical(classes: sample.classes), measure: .kullbackLeibler)
        } else {
            factor = try CurvatureFactor<Double>(
                matrix: Buffer(context: context, copying: sample.perSampleGradients.map(Double.init)),
                rows: sample.samples, dimension: sample.dimension, samples: sample.samples)
        }
        return try ImplicitCurvature(factor: factor)
    }

    @Test(arguments: [Case(name: "GGN", samples: 8), Case(name: "empirical Fisher", samples: 32)])
    func plainCGBeatsJacobiAndTheAutomaticChoiceAvoidsPCG(_ testCase: Case) throws {
        let context = try TestDevice.context()
        let data = try DigitsData.load(path: try #require(DigitsData.locateCommittedCopy()), seed: 0)
        let sample = TrainingCurvatureSample(data: data, samples: testCase.samples, seed: 0)
        let curvature = try Self.curvature(testCase.name, sample, context: context)
        let g = try VectorBatch<Double>(context: context, vectors: [sample.gradient.map(Double.init)])
        let options = ConjugateGradientOptions(tolerance: 1e-6, maxIterations: 20 * sample.dimension / 100)
        var iterations: [SolveMethod: Int] = [:]
        for method in [SolveMethod.cg, .pcg] {
            let solution = try NaturalGradientSolver.solve(
                curvature, g, damping: Self.damping, method: method, options: options)
            let report = try #require(solution.reports.first)
            print(
                "\(testCase.testDescription): \(method.rawValue) \(report.iterations) iterations, true residual \(report.relativeResidual), \(report.status)"
            )
            #expect(report.status == .converged, "\(method): \(report)")
            #expect(report.relativeResidual <= 1e-6, "\(method): \(report)")
            iterations[method] = report.iterations
        }
        let cg = try #require(iterations[.cg])
        let pcg = try #require(iterations[.pcg])
        #expect(cg < pcg, "CG \(cg) iterations, PCG \(pcg)")
        // CG stays in U's row space: about rank(U) ≤ rows iterations in exact arithmetic; a
        // bound of 3x leaves room for float64 rounding at κ ≈ 1e5 and none for PCG's count.
        #expect(cg <= 3 * curvature.factor.rows + 10, "CG \(cg) iterations for \(curvature.factor.rows) rows")
        for damping in [Self.damping, 0] {
            let automatic = NaturalGradientSolver.automaticMethod(for: curvature, damping: damping)
            #expect(automatic != .pcg, "λ = \(damping): \(automatic)")
        }
    }
}
