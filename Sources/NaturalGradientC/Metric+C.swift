import CNaturalGradient
import NaturalGradient

extension PredictiveFamily {
    /// The family an `ng_family` describes.
    init(_ family: ng_family) throws {
        func dimension() throws -> Int { try count(family.dimension, "family.dimension") }
        switch family.kind {
        case Int32(NG_FAMILY_CATEGORICAL):
            self = .categorical(classes: try dimension())
        case Int32(NG_FAMILY_BERNOULLI):
            self = .bernoulli
        case Int32(NG_FAMILY_GAUSSIAN):
            let parametrization: GaussianParametrization
            switch family.parametrization {
            case Int32(NG_GAUSSIAN_SIGMA): parametrization = .meanStandardDeviation
            case Int32(NG_GAUSSIAN_LOG_SIGMA): parametrization = .meanLogStandardDeviation
            case Int32(NG_GAUSSIAN_VARIANCE): parametrization = .meanVariance
            default:
                throw NaturalGradientError.invalidArgument(
                    name: "family.parametrization",
                    reason:
                        "\(family.parametrization) is not NG_GAUSSIAN_SIGMA (0), NG_GAUSSIAN_LOG_SIGMA (1) or NG_GAUSSIAN_VARIANCE (2)"
                )
            }
            self = .gaussian(dimension: try dimension(), parametrization: parametrization)
        case Int32(NG_FAMILY_GAUSSIAN_FULL):
            let d = try dimension()
            try check(
                d <= PredictiveFamily.maximumFullCovarianceDimension, "family.dimension",
                "a full-covariance Gaussian takes at most \(PredictiveFamily.maximumFullCovarianceDimension), got \(d)")
            self = .gaussianFullCovariance(dimension: d)
        case Int32(NG_FAMILY_VECTOR):
            self = .vector(dimension: try dimension())
        default:
            throw NaturalGradientError.invalidArgument(
                name: "family.kind", reason: "\(family.kind) is not an NG_FAMILY_* code (1-5)")
        }
    }
}

extension SimilarityMeasure {
    /// The measure an `ng_measure` describes.
    init(_ measure: ng_measure) throws {
        switch measure.kind {
        case Int32(NG_MEASURE_KL): self = .kullbackLeibler
        case Int32(NG_MEASURE_REVERSE_KL): self = .fDivergence(.reverseKullbackLeibler)
        case Int32(NG_MEASURE_HELLINGER): self = .fDivergence(.squaredHellinger)
        case Int32(NG_MEASURE_CHI2): self = .fDivergence(.chiSquared)
        case Int32(NG_MEASURE_JS): self = .fDivergence(.jensenShannon)
        case Int32(NG_MEASURE_F_DIVERGENCE):
            self = .fDivergence(
                try FDivergence(name: "f-divergence", secondDerivativeAtOne: measure.f_second_derivative))
        case Int32(NG_MEASURE_W2): self = .wasserstein2
        case Int32(NG_MEASURE_EUCLIDEAN): self = .squaredEuclidean
        case Int32(NG_MEASURE_CUSTOM):
            guard let callback = measure.divergence else { throw BridgeError.null("measure.divergence") }
            let divergence = CallerDivergence(callback: callback, user: measure.user)
            self = .custom(try CustomSimilarity(name: "C callback") { z, zPrime in divergence(z, zPrime) })
        default:
            throw NaturalGradientError.invalidArgument(
                name: "measure.kind", reason: "\(measure.kind) is not an NG_MEASURE_* code (1-9)")
        }
    }
}

/// A caller's D(z, z') as a Swift closure. The library calls it only during the C call that
/// passed it, on that call's thread, so the unchecked Sendable is the header's contract.
struct CallerDivergence: @unchecked Sendable {
    let callback: ng_divergence_callback
    let user: UnsafeMutableRawPointer?

    func callAsFunction(_ z: [Double], _ zPrime: [Double]) -> Double {
        guard z.count == zPrime.count else { return .nan }
        return z.withUnsafeBufferPointer { a in
            zPrime.withUnsafeBufferPointer { b in callback(a.baseAddress, b.baseAddress, Int64(z.count), user) }
        }
    }
}

@_cdecl("ng_family_output_count")
public func ngFamilyOutputCount(_ family: UnsafePointer<ng_family>?, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    boundary {
        let family = try PredictiveFamily(try nonNull(family, "family").pointee)
        try nonNull(out, "count").pointee = Int64(family.outputCount)
    }
}

@_cdecl("ng_output_metric")
public func ngOutputMetric(
    _ family: UnsafePointer<ng_family>?, _ measure: UnsafePointer<ng_measure>?, _ z: UnsafePointer<Double>?,
    _ zLength: Int64, _ squareRoot: Int32, _ out: UnsafeMutablePointer<Double>?, _ outLength: Int64
) -> Int32 {
    boundary {
        let family = try PredictiveFamily(try nonNull(family, "family").pointee)
        let measure = try SimilarityMeasure(try nonNull(measure, "measure").pointee)
        let o = family.outputCount
        try check(zLength == Int64(o), "z", "has \(zLength) values; \(family) takes \(o)")
        try check(outLength == Int64(o * o), "out", "has room for \(outLength) values, the metric is \(o) x \(o)")
        let values = Array(UnsafeBufferPointer(start: try nonNull(z, "z"), count: o))
        let out = try nonNull(out, "out")
        let result =
            squareRoot != 0
            ? try measure.squareRoot(for: family, at: values) : try measure.metric(for: family, at: values)
        try check(result.count == o * o, "out", "the metric has \(result.count) values, expected \(o * o)")
        for (index, value) in result.enumerated() { out[index] = value }
    }
}
