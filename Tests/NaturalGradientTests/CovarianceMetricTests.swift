import Foundation
import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

/// `CovarianceMetric` against references written here independently of LAPACK: closed forms
/// in one dimension, Lyapunov residuals, and finite-difference Hessians of the closed-form KL
/// divergence and squared Wasserstein-2 distance between zero-mean Gaussians (matrix square
/// roots by a cyclic Jacobi eigensolver in this file).
@Suite("Covariance metrics")
struct CovarianceMetricTests {
    // MARK: Known answers in one dimension

    @Test(arguments: [0.25, 1.0, 3.7])
    func oneDimensionalKnownAnswers(variance v: Double) throws {
        let fisher = try CovarianceMetric.fisherRao(covariance: [v], dimension: 1, directions: [[1]])
        let w2 = try CovarianceMetric.wasserstein2(covariance: [v], dimension: 1, directions: [[1]])
        let l = try CovarianceMetric.lyapunov(covariance: [v], dimension: 1, right: [1])
        #expect(abs(fisher[0] - 1 / (2 * v * v)) <= 1e-15 * fisher[0])
        #expect(abs(w2[0] - 1 / (2 * v)) <= 1e-15 * w2[0])
        #expect(abs(l[0] - 1 / (2 * v)) <= 1e-15 * l[0])
        // Bilinear in the directions: scaling U by c scales G by c².
        let scaled = try CovarianceMetric.fisherRao(covariance: [v], dimension: 1, directions: [[3], [-2]])
        #expect(abs(scaled[0] - 9 * fisher[0]) <= 1e-14 * scaled[0])
        #expect(abs(scaled[1] + 6 * fisher[0]) <= 1e-14 * abs(scaled[1]))
        #expect(scaled[1] == scaled[2])
    }

    @Test func diagonalCovarianceKnownAnswers() throws {
        // Σ = diag(a, b); U = E_12 + E_21: Fisher ½·2/(ab) = 1/(ab), W2 2/(a + b).
        let (a, b) = (0.5, 2.5)
        let sigma = [a, 0, 0, b]
        let u: [Double] = [0, 1, 1, 0]
        let fisher = try CovarianceMetric.fisherRao(covariance: sigma, dimension: 2, directions: [u])
        let w2 = try CovarianceMetric.wasserstein2(covariance: sigma, dimension: 2, directions: [u])
        #expect(abs(fisher[0] - 1 / (a * b)) <= 1e-14)
        #expect(abs(w2[0] - 2 / (a + b)) <= 1e-14)
    }

    @Test func emptyDirectionsGiveAnEmptyMetric() throws {
        #expect(try CovarianceMetric.fisherRao(covariance: [2], dimension: 1, directions: []).isEmpty)
        #expect(try CovarianceMetric.wasserstein2(covariance: [2], dimension: 1, directions: []).isEmpty)
    }

    // MARK: Lyapunov residuals

    @Test(arguments: [1, 2, 3, 7, 20])
    func lyapunovResidual(n: Int) throws {
        let sigma = Matrices.randomSPD(n, seed: UInt64(10 + n))
        let u = Matrices.randomSymmetric(n, seed: UInt64(20 + n))
        let l = try CovarianceMetric.lyapunov(covariance: sigma, dimension: n, right: u)
        #expect(l.count == n * n)
        let residual = zip(Matrices.multiply(sigma, l, n), Matrices.multiply(l, sigma, n)).map { $0 + $1 }
        #expect(relativeError(residual, u) < 1e-13, "n = \(n)")
        #expect(Matrices.transpose(l, n) == l)
    }

    // MARK: Finite-difference Hessians of the closed-form divergences

