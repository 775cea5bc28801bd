import Foundation
import NaturalGradient
import Testing
import NaturalGradientTestSupport

// Known answers and finite-difference checks for the output metrics of similarity measures.
// Every divergence below is written here independently of the library's closed forms; the
// library's custom-measure path differentiates it, and the closed form must agree.

// MARK: - Divergences written out (float64)

private func softmax(_ z: [Double]) -> [Double] {
    let e = z.map { exp($0 - (z.max() ?? 0)) }
    return e.map { $0 / e.reduce(0, +) }
}

private func sigmoid(_ z: Double) -> Double { 1 / (1 + exp(-z)) }

/// f-divergences between discrete distributions p (from z) and q (from z').
private enum Discrete {
    static func kl(_ p: [Double], _ q: [Double]) -> Double { zip(p, q).reduce(0) { $0 + $1.0 * log($1.0 / $1.1) } }
    static func reverseKL(_ p: [Double], _ q: [Double]) -> Double { kl(q, p) }
    static func hellinger(_ p: [Double], _ q: [Double]) -> Double {
        zip(p, q).reduce(0) { $0 + pow($1.0.squareRoot() - $1.1.squareRoot(), 2) }
    }
    static func chiSquared(_ p: [Double], _ q: [Double]) -> Double { zip(p, q).reduce(0) { $0 + pow($1.0 - $1.1, 2) / $1.1 } }
    static func jensenShannon(_ p: [Double], _ q: [Double]) -> Double {
        let m = zip(p, q).map { ($0 + $1) / 2 }
        return kl(p, m) / 2 + kl(q, m) / 2
    }
    static let all: [(FDivergence, @Sendable ([Double], [Double]) -> Double)] = [
        (.kullbackLeibler, kl), (.reverseKullbackLeibler, reverseKL), (.squaredHellinger, hellinger),
        (.chiSquared, chiSquared), (.jensenShannon, jensenShannon),
    ]
}

/// (mean, standard deviation) of each coordinate of a diagonal Gaussian z.
private func gaussianMoments(_ z: [Double], _ parametrization: GaussianParametrization) -> (mu: [Double], sigma: [Double]) {
    let d = z.count / 2
    let s = Array(z[d...])
    switch parametrization {
    case .meanStandardDeviation: return (Array(z[..<d]), s)
    case .meanLogStandardDeviation: return (Array(z[..<d]), s.map(exp))
    case .meanVariance: return (Array(z[..<d]), s.map { $0.squareRoot() })
    }
}

private func gaussianKL(_ z: [Double], _ w: [Double], _ parametrization: GaussianParametrization) -> Double {
    let (m0, s0) = gaussianMoments(z, parametrization)
    let (m1, s1) = gaussianMoments(w, parametrization)
    var sum = 0.0
    for i in 0..<m0.count {
        let spread: Double = s0[i] * s0[i] + (m0[i] - m1[i]) * (m0[i] - m1[i])
        sum += log(s1[i] / s0[i]) + spread / (2 * s1[i] * s1[i]) - 0.5
    }
    return sum
}

private func gaussianW2(_ z: [Double], _ w: [Double], _ parametrization: GaussianParametrization) -> Double {
    let (m0, s0) = gaussianMoments(z, parametrization)
    let (m1, s1) = gaussianMoments(w, parametrization)
    var sum = 0.0
    for i in 0..<m0.count {
        let (dm, ds) = (m0[i] - m1[i], s0[i] - s1[i])
        sum += dm * dm + ds * ds
    }
    return sum
}

// MARK: - Small dense linear algebra for the full-covariance references

