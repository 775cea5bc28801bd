import Foundation
import NaturalGradientTestSupport
import Testing

@testable import NaturalGradient

/// The quadratic model measured with a caller's curvature (`CurvatureGram`): the step size,
/// the momentum weight and the predicted change come from that curvature, not from the
/// optimizer's own, and KFAC-JAX's unbounded rule and periodic Levenberg-Marquardt damping.
@Suite("Quadratic model with a caller's curvature")
struct QuadraticModelTests {
    /// An explicit symmetric positive definite C (P x P, row-major) as a Gram, in float64.
    struct DenseGram: CurvatureGram {
        let c: [Double]
        let p: Int
        func gram(_ directions: [[Double]]) throws -> [Double] {
            directions.flatMap { u in
                directions.map { v in
                    var sum = 0.0
                    for i in 0..<p { for j in 0..<p { sum += u[i] * c[i * p + j] * v[j] } }
                    return sum
                }
            }
        }
    }

    /// A Gram that returns what it is told to (for the error paths).
    struct FixedGram: CurvatureGram {
        let values: [Double]
        func gram(_: [[Double]]) throws -> [Double] { values }
    }

    /// `C = BᵀB / rows + shift I` from random B: a curvature unlike the optimizer's own.
    static func spd(_ p: Int, seed: UInt64, shift: Double = 0.1) -> [Double] {
        let rows = p + 3
        let b: [Double] = randomValues(rows * p, seed: seed)
        var c = [Double](repeating: 0, count: p * p)
        for i in 0..<p {
            for j in 0..<p {
                c[i * p + j] = (0..<rows).reduce(0.0) { $0 + b[$1 * p + i] * b[$1 * p + j] } / Double(rows)
            }
            c[i * p + i] += shift
        }
        return c
    }

    static func apply(_ c: [Double], _ v: [Double]) -> [Double] {
        let p = v.count
        return (0..<p).map { i in (0..<p).reduce(0.0) { $0 + c[i * p + $1] * v[$1] } }
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    /// Two steps of the unbounded rule at a fixed λ: each δ is stationary for the damped
    /// model of the caller's C in the span it was chosen from (r = g + (C + λI)δ ⊥ δ, and
    /// on the second step ⊥ δ_prev too), and the predicted change is the undamped
    /// `gᵀδ + ½ δᵀCδ` of that C. P = 13 from 11 samples, so the optimizer's own empirical
    /// Fisher is singular and unlike C.
    @Test func theUnboundedStepMinimisesTheCallersModel() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (n, p, lambda) = (11, 13, 0.05)
        let c = Self.spd(p, seed: 41)
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        (options.representation, options.method) = (.dense, .cholesky)
        options.damping = .fixed(lambda)
        options.stepSize = .unboundedQuadraticModel
        options.momentum = 0.6
        let optimizer = try NaturalGradientOptimizer<Double>(context: context, dimension: p, options: options)
        var parameters: [Double] = randomValues(p, seed: 42)
        var previous: [Double]?
        for step in 0..<2 {
            let g: [Double] = randomValues(p, seed: UInt64(43 + step))
            let report = try optimizer.step(
                parameters: &parameters, gradient: g, curvature: .perSampleGradients(randomValues(n * p, seed: 50), samples: n),
                modelCurvature: DenseGram(c: c, p: p))
            let delta = report.update
            let cd = Self.apply(c, delta)
            let r = (0..<p).map { g[$0] + cd[$0] + lambda * delta[$0] }
            let scale = Self.dot(g, g).squareRoot() * Self.dot(delta, delta).squareRoot()
            #expect(abs(Self.dot(r, delta)) < 1e-10 * scale, "step \(step): rᵀδ = \(Self.dot(r, delta))")
            if let previous {
                let scalePrevious = Self.dot(g, g).squareRoot() * Self.dot(previous, previous).squareRoot()
                #expect(abs(Self.dot(r, previous)) < 1e-10 * scalePrevious, "rᵀδ_prev = \(Self.dot(r, previous))")
            }
            let predicted = try #require(report.predictedChange)
            let expected = Self.dot(g, delta) + 0.5 * Self.dot(delta, cd)
            #expect(abs(predicted - expected) < 1e-10 * abs(expected), "step \(step): \(predicted) vs \(expected)")
            #expect(predicted < 0)
            previous = delta
        }
    }

