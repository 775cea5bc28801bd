import Foundation

// MARK: - The output metric and its square root on the host (float64)

extension SimilarityMeasure {
    /// The output metric `M(z) = ∇²_{z'} D(p_z, p_{z'})|_{z'=z}`, an O x O symmetric
    /// positive semi-definite matrix (row-major) with O = `family.outputCount`.
    ///
    /// Closed forms for the built-in measures; central finite differences for
    /// ``custom(_:)`` (see ``CustomSimilarity/metricEstimate(at:)`` for its error).
    ///
    /// - Throws: `NaturalGradientError.invalidArgument` naming `measure` for a measure the
    ///   family does not support, `z` for an output of the wrong length, a non-finite value,
    ///   a non-positive scale or a covariance that is not positive definite, and `measure`
    ///   for a custom metric that is not positive semi-definite.
    public func metric(for family: PredictiveFamily, at z: [Double]) throws -> [Double] {
        try validate(for: family)
        try family.validate(output: z)
        let o = family.outputCount
        if case let .custom(measure) = self { return try measure.metricEstimate(at: z).metric }
        if case .squaredEuclidean = self { return identityMatrix(o) }
        if let entries = try Self.diagonalMetric(self, family: family, at: z) { return diagonalMatrix(entries) }
        switch family {
        case .categorical:
            let c = fisherMultiple ?? 1
            let (p, q) = Self.softmaxWithComplements(z)
            var m = [Double](repeating: 0, count: o * o)
            for i in 0..<o {
                // The diagonal p_i − p_i² as p_i·Σ_{j≠i} p_j: no cancellation when p_i ≈ 1.
                for j in 0..<o { m[i * o + j] = c * (i == j ? p[i] * q[i] : -p[i] * p[j]) }
            }
            return m
        case let .gaussianFullCovariance(d):
            return try Self.fullCovarianceMetric(self, dimension: d, at: z)
        case .bernoulli, .gaussian, .vector:
            throw NaturalGradientError.invalidArgument(name: "measure", reason: "\(self) has no metric for \(family)")
        }
    }

    /// A square root `B` of the output metric, O x O row-major with `BᵀB = M(z)`.
    ///
    /// Which root: the diagonal `√M` for diagonal metrics (Bernoulli, diagonal Gaussians,
    /// ``squaredEuclidean``); for categorical outputs the analytic, non-symmetric
    /// `√c·(diag(√p) − √p pᵀ)` with c = f''(1) (DESIGN.md section 2), which needs no
    /// factorisation; otherwise (full-covariance Gaussians, custom measures) the symmetric
    /// square root `Q Λ^½ Qᵀ`, which exists for semi-definite metrics too (eigenvalues
    /// within rounding of zero are taken as zero).
    public func squareRoot(for family: PredictiveFamily, at z: [Double]) throws -> [Double] {
        try validate(for: family)
        try family.validate(output: z)
        let o = family.outputCount
        if case .squaredEuclidean = self { return identityMatrix(o) }
        if let entries = try Self.diagonalMetric(self, family: family, at: z) {
            return diagonalMatrix(entries.map { $0.squareRoot() })
        }
        if case .categorical = family, let c = fisherMultiple {
            let (p, q) = Self.softmaxWithComplements(z)
            let scale = c.squareRoot()
            var b = [Double](repeating: 0, count: o * o)
            for i in 0..<o {
                // Diagonal √p_i (1 − p_i) as √p_i·Σ_{j≠i} p_j (no cancellation at p_i ≈ 1).
                for j in 0..<o { b[i * o + j] = scale * p[i].squareRoot() * (i == j ? q[i] : -p[j]) }
            }
            return b
        }
        return try Self.symmetricSquareRoot(metric(for: family, at: z), dimension: o)
    }

    // MARK: Closed forms

    /// The entries of a diagonal metric, or nil when the metric is not diagonal. The device
    /// kernel `gaussian_metric_roots` computes their square roots from the same formulas.
    static func diagonalMetric(
        _ measure: SimilarityMeasure, family: PredictiveFamily, at z: [Double]
    ) throws
        -> [Double]?
    {
        switch family {
        case .bernoulli:
            guard let c = measure.fisherMultiple else { return nil }
            // p(1 − p) as σ(z)σ(−z): 1 − p cancels to 0 for large logits (z = 40: true 4e-18).
            return [c * sigmoid(z[0]) * sigmoid(-z[0])]
        case let .gaussian(d, parametrization):
            let (mean, scale) = try gaussianMetric(measure, parametrization: parametrization)
            return (0..<d).map { mean(z[d + $0]) } + (0..<d).map { scale(z[d + $0]) }
        case .categorical, .gaussianFullCovariance, .vector:
            return nil
        }
    }

