import Foundation
import NaturalGradient
import NaturalGradientTestSupport
import Testing

/// `DenseSymmetricFactorization.logDeterminant` against matrices of known spectrum, on each
/// factorisation path.
@Suite struct DenseSymmetricFactorizationDeterminantTests {
    @Test(arguments: [1, 7, 33, 65])
    func choleskyPath(n: Int) throws {
        // A matrix with a known spectrum (random orthogonal vectors): log det is Σ log(λ + damping).
        let eigenvalues = uniformValues(count: n, seed: UInt64(n)).map { 1.25 + 0.75 * $0 }
        let matrix = DenseTestMatrices.withSpectrum(eigenvalues, seed: UInt64(100 + n))
        let damping = 0.25
        let factorization = try DenseSymmetricFactorization(matrix: matrix, dimension: n, damping: damping)
        #expect(factorization.path == .cholesky)
        let reference = eigenvalues.reduce(0.0) { $0 + log($1 + damping) }
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
