import CLAPACK
import Foundation

// The robust float64 dense solve on the host (DESIGN.md section 5): Cholesky with LAPACK,
// falling back to added jitter, then to an eigendecomposition with clamped eigenvalues,
// reporting which path was taken.
//
// Layout trick: the caller's matrix is row-major and only its upper triangle is trusted. Read
// as a column-major array, that upper triangle is the *lower* triangle of the same symmetric
// matrix, so every LAPACK call below uses `LAPACK_COL_MAJOR` with `uplo = "L"` on the
// row-major data. That spares LAPACKE its row-major transposition copies, and the right-hand
// sides, stored one vector after another, are already a column-major n x k matrix.

/// Which factorisation a dense solve used.
public enum DenseSolvePath: Sendable, Equatable, CustomStringConvertible {
    /// A plain Cholesky factorisation of `A + damping·I`.
    case cholesky
    /// A Cholesky factorisation of `A + (damping + jitter)·I`; the payload is the jitter added.
    case jitter(Double)
    /// A symmetric eigendecomposition of `A + damping·I` whose eigenvalues below the floor
    /// (`n·ε·λmax`) were raised to it; the payload counts them.
    case eigen(clampedEigenvalues: Int)

    public var description: String {
        switch self {
        case .cholesky: "cholesky"
        case let .jitter(amount): "cholesky with jitter \(amount)"
        case let .eigen(clamped): "eigendecomposition (\(clamped) eigenvalue\(clamped == 1 ? "" : "s") clamped)"
        }
    }

    /// Whether the path solves a perturbed system (jitter, or clamped eigenvalues) instead
    /// of `A + damping·I` itself.
    public var isPerturbed: Bool {
        switch self {
        case .cholesky: false
        case .jitter: true
        case let .eigen(clamped): clamped > 0
        }
    }
}

/// A LAPACK routine reported a failure that is not about positive definiteness (that one is
/// handled by falling back to jitter and then to an eigendecomposition).
public enum DenseSolveError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `routine` rejected its argument number `argument` (LAPACK's `info = -argument`): a bug
    /// in how the routine was called, never the caller's data.
    case illegalLAPACKArgument(routine: String, argument: Int)
    /// `routine` returned `info > 0` where that means it failed (for `dsyevd`: the
    /// eigenvalues did not converge).
    case lapackFailure(routine: String, info: Int)

    public var description: String {
        switch self {
        case let .illegalLAPACKArgument(routine, argument):
            "LAPACK \(routine) rejected argument \(argument) as illegal"
        case let .lapackFailure(routine, info):
            "LAPACK \(routine) failed (info = \(info))"
        }
    }
}

/// A factorisation of `A + damping·I` for a symmetric, ideally positive semi-definite `A`,
/// in float64 on the host, made once and used for any number of solves.
///
/// The factorisation tries, in order:
/// 1. Cholesky (`dpotrf`) of `A + damping·I`;
/// 2. Cholesky with jitter `δ` added to the diagonal, starting at
///    ``initialRelativeJitter`` times the diagonal scale (the mean `|diagonal|` of
///    `A + damping·I`, or its largest `|entry|` when the diagonal is all zero) and growing
///    ten-fold per try, for at most ``maximumJitterAttempts`` tries (so at most `1e-3` times
///    the scale);
/// 3. a symmetric eigendecomposition (`dsyevd`) of `A + damping·I` whose eigenvalues below
///    the floor `n·ε·λmax` (ε the float64 machine epsilon) are raised to that floor; solves go
///    through `V diag(1/λ) Vᵀ`.
///
/// A Cholesky factorisation (steps 1 and 2) is accepted only when LAPACK's reciprocal
/// condition estimate (`dpocon`, 1-norm) is at least `n·ε`: a factorisation that succeeded
/// on a numerically singular matrix would give solutions with no correct digits.
public struct DenseSymmetricFactorization: Sendable {
    /// The first jitter tried, relative to the diagonal scale.
    public static let initialRelativeJitter = 1e-10
    /// How many jittered Cholesky factorisations are tried (growing ten-fold each time)
    /// before falling back to the eigendecomposition.
    public static let maximumJitterAttempts = 8