    /// The (μ, scale) diagonal metric of one Gaussian coordinate, as functions of its scale
    /// coordinate s (σ, log σ or σ²):
    ///
    /// | | KL (times f''(1)) | W2² |
    /// |---|---|---|
    /// | (μ, σ) | 1/σ², 2/σ² | 2, 2 |
    /// | (μ, log σ) | 1/σ², 2 | 2, 2σ² |
    /// | (μ, σ²) | 1/σ², 1/(2σ⁴) | 2, 1/(2σ²) |
    static func gaussianMetric(
        _ measure: SimilarityMeasure, parametrization: GaussianParametrization
    ) throws
        -> (mean: (Double) -> Double, scale: (Double) -> Double)
    {
        if let c = measure.fisherMultiple {
            switch parametrization {
            case .meanStandardDeviation: return ({ c / ($0 * $0) }, { 2 * c / ($0 * $0) })
            case .meanLogStandardDeviation: return ({ c * exp(-2 * $0) }, { _ in 2 * c })
            case .meanVariance: return ({ c / $0 }, { c / (2 * $0 * $0) })
            }
        }
        guard case .wasserstein2 = measure else {
            throw NaturalGradientError.invalidArgument(name: "measure", reason: "\(measure) has no diagonal Gaussian form")
        }
        switch parametrization {
        case .meanStandardDeviation: return ({ _ in 2 }, { _ in 2 })
        case .meanLogStandardDeviation: return ({ _ in 2 }, { 2 * exp(2 * $0) })
        case .meanVariance: return ({ _ in 2 }, { 1 / (2 * $0) })
        }
    }

    /// KL (times f''(1)) or W2² for N(μ, Σ) with z = (μ, lower triangle of Σ): the μ block
    /// is `Σ⁻¹` or `2I`, the Σ block comes from ``CovarianceMetric``, the cross block is
    /// zero for both (each measure separates into a mean and a covariance part at z' = z).
    static func fullCovarianceMetric(_ measure: SimilarityMeasure, dimension d: Int, at z: [Double]) throws -> [Double] {
        let o = d + d * (d + 1) / 2
        let sigma = PredictiveFamily.covariance(from: z, dimension: d)
        let directions = PredictiveFamily.covarianceDirections(dimension: d)
        let meanBlock: [Double]
        let covarianceBlock: [Double]
        if let c = measure.fisherMultiple {
            let inverse = try SymmetricEigendecomposition(sigma, dimension: d).reassembled { 1 / $0 }
            meanBlock = inverse.map { c * $0 }
            covarianceBlock = try CovarianceMetric.fisherRao(covariance: sigma, dimension: d, directions: directions)
                .map { c * $0 }
        } else {
            meanBlock = identityMatrix(d).map { 2 * $0 }
            covarianceBlock = try CovarianceMetric.wasserstein2(covariance: sigma, dimension: d, directions: directions)
        }
        let k = o - d
        var m = [Double](repeating: 0, count: o * o)
        for i in 0..<d {
            for j in 0..<d { m[i * o + j] = meanBlock[i * d + j] }
        }
        for a in 0..<k {
            for b in 0..<k { m[(d + a) * o + d + b] = covarianceBlock[a * k + b] }
        }
        return m
    }

    // MARK: Helpers

    /// p = softmax(z) (the largest logit subtracted) and the complements
    /// `q_i = Σ_{j≠i} p_j = 1 − p_i`, each to full relative precision: for the largest
    /// logit the other terms are summed directly (`1 − p` would cancel when p ≈ 1), for
    /// the others `S − e_i` cannot cancel because S holds the largest term, 1.
    static func softmaxWithComplements(_ z: [Double]) -> (p: [Double], q: [Double]) {
        guard let top = z.indices.max(by: { z[$0] < z[$1] }) else { return ([], []) }
        let e = z.map { exp($0 - z[top]) }
        let sum = e.reduce(0, +)
        var others = 0.0
        for j in e.indices where j != top { others += e[j] }
        let p = e.map { $0 / sum }
        let q = e.indices.map { i in (i == top ? others : sum - e[i]) / sum }
        return (p, q)
    }

    static func sigmoid(_ z: Double) -> Double {
        z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z))
    }

    /// `Q Λ^½ Qᵀ` of a symmetric positive semi-definite matrix; eigenvalues below zero must
    /// be rounding (the callers check definiteness first) and are taken as zero.
    static func symmetricSquareRoot(_ matrix: [Double], dimension n: Int) throws -> [Double] {
        try SymmetricEigendecomposition(matrix, dimension: n).reassembled { max($0, 0).squareRoot() }
    }
}
