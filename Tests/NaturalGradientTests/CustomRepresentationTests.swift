import Foundation
import NaturalGradient
import Testing
import NaturalGradientTestSupport

/// A representation defined outside the library, with nothing but the public protocols:
/// `F = diag(d)` with d kept on the host in float64 (the products go through the host). It
/// proves that a new representation gets the solver's CG and PCG, the optimizer, its moving
/// average and its state save/restore by conforming, with no edit to the library.
private final class HostDiagonalCurvature<Element: DeviceScalar>: CurvatureOperator, FactorAccumulatingCurvature,
    ExportableCurvature
{
    let context: Context
    private(set) var values: [Double]
    var dimension: Int { values.count }

    init(context: Context, values: [Double]) {
        self.context = context
        self.values = values
    }

    /// The diagonal of the Fisher of `factor`, `(1/N) Σ w u²`.
    convenience init(factor: CurvatureFactor<Element>) throws {
        self.init(context: factor.context, values: Array(repeating: 0, count: factor.dimension))
        try accumulate(factor, alpha: nil, beta: 0)
    }

    func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        guard x.dimension == dimension, y.dimension == dimension, x.count == y.count else {
            throw NaturalGradientError.invalidArgument(name: "x", reason: "does not fit the diagonal")
        }
        let input = try x.buffer.downloadFloat64(0..<(dimension * x.count))
        let lambda = damping.float64
        try y.buffer.upload(float64: input.indices.map { (values[$0 % dimension] + lambda) * input[$0] })
    }

    func diagonal() throws -> Buffer<Element> {
        try Buffer(context: context, copying: Element.narrowed(values))
    }

    func accumulate(_ factor: CurvatureFactor<Element>, alpha: Element?, beta: Element) throws {
        let u = try factor.matrix.downloadFloat64(0..<(factor.rows * factor.dimension))
        let w = try factor.weights?.downloadFloat64(0..<factor.rows) ?? Array(repeating: 1, count: factor.rows)
        let scale = alpha?.float64 ?? 1 / Double(factor.samples)
        for i in 0..<dimension {
            let sum = (0..<factor.rows).reduce(0.0) { $0 + w[$1] * u[$1 * dimension + i] * u[$1 * dimension + i] }
            values[i] = beta.float64 * values[i] + scale * sum
        }
    }

    func exportState() throws -> SavedCurvature { .diagonal(values: values) }
}

@Suite("A representation defined outside the library")
struct CustomRepresentationTests {
    /// (a) NaturalGradientSolver: `.automatic` takes the protocol's default (CG), PCG works,
    /// and both match `x = g / (d + λ)` in float64; a direct method is refused by name.
    @Test(arguments: [1, 7, 33, 257])
    func solvesAgainstTheFloat64Reference(dimension: Int) throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let d = (randomValues(dimension, seed: 21) as [Double]).map { abs($0) + 0.05 }
        let curvature = HostDiagonalCurvature<Double>(context: context, values: d)
        let lambda = 0.1
        let bs: [[Double]] = (0..<2).map { randomValues(dimension, seed: UInt64(22 + $0)) }
        let g = try VectorBatch<Double>(context: context, vectors: bs)
        let reference = bs.flatMap { b in b.indices.map { b[$0] / (d[$0] + lambda) } }
        let options = ConjugateGradientOptions(tolerance: 1e-13, maxIterations: 4 * dimension + 10)

