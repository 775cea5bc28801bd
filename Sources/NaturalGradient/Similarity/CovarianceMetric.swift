// Metrics on the covariance of a zero-mean (or fixed-mean) Gaussian, in float64 on the host.
//
// Both metrics and the Lyapunov solve go through one symmetric eigendecomposition
// Σ = V diag(λ) Vᵀ (LAPACK dsyevd). In the eigenbasis every direction becomes Ũ = Vᵀ U V and
//   Fisher-Rao:  ½ tr(Σ⁻¹ U_a Σ⁻¹ U_b) = ½ Σ_ij Ũ_a,ij Ũ_b,ij / (λ_i λ_j),
//   Lyapunov:    Σ L + L Σ = U  ⇔  L̃_ij = Ũ_ij / (λ_i + λ_j),  L = V L̃ Vᵀ,
//   W2 Hessian:  tr(L_a U_b) = Σ_ij Ũ_a,ij Ũ_b,ij / (λ_i + λ_j),
// so a call costs one O(n³) decomposition plus two n x n products per direction, and the
// k x k Gram sums are O(k² n²).
//
// Layout: Σ is symmetric, so the row-major array reads the same as a column-major one and
// LAPACK is called with LAPACK_COL_MAJOR directly (no transposition copies). dsyevd returns
// the eigenvectors column-major: eigenvector j is `vectors[j*n ..< (j+1)*n]`, which as a
// row-major n x n array is Vᵀ.

/// Metrics on the covariance Σ (n x n, symmetric positive definite) of N(μ, Σ), in directions U_a (symmetric n x n).
///
/// These are the covariance blocks of the "formal natural gradient" metrics of DESIGN.md
/// section 2, `M = ∇²_{Σ'} D(N(μ, Σ), N(μ, Σ'))` at `Σ' = Σ`, evaluated on a set of
/// directions: for a model whose covariance depends on parameters θ, pass `U_a = ∂Σ/∂θ_a`
/// to get the metric pulled back to θ.
///
/// Conventions shared by every function:
/// - matrices are `n x n`, row-major, float64; `dimension` is `n > 0`;
/// - `covariance` must be finite, symmetric within ``symmetryTolerance`` (relative to its
///   largest entry), and positive definite: its smallest eigenvalue must exceed
///   `n · ε · λmax` (ε the float64 machine epsilon), below which the eigenvalue is not
///   distinguishable from zero or a negative value by rounding;
/// - directions and right-hand sides must be finite and symmetric within the same
///   relative tolerance (relative to their own largest entry);
/// - errors: `NaturalGradientError.invalidArgument` (naming `dimension`, `covariance`,
///   `directions` or `right`), `NaturalGradientError.nonFiniteValues` for NaN or infinite
///   entries, `DenseSolveError` if LAPACK's eigensolver fails.
///
/// The Wasserstein-2 metric here is the Hessian of the *squared* distance, which is twice
/// the Riemannian Bures-Wasserstein metric `½ tr(L_a U_b)` (DESIGN.md section 2). In one
/// dimension with `Σ = v`: Fisher-Rao gives `1/(2v²)`, Wasserstein-2 gives `1/(2v)`.
public enum CovarianceMetric {
    /// The relative tolerance of the symmetry checks: `|A_ij − A_ji| ≤ symmetryTolerance ·
    /// max |A|` for the covariance, every direction and every right-hand side.
    public static let symmetryTolerance = 1e-10

    /// Fisher-Rao / KL Hessian: G_ab = ½ tr(Σ⁻¹ U_a Σ⁻¹ U_b).
    ///
    /// - Parameters:
    ///   - covariance: Σ, row-major `n x n`, symmetric positive definite.
    ///   - dimension: `n`, positive.
    ///   - directions: `k` symmetric `n x n` row-major matrices `U_a` (`k` may be zero).
    /// - Returns: the `k x k` metric, row-major, symmetric (exactly) and positive
    ///   semi-definite.
    /// - Throws: see ``CovarianceMetric``.
    public static func fisherRao(covariance: [Double], dimension: Int, directions: [[Double]]) throws -> [Double] {
        try eigenbasisMetric(covariance: covariance, dimension: dimension, directions: directions) { 0.5 / ($0 * $1) }
    }