    /// The order `n` of the matrix.
    public let dimension: Int
    /// The damping the matrix was factored with.
    public let damping: Double
    /// Which factorisation was used.
    public let path: DenseSolvePath
    /// Reciprocal condition estimate of the factored matrix: LAPACK `dpocon` in the 1-norm
    /// after a Cholesky (of the jittered matrix on the jitter path); `λmin/λmax` of the
    /// clamped eigenvalues after an eigendecomposition.
    public let reciprocalCondition: Double
    /// `‖A + damping·I‖₁` (LAPACK `dlansy`) of the matrix as given, before any jitter: an
    /// upper bound on its 2-norm within a factor √n, for backward-error tests of solves.
    public let norm: Double

    private enum Factor: Sendable {
        /// The Cholesky factor `L` (column-major, lower triangle), as `dpotrf` leaves it.
        case cholesky([Double])
        /// Column-major eigenvectors and the reciprocals of the clamped eigenvalues.
        case eigen(vectors: [Double], inverseEigenvalues: [Double])
    }

    private let factor: Factor

    /// `log det` of the matrix factored, from the factor at no extra cost: of
    /// `A + damping·I` on the Cholesky path, of the jittered matrix on the jitter path and
    /// of the clamped one on the eigen path (a Gaussian log-likelihood needs it).
    public var logDeterminant: Double {
        switch factor {
        case let .cholesky(l):
            // dpotrf leaves L's diagonal on the array's diagonal: det = Π L_ii².
            return (0..<dimension).reduce(0.0) { $0 + 2 * log(l[$1 * dimension + $1]) }
        case let .eigen(_, inverseEigenvalues):
            return inverseEigenvalues.reduce(0.0) { $0 - log($1) }
        }
    }

