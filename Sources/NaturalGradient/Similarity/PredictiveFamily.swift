/// A model's predictive distribution and the layout of its output vector z, the point at
/// which an output metric is evaluated (`Docs/SimilarityMeasures.md`).
///
/// Layouts of z (one sample):
/// - ``categorical(classes:)``: the C logits; p = softmax(z).
/// - ``bernoulli``: one logit; p = sigmoid(z).
/// - ``gaussian(dimension:parametrization:)``: `[μ_1 … μ_d, s_1 … s_d]` with s the scale
///   in the chosen ``GaussianParametrization`` (a diagonal covariance; d = 1 is the
///   univariate Gaussian).
/// - ``gaussianFullCovariance(dimension:)``: `[μ_1 … μ_d, Σ_11, Σ_21, Σ_22, Σ_31, …, Σ_dd]`,
///   the mean and then the lower triangle of Σ row by row (d(d+1)/2 values). An
///   off-diagonal coordinate moves Σ_ij and Σ_ji together.
/// - ``vector(dimension:)``: a plain vector with no distribution attached, for
///   ``SimilarityMeasure/squaredEuclidean`` and custom measures.
public enum PredictiveFamily: Sendable, Hashable, CustomStringConvertible {
    /// Softmax over `classes` logits.
    case categorical(classes: Int)
    /// A sigmoid on one logit.
    case bernoulli
    /// A Gaussian with diagonal covariance over `dimension` coordinates.
    case gaussian(dimension: Int, parametrization: GaussianParametrization)
    /// A Gaussian with full covariance, for small `dimension` (at most
    /// ``maximumFullCovarianceDimension``).
    case gaussianFullCovariance(dimension: Int)
    /// A plain output vector.
    case vector(dimension: Int)

    /// The largest d of ``gaussianFullCovariance(dimension:)``: its metric is computed on
    /// the host in float64, one eigendecomposition per sample.
    public static let maximumFullCovarianceDimension = 8

    /// The length of z.
    public var outputCount: Int {
        switch self {
        case let .categorical(classes): classes
        case .bernoulli: 1
        case let .gaussian(dimension, _): 2 * dimension
        case let .gaussianFullCovariance(d): d + d * (d + 1) / 2
        case let .vector(dimension): dimension
        }
    }

    public var description: String {
        switch self {
        case let .categorical(classes): "categorical (\(classes) logits)"
        case .bernoulli: "Bernoulli (logit)"
        case let .gaussian(d, parametrization): "Gaussian, diagonal, d = \(d), \(parametrization)"
        case let .gaussianFullCovariance(d): "Gaussian, full covariance, d = \(d), (μ, Σ)"
        case let .vector(dimension): "vector (\(dimension) outputs)"
        }
    }

    /// Throws unless the family's sizes are usable.
    func validate() throws {
        switch self {
        case let .categorical(classes):
            try require(classes >= 2, "family", "a categorical distribution needs at least 2 classes, got \(classes)")
        case .bernoulli:
            break
        case let .gaussian(dimension, _):
            try require(dimension >= 1, "family", "a Gaussian needs dimension ≥ 1, got \(dimension)")
        case let .gaussianFullCovariance(d):
            try require(
                d >= 1 && d <= Self.maximumFullCovarianceDimension, "family",
                "a full-covariance Gaussian needs 1 ≤ dimension ≤ \(Self.maximumFullCovarianceDimension), got \(d)")
        case let .vector(dimension):
            try require(dimension >= 1, "family", "a vector output needs dimension ≥ 1, got \(dimension)")
        }
    }

    /// Throws unless `z` is a valid output of this family (length, finite, positive scales,
    /// a positive-definite covariance). `name` is the argument named in the error.
    func validate(output z: [Double], name: String = "z") throws {
        try validate()
        try require(z.count == outputCount, name, "has \(z.count) values; \(self) takes \(outputCount)")
        if let index = z.firstIndex(where: { !$0.isFinite }) {
            throw NaturalGradientError.invalidArgument(name: name, reason: "value \(index) is \(z[index]), not finite")
        }
        switch self {
        case let .gaussian(d, parametrization) where parametrization != .meanLogStandardDeviation:
            for i in d..<(2 * d) where !(z[i] > 0) {
                throw NaturalGradientError.invalidArgument(
                    name: name, reason: "value \(i) is the \(parametrization.scaleName) \(z[i]); it must be positive")
            }
        case let .gaussianFullCovariance(d):
            let covariance = Self.covariance(from: z, dimension: d)
            let smallest = try SymmetricEigendecomposition(covariance, dimension: d).values[0]
            try require(smallest > 0, name, "its covariance is not positive definite (smallest eigenvalue \(smallest))")
        default:
            break
        }
    }

    /// The symmetric d x d covariance held in the lower-triangle part of a full-covariance z.
    static func covariance(from z: [Double], dimension d: Int) -> [Double] {
        var sigma = [Double](repeating: 0, count: d * d)
        var index = d
        for i in 0..<d {
            for j in 0...i {
                sigma[i * d + j] = z[index]
                sigma[j * d + i] = z[index]
                index += 1
            }
        }
        return sigma
    }

    /// The symmetric directions E_a that the covariance coordinates of a full-covariance z
    /// move: `E_ii` has a single 1, `E_ij` (i ≠ j) has 1 at (i, j) and (j, i).
    static func covarianceDirections(dimension d: Int) -> [[Double]] {
        var directions: [[Double]] = []
        for i in 0..<d {
            for j in 0...i {
                var direction = [Double](repeating: 0, count: d * d)
                direction[i * d + j] = 1
                direction[j * d + i] = 1
                directions.append(direction)
            }
        }
        return directions
    }
}

/// How a Gaussian's scale is written in z, per coordinate.
public enum GaussianParametrization: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// (μ, σ), the standard deviation.
    case meanStandardDeviation
    /// (μ, log σ), unconstrained.
    case meanLogStandardDeviation
    /// (μ, σ²), the variance.
    case meanVariance

    public var description: String {
        switch self {
        case .meanStandardDeviation: "(μ, σ)"
        case .meanLogStandardDeviation: "(μ, log σ)"
        case .meanVariance: "(μ, σ²)"
        }
    }

    var scaleName: String {
        switch self {
        case .meanStandardDeviation: "standard deviation"
        case .meanLogStandardDeviation: "log standard deviation"
        case .meanVariance: "variance"
        }
    }

    /// The value passed to `SimilarityFactors.cl`'s `gaussian_metric_roots`.
    var kernelCode: UInt32 {
        switch self {
        case .meanStandardDeviation: 0
        case .meanLogStandardDeviation: 1
        case .meanVariance: 2
        }
    }
}