    @Test(arguments: [2, 3])
    func fisherRaoIsTheHessianOfKL(n: Int) throws {
        let sigma = Matrices.randomSPD(n, seed: UInt64(30 + n))
        let directions = (0..<(n * (n + 1) / 2)).map { Matrices.randomSymmetric(n, seed: UInt64(40 + 10 * n + $0)) }
        let metric = try CovarianceMetric.fisherRao(covariance: sigma, dimension: n, directions: directions)
        let reference = Matrices.finiteDifferenceHessian(directions: directions, n: n, step: 1e-4) { t in
            Matrices.kl(sigma, Matrices.perturbed(sigma, directions, t), n)
        }
        #expect(relativeError(metric, reference) < 1e-6, "n = \(n): \(metric) vs \(reference)")
        // The direct trace formula with an explicit inverse agrees to rounding.
        let inverse = Matrices.inverse(sigma, n)
        let k = directions.count
        for a in 0..<k {
            for b in 0..<k {
                let product = Matrices.multiply(
                    Matrices.multiply(inverse, directions[a], n), Matrices.multiply(inverse, directions[b], n), n)
                let trace = (0..<n).reduce(0.0) { $0 + product[$1 * n + $1] }
                #expect(abs(metric[a * k + b] - 0.5 * trace) <= 1e-11 * (abs(trace) + 1))
            }
        }
    }

    @Test(arguments: [2, 3])
    func wasserstein2IsTheHessianOfSquaredW2(n: Int) throws {
        let sigma = Matrices.randomSPD(n, seed: UInt64(50 + n))
        let directions = (0..<(n * (n + 1) / 2)).map { Matrices.randomSymmetric(n, seed: UInt64(60 + 10 * n + $0)) }
        let metric = try CovarianceMetric.wasserstein2(covariance: sigma, dimension: n, directions: directions)
        let reference = Matrices.finiteDifferenceHessian(directions: directions, n: n, step: 1e-4) { t in
            Matrices.squaredW2(sigma, Matrices.perturbed(sigma, directions, t), n)
        }
        #expect(relativeError(metric, reference) < 1e-6, "n = \(n): \(metric) vs \(reference)")
        // Positive definite on a basis of the symmetric matrices.
        let factor = try DenseSymmetricFactorization(matrix: metric, dimension: directions.count)
        #expect(factor.path == .cholesky)
    }

    @Test func wasserstein2IsTraceOfLyapunovTimesDirection() throws {
        let n = 7
        let sigma = Matrices.randomSPD(n, seed: 71)
        let directions = (0..<4).map { Matrices.randomSymmetric(n, seed: UInt64(72 + $0)) }
        let metric = try CovarianceMetric.wasserstein2(covariance: sigma, dimension: n, directions: directions)
        for a in 0..<4 {
            let l = try CovarianceMetric.lyapunov(covariance: sigma, dimension: n, right: directions[a])
            for b in 0..<4 {
                let trace = zip(l, directions[b]).reduce(0.0) { $0 + $1.0 * $1.1 } // tr(L U) = Σ L_ij U_ji, U symmetric.
                #expect(abs(metric[a * 4 + b] - trace) <= 1e-12 * (abs(trace) + 1))
            }
        }
    }

    // MARK: Errors