        #expect(NaturalGradientSolver.automaticMethod(for: curvature, damping: lambda) == .cg)
        for method in [SolveMethod.automatic, .pcg] {
            let solution = try NaturalGradientSolver.solve(curvature, g, damping: lambda, method: method, options: options)
            #expect(solution.method == (method == .automatic ? .cg : method))
            #expect(relativeError(try solution.x.download().flatMap { $0 }, reference) < 1e-11, "\(method)")
            #expect(solution.reports.allSatisfy { $0.status == .converged }, "\(method)")
        }
        for method in [SolveMethod.cholesky, .woodbury, .kfac] {
            let error = #expect(throws: NaturalGradientError.self) {
                try NaturalGradientSolver.solve(curvature, g, damping: lambda, method: method)
            }
            #expect(error?.description.contains("'method'") == true, "\(method)")
        }
    }

    /// (b) NaturalGradientOptimizer on the convex quadratic `f(θ) = ½ Σ d_i (θ_i − θ*_i)²`,
    /// d the diagonal of the empirical Fisher of fixed rows U: with step size η each step
    /// contracts `θ − θ*` by `1 − η d/(d + λ)` exactly, which the float64 closed form
    /// checks after 12 steps, through a moving average (d averaged with itself stays d,
    /// only if `accumulate` is right) and a save/restore in the middle.
    @Test func trainsAConvexQuadratic() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (rows, dimension) = (5, 33)
        let u: [Double] = randomValues(rows * dimension, seed: 31)
        let d = (0..<dimension).map { i -> Double in
            var sum = 0.0
            for row in 0..<rows { sum += u[row * dimension + i] * u[row * dimension + i] }
            return sum / Double(rows)
        }
        let target: [Double] = randomValues(dimension, seed: 32)
        let start: [Double] = randomValues(dimension, seed: 33)
        let (eta, lambda) = (0.5, 1e-3)
        func loss(_ theta: [Double]) -> Double {
            var sum = 0.0
            for i in 0..<dimension { sum += 0.5 * d[i] * (theta[i] - target[i]) * (theta[i] - target[i]) }
            return sum
        }

        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        options.damping = .fixed(lambda)
        options.stepSize = .learningRate(eta)
        options.curvatureDecay = 0.5
        options.conjugateGradient = ConjugateGradientOptions(tolerance: 1e-13, maxIterations: 200)
        let builder = CurvatureBuilder<Double>(
            build: { try HostDiagonalCurvature(factor: $0) },
            restore: { saved in
                guard case let .diagonal(values) = saved else {
                    throw NaturalGradientError.invalidArgument(name: "state", reason: "not a diagonal")
                }
                return HostDiagonalCurvature<Double>(context: context, values: values)
            })
        let optimizer = try NaturalGradientOptimizer<Double>(
            context: context, dimension: dimension, options: options, curvature: builder)

        var theta = start
        var losses = [loss(theta)]
        func gradient(_ theta: [Double]) -> [Double] { (0..<dimension).map { d[$0] * (theta[$0] - target[$0]) } }
        for _ in 0..<6 {
            let report = try optimizer.step(
                parameters: &theta, gradient: gradient(theta), curvature: .perSampleGradients(u, samples: rows))
            #expect(report.method == .cg && report.solve?.status == .converged)
            losses.append(loss(theta))
        }
        // Save (through JSON) and continue in a fresh optimizer built the same way.
        let saved = try JSONDecoder().decode(
            NaturalGradientOptimizerState.self, from: JSONEncoder().encode(try optimizer.state()))
        // The moving average of d with itself is d again.
        guard case let .diagonal(savedDiagonal)? = saved.curvature else {
            Issue.record("saved curvature \(String(describing: saved.curvature))")
            return
        }
        #expect(relativeError(savedDiagonal, d) < 1e-14)
        let resumed = try NaturalGradientOptimizer<Double>(
            context: context, dimension: dimension, options: options, curvature: builder)
        try resumed.restore(saved)
        var uninterrupted = theta
        try optimizer.step(
            parameters: &uninterrupted, gradient: gradient(theta), curvature: .perSampleGradients(u, samples: rows))
        for step in 0..<6 {
            try resumed.step(
                parameters: &theta, gradient: gradient(theta), curvature: .perSampleGradients(u, samples: rows))
            if step == 0 { #expect(theta == uninterrupted) }
            losses.append(loss(theta))
        }
        #expect(resumed.stepCount == 12)

        let expected = (0..<dimension).map { i in
            target[i] + pow(1 - eta * d[i] / (d[i] + lambda), 12) * (start[i] - target[i])
        }
        #expect(relativeError(theta, expected) < 1e-9)
        #expect(zip(losses, losses.dropFirst()).allSatisfy { $1 < $0 }, "\(losses)")
        #expect(try #require(losses.last) < 1e-3 * losses[0])
    }

    /// The optimizer asks the representation, so a direct method it lacks fails at the first
    /// solve naming `method`, and a moving average needs `FactorAccumulatingCurvature`.
    @Test func capabilitiesTheRepresentationLacksAreRefused() throws {
        let context = try TestDevice.context()
        let u: [Float] = randomValues(2 * 4, seed: 41)
        let gradient: [Float] = randomValues(4, seed: 42)
        func firstStepError(
            _ change: (inout NaturalGradientOptimizerOptions) -> Void, _ builder: CurvatureBuilder<Float>
        )
            -> String?
        {
            var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
            change(&options)
            do {
                let optimizer = try NaturalGradientOptimizer<Float>(
                    context: context, dimension: 4, options: options, curvature: builder)
                _ = try optimizer.update(parameters: gradient, gradient: gradient, curvature: .perSampleGradients(u, samples: 2))
                return nil
            } catch let NaturalGradientError.invalidArgument(name, _) {
                return name
            } catch {
                return "unexpected \(error)"
            }
        }
        let host = CurvatureBuilder<Float>(build: { try HostDiagonalCurvature(factor: $0) })
        #expect(firstStepError({ $0.method = .cholesky }, host) == "method")
        #expect(firstStepError({ $0.method = .pcg }, host) == nil)
        // The library's implicit representation cannot average; as a builder it is refused for β > 0.
        let implicit = CurvatureBuilder<Float>(build: { try ImplicitCurvature(factor: $0) })
        #expect(firstStepError({ $0.curvatureDecay = 0.5 }, implicit) == "curvatureDecay")
        #expect(firstStepError({ $0.curvature = .kfac(layers: [LayerShape(outputs: 2, inputs: 2)]) }, host) == "curvature")
        // No restore closure: the state saves, but does not restore.
        let optimizer = try NaturalGradientOptimizer<Float>(
            context: context, dimension: 4, options: NaturalGradientOptimizerOptions(curvature: .empiricalFisher),
            curvature: host)
        _ = try optimizer.update(parameters: gradient, gradient: gradient, curvature: .perSampleGradients(u, samples: 2))
        let state = try optimizer.state()
        #expect(throws: NaturalGradientError.self) { try optimizer.restore(state) }
    }
}
