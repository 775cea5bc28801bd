import Foundation
import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

/// The robust float64 dense solve (Cholesky, then jitter, then clamped eigendecomposition)
/// against independent references written here: Gaussian elimination with partial pivoting,
/// residuals of the full symmetric matrix, and matrices built with a known spectrum.
@Suite("Dense symmetric solver")
struct DenseSymmetricSolverTests {
    // MARK: Well-conditioned SPD matrices

    @Test(arguments: [1, 7, 33, 257])
    func randomSPDSolvesByCholesky(n: Int) throws {
        let a = DenseTestMatrices.randomSPD(n, seed: UInt64(n))
        let damping = 0.0625
        let factorization = try DenseSymmetricFactorization(matrix: a, dimension: n, damping: damping)
        #expect(factorization.path == .cholesky)
        #expect(factorization.dimension == n)
        #expect(factorization.reciprocalCondition > 0 && factorization.reciprocalCondition <= 1)

        let k = 3
        let b: [Double] = randomValues(n * k, seed: UInt64(1000 + n))
        let together = try factorization.solve(b, count: k)
        #expect(together.count == n * k)
        let reference = DenseTestMatrices.gaussianElimination(
            DenseTestMatrices.addingDiagonal(a, n: n, damping), n: n, b: b, count: k)
        for column in 0..<k {
            let range = column * n..<(column + 1) * n
            let bColumn = Array(b[range])
            let xColumn = Array(together[range])
            #expect(
                DenseTestMatrices.relativeResidual(a, n: n, damping: damping, x: xColumn, b: bColumn) < 1e-12)
            #expect(relativeError(xColumn, Array(reference[range])) < 1e-10)
            // k right-hand sides at once equal k separate solves.
            let separate = try factorization.solve(bColumn)
            #expect(relativeError(xColumn, separate) < 1e-14)
        }
    }

    @Test func onlyTheUpperTriangleIsRead() throws {
        let n = 9
        let a = DenseTestMatrices.randomSPD(n, seed: 91)
        var garbled = a
        for i in 0..<n { for j in 0..<i { garbled[i * n + j] = -1e300 } }
        let b: [Double] = randomValues(n, seed: 92)
        let x = try DenseSymmetricFactorization(matrix: garbled, dimension: n).solve(b)
        let expected = try DenseSymmetricFactorization(matrix: a, dimension: n).solve(b)
        #expect(x == expected)
        #expect(DenseTestMatrices.relativeResidual(a, n: n, damping: 0, x: x, b: b) < 1e-12)
    }

    @Test func factorOnceSolveManyConcurrently() async throws {
        let n = 40
        let factorization = try DenseSymmetricFactorization(
            matrix: DenseTestMatrices.randomSPD(n, seed: 5), dimension: n, damping: 0.01)
        let rhs: [[Double]] = (0..<8).map { randomValues(n, seed: UInt64(500 + $0)) }
        let sequential = try rhs.map { try factorization.solve($0) }
        let concurrent = try await withThrowingTaskGroup(of: (Int, [Double]).self) { group in
            for (index, b) in rhs.enumerated() {
                group.addTask { (index, try factorization.solve(b)) }
            }
            var results = [[Double]](repeating: [], count: rhs.count)
            for try await (index, x) in group { results[index] = x }
            return results
        }
        #expect(concurrent == sequential)
    }

    // MARK: Ill-conditioned, singular and indefinite matrices

    @Test func illConditionedSPDMatchesKnownSolution() throws {
        let n = 24
        let eigenvalues = (0..<n).map { pow(10.0, -8.0 * Double($0) / Double(n - 1)) }
        let a = DenseTestMatrices.withSpectrum(eigenvalues, seed: 24)
        let xTrue: [Double] = randomValues(n, seed: 25)
        let b = DenseTestMatrices.multiply(a, n: n, x: xTrue)
        let factorization = try DenseSymmetricFactorization(matrix: a, dimension: n)
        #expect(factorization.path == .cholesky)
        let x = try factorization.solve(b)
        // Forward error bounded by roughly cond · eps = 1e8 · 2.2e-16.
        #expect(relativeError(x, xTrue) < 1e-6)
        #expect(factorization.reciprocalCondition > 1e-9)
        #expect(factorization.reciprocalCondition < 1e-7)
    }

    @Test func slightlyIndefiniteMatrixTakesTheJitterPath() throws {
        // diag(1, -1e-12): Cholesky fails; the first jitter, 1e-10 · mean|diag| = 5e-11, fixes it.
        let a = [1.0, 0, 0, -1e-12]
        let factorization = try DenseSymmetricFactorization(matrix: a, dimension: 2)
        guard case let .jitter(amount) = factorization.path else {
            Issue.record("expected the jitter path, got \(factorization.path)")
            return
        }
        #expect(abs(amount - 5e-11) < 1e-20)
        let x = try factorization.solve([2, 0])
        #expect(abs(x[0] - 2 / (1 + amount)) < 1e-15)
        #expect(x[1] == 0)
    }

    @Test(arguments: [2, 10, 64])
    func rankOneMatrixFallsBack(n: Int) throws {
        let u: [Double] = randomValues(n, seed: UInt64(300 + n))
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { a[i * n + j] = u[i] * u[j] } }
        let factorization = try DenseSymmetricFactorization(matrix: a, dimension: n)
        switch factorization.path {
        case .jitter, .eigen: break
        case .cholesky: Issue.record("a singular matrix must not take the plain Cholesky path")
        }
        // A right-hand side in the range of A is solved with a small residual.
        let b = u.map { 0.75 * $0 }
        let x = try factorization.solve(b)
        #expect(x.allSatisfy { $0.isFinite })
        #expect(DenseTestMatrices.relativeResidual(a, n: n, damping: 0, x: x, b: b) < 1e-6)
    }

    @Test func rankDeficientGramMatrixFallsBack() throws {
        let n = 30
        let rank = 4
        let q: [Double] = randomValues(rank * n, seed: 31)
        let a = DenseTestMatrices.gram(q, rows: rank, columns: n)
        let factorization = try DenseSymmetricFactorization(matrix: a, dimension: n)
        #expect(factorization.path != .cholesky)
        let y: [Double] = randomValues(n, seed: 32)
        let b = DenseTestMatrices.multiply(a, n: n, x: y)
        let x = try factorization.solve(b)
        #expect(x.allSatisfy { $0.isFinite })
        #expect(DenseTestMatrices.relativeResidual(a, n: n, damping: 0, x: x, b: b) < 1e-6)
    }

    @Test func indefiniteMatrixTakesTheEigenPath() throws {
        let n = 8
        let eigenvalues = [-0.5, 0.125, 0.25, 0.5, 1, 2, 3, 4]
        let v = DenseTestMatrices.randomOrthogonal(n, seed: 8)
        let a = DenseTestMatrices.withSpectrum(eigenvalues, vectors: v)
        let factorization = try DenseSymmetricFactorization(matrix: a, dimension: n)
        guard case let .eigen(clamped) = factorization.path else {
            Issue.record("expected the eigen path, got \(factorization.path)")
            return
        }
        #expect(clamped == 1)
        let floor = Double(n) * Double.ulpOfOne
        #expect(abs(factorization.reciprocalCondition - floor) < 1e-3 * floor)
        // Off the clamped (negative) eigenvector the solve is exact; along it, rounding
        // noise of order ε·‖b‖ is amplified by 1/floor, so only a bound holds there.
        var y = [Double](repeating: 0, count: n)
        for column in 1..<n {
            let weight = Double(column) / 4
            for i in 0..<n { y[i] += weight * v[i * n + column] }
        }
        let b = DenseTestMatrices.multiply(a, n: n, x: y)
        let x = try factorization.solve(b)
        let v0 = (0..<n).map { v[$0 * n] }
        let along = zip(v0, x).reduce(0) { $0 + $1.0 * $1.1 }
        let projected = (0..<n).map { x[$0] - along * v0[$0] }
        #expect(relativeError(projected, y) < 1e-10)
        let yNorm = y.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(along) < yNorm)
        // Along the negative eigenvector, the clamped eigenvalue gives a huge but finite answer.
        let negative = v0
        let xNegative = try factorization.solve(negative)
        #expect(xNegative.allSatisfy { $0.isFinite })
        #expect(relativeError(xNegative, negative.map { $0 / (floor * 4) }) < 1e-6)
    }

    @Test func zeroDiagonalIndefiniteMatrixTakesTheEigenPath() throws {
        // [[0, 1], [1, 0]] has eigenvalues ±1; its jitter scale comes from the largest entry.
        let factorization = try DenseSymmetricFactorization(matrix: [0, 1, 1, 0], dimension: 2)
        #expect(factorization.path == .eigen(clampedEigenvalues: 1))
        // b = (1, 1) is the eigenvector of +1, so x = b.
        let x = try factorization.solve([1, 1])
        #expect(relativeError(x, [1, 1]) < 1e-12)
    }

    @Test func negativeDefiniteMatrixIsRejected() throws {
        let a = [-1.0, 0, 0, -2]
        let error = #expect(throws: NaturalGradientError.self) {
            try DenseSymmetricFactorization(matrix: a, dimension: 2)
        }
        #expect(DenseTestMatrices.argumentName(error) == "matrix")
    }

    @Test func dampingMakesASingularMatrixSolvableByCholesky() throws {
        let n = 12
        let u: [Double] = randomValues(n, seed: 12)
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { a[i * n + j] = u[i] * u[j] } }
        let damping = 0.5
        let factorization = try DenseSymmetricFactorization(matrix: a, dimension: n, damping: damping)
        #expect(factorization.path == .cholesky)
        let b: [Double] = randomValues(n * 2, seed: 13)
        let x = try factorization.solve(b, count: 2)
        for column in 0..<2 {
            let range = column * n..<(column + 1) * n
            #expect(
                DenseTestMatrices.relativeResidual(
                    a, n: n, damping: damping, x: Array(x[range]), b: Array(b[range])) < 1e-12)
        }
        // Sherman–Morrison: (λI + uuᵀ)⁻¹ b = (b − u (uᵀb)/(λ + uᵀu)) / λ.
        let b0 = Array(b[0..<n])
        let uu = zip(u, u).reduce(0) { $0 + $1.0 * $1.1 }
        let ub = zip(u, b0).reduce(0) { $0 + $1.0 * $1.1 }
        let expected = (0..<n).map { (b0[$0] - u[$0] * ub / (damping + uu)) / damping }
        #expect(relativeError(Array(x[0..<n]), expected) < 1e-13)
    }

    @Test func zeroRightHandSideGivesZero() throws {
        let n = 5
        let factorization = try DenseSymmetricFactorization(
            matrix: DenseTestMatrices.randomSPD(n, seed: 50), dimension: n)
        #expect(try factorization.solve([Double](repeating: 0, count: n)) == [Double](repeating: 0, count: n))
    }

    // MARK: Errors

    @Test func invalidArgumentsAreNamed() throws {
        let a = DenseTestMatrices.randomSPD(3, seed: 3)
        let cases: [(String, () throws -> Void)] = [
            ("dimension", { _ = try DenseSymmetricFactorization(matrix: [], dimension: 0) }),
            ("dimension", { _ = try DenseSymmetricFactorization(matrix: [1], dimension: -1) }),
            ("matrix", { _ = try DenseSymmetricFactorization(matrix: Array(a.dropLast()), dimension: 3) }),
            ("matrix", { _ = try DenseSymmetricFactorization(matrix: a, dimension: 2) }),
            ("damping", { _ = try DenseSymmetricFactorization(matrix: a, dimension: 3, damping: -1) }),
            ("damping", { _ = try DenseSymmetricFactorization(matrix: a, dimension: 3, damping: .nan) }),
            ("damping", { _ = try DenseSymmetricFactorization(matrix: a, dimension: 3, damping: .infinity) }),
            ("matrix", { _ = try DenseSymmetricFactorization(matrix: [0, 0, 0, 0], dimension: 2) }),
            ("b", { _ = try DenseSymmetricFactorization(matrix: a, dimension: 3).solve([1, 2]) }),
            ("b", { _ = try DenseSymmetricFactorization(matrix: a, dimension: 3).solve([1, 2, 3], count: 2) }),
            ("count", { _ = try DenseSymmetricFactorization(matrix: a, dimension: 3).solve([], count: 0) }),
            ("count", { _ = try DenseSymmetricFactorization(matrix: a, dimension: 3).solve([1, 2, 3], count: -1) }),
        ]
        for (name, body) in cases {
            let error = #expect(throws: NaturalGradientError.self) { try body() }
            #expect(DenseTestMatrices.argumentName(error) == name, "expected an error naming '\(name)'")
        }
    }

    @Test func nonFiniteValuesAreCounted() throws {
        var a = DenseTestMatrices.randomSPD(4, seed: 4)
        a[1] = .nan
        a[10] = .infinity
        #expect(throws: NaturalGradientError.nonFiniteValues(name: "matrix", count: 2)) {
            try DenseSymmetricFactorization(matrix: a, dimension: 4)
        }
        let factorization = try DenseSymmetricFactorization(
            matrix: DenseTestMatrices.randomSPD(4, seed: 4), dimension: 4)
        #expect(throws: NaturalGradientError.nonFiniteValues(name: "b", count: 1)) {
            try factorization.solve([1, .nan, 3, 4])
        }
    }

    @Test func pathsAndErrorsDescribeThemselves() {
        #expect(DenseSolvePath.eigen(clampedEigenvalues: 1).description.contains("1 eigenvalue clamped"))
        #expect(
            DenseSolveError.illegalLAPACKArgument(routine: "dpotrf", argument: 4).description
                .contains("dpotrf"))
    }
}