    /// The same step without a caller's Gram measures with the optimizer's own curvature
    /// (the old behaviour): then r = g + (F + λI)δ ⊥ δ for F the batch's empirical Fisher.
    @Test func withoutAGramTheModelUsesTheOwnCurvature() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (n, p, lambda) = (11, 13, 0.05)
        let u: [Double] = randomValues(n * p, seed: 50)
        var f = [Double](repeating: 0, count: p * p)
        for i in 0..<p {
            for j in 0..<p { f[i * p + j] = (0..<n).reduce(0.0) { $0 + u[$1 * p + i] * u[$1 * p + j] } / Double(n) }
        }
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        (options.representation, options.method, options.damping) = (.dense, .cholesky, .fixed(lambda))
        options.stepSize = .unboundedQuadraticModel
        let optimizer = try NaturalGradientOptimizer<Double>(context: context, dimension: p, options: options)
        var parameters: [Double] = randomValues(p, seed: 42)
        let g: [Double] = randomValues(p, seed: 43)
        let report = try optimizer.step(parameters: &parameters, gradient: g, curvature: .perSampleGradients(u, samples: n))
        // The direction is the exact natural gradient of F, so its model minimiser is α = 1.
        #expect(abs(report.stepSize - 1) < 1e-9, "α = \(report.stepSize)")
        let fd = Self.apply(f, report.update)
        let r = (0..<p).map { g[$0] + fd[$0] + lambda * report.update[$0] }
        #expect(Self.dot(r, r).squareRoot() < 1e-9 * Self.dot(g, g).squareRoot(), "r = \(r)")
    }

    /// KFAC-JAX's damping: λ moves by ω = 0.9⁵ only after steps 4 and 9, up for a step
    /// that raised the loss (ρ < 0) and down for one the model predicted exactly (ρ = 1),
    /// and the loss at θ + δ is asked for on those steps only.
    @Test func periodicLevenbergMarquardtAdaptsEveryIntervalSteps() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (n, p) = (6, 5)
        let c = Self.spd(p, seed: 61)
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        (options.representation, options.method) = (.dense, .cholesky)
        options.damping = .periodicLevenbergMarquardt(initial: 0.5)
        options.stepSize = .unboundedQuadraticModel
        let optimizer = try NaturalGradientOptimizer<Double>(context: context, dimension: p, options: options)
        let omega = pow(0.9, 5.0)
        var parameters: [Double] = randomValues(p, seed: 62)
        var asked: [Int] = []
        var lambdas: [Double] = []
        for step in 0..<10 {
            let g: [Double] = randomValues(p, seed: UInt64(63 + step))
            let before = 1.0
            let start = parameters
            // Step 4: the loss rose (ρ < 0); step 9: the model's own prediction (ρ = 1).
            let lossAt: ([Double]) throws -> Double = { candidate in
                asked.append(step)
                return step == 4 ? before + 1 : before + Self.predicted(c, g, zip(candidate, start).map { $0 - $1 })
            }
            let report = try optimizer.step(
                parameters: &parameters, gradient: g, curvature: .perSampleGradients(randomValues(n * p, seed: 70), samples: n),
                loss: before, lossAt: lossAt, modelCurvature: DenseGram(c: c, p: p))
            lambdas.append(optimizer.damping)
            #expect((report.reductionRatio != nil) == (step == 4 || step == 9), "step \(step)")
        }
        #expect(asked == [4, 9])
        for step in 0..<4 { #expect(lambdas[step] == 0.5) }
        for step in 4..<9 { #expect(abs(lambdas[step] - 0.5 / omega) < 1e-12 * lambdas[step]) }
        #expect(abs(lambdas[9] - 0.5) < 1e-12)
    }

    static func predicted(_ c: [Double], _ g: [Double], _ delta: [Double]) -> Double {
        dot(g, delta) + 0.5 * dot(delta, apply(c, delta))
    }

    @Test func periodicRuleAndItsArguments() throws {
        var policy = try PeriodicLevenbergMarquardtDamping(initial: 1, decay: 0.5, interval: 2, minimum: 0.2, maximum: 3)
        #expect(!policy.adapts(atStep: 0) && policy.adapts(atStep: 1) && !policy.adapts(atStep: 2) && policy.adapts(atStep: 3))
        policy.update(reductionRatio: .nan) // counts as < ¼: λ / 0.25
        #expect(policy.damping == 3) // clamped
        policy.update(reductionRatio: 0.5)
        #expect(policy.damping == 3)
        policy.update(reductionRatio: 0.9)
        #expect(policy.damping == 0.75)
        policy.update(reductionRatio: 1)
        #expect(policy.damping == 0.2) // clamped
        func name(_ body: () throws -> Void) -> String? {
            do { try body() } catch let NaturalGradientError.invalidArgument(name, _) { return name } catch {}
            return nil
        }
        #expect(name { _ = try PeriodicLevenbergMarquardtDamping(initial: 1, decay: 1) } == "decay")
        #expect(name { _ = try PeriodicLevenbergMarquardtDamping(initial: 1, decay: .nan) } == "decay")
        #expect(name { _ = try PeriodicLevenbergMarquardtDamping(initial: 1, interval: 0) } == "interval")
        #expect(name { _ = try PeriodicLevenbergMarquardtDamping(initial: -1) } == "initial")
        #expect(name { _ = try PeriodicLevenbergMarquardtDamping(initial: 1, minimum: 2, maximum: 1) } == "maximum")
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        options.damping = .periodicLevenbergMarquardt(initial: 1, interval: 0)
        #expect(name { try options.validate(dimension: 3) } == "interval")
    }

    /// A Gram of the wrong size, with a NaN or with a negative vᵀCv is refused by name.
    @Test func aBadGramIsRefusedByName() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let p = 4
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        (options.representation, options.method) = (.dense, .cholesky)
        options.stepSize = .unboundedQuadraticModel
        let optimizer = try NaturalGradientOptimizer<Double>(context: context, dimension: p, options: options)
        let rows: CurvatureInput<Double> = .perSampleGradients(randomValues(3 * p, seed: 80), samples: 3)
        for (values, needle) in [([1.0, 2.0], "expected 1"), ([Double.nan], "NaN"), ([-1.0], "negative")] {
            do {
                _ = try optimizer.update(
                    parameters: [1, 2, 3, 4], gradient: [1, 0, 1, 0], curvature: rows, modelCurvature: FixedGram(values: values))
                Issue.record("\(values) was accepted")
            } catch let NaturalGradientError.invalidArgument(name, reason) {
                #expect(name == "modelCurvature" && reason.contains(needle), "\(reason)")
            }
        }
        #expect(optimizer.stepCount == 0)
    }
}