/// Cyclic Jacobi eigendecomposition of a small symmetric matrix: (values, vectors as columns).
private func jacobiEigen(_ matrix: [Double], _ n: Int) -> (values: [Double], vectors: [Double]) {
    var a = matrix
    var v = (0..<(n * n)).map { $0 / n == $0 % n ? 1.0 : 0.0 }
    for _ in 0..<100 {
        var off = 0.0
        for p in 0..<n { for q in (p + 1)..<max(n, p + 1) { off += a[p * n + q] * a[p * n + q] } }
        if off < 1e-30 { break }
        for p in 0..<n {
            for q in (p + 1)..<max(n, p + 1) where a[p * n + q] != 0 {
                let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot()
                let s = t * c
                for k in 0..<n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q])
                    a[k * n + p] = c * akp - s * akq
                    a[k * n + q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k])
                    a[p * n + k] = c * apk - s * aqk
                    a[q * n + k] = s * apk + c * aqk
                }
                for k in 0..<n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q])
                    v[k * n + p] = c * vkp - s * vkq
                    v[k * n + q] = s * vkp + c * vkq
                }
            }
        }
    }
    return ((0..<n).map { a[$0 * n + $0] }, v)
}

private func matrixFunction(_ matrix: [Double], _ n: Int, _ f: (Double) -> Double) -> [Double] {
    let (values, v) = jacobiEigen(matrix, n)
    var out = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0..<n { for k in 0..<n { out[i * n + j] += v[i * n + k] * f(values[k]) * v[j * n + k] } } }
    return out
}

private func multiply(_ a: [Double], _ b: [Double], _ n: Int) -> [Double] {
    var out = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0..<n { for k in 0..<n { out[i * n + j] += a[i * n + k] * b[k * n + j] } } }
    return out
}

private func trace(_ a: [Double], _ n: Int) -> Double { (0..<n).reduce(0) { $0 + a[$1 * n + $1] } }

/// (μ, Σ) from a full-covariance z: the mean, then the lower triangle row by row.
private func unpackFull(_ z: [Double], _ d: Int) -> (mu: [Double], sigma: [Double]) {
    var sigma = [Double](repeating: 0, count: d * d)
    var index = d
    for i in 0..<d {
        for j in 0...i {
            sigma[i * d + j] = z[index]
            sigma[j * d + i] = z[index]
            index += 1
        }
    }
    return (Array(z[..<d]), sigma)
}

private func fullKL(_ z: [Double], _ w: [Double], _ d: Int) -> Double {
    let (m0, s0) = unpackFull(z, d)
    let (m1, s1) = unpackFull(w, d)
    let inverse1 = matrixFunction(s1, d) { 1 / $0 }
    let logDet = { (s: [Double]) in jacobiEigen(s, d).values.reduce(0) { $0 + log($1) } }
    var quadratic = 0.0
    for i in 0..<d { for j in 0..<d { quadratic += (m1[i] - m0[i]) * inverse1[i * d + j] * (m1[j] - m0[j]) } }
    return 0.5 * (trace(multiply(inverse1, s0, d), d) + quadratic - Double(d) + logDet(s1) - logDet(s0))
}

private func fullW2(_ z: [Double], _ w: [Double], _ d: Int) -> Double {
    let (m0, s0) = unpackFull(z, d)
    let (m1, s1) = unpackFull(w, d)
    let root0 = matrixFunction(s0, d) { $0.squareRoot() }
    let cross = matrixFunction(multiply(multiply(root0, s1, d), root0, d), d) { max($0, 0).squareRoot() }
    let means = zip(m0, m1).reduce(0) { $0 + pow($1.0 - $1.1, 2) }
    return means + trace(s0, d) + trace(s1, d) - 2 * trace(cross, d)
}

/// A random symmetric positive-definite d x d matrix packed as a full-covariance z tail.
private func randomFullOutput(_ d: Int, seed: UInt64) -> [Double] {
    let a: [Double] = randomValues(d * d, seed: seed)
    var sigma = [Double](repeating: 0, count: d * d)
    for i in 0..<d { for j in 0..<d { for k in 0..<d { sigma[i * d + j] += a[i * d + k] * a[j * d + k] } } }
    for i in 0..<d { sigma[i * d + i] += 0.5 }
    var z: [Double] = randomValues(d, seed: seed + 1)
    for i in 0..<d { for j in 0...i { z.append(sigma[i * d + j]) } }
    return z
}

private func diagonal(_ values: [Double]) -> [Double] {
    let n = values.count
    return (0..<(n * n)).map { $0 / n == $0 % n ? values[$0 / n] : 0 }
}

