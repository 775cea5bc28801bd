import Foundation
import NaturalGradientTestSupport
import Testing

@testable import NaturalGradient

/// `DenseSymmetricFactorization.inverse()` (dpotri after dpotrf; `V diag(1/λ) Vᵀ` on the eigen
/// path) against Gaussian elimination on the identity, and against `solve` with the columns
/// of I on every path.
@Suite("Dense symmetric inverse")
struct DenseSymmetricInverseTests {
    private static func identity(_ n: Int) -> [Double] { (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 } }

    @Test(arguments: [1, 7, 33, 257])
    func choleskyInverseMatchesEliminationAndIsSymmetric(n: Int) throws {
        let a = DenseTestMatrices.randomSPD(n, seed: UInt64(70 + n))
        let damping = 0.03125
        let factorization = try DenseSymmetricFactorization(matrix: a, dimension: n, damping: damping)
        #expect(factorization.path == .cholesky)
        let inverse = try factorization.inverse()
        #expect(inverse.count == n * n)
        let reference = DenseTestMatrices.gaussianElimination(
            DenseTestMatrices.addingDiagonal(a, n: n, damping), n: n, b: Self.identity(n), count: n)
        #expect(relativeError(inverse, reference) < 1e-11)
        for i in 0..<n { for j in 0..<i { #expect(inverse[i * n + j] == inverse[j * n + i]) } }
        #expect(relativeError(inverse, try factorization.solve(Self.identity(n), count: n)) < 1e-12)
    }

    @Test func onlyTheUpperTriangleIsRead() throws {
        let n = 11
        let a = DenseTestMatrices.randomSPD(n, seed: 93)
        var garbled = a
        for i in 0..<n { for j in 0..<i { garbled[i * n + j] = -1e300 } }
        let inverse = try DenseSymmetricFactorization(matrix: garbled, dimension: n, damping: 0.5).inverse()
        let expected = try DenseSymmetricFactorization(matrix: a, dimension: n, damping: 0.5).inverse()
        #expect(inverse == expected)
    }

    @Test func jitterPathInvertsTheJitteredMatrix() throws {
        let a = [1.0, 0, 0, -1e-12]
        let factorization = try DenseSymmetricFactorization(matrix: a, dimension: 2)
        guard case let .jitter(amount) = factorization.path else {
            Issue.record("expected the jitter path, got \(factorization.path)")
            return
        }
        let inverse = try factorization.inverse()
        #expect(abs(inverse[0] - 1 / (1 + amount)) < 1e-15)
        #expect(inverse[1] == 0 && inverse[2] == 0)
        #expect(relativeError(inverse, try factorization.solve(Self.identity(2), count: 2)) < 1e-12)
    }

    @Test(arguments: [8, 29])
    func eigenPathMatchesTheEigenSolve(n: Int) throws {
        // One negative eigenvalue sends the factorisation to the clamped eigendecomposition.
        let eigenvalues = (0..<n).map { $0 == 0 ? -0.5 : 0.125 * Double($0) }
        let a = DenseTestMatrices.withSpectrum(eigenvalues, seed: UInt64(n))
        let factorization = try DenseSymmetricFactorization(matrix: a, dimension: n)
        #expect(factorization.path == .eigen(clampedEigenvalues: 1))
        let inverse = try factorization.inverse()
        #expect(relativeError(inverse, try factorization.solve(Self.identity(n), count: n)) < 1e-10)
        let largest = inverse.map(abs).max() ?? 0
        var asymmetry = 0.0
        for i in 0..<n {
            for j in 0..<i { asymmetry = max(asymmetry, abs(inverse[i * n + j] - inverse[j * n + i])) }
        }
        #expect(asymmetry <= 1e-13 * largest)
    }
}