/// Independent float64 references for the dense solver tests (row-major n x n matrices);
/// the determinant tests use them too.
enum DenseTestMatrices {
    /// `QᵀQ/n + 0.01·I` for a random square `Q`: symmetric positive definite, modest condition.
    static func randomSPD(_ n: Int, seed: UInt64) -> [Double] {
        let q: [Double] = randomValues(n * n, seed: seed)
        var a = gram(q, rows: n, columns: n)
        for index in a.indices { a[index] /= Double(n) }
        return addingDiagonal(a, n: n, 0.01)
    }

    /// `QᵀQ` for a row-major `rows x columns` matrix `Q`.
    static func gram(_ q: [Double], rows: Int, columns: Int) -> [Double] {
        var a = [Double](repeating: 0, count: columns * columns)
        for r in 0..<rows {
            for i in 0..<columns {
                let qi = q[r * columns + i]
                for j in 0..<columns { a[i * columns + j] += qi * q[r * columns + j] }
            }
        }
        return a
    }

    static func addingDiagonal(_ a: [Double], n: Int, _ value: Double) -> [Double] {
        var result = a
        for i in 0..<n { result[i * n + i] += value }
        return result
    }

    /// A random orthogonal matrix (row-major; its columns are orthonormal) by modified
    /// Gram–Schmidt, applied twice for orthogonality to working precision.
    static func randomOrthogonal(_ n: Int, seed: UInt64) -> [Double] {
        let raw: [Double] = randomValues(n * n, seed: seed)
        var columns = (0..<n).map { j in (0..<n).map { i in raw[i * n + j] } }
        for j in 0..<n {
            for _ in 0..<2 {
                for p in 0..<j {
                    let dot = zip(columns[p], columns[j]).reduce(0) { $0 + $1.0 * $1.1 }
                    for i in 0..<n { columns[j][i] -= dot * columns[p][i] }
                }
            }
            let norm = columns[j].reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in 0..<n { columns[j][i] /= norm }
        }
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { v[i * n + j] = columns[j][i] } }
        return v
    }

    /// `V diag(eigenvalues) Vᵀ` for a random orthogonal `V`.
    static func withSpectrum(_ eigenvalues: [Double], seed: UInt64) -> [Double] {
        withSpectrum(eigenvalues, vectors: randomOrthogonal(eigenvalues.count, seed: seed))
    }

    /// `V diag(eigenvalues) Vᵀ` for the row-major `V` with the eigenvectors in its columns.
    static func withSpectrum(_ eigenvalues: [Double], vectors v: [Double]) -> [Double] {
        referenceMatrixFromBasis(eigenvalues, basis: v, dimension: eigenvalues.count)
    }

    static func multiply(_ a: [Double], n: Int, x: [Double]) -> [Double] {
        (0..<n).map { i in (0..<n).reduce(0) { $0 + a[i * n + $1] * x[$1] } }
    }

    /// `‖(A + damping·I) x − b‖₂ / ‖b‖₂` with the full symmetric `A`.
    static func relativeResidual(_ a: [Double], n: Int, damping: Double, x: [Double], b: [Double]) -> Double {
        let ax = multiply(a, n: n, x: x)
        var residual = 0.0
        var norm = 0.0
        for i in 0..<n {
            let r = ax[i] + damping * x[i] - b[i]
            residual += r * r
            norm += b[i] * b[i]
        }
        return (residual / norm).squareRoot()
    }

    /// Gaussian elimination with partial pivoting on the full matrix, for `count`
    /// right-hand sides stored one after another.
    static func gaussianElimination(_ a: [Double], n: Int, b: [Double], count k: Int) -> [Double] {
        var m = a
        var rhs = (0..<n).map { i in (0..<k).map { b[$0 * n + i] } }
        for column in 0..<n {
            var pivot = column
            for row in column + 1..<n where abs(m[row * n + column]) > abs(m[pivot * n + column]) {
                pivot = row
            }
            if pivot != column {
                for j in 0..<n { m.swapAt(column * n + j, pivot * n + j) }
                rhs.swapAt(column, pivot)
            }
            let diagonal = m[column * n + column]
            for row in column + 1..<n {
                let factor = m[row * n + column] / diagonal
                if factor == 0 { continue }
                for j in column..<n { m[row * n + j] -= factor * m[column * n + j] }
                for r in 0..<k { rhs[row][r] -= factor * rhs[column][r] }
            }
        }
        var x = [Double](repeating: 0, count: n * k)
        for r in 0..<k {
            for row in stride(from: n - 1, through: 0, by: -1) {
                var sum = rhs[row][r]
                for j in row + 1..<n { sum -= m[row * n + j] * x[r * n + j] }
                x[r * n + row] = sum / m[row * n + row]
            }
        }
        return x
    }

    /// The argument an `invalidArgument` error names, else nil.
    static func argumentName(_ error: NaturalGradientError?) -> String? {
        if case let .invalidArgument(name, _) = error { return name }
        return nil
    }
}