private func maxDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// The finite-difference metric of `divergence` at z through the library's custom path.
private func numericMetric(
    _ z: [Double], typicalScale: [Double]? = nil, _ divergence: @escaping @Sendable ([Double], [Double]) -> Double
) throws -> [Double] {
    try CustomSimilarity(name: "test", typicalScale: typicalScale, divergence).metricEstimate(at: z).metric
}

// MARK: - Known answers

@Suite struct SimilarityMeasureKnownAnswerTests {
    static let sigmas = [0.3, 0.7, 1.3, 4.0]

    @Test(arguments: sigmas) func univariateGaussianKL(sigma: Double) throws {
        let mu = 0.4
        let standard = try SimilarityMeasure.kullbackLeibler.metric(
            for: .gaussian(dimension: 1, parametrization: .meanStandardDeviation), at: [mu, sigma])
        #expect(maxRelativeError(standard, diagonal([1 / (sigma * sigma), 2 / (sigma * sigma)])) < 1e-14)
        let variance = try SimilarityMeasure.kullbackLeibler.metric(
            for: .gaussian(dimension: 1, parametrization: .meanVariance), at: [mu, sigma * sigma])
        #expect(maxRelativeError(variance, diagonal([1 / (sigma * sigma), 1 / (2 * pow(sigma, 4))])) < 1e-14)
        let logarithmic = try SimilarityMeasure.kullbackLeibler.metric(
            for: .gaussian(dimension: 1, parametrization: .meanLogStandardDeviation), at: [mu, log(sigma)])
        #expect(maxRelativeError(logarithmic, diagonal([1 / (sigma * sigma), 2])) < 1e-14)
    }

    @Test(arguments: sigmas) func univariateGaussianWasserstein(sigma: Double) throws {
        let w2 = SimilarityMeasure.wasserstein2
        let standard = try w2.metric(for: .gaussian(dimension: 1, parametrization: .meanStandardDeviation), at: [0.4, sigma])
        #expect(maxRelativeError(standard, diagonal([2, 2])) < 1e-15)
        let variance = try w2.metric(for: .gaussian(dimension: 1, parametrization: .meanVariance), at: [0.4, sigma * sigma])
        #expect(maxRelativeError(variance, diagonal([2, 1 / (2 * sigma * sigma)])) < 1e-14)
        let logarithmic = try w2.metric(
            for: .gaussian(dimension: 1, parametrization: .meanLogStandardDeviation), at: [0.4, log(sigma)])
        #expect(maxRelativeError(logarithmic, diagonal([2, 2 * sigma * sigma])) < 1e-14)
    }

    /// Hellinger ½, χ² 2, Jensen-Shannon ¼ times the KL metric, at random points.
    @Test(arguments: [UInt64(1), 2, 3]) func fDivergencesScaleTheFisherMetric(seed: UInt64) throws {
        let logits: [Double] = randomValues(5, seed: seed).map { 3 * $0 }
        let families: [(PredictiveFamily, [Double])] = [(.categorical(classes: 5), logits), (.bernoulli, [logits[0]])]
        for (family, z) in families {
            let fisher = try SimilarityMeasure.kullbackLeibler.metric(for: family, at: z)
            for (divergence, multiple) in [
                (FDivergence.squaredHellinger, 0.5), (.chiSquared, 2), (.jensenShannon, 0.25),
                (.reverseKullbackLeibler, 1),
            ] {
                let metric = try SimilarityMeasure.fDivergence(divergence).metric(for: family, at: z)
                #expect(maxRelativeError(metric, fisher.map { multiple * $0 }) < 1e-15, "\(divergence.name) \(family)")
            }
        }
    }