    /// Factors `A + damping·I`.
    ///
    /// - Parameters:
    ///   - matrix: `A`, row-major `n x n` and symmetric. Only the upper triangle (diagonal
    ///     included) is read, but every entry must be finite.
    ///   - n: the order of `A`, positive.
    ///   - damping: added to the diagonal; finite and not negative.
    /// - Throws: `NaturalGradientError.invalidArgument` for a non-positive dimension, a
    ///   matrix whose count is not `n²`, a NaN, infinite or negative damping, or a matrix
    ///   `A + damping·I` that is all zero or has no positive eigenvalue;
    ///   `NaturalGradientError.nonFiniteValues` for NaN or infinite entries;
    ///   `DenseSolveError` if LAPACK fails in a way that falling back cannot handle.
    public init(matrix: [Double], dimension n: Int, damping: Double = 0) throws {
        try requireLAPACKSquare(count: matrix.count, dimension: n, name: "matrix")
        try require(
            damping.isFinite && damping >= 0, "damping",
            "must be finite and not negative, got \(damping)")
        let nonFinite = matrix.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        if nonFinite > 0 { throw NaturalGradientError.nonFiniteValues(name: "matrix", count: nonFinite) }

        // The damped matrix; the caller's upper triangle is this array's column-major lower one.
        var damped = matrix
        if damping != 0 {
            for i in 0..<n { damped[i * n + i] += damping }
        }
        var diagonalSum = 0.0
        var largest = 0.0
        for i in 0..<n {
            diagonalSum += abs(damped[i * n + i])
            for j in i..<n { largest = max(largest, abs(damped[i * n + j])) }
        }
        try require(
            largest > 0, "matrix", "A + damping·I is all zero, so no system with it can be solved")
        try require(
            largest.isFinite && diagonalSum.isFinite, "matrix",
            "A + damping·I overflows float64")

        self.dimension = n
        self.damping = damping
        self.norm = Self.oneNorm(damped, n: n)
        let acceptableCondition = Double(n) * Double.ulpOfOne

        // 1. Plain Cholesky.
        if let (factor, rcond) = try Self.cholesky(damped, n: n, jitter: 0),
            rcond >= acceptableCondition
        {
            self.factor = .cholesky(factor)
            self.path = .cholesky
            self.reciprocalCondition = rcond
            return
        }

        // 2. Cholesky with growing jitter.
        let scale = diagonalSum > 0 ? diagonalSum / Double(n) : largest
        var jitter = Self.initialRelativeJitter * scale
        for _ in 0..<Self.maximumJitterAttempts {
            if let (factor, rcond) = try Self.cholesky(damped, n: n, jitter: jitter),
                rcond >= acceptableCondition
            {
                self.factor = .cholesky(factor)
                self.path = .jitter(jitter)
                self.reciprocalCondition = rcond
                return
            }
            jitter *= 10
        }

        // 3. Eigendecomposition with clamped eigenvalues.
        let decomposition = try SymmetricEigendecomposition(damped, dimension: n)
        let (vectors, eigenvalues) = (decomposition.vectors, decomposition.values)
        // dsyevd returns the eigenvalues in ascending order.
        let largestEigenvalue = eigenvalues[n - 1]
        try require(
            largestEigenvalue > 0 && largestEigenvalue.isFinite, "matrix",
            "A + damping·I has no positive eigenvalue (largest \(largestEigenvalue)), so it is far from positive semi-definite")
        let floor = acceptableCondition * largestEigenvalue
        var clamped = 0
        var inverse = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var value = eigenvalues[i]
            if !(value >= floor) {
                value = floor
                clamped += 1
            }
            inverse[i] = 1 / value
        }
        self.factor = .eigen(vectors: vectors, inverseEigenvalues: inverse)
        self.path = .eigen(clampedEigenvalues: clamped)
        self.reciprocalCondition = max(eigenvalues[0], floor) / largestEigenvalue
    }

    /// Solves `(A + damping·I) X = B`.
    ///
    /// - Parameters:
    ///   - b: `k` right-hand sides of length `n`, stored one after another; finite.
    ///   - k: how many right-hand sides, positive.
    /// - Returns: the `k` solutions, laid out like `b`. On the jitter path they solve the
    ///   jittered system, on the eigen path the clamped one.
    /// - Throws: `NaturalGradientError.invalidArgument` for a non-positive count, a `b` whose
    ///   count is not `n·k`, or a solution that overflows to non-finite values;
    ///   `NaturalGradientError.nonFiniteValues` for NaN or infinite values in `b`;
    ///   `DenseSolveError` if LAPACK rejects the call.
    public func solve(_ b: [Double], count k: Int = 1) throws -> [Double] {
        let n = dimension
        try require(k > 0, "count", "must be positive, got \(k)")
        try require(k <= Int(Int32.max), "count", "must be at most \(Int32.max) for LAPACK, got \(k)")
        let (expected, overflow) = n.multipliedReportingOverflow(by: k)
        try require(!overflow, "count", "dimension · count overflows")
        try require(
            b.count == expected, "b",
            "holds \(b.count) values, expected dimension · count = \(n) · \(k) = \(expected)")
        let nonFinite = b.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        if nonFinite > 0 { throw NaturalGradientError.nonFiniteValues(name: "b", count: nonFinite) }

        var x: [Double]
        switch factor {
        case let .cholesky(l):
            x = b
            let info = l.withUnsafeBufferPointer { a in
                x.withUnsafeMutableBufferPointer { rhs in
                    LAPACKE_dpotrs(
                        LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), numericCast(n), numericCast(k),
                        a.baseAddress, numericCast(n), rhs.baseAddress, numericCast(n))
                }
            }
            try Self.check(info, routine: "dpotrs")
        case let .eigen(vectors, inverse):
            x = [Double](repeating: 0, count: expected)
            var coefficients = [Double](repeating: 0, count: n)
            vectors.withUnsafeBufferPointer { v in
                b.withUnsafeBufferPointer { rhs in
                    x.withUnsafeMutableBufferPointer { out in
                        for column in 0..<k {
                            let offset = column * n
                            // c = diag(1/λ) Vᵀ b: one contiguous dot product per eigenvector.
                            for j in 0..<n {
                                var dot = 0.0
                                let base = j * n
                                for i in 0..<n { dot += v[base + i] * rhs[offset + i] }
                                coefficients[j] = dot * inverse[j]
                            }
                            // x = V c: one contiguous update per eigenvector.
                            for j in 0..<n {
                                let c = coefficients[j]
                                if c == 0 { continue }
                                let base = j * n
                                for i in 0..<n { out[offset + i] += v[base + i] * c }
                            }
                        }
                    }
                }
            }
        }
        try require(
            x.allSatisfy(\.isFinite), "b",
            "the solution overflowed to non-finite values (path: \(path))")
        return x
    }

    /// `(A + damping·I)⁻¹` as a full row-major `n x n` matrix (symmetric, both triangles
    /// written). On the Cholesky and jitter paths LAPACK's `dpotri` inverts from the factor
    /// (`dtrtri` and `dlauum`, n³/3 + n³/3 flops: with `dpotrf`'s n³/3 about n³ in all,
    /// where `solve` with the n columns of I costs 2n³ after the factorisation); on the
    /// eigen path `V diag(1/λ) Vᵀ`. It inverts the jittered or clamped matrix where the
    /// path says so, as `solve` does.
    ///
    /// - Throws: `NaturalGradientError.invalidArgument` when the inverse overflows to
    ///   non-finite values; `DenseSolveError` if LAPACK fails.
    public func inverse() throws -> [Double] {
        let n = dimension
        var x: [Double]
        switch factor {
        case let .cholesky(l):
            x = l
            let info = x.withUnsafeMutableBufferPointer { p in
                LAPACKE_dpotri(
                    LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), numericCast(n), p.baseAddress, numericCast(n))
            }
            try Self.check(info, routine: "dpotri")
            // dpotri leaves the inverse in the column-major lower triangle, which is the
            // row-major upper one: mirror it into the other triangle.
            x.withUnsafeMutableBufferPointer { p in
                for row in 0..<n {
                    for column in (row + 1)..<n { p[column * n + row] = p[row * n + column] }
                }
            }
        case let .eigen(vectors, inverse):
            // Row-major (V diag(1/λ) Vᵀ)[i][j] = Σ_k v_k[i] v_k[j] / λ_k, with eigenvector k at
            // vectors[k n ..< (k + 1) n]: one rank-one update per eigenvector, rows contiguous.
            x = [Double](repeating: 0, count: n * n)
            vectors.withUnsafeBufferPointer { v in
                x.withUnsafeMutableBufferPointer { out in
                    for k in 0..<n {
                        let base = k * n
                        for i in 0..<n {
                            let scaled = v[base + i] * inverse[k]
                            if scaled == 0 { continue }
                            let row = i * n
                            for j in 0..<n { out[row + j] += scaled * v[base + j] }
                        }
                    }
                }
            }
        }
        try require(
            x.allSatisfy(\.isFinite), "matrix",
            "the inverse overflowed to non-finite values (path: \(path))")
        return x
    }

    // MARK: - LAPACK helpers

    /// Cholesky of `damped + jitter·I` (the caller's upper triangle, read as column-major
    /// lower): the factor and `dpocon`'s reciprocal condition estimate, or nil when the
    /// matrix is not positive definite.
    private static func cholesky(
        _ damped: [Double], n: Int, jitter: Double
    ) throws -> ([Double], Double)? {
        var a = damped
        if jitter != 0 {
            for i in 0..<n { a[i * n + i] += jitter }
        }
        let norm = oneNorm(a, n: n)
        let info = a.withUnsafeMutableBufferPointer { p in
            LAPACKE_dpotrf(
                LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), numericCast(n), p.baseAddress,
                numericCast(n))
        }
        if info > 0 { return nil } // The leading minor of order `info` is not positive definite.
        try check(info, routine: "dpotrf")
        var rcond = 0.0
        let conditionInfo = a.withUnsafeBufferPointer { p in
            LAPACKE_dpocon(
                LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), numericCast(n), p.baseAddress,
                numericCast(n), norm, &rcond)
        }
        try check(conditionInfo, routine: "dpocon")
        guard rcond.isFinite else { return nil }
        return (a, min(rcond, 1)) // The estimate can round a hair above 1 (n = 1).
    }

    /// The 1-norm of the symmetric matrix whose column-major lower triangle `a` holds.
    private static func oneNorm(_ a: [Double], n: Int) -> Double {
        a.withUnsafeBufferPointer { p in
            LAPACKE_dlansy(
                LAPACK_COL_MAJOR, CChar(UInt8(ascii: "1")), CChar(UInt8(ascii: "L")),
                numericCast(n), p.baseAddress, numericCast(n))
        }
    }

    /// Throws for a LAPACK `info` other than zero.
    private static func check<Info: SignedInteger>(_ info: Info, routine: String) throws {
        if info < 0 {
            throw DenseSolveError.illegalLAPACKArgument(routine: routine, argument: -Int(info))
        }
        if info > 0 { throw DenseSolveError.lapackFailure(routine: routine, info: Int(info)) }
    }
}