    @Test func rejectsBadArguments() throws {
        func name(_ body: () throws -> Any) -> String? {
            do {
                _ = try body()
                return nil
            } catch let NaturalGradientError.invalidArgument(name, _) {
                return name
            } catch let NaturalGradientError.nonFiniteValues(name, _) {
                return "nonfinite:" + name
            } catch { return "other: \(error)" }
        }
        let sigma = Matrices.randomSPD(3, seed: 81)
        let u = Matrices.randomSymmetric(3, seed: 82)
        #expect(name { try CovarianceMetric.fisherRao(covariance: [], dimension: 0, directions: []) } == "dimension")
        #expect(name { try CovarianceMetric.lyapunov(covariance: [1], dimension: -1, right: [1]) } == "dimension")
        #expect(name { try CovarianceMetric.wasserstein2(covariance: sigma, dimension: 2, directions: [u]) } == "covariance")
        #expect(
            name { try CovarianceMetric.wasserstein2(covariance: sigma, dimension: 3, directions: [u, [1, 2]]) }
                == "directions[1]")
        #expect(name { try CovarianceMetric.lyapunov(covariance: sigma, dimension: 3, right: [1]) } == "right")
        var nan = sigma
        nan[4] = .nan
        #expect(name { try CovarianceMetric.fisherRao(covariance: nan, dimension: 3, directions: [u]) } == "nonfinite:covariance")
        var infinite = u
        infinite[0] = .infinity
        #expect(
            name { try CovarianceMetric.fisherRao(covariance: sigma, dimension: 3, directions: [u, infinite]) }
                == "nonfinite:directions[1]")
        var asymmetric = sigma
        asymmetric[1] += 1e-3
        #expect(name { try CovarianceMetric.fisherRao(covariance: asymmetric, dimension: 3, directions: [u]) } == "covariance")
        var asymmetricDirection = u
        asymmetricDirection[5] += 1e-3
        #expect(
            name { try CovarianceMetric.wasserstein2(covariance: sigma, dimension: 3, directions: [asymmetricDirection]) }
                == "directions[0]")
        #expect(name { try CovarianceMetric.lyapunov(covariance: sigma, dimension: 3, right: asymmetricDirection) } == "right")
        // Rounding-level asymmetry is accepted.
        var nearlySymmetric = sigma
        nearlySymmetric[1] *= 1 + 1e-14
        #expect(name { try CovarianceMetric.fisherRao(covariance: nearlySymmetric, dimension: 3, directions: [u]) } == nil)
    }

    @Test func rejectsCovariancesThatAreNotPositiveDefinite() throws {
        // Eigenvalues 3 and -1: the message names the smallest.
        do {
            _ = try CovarianceMetric.wasserstein2(covariance: [1, 2, 2, 1], dimension: 2, directions: [[1, 0, 0, 1]])
            Issue.record("an indefinite covariance was accepted")
        } catch let NaturalGradientError.invalidArgument(name, reason) {
            #expect(name == "covariance")
            #expect(reason.contains("-1.0") || reason.contains("-0.99999"), "\(reason)")
        }
        // Singular (rank one) and zero.
        for singular in [[1.0, 1, 1, 1], [0.0, 0, 0, 0]] {
            #expect(throws: NaturalGradientError.self) {
                try CovarianceMetric.lyapunov(covariance: singular, dimension: 2, right: [1, 0, 0, 1])
            }
        }
    }
}

/// Small dense float64 helpers, independent of the library.
private enum Matrices {
    static func randomSymmetric(_ n: Int, seed: UInt64) -> [Double] {
        let a: [Double] = randomValues(n * n, seed: seed)
        return (0..<(n * n)).map { index in 0.5 * (a[index] + a[(index % n) * n + index / n]) }
    }

    /// `A Aᵀ / n + 0.3 I`: well conditioned, not diagonal.
    static func randomSPD(_ n: Int, seed: UInt64) -> [Double] {
        let a: [Double] = randomValues(n * n, seed: seed)
        var s = multiply(a, transpose(a, n), n).map { $0 / Double(n) }
        for i in 0..<n { s[i * n + i] += 0.3 }
        return symmetrised(s, n)
    }

    static func transpose(_ a: [Double], _ n: Int) -> [Double] {
        (0..<(n * n)).map { a[($0 % n) * n + $0 / n] }
    }

    static func symmetrised(_ a: [Double], _ n: Int) -> [Double] {
        zip(a, transpose(a, n)).map { 0.5 * ($0 + $1) }
    }