    @Test(arguments: [2, 3, 10]) func softmaxMetricAndItsFactor(classes: Int) throws {
        let z: [Double] = randomValues(classes, seed: UInt64(classes)).map { 4 * $0 }
        let p = softmax(z)
        let expected = (0..<(classes * classes)).map { index -> Double in
            let (i, j) = (index / classes, index % classes)
            return (i == j ? p[i] : 0) - p[i] * p[j]
        }
        let family = PredictiveFamily.categorical(classes: classes)
        let metric = try SimilarityMeasure.kullbackLeibler.metric(for: family, at: z)
        #expect(maxRelativeError(metric, expected) < 1e-14)
        let b = try SimilarityMeasure.kullbackLeibler.squareRoot(for: family, at: z)
        let expectedRoot = (0..<(classes * classes)).map { index -> Double in
            let (i, j) = (index / classes, index % classes)
            return (i == j ? p[i].squareRoot() : 0) - p[i].squareRoot() * p[j]
        }
        #expect(maxRelativeError(b, expectedRoot) < 1e-14)
    }

    /// BᵀB = M for every family and measure the library has a closed form for.
    @Test func everySquareRootSquaresToItsMetric() throws {
        for (family, z, measure) in SimilarityCases.all {
            let o = family.outputCount
            let m = try measure.metric(for: family, at: z)
            let b = try measure.squareRoot(for: family, at: z)
            var product = [Double](repeating: 0, count: o * o)
            for i in 0..<o { for j in 0..<o { for k in 0..<o { product[i * o + j] += b[k * o + i] * b[k * o + j] } } }
            #expect(maxRelativeError(product, m) < 1e-12, "\(family) \(measure)")
        }
    }
}

/// Families, valid outputs and the measures defined on them.
enum SimilarityCases {
    static var all: [(PredictiveFamily, [Double], SimilarityMeasure)] {
        var cases: [(PredictiveFamily, [Double], SimilarityMeasure)] = []
        let fisherLike: [SimilarityMeasure] =
            [.kullbackLeibler, .squaredEuclidean] + FDivergence.presets.map { .fDivergence($0) }
        let logits: [Double] = randomValues(4, seed: 11).map { 2 * $0 }
        for measure in fisherLike {
            cases.append((.categorical(classes: 4), logits, measure))
            cases.append((.bernoulli, [logits[1]], measure))
        }
        for parametrization in GaussianParametrization.allCases {
            let scales = [0.5, 1.7].map { s -> Double in
                switch parametrization {
                case .meanStandardDeviation: s
                case .meanLogStandardDeviation: log(s)
                case .meanVariance: s * s
                }
            }
            for measure in fisherLike + [.wasserstein2] {
                cases.append((.gaussian(dimension: 2, parametrization: parametrization), [0.3, -1.2] + scales, measure))
            }
        }
        for d in [1, 2, 3] {
            for measure: SimilarityMeasure in [.kullbackLeibler, .wasserstein2, .fDivergence(.chiSquared), .squaredEuclidean] {
                cases.append((.gaussianFullCovariance(dimension: d), randomFullOutput(d, seed: UInt64(40 + d)), measure))
            }
        }
        cases.append((.vector(dimension: 3), [1, -2, 0.5], .squaredEuclidean))
        return cases
    }
}

// MARK: - Closed forms against finite-difference Hessians of the divergences

@Suite struct SimilarityMeasureFiniteDifferenceTests {
    @Test(arguments: [2, 3, 7]) func categoricalFDivergences(classes: Int) throws {
        let z: [Double] = randomValues(classes, seed: UInt64(100 + classes)).map { 2 * $0 }
        for (divergence, d) in Discrete.all {
            let numeric = try numericMetric(z) { d(softmax($0), softmax($1)) }
            let closed = try SimilarityMeasure.fDivergence(divergence).metric(for: .categorical(classes: classes), at: z)
            #expect(maxDifference(numeric, closed) < 1e-6, "\(divergence.name)")
        }
    }

    @Test(arguments: [-2.5, 0.0, 0.8]) func bernoulliFDivergences(logit: Double) throws {
        for (divergence, d) in Discrete.all {
            let numeric = try numericMetric([logit]) { z, w in
                d([sigmoid(z[0]), 1 - sigmoid(z[0])], [sigmoid(w[0]), 1 - sigmoid(w[0])])
            }
            let closed = try SimilarityMeasure.fDivergence(divergence).metric(for: .bernoulli, at: [logit])
            #expect(maxDifference(numeric, closed) < 1e-6, "\(divergence.name)")
        }
    }

