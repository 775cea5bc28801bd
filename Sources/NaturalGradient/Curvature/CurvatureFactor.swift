import OpenCLHost

/// The curvature factor of DESIGN.md section 2: a row-major matrix `U` (M x P) with
/// optional row weights `w ≥ 0` and a sample count N, standing for
/// `F = (1/N) Σ_m w_m u_m u_mᵀ`. M = N·C for C rows per sample; the mean is over the
/// N samples, not the M rows.
///
/// Make one from per-sample gradients (`empiricalFisher`, `monteCarloFisher`), from
/// output Jacobians and an output metric (`exactFisher`), or directly from a matrix.
public struct CurvatureFactor<Element: DeviceScalar> {
    /// U, row-major, `rows * dimension` elements from the start.
    public let matrix: Buffer<Element>
    /// M, the number of rows of U.
    public let rows: Int
    /// P, the number of parameters.
    public let dimension: Int
    /// N, the number of samples the mean is taken over.
    public let samples: Int
    /// Per-row weights w (M values, all finite and ≥ 0), or nil for all ones.
    public let weights: Buffer<Element>?

    /// A factor over device data the caller already has (nothing is copied). Weights are
    /// read back once to check that they are finite and not negative.
    public init(matrix: Buffer<Element>, rows: Int, dimension: Int, samples: Int, weights: Buffer<Element>? = nil)
        throws
    {
        try require(rows > 0, "rows", "must be positive (an empty batch), got \(rows)")
        try require(dimension > 0, "dimension", "must be positive, got \(dimension)")
        try require(samples > 0, "samples", "must be positive, got \(samples)")
        let (needed, overflow) = rows.multipliedReportingOverflow(by: dimension)
        try require(
            !overflow && matrix.count >= needed, "matrix",
            "holds \(matrix.count) elements, fewer than \(rows) x \(dimension)")
        try require(UInt64(needed) < UInt64(UInt32.max), "matrix", "has more than 2^32 elements; split it into chunks")
        if let weights {
            try require(weights.context === matrix.context, "weights", "belong to another context")
            try require(weights.count >= rows, "weights", "holds \(weights.count) values for \(rows) rows")
            try Self.validateWeights(weights.download(0..<rows))
        }
        self.matrix = matrix
        self.rows = rows
        self.dimension = dimension
        self.samples = samples
        self.weights = weights
    }

    /// A factor copied from host arrays: `matrix` is M x P row-major.
    public init(
        context: Context, matrix: [Element], rows: Int, dimension: Int, samples: Int, weights: [Element]? = nil
    ) throws {
        try require(rows > 0 && dimension > 0, "rows", "the shape \(rows) x \(dimension) is empty")
        try require(
            matrix.count == rows * dimension, "matrix", "holds \(matrix.count) values, expected \(rows) x \(dimension)")
        if let weights {
            try require(weights.count == rows, "weights", "holds \(weights.count) values for \(rows) rows")
            try Self.validateWeights(weights)
        }
        try self.init(
            matrix: Buffer(context: context, copying: matrix), rows: rows, dimension: dimension, samples: samples,
            weights: weights.map { try Buffer(context: context, copying: $0) })
    }

    /// The context the data lives in.
    public var context: Context { matrix.context }

    /// The number of NaN or infinite values in U (an opt-in check: one pass over U).
    public func nonFiniteCount() throws -> Int {
        try VectorChecks<Element>(context: context).nonFiniteCount(matrix, count: rows * dimension)
    }

    /// Throws `NaturalGradientError.nonFiniteValues` if U holds any NaN or infinity.
    public func requireFinite() throws {
        let count = try nonFiniteCount()
        if count > 0 { throw NaturalGradientError.nonFiniteValues(name: "matrix", count: count) }
    }

    static func validateWeights(_ weights: [Element]) throws {
        if let index = weights.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw NaturalGradientError.invalidArgument(
                name: "weights", reason: "weight \(index) is \(weights[index]); weights must be finite and ≥ 0")
        }
    }
}

// MARK: - Factors from per-sample data

extension CurvatureFactor {
    /// The empirical Fisher: row i is the gradient of the loss of sample i at its training
    /// label (N x P), C = 1.
    public static func empiricalFisher(perSampleGradients: Buffer<Element>, samples: Int, dimension: Int,
                                       weights: Buffer<Element>? = nil) throws -> CurvatureFactor {
        try CurvatureFactor(
            matrix: perSampleGradients, rows: samples, dimension: dimension, samples: samples, weights: weights)
    }

    /// The Monte-Carlo Fisher: `draws` gradients per sample, each at a label drawn from the
    /// model's own predictive distribution, stored sample-major ((N·draws) x P). Each draw
    /// counts as 1/draws of a sample, so F = (1/N) Σ_i (1/draws) Σ_s u_is u_isᵀ.
    public static func monteCarloFisher(sampledGradients: Buffer<Element>, samples: Int, draws: Int = 1,
                                        dimension: Int) throws -> CurvatureFactor {
        try require(draws > 0, "draws", "must be positive, got \(draws)")
        try require(samples > 0, "samples", "must be positive, got \(samples)")
        return try CurvatureFactor(
            matrix: sampledGradients, rows: samples * draws, dimension: dimension, samples: samples * draws)
    }

    /// The exact Fisher / generalised Gauss-Newton matrix: U's rows are the rows of
    /// `B_i J_i`, where `J_i` is sample i's Jacobian of the model output (outputs x P,
    /// samples stored one after another) and `B_iᵀ B_i` the output metric.
    public static func exactFisher(outputJacobians: Buffer<Element>, samples: Int, outputs: Int, dimension: Int,
                                   metric: OutputMetric<Element>) throws -> CurvatureFactor {
        let matrix = try SimilarityFactors<Element>(context: outputJacobians.context)
            .factor(jacobians: outputJacobians, samples: samples, outputs: outputs, dimension: dimension, metric: metric)
        return try CurvatureFactor(matrix: matrix, rows: samples * outputs, dimension: dimension, samples: samples)
    }

    /// The formal natural-gradient metric of a similarity measure (Mallasto et al., 2019):
    /// rows `B(z_i) J_i` with `B(z)ᵀB(z) = M(z)`, the Hessian of `D(p_z, p_{z'})` at z' = z,
    /// so that `F = (1/N) Σ_i J_iᵀ M(z_i) J_i`. Every representation and solver takes the
    /// result like any other factor.
    ///
    /// - Parameters:
    ///   - outputJacobians: the Jacobians `J_i = ∂z_i/∂θ`, each O x dimension row-major
    ///     (O = `family.outputCount`), samples one after another.
    ///   - outputs: the model's outputs z_i (O values per sample, laid out as
    ///     ``PredictiveFamily`` describes); read back once and checked.
    ///   - samples: N.
    ///   - dimension: P, the number of parameters.
    ///   - family: the predictive distribution.
    ///   - measure: the similarity measure.
    /// - Throws: `NaturalGradientError.invalidArgument` naming the argument (a measure the
    ///   family does not support, short buffers, invalid outputs).
    public static func formalMetric(
        outputJacobians: Buffer<Element>, outputs: Buffer<Element>, samples: Int, dimension: Int,
        family: PredictiveFamily, measure: SimilarityMeasure
    ) throws -> CurvatureFactor {
        let matrix = try SimilarityFactors<Element>(context: outputJacobians.context).factor(
            jacobians: outputJacobians, outputs: outputs, samples: samples, dimension: dimension, family: family,
            measure: measure)
        return try CurvatureFactor(matrix: matrix, rows: samples * family.outputCount, dimension: dimension, samples: samples)
    }
}