    static func multiply(_ a: [Double], _ b: [Double], _ n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for k in 0..<n {
                for j in 0..<n { c[i * n + j] += a[i * n + k] * b[k * n + j] }
            }
        }
        return c
    }

    /// `Σ + Σ_a t_a U_a`.
    static func perturbed(_ sigma: [Double], _ directions: [[Double]], _ t: [Double]) -> [Double] {
        var out = sigma
        for (direction, step) in zip(directions, t) {
            for index in out.indices { out[index] += step * direction[index] }
        }
        return out
    }

    /// Central differences `∂²f/∂t_a∂t_b` at t = 0.
    static func finiteDifferenceHessian(
        directions: [[Double]], n: Int, step h: Double, _ f: ([Double]) -> Double
    ) -> [Double] {
        let k = directions.count
        var hessian = [Double](repeating: 0, count: k * k)
        for a in 0..<k {
            for b in 0..<k {
                func at(_ sa: Double, _ sb: Double) -> Double {
                    var t = [Double](repeating: 0, count: k)
                    t[a] += sa * h
                    t[b] += sb * h
                    return f(t)
                }
                hessian[a * k + b] = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * h * h)
            }
        }
        return hessian
    }

    /// Cyclic Jacobi: eigenvalues and column eigenvectors (row-major V, A = V diag(w) Vᵀ).
    static func jacobiEigen(_ matrix: [Double], _ n: Int) -> (values: [Double], vectors: [Double]) {
        var a = symmetrised(matrix, n)
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += a[i * n + j] * a[i * n + j] } }
            if off < 1e-30 * (a.reduce(0) { $0 + $1 * $1 }) { break }
            for p in 0..<n {
                for q in (p + 1)..<n where a[p * n + q] != 0 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot()
                    let s = t * c
                    for k in 0..<n { // A ← A J (columns p, q)
                        let (akp, akq) = (a[k * n + p], a[k * n + q])
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n { // A ← Jᵀ A (rows p, q)
                        let (apk, aqk) = (a[p * n + k], a[q * n + k])
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n { // V ← V J
                        let (vkp, vkq) = (v[k * n + p], v[k * n + q])
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<n).map { a[$0 * n + $0] }, v)
    }

    /// The symmetric square root of an SPD matrix.
    static func squareRoot(_ a: [Double], _ n: Int) -> [Double] {
        let (w, v) = jacobiEigen(a, n)
        var out = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n {
                for k in 0..<n { out[i * n + j] += v[i * n + k] * max(w[k], 0).squareRoot() * v[j * n + k] }
            }
        }
        return symmetrised(out, n)
    }

    static func inverse(_ a: [Double], _ n: Int) -> [Double] {
        let (w, v) = jacobiEigen(a, n)
        var out = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n {
                for k in 0..<n { out[i * n + j] += v[i * n + k] * v[j * n + k] / w[k] }
            }
        }
        return out
    }

    static func logDeterminant(_ a: [Double], _ n: Int) -> Double {
        jacobiEigen(a, n).values.reduce(0) { $0 + log($1) }
    }

    static func trace(_ a: [Double], _ n: Int) -> Double { (0..<n).reduce(0) { $0 + a[$1 * n + $1] } }

    /// KL(N(0, Σ) ‖ N(0, Σ')) = ½ [tr(Σ'⁻¹ Σ) − n + ln det Σ' − ln det Σ].
    static func kl(_ sigma: [Double], _ other: [Double], _ n: Int) -> Double {
        0.5
            * (trace(multiply(inverse(other, n), sigma, n), n) - Double(n) + logDeterminant(other, n)
                - logDeterminant(sigma, n))
    }

    /// W2²(N(0, Σ), N(0, Σ')) = tr Σ + tr Σ' − 2 tr((Σ^½ Σ' Σ^½)^½).
    static func squaredW2(_ sigma: [Double], _ other: [Double], _ n: Int) -> Double {
        let root = squareRoot(sigma, n)
        let inner = squareRoot(multiply(multiply(root, other, n), root, n), n)
        return trace(sigma, n) + trace(other, n) - 2 * trace(inner, n)
    }
}