    @Test(arguments: GaussianParametrization.allCases) func diagonalGaussians(parametrization: GaussianParametrization) throws {
        let sigmas = [0.6, 1.9]
        let scales = sigmas.map { s -> Double in
            switch parametrization {
            case .meanStandardDeviation: s
            case .meanLogStandardDeviation: log(s)
            case .meanVariance: s * s
            }
        }
        let z = [0.2, -0.7] + scales
        let family = PredictiveFamily.gaussian(dimension: 2, parametrization: parametrization)
        let kl = try numericMetric(z) { gaussianKL($0, $1, parametrization) }
        #expect(maxDifference(kl, try SimilarityMeasure.kullbackLeibler.metric(for: family, at: z)) < 1e-6)
        let w2 = try numericMetric(z) { gaussianW2($0, $1, parametrization) }
        #expect(maxDifference(w2, try SimilarityMeasure.wasserstein2.metric(for: family, at: z)) < 1e-6)
    }

    @Test(arguments: [1, 2, 3]) func fullCovarianceGaussians(d: Int) throws {
        let z = randomFullOutput(d, seed: UInt64(70 + d))
        let family = PredictiveFamily.gaussianFullCovariance(dimension: d)
        let kl = try numericMetric(z) { fullKL($0, $1, d) }
        #expect(maxDifference(kl, try SimilarityMeasure.kullbackLeibler.metric(for: family, at: z)) < 1e-6)
        let w2 = try numericMetric(z) { fullW2($0, $1, d) }
        #expect(maxDifference(w2, try SimilarityMeasure.wasserstein2.metric(for: family, at: z)) < 1e-6)
    }

    @Test func squaredEuclideanIsTheIdentity() throws {
        let z = [0.3, -4.0, 12.0]
        let numeric = try numericMetric(z) { z, w in 0.5 * zip(z, w).reduce(0) { $0 + pow($1.0 - $1.1, 2) } }
        #expect(maxDifference(numeric, diagonal([1, 1, 1])) < 1e-6)
        #expect(try SimilarityMeasure.squaredEuclidean.metric(for: .vector(dimension: 3), at: z) == diagonal([1, 1, 1]))
    }