    /// Hessian of the squared Wasserstein-2 distance at Σ' = Σ (twice the Riemannian Bures-Wasserstein metric): G_ab = tr(L_a U_b), where Σ L_a + L_a Σ = U_a.
    ///
    /// - Parameters:
    ///   - covariance: Σ, row-major `n x n`, symmetric positive definite.
    ///   - dimension: `n`, positive.
    ///   - directions: `k` symmetric `n x n` row-major matrices `U_a` (`k` may be zero).
    /// - Returns: the `k x k` metric, row-major, symmetric (exactly) and positive
    ///   semi-definite. Halve it for the Riemannian Bures-Wasserstein metric.
    /// - Throws: see ``CovarianceMetric``.
    public static func wasserstein2(covariance: [Double], dimension: Int, directions: [[Double]]) throws -> [Double] {
        try eigenbasisMetric(covariance: covariance, dimension: dimension, directions: directions) { 1 / ($0 + $1) }
    }

    /// The solution L of the Lyapunov equation Σ L + L Σ = U (Σ SPD, U symmetric), via Σ's eigendecomposition.
    ///
    /// - Parameters:
    ///   - covariance: Σ, row-major `n x n`, symmetric positive definite.
    ///   - dimension: `n`, positive.
    ///   - right: U, row-major `n x n`, symmetric.
    /// - Returns: L, row-major `n x n`, symmetric (exactly: the computed `(L + Lᵀ)/2`). The
    ///   solution is unique because every `λ_i + λ_j > 0`.
    /// - Throws: see ``CovarianceMetric``.
    public static func lyapunov(covariance: [Double], dimension: Int, right: [Double]) throws -> [Double] {
        let eigen = try Eigen(covariance: covariance, dimension: dimension)
        let n = dimension
        var tilde = try eigen.rotate(right, name: "right")
        for i in 0..<n {
            for j in 0..<n { tilde[i * n + j] /= eigen.values[i] + eigen.values[j] }
        }
        var l = eigen.rotateBack(tilde)
        for i in 0..<n {
            for j in (i + 1)..<n {
                let mean = 0.5 * (l[i * n + j] + l[j * n + i])
                l[i * n + j] = mean
                l[j * n + i] = mean
            }
        }
        try require(
            l.allSatisfy(\.isFinite), "covariance",
            "the Lyapunov solution overflows float64 (smallest eigenvalue \(eigen.values[0]))")
        return l
    }

    // MARK: - Helpers

