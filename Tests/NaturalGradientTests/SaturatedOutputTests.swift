import Foundation
import NaturalGradient
import Testing
import NaturalGradientTestSupport

/// Output metrics at saturated outputs (a logit far from 0, one class far ahead): where
/// `1 − p` cancels, against references computed in 38-digit `Decimal` arithmetic from the
/// naive formulas, on the host (float64) and on the device (float32 and float64).
@Suite struct SaturatedOutputTests {
    /// `p(1 − p)` for p = σ(z), in Decimal: the cancellation `1 − p` keeps ~20 digits there.
    static func bernoulliReference(_ z: Double) -> Decimal {
        let e = Decimal(exp(-abs(z))) // exp of a non-positive value: no overflow, full precision
        let p = 1 / (1 + e)
        return p * (1 - p)
    }

    /// `diag(p) − ppᵀ` for p = softmax(z), in Decimal.
    static func categoricalReference(_ z: [Double]) -> [Decimal] {
        let top = z.max() ?? 0
        let e = z.map { Decimal(exp($0 - top)) }
        let sum = e.reduce(Decimal(0), +)
        let p = e.map { $0 / sum }
        let o = z.count
        return (0..<(o * o)).map { index in
            let (i, j) = (index / o, index % o)
            return (i == j ? p[i] : 0) - p[i] * p[j]
        }
    }

    /// The largest entrywise relative error `|m − ref| / |ref|` (entries span 40 decades).
    static func entrywiseError(_ values: [Double], _ reference: [Decimal]) -> Double {
        zip(values, reference).map { value, exact in
            let r = NSDecimalNumber(decimal: exact).doubleValue
            return r == 0 ? abs(value) : abs(value - r) / abs(r)
        }.max() ?? 0
    }

    /// Logits whose `1 − p` a 38-digit Decimal still resolves to better than 1e-15.
    static let logits: [Double] = [0.3, -4, 17, 30, 40, -40]

    /// Categorical outputs with one logit far ahead, at awkward class counts.
    static var categoricalOutputs: [[Double]] {
        [
            [40, 0, 0],
            [0, 40, -3, 1, 0.5, -1, 2], // 7 classes
            [35, 34.5], // two close, both saturated against nothing: no cancellation, a control
            randomValues(33, seed: 5).enumerated().map { $0.offset == 20 ? 30 : 2 * $0.element },
        ]
    }

    @Test func bernoulliOnTheHostKeepsItsDigits() throws {
        for z in Self.logits {
            let m = try SimilarityMeasure.kullbackLeibler.metric(for: .bernoulli, at: [z])[0]
            let reference = NSDecimalNumber(decimal: Self.bernoulliReference(z)).doubleValue
            #expect(abs(m - reference) <= 1e-14 * reference, "z = \(z): \(m) vs \(reference)")
            let b = try SimilarityMeasure.kullbackLeibler.squareRoot(for: .bernoulli, at: [z])[0]
            #expect(abs(b * b - reference) <= 1e-14 * reference, "z = \(z)")
            // An f-divergence scales the same form by f''(1).
            let chi2 = try SimilarityMeasure.fDivergence(.chiSquared).metric(for: .bernoulli, at: [z])[0]
            #expect(abs(chi2 - 2 * reference) <= 2e-14 * reference, "χ², z = \(z)")
        }
        // Beyond Decimal's digits: p(1 − p) = e/(1 + e)² with e = exp(−|z|), which is e to
        // within 2e relative (2e-43 at |z| = 100, far below float64's epsilon).
        for z in [60.0, -100] {
            let e = exp(-abs(z))
            let m = try SimilarityMeasure.kullbackLeibler.metric(for: .bernoulli, at: [z])[0]
            #expect(abs(m - e) <= 1e-14 * e, "z = \(z): \(m)")
        }
    }

    @Test func categoricalOnTheHostKeepsItsDigits() throws {
        for z in Self.categoricalOutputs {
            let family = PredictiveFamily.categorical(classes: z.count)
            let reference = Self.categoricalReference(z)
            let m = try SimilarityMeasure.kullbackLeibler.metric(for: family, at: z)
            #expect(Self.entrywiseError(m, reference) < 1e-13, "metric at \(z.prefix(4))")
            let b = try SimilarityMeasure.kullbackLeibler.squareRoot(for: family, at: z)
            let o = z.count
            let btb = (0..<(o * o)).map { index in
                (0..<o).reduce(0.0) { $0 + b[$1 * o + index / o] * b[$1 * o + index % o] }
            }
            #expect(Self.entrywiseError(btb, reference) < 1e-12, "BᵀB at \(z.prefix(4))")
        }
    }