    /// A custom measure equal to KL reproduces the built-in metric through the public enum.
    @Test func customKLReproducesTheBuiltIn() throws {
        let z: [Double] = [0.5, -1.0, 2.0, 0.1]
        let custom = try SimilarityMeasure.custom(CustomSimilarity(name: "my KL") { Discrete.kl(softmax($0), softmax($1)) })
        let family = PredictiveFamily.categorical(classes: 4)
        let numeric = try custom.metric(for: family, at: z)
        #expect(maxDifference(numeric, try SimilarityMeasure.kullbackLeibler.metric(for: family, at: z)) < 1e-7)
        let root = try custom.squareRoot(for: family, at: z)
        for i in 0..<4 { for j in 0..<4 { #expect(abs(root[i * 4 + j] - root[j * 4 + i]) < 1e-12) } } // symmetric root
    }

    /// The error estimate is honest: it bounds the difference from the closed form.
    @Test func errorEstimateBoundsTheError() throws {
        let z = [0.1, 0.35]
        let (metric, error) = try CustomSimilarity { gaussianKL($0, $1, .meanStandardDeviation) }.metricEstimate(at: z)
        let exact = diagonal([1 / (0.35 * 0.35), 2 / (0.35 * 0.35)])
        #expect(error > 0 && error < 1e-3)
        #expect(maxDifference(metric, exact) <= error)
    }

    /// A small standard deviation: the default step would leave the domain; the step cut or a
    /// typical scale keeps the estimate accurate.
    @Test func smallScalesStayAccurate() throws {
        let z = [0.0, 2e-3]
        let exact = diagonal([1 / (z[1] * z[1]), 2 / (z[1] * z[1])])
        let cut = try numericMetric(z) { gaussianKL($0, $1, .meanStandardDeviation) }
        #expect(maxRelativeError(cut, exact) < 1e-6)
        let scaled = try numericMetric(z, typicalScale: [1, 1e-3]) { gaussianKL($0, $1, .meanStandardDeviation) }
        #expect(maxRelativeError(scaled, exact) < 1e-6)
    }
}

// MARK: - Invalid measures and outputs

@Suite struct SimilarityMeasureErrorTests {
    private func expectInvalid(_ name: String, _ body: () throws -> Void) {
        #expect {
            try body()
        } throws: { error in
            guard case let .invalidArgument(argument, _) = error as? NaturalGradientError else { return false }
            return argument == name
        }
    }

    @Test func unsupportedPairsNameTheMeasure() {
        expectInvalid("measure") { _ = try SimilarityMeasure.wasserstein2.metric(for: .categorical(classes: 3), at: [0, 0, 0]) }
        expectInvalid("measure") { _ = try SimilarityMeasure.wasserstein2.metric(for: .bernoulli, at: [0]) }
        expectInvalid("measure") { _ = try SimilarityMeasure.kullbackLeibler.metric(for: .vector(dimension: 2), at: [0, 0]) }
    }

    @Test func invalidOutputsNameZ() {
        let kl = SimilarityMeasure.kullbackLeibler
        expectInvalid("z") { _ = try kl.metric(for: .categorical(classes: 3), at: [0, 0]) }
        expectInvalid("z") { _ = try kl.metric(for: .categorical(classes: 3), at: [0, .nan, 0]) }
        expectInvalid("z") {
            _ = try kl.metric(for: .gaussian(dimension: 1, parametrization: .meanStandardDeviation), at: [0, 0])
        }
        expectInvalid("z") { _ = try kl.metric(for: .gaussian(dimension: 1, parametrization: .meanVariance), at: [0, -1]) }
        // log σ may be any finite number.
        #expect(throws: Never.self) {
            _ = try kl.metric(for: .gaussian(dimension: 1, parametrization: .meanLogStandardDeviation), at: [0, -3])
        }
        // Σ = [[1, 2], [2, 1]] is indefinite.
        expectInvalid("z") { _ = try kl.metric(for: .gaussianFullCovariance(dimension: 2), at: [0, 0, 1, 2, 1]) }
    }

    @Test func invalidFamiliesNameTheFamily() throws {
        let kl = SimilarityMeasure.kullbackLeibler
        expectInvalid("family") { _ = try kl.metric(for: .categorical(classes: 1), at: [0]) }
        expectInvalid("family") { _ = try kl.metric(for: .gaussianFullCovariance(dimension: 9), at: []) }
        expectInvalid("family") { _ = try SimilarityMeasure.squaredEuclidean.metric(for: .vector(dimension: 0), at: []) }
        let custom = SimilarityMeasure.custom(try CustomSimilarity { _, _ in 0 })
        expectInvalid("family") { _ = try custom.metric(for: .vector(dimension: 65), at: Array(repeating: 0, count: 65)) }
    }

    @Test func customMeasuresThatAreNotMetrics() throws {
        // A maximum at z' = z: the Hessian is negative definite.
        let concave = try CustomSimilarity(name: "concave") { z, w in -zip(z, w).reduce(0) { $0 + pow($1.0 - $1.1, 2) } }
        expectInvalid("measure") { _ = try concave.metricEstimate(at: [1, 2]) }
        // Not finite anywhere near z.
        let broken = try CustomSimilarity(name: "broken") { z, w in z == w ? 0 : .nan }
        expectInvalid("z") { _ = try broken.metricEstimate(at: [1, 2]) }
        expectInvalid("typicalScale") { _ = try CustomSimilarity(typicalScale: [1, 0]) { _, _ in 0 } }
        let scaled = try CustomSimilarity(typicalScale: [1]) { _, _ in 0 }
        expectInvalid("typicalScale") { _ = try scaled.metricEstimate(at: [1, 2]) }
        expectInvalid("secondDerivativeAtOne") { _ = try FDivergence(name: "bad", secondDerivativeAtOne: -1) }
    }
}