    /// `G_ab = Σ_ij Ũ_a,ij Ũ_b,ij · weight(λ_i, λ_j)` with `Ũ = Vᵀ U V` in Σ's eigenbasis.
    private static func eigenbasisMetric(
        covariance: [Double], dimension n: Int, directions: [[Double]], weight: (Double, Double) -> Double
    ) throws -> [Double] {
        let eigen = try Eigen(covariance: covariance, dimension: n)
        let rotated = try directions.enumerated().map { index, direction in
            try eigen.rotate(direction, name: "directions[\(index)]")
        }
        var weights = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n { weights[i * n + j] = weight(eigen.values[i], eigen.values[j]) }
        }
        return try gram(rotated, weights: weights)
    }

    /// `G_ab = Σ_ij Ũ_a,ij Ũ_b,ij w_ij`, filled symmetrically.
    private static func gram(_ rotated: [[Double]], weights: [Double]) throws -> [Double] {
        let k = rotated.count
        var g = [Double](repeating: 0, count: k * k)
        for a in 0..<k {
            for b in a..<k {
                let sum = rotated[a].withUnsafeBufferPointer { x in
                    rotated[b].withUnsafeBufferPointer { y in
                        weights.withUnsafeBufferPointer { w in
                            var sum = 0.0
                            for index in w.indices { sum += x[index] * y[index] * w[index] }
                            return sum
                        }
                    }
                }
                g[a * k + b] = sum
                g[b * k + a] = sum
            }
        }
        try require(g.allSatisfy(\.isFinite), "covariance", "the metric overflows float64")
        return g
    }

    /// One validated eigendecomposition of Σ.
    private struct Eigen {
        let n: Int
        /// The eigenvalues, ascending.
        let values: [Double]
        /// Vᵀ, row-major: row j is eigenvector j.
        let vectorsTransposed: [Double]

        init(covariance: [Double], dimension n: Int) throws {
            try requireLAPACKSquare(count: covariance.count, dimension: n, name: "covariance")
            try CovarianceMetric.requireSymmetric(covariance, n: n, name: "covariance")

            let decomposition = try SymmetricEigendecomposition(covariance, dimension: n)
            let (eigenvalues, vectors) = (decomposition.values, decomposition.vectors)
            let smallest = eigenvalues[0]
            let largest = eigenvalues[n - 1]
            let floor = Double(n) * Double.ulpOfOne * largest
            try require(
                smallest > 0 && smallest > floor && largest.isFinite, "covariance",
                "must be positive definite, but its smallest eigenvalue is \(smallest)"
                    + (smallest > 0 ? " (at most n·ε·λmax = \(floor), numerically singular)" : ""))
            self.n = n
            self.values = eigenvalues
            self.vectorsTransposed = vectors
        }

        /// `Vᵀ U V` for a validated symmetric `U`.
        func rotate(_ u: [Double], name: String) throws -> [Double] {
            try require(
                u.count == n * n, name, "holds \(u.count) values, expected dimension² = \(n * n)")
            try CovarianceMetric.requireSymmetric(u, n: n, name: name)
            var out = [Double](repeating: 0, count: n * n)
            var t = [Double](repeating: 0, count: n * n)
            vectorsTransposed.withUnsafeBufferPointer { vt in
                u.withUnsafeBufferPointer { u in
                    t.withUnsafeMutableBufferPointer { t in
                        // T = Vᵀ U: row j of T accumulates Vᵀ_ji · (row i of U).
                        for j in 0..<n {
                            for i in 0..<n {
                                let c = vt[j * n + i]
                                if c == 0 { continue }
                                for m in 0..<n { t[j * n + m] += c * u[i * n + m] }
                            }
                        }
                        out.withUnsafeMutableBufferPointer { out in
                            // Ũ = T V: Ũ_jl = (row j of T) · (row l of Vᵀ).
                            for j in 0..<n {
                                for l in 0..<n {
                                    var dot = 0.0
                                    for m in 0..<n { dot += t[j * n + m] * vt[l * n + m] }
                                    out[j * n + l] = dot
                                }
                            }
                        }
                    }
                }
            }
            return out
        }

        /// `V X Vᵀ`.
        func rotateBack(_ x: [Double]) -> [Double] {
            let vt = vectorsTransposed
            // S = X Vᵀ: row j of S accumulates X_jl · (row l of Vᵀ).
            var s = [Double](repeating: 0, count: n * n)
            for j in 0..<n {
                for l in 0..<n {
                    let c = x[j * n + l]
                    if c == 0 { continue }
                    for m in 0..<n { s[j * n + m] += c * vt[l * n + m] }
                }
            }
            // Result = V S: row i accumulates V_ij · (row j of S), with V_ij = Vᵀ_ji.
            var out = [Double](repeating: 0, count: n * n)
            for j in 0..<n {
                for i in 0..<n {
                    let c = vt[j * n + i]
                    if c == 0 { continue }
                    for m in 0..<n { out[i * n + m] += c * s[j * n + m] }
                }
            }
            return out
        }
    }

    /// Throws unless `a` is finite and symmetric within ``symmetryTolerance``.
    private static func requireSymmetric(_ a: [Double], n: Int, name: String) throws {
        let nonFinite = a.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        if nonFinite > 0 { throw NaturalGradientError.nonFiniteValues(name: name, count: nonFinite) }
        let scale = a.reduce(0.0) { max($0, abs($1)) }
        var worst = 0.0
        var at = (0, 0)
        for i in 0..<n {
            for j in (i + 1)..<n {
                let gap = abs(a[i * n + j] - a[j * n + i])
                if gap > worst { (worst, at) = (gap, (i, j)) }
            }
        }
        try require(
            worst <= symmetryTolerance * scale, name,
            "must be symmetric, but entries (\(at.0), \(at.1)) and (\(at.1), \(at.0)) differ by \(worst) "
                + "(largest entry \(scale), relative tolerance \(symmetryTolerance))")
    }
}