    /// `B(z)ᵀB(z)` on the device with J = I, and the factor B(z) itself (the rows of U).
    func deviceMetric<T: DeviceScalar>(_: T.Type, family: PredictiveFamily, z: [Double]) throws -> [Double] {
        try deviceFactorAndMetric(T.self, family: family, z: z).metric
    }

    func deviceFactorAndMetric<T: DeviceScalar>(
        _: T.Type, family: PredictiveFamily, z: [Double]
    ) throws
        -> (factor: [Double], metric: [Double])
    {
        let context = try TestDevice.context()
        let o = z.count
        let identity = (0..<(o * o)).map { $0 / o == $0 % o ? 1.0 : 0.0 }
        let factor = try CurvatureFactor<T>.formalMetric(
            outputJacobians: Buffer(context: context, copying: T.narrowed(identity)),
            outputs: Buffer(context: context, copying: T.narrowed(z)), samples: 1, dimension: o, family: family,
            measure: .kullbackLeibler)
        return (T.widened(try factor.matrix.download()), T.widened(try DenseCurvature(factor: factor).download()))
    }

    func checkDevice<T: DeviceScalar>(_: T.Type) throws {
        // float32: every value below stays a normal number (≥ 1.2e-38), so a device that
        // flushes denormals to zero computes it too.
        let tolerance = T.self == Double.self ? 1e-12 : 2e-5
        for z in Self.logits {
            let m = try deviceMetric(T.self, family: .bernoulli, z: [z])
            #expect(Self.entrywiseError(m, [Self.bernoulliReference(z)]) < tolerance, "Bernoulli z = \(z), \(T.self)")
        }
        for z in Self.categoricalOutputs {
            let family = PredictiveFamily.categorical(classes: z.count)
            let (b, m) = try deviceFactorAndMetric(T.self, family: family, z: z)
            // B's own entries, against the host's root: the top class's diagonal entry
            // √p (1 − p) is 2e-9·4e-18 at logit 40, and 0 when 1 − p is formed directly.
            let root = try SimilarityMeasure.kullbackLeibler.squareRoot(for: family, at: z)
            for (index, (value, exact)) in zip(b, root).enumerated() where exact != 0 {
                #expect(abs(value - exact) <= tolerance * abs(exact), "B entry \(index) of \(z.count) classes, \(T.self)")
            }
            let reference = Self.categoricalReference(z)
            // float32 off-diagonal entries between two tiny probabilities (~1e-35 for logit 40)
            // are below what float32 products resolve; compare those to the metric's scale.
            let scale = NSDecimalNumber(decimal: reference.map { abs($0) }.max() ?? 1).doubleValue
            let floor = T.self == Double.self ? 0 : 1e-30 * scale
            for (index, (value, exact)) in zip(m, reference).enumerated() {
                let r = NSDecimalNumber(decimal: exact).doubleValue
                #expect(
                    abs(value - r) <= tolerance * abs(r) + floor,
                    "categorical \(z.count) classes, entry \(index): \(value) vs \(r), \(T.self)")
            }
        }
    }

    /// With a general Jacobian the top class's factor row `√p (J_top − Σ p_c J_c)` is a
    /// difference of nearly equal rows at p_top ≈ 1: computed directly, its float32
    /// rounding (1e-7·|J|) swamps the true 1e-17 and JᵀMJ is 1000x off.
    func checkJacobian<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let dimension = 13
        for z in Self.categoricalOutputs {
            let o = z.count
            let m = Self.categoricalReference(z).map { NSDecimalNumber(decimal: $0).doubleValue }
            let j: [Double] = randomValues(o * dimension, seed: UInt64(o))
            var reference = [Double](repeating: 0, count: dimension * dimension)
            for a in 0..<dimension {
                for b in 0..<dimension {
                    for c in 0..<o {
                        for d in 0..<o {
                            reference[a * dimension + b] += j[c * dimension + a] * m[c * o + d] * j[d * dimension + b]
                        }
                    }
                }
            }
            let factor = try CurvatureFactor<T>.formalMetric(
                outputJacobians: Buffer(context: context, copying: T.narrowed(j)),
                outputs: Buffer(context: context, copying: T.narrowed(z)), samples: 1, dimension: dimension,
                family: .categorical(classes: o), measure: .kullbackLeibler)
            let dense = try DenseCurvature(factor: factor).download()
            #expect(relativeError(dense, reference) < tolerance(for: T.self), "\(o) classes, \(T.self)")
        }
    }

    @Test func floatKernelsKeepTheirDigits() throws {
        try checkDevice(Float.self)
        try checkJacobian(Float.self)
    }

    @Test func doubleKernelsKeepTheirDigits() throws {
        try #require(deviceSupports(Double.self))
        try checkDevice(Double.self)
        try checkJacobian(Double.self)
    }
}
