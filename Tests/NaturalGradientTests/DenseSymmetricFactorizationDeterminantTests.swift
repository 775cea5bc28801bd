import Foundation
import NaturalGradient
import NaturalGradientTestSupport
import Testing

/// `DenseSymmetricFactorization.logDeterminant` against a host float64 reference, on each
/// factorisation path.
@Suite struct DenseSymmetricFactorizationDeterminantTests {
    /// A random symmetric positive definite n x n matrix `B Bᵀ/n + I/2`, row-major.
    static func positiveDefinite(_ n: Int, seed: UInt64) -> [Double] {
        let b = randomValues(n * n, seed: seed, as: Double.self)
        return (0..<(n * n)).map { index in
            let (i, j) = (index / n, index % n)
            let dot = (0..<n).reduce(0.0) { $0 + b[i * n + $1] * b[j * n + $1] }
            return dot / Double(n) + (i == j ? 0.5 : 0)
        }
    }

    /// `log det` by Gaussian elimination with partial pivoting (independent of Cholesky).
    static func referenceLogDeterminant(_ matrix: [Double], _ n: Int) -> Double {
        var a = matrix
        var sum = 0.0
        for column in 0..<n {
            let pivot = (column..<n).max { abs(a[$0 * n + column]) < abs(a[$1 * n + column]) } ?? column
            if pivot != column { for j in 0..<n { a.swapAt(pivot * n + j, column * n + j) } }
            sum += log(abs(a[column * n + column]))
            for row in (column + 1)..<n {
                let factor = a[row * n + column] / a[column * n + column]
                for j in column..<n { a[row * n + j] -= factor * a[column * n + j] }
            }
        }
        return sum
    }

    @Test(arguments: [1, 7, 33, 65])
    func choleskyPath(n: Int) throws {
        let matrix = Self.positiveDefinite(n, seed: UInt64(n))
        let damping = 0.25
        let factorization = try DenseSymmetricFactorization(matrix: matrix, dimension: n, damping: damping)
        #expect(factorization.path == .cholesky)
        var damped = matrix
        for i in 0..<n { damped[i * n + i] += damping }
        let reference = Self.referenceLogDeterminant(damped, n)
        #expect(abs(factorization.logDeterminant - reference) <= 1e-12 * max(1, abs(reference)), "n = \(n)")
    }

    @Test func jitterAndEigenPathsGiveTheDeterminantOfWhatTheyFactored() throws {
        // diag(3, 0, 2): singular, so Cholesky needs jitter δ, and the factored matrix is
        // diag(3 + δ, δ, 2 + δ).
        let singular: [Double] = [3, 0, 0, 0, 0, 0, 0, 0, 2]
        let jittered = try DenseSymmetricFactorization(matrix: singular, dimension: 3)
        guard case let .jitter(delta) = jittered.path else {
            Issue.record("expected the jitter path, got \(jittered.path)")
            return
        }
        let expected = log(3 + delta) + log(delta) + log(2 + delta)
        #expect(abs(jittered.logDeterminant - expected) <= 1e-12 * abs(expected))
        // Indefinite diag(4, -1): the eigen path clamps −1 to the floor n·ε·λmax.
        let indefinite = try DenseSymmetricFactorization(matrix: [4, 0, 0, -1], dimension: 2)
        #expect(indefinite.path == .eigen(clampedEigenvalues: 1))
        let floor = 2 * Double.ulpOfOne * 4
        #expect(abs(indefinite.logDeterminant - (log(4) + log(floor))) <= 1e-12 * abs(log(4) + log(floor)))
    }
}
