import CNaturalGradient
import NaturalGradient

/// A curvature factor behind a handle; `TypedFactor` holds it in its element type.
class FactorObject: HandledObject, @unchecked Sendable {
    let dtype: DType
    let rows: Int, dimension: Int, samples: Int

    init(dtype: DType, rows: Int, dimension: Int, samples: Int) {
        self.dtype = dtype
        self.rows = rows
        self.dimension = dimension
        self.samples = samples
        super.init(kind: .factor)
    }

    static func lookup(_ handle: UInt64, _ name: String = "factor") throws -> FactorObject {
        try Registry.shared.lookup(handle, FactorObject.self, .factor, name)
    }

    /// The factor behind `handle` in element type `E`; throws naming `name` when the dtype differs.
    static func typed<E: BridgeScalar>(
        _ handle: UInt64, _: E.Type, _ name: String = "factor"
    ) throws
        -> CurvatureFactor<E>
    {
        let object = try lookup(handle, name)
        guard let typed = object as? TypedFactor<E> else {
            throw BridgeError.dtype(name: name, reason: "the factor holds \(object.dtype.name), not \(E.dtype.name)")
        }
        return typed.factor
    }
}

final class TypedFactor<E: BridgeScalar>: FactorObject, @unchecked Sendable {
    let factor: CurvatureFactor<E>

    init(_ factor: CurvatureFactor<E>) {
        self.factor = factor
        super.init(dtype: E.dtype, rows: factor.rows, dimension: factor.dimension, samples: factor.samples)
    }
}

/// Registers `factor`; returns its handle.
private func publish<E: BridgeScalar>(_ factor: CurvatureFactor<E>) throws -> UInt64 {
    try Registry.shared.insert(TypedFactor(factor))
}

private func makeFactor<E: BridgeScalar>(
    _: E.Type, _ context: Context, _ matrix: UnsafeRawPointer?, rows: Int, dimension: Int, samples: Int,
    weights: UnsafeRawPointer?
) throws -> UInt64 {
    // Uploaded straight from the caller's memory, split into row pieces when U exceeds the
    // device's largest allocation.
    let u = try elements(matrix, count: try product(rows, dimension, "matrix"), "matrix", as: E.self)
    try requireFinite(u, "matrix")
    let w = try weights.map { try hostArray($0, count: rows, "weights", as: E.self) }
    return try publish(
        CurvatureFactor(context: context, copying: u, rows: rows, dimension: dimension, samples: samples, weights: w))
}

@_cdecl("ng_factor_create")
public func ngFactorCreate(
    _ contextHandle: UInt64, _ dtypeCode: Int32, _ matrix: UnsafeRawPointer?, _ rows: Int64, _ dimension: Int64,
    _ samples: Int64, _ weights: UnsafeRawPointer?, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    boundary {
        let context = try ContextObject.lookup(contextHandle).context
        let dtype = try DType(code: dtypeCode)
        let out = try nonNull(out, "factor")
        let (m, p, n) = (try count(rows, "rows"), try count(dimension, "dimension"), try count(samples, "samples"))
        out.pointee = try dtype.dispatch(
            { try makeFactor($0, context, matrix, rows: m, dimension: p, samples: n, weights: weights) },
            { try makeFactor($0, context, matrix, rows: m, dimension: p, samples: n, weights: weights) })
    }
}

/// The built-in `OutputMetric` a code names, its probabilities uploaded.
func builtInMetric<E: BridgeScalar>(
    _: E.Type, _ context: Context, _ code: Int32, _ values: UnsafeRawPointer?, samples: Int, outputs: Int, sigma: Double
) throws -> OutputMetric<E> {
    switch code {
    case Int32(NG_OUTPUT_SOFTMAX_CROSS_ENTROPY):
        return .softmaxCrossEntropy(
            probabilities: try Buffer<E>.uploading(
                context, values, count: try product(samples, outputs, "values"), "probabilities"))
    case Int32(NG_OUTPUT_BERNOULLI):
        try check(outputs == 1, "outputs", "a Bernoulli output is one logit per sample, got \(outputs)")
        return .bernoulli(probabilities: try Buffer<E>.uploading(context, values, count: samples, "probabilities"))
    case Int32(NG_OUTPUT_GAUSSIAN_MEAN):
        try check(sigma.isFinite && sigma > 0, "sigma", "must be finite and positive, got \(sigma)")
        return .gaussianMean(sigma: E(float64: sigma))
    default:
        throw NaturalGradientError.invalidArgument(
            name: "metric",
            reason:
                "\(code) is not a built-in output metric (NG_OUTPUT_SOFTMAX_CROSS_ENTROPY = 1, NG_OUTPUT_BERNOULLI = 2, NG_OUTPUT_GAUSSIAN_MEAN = 3)"
        )
    }
}

private func makeExactFisher<E: BridgeScalar>(
    _: E.Type, _ context: Context, _ jacobians: UnsafeRawPointer?, samples: Int, outputs: Int, dimension: Int,
    metric: Int32, values: UnsafeRawPointer?, sigma: Double
) throws -> UInt64 {
    let total = try product(try product(samples, outputs, "jacobians"), dimension, "jacobians")
    let j = try Buffer<E>.uploading(context, jacobians, count: total, "jacobians")
    let outputMetric = try builtInMetric(E.self, context, metric, values, samples: samples, outputs: outputs, sigma: sigma)
    return try publish(
        CurvatureFactor.exactFisher(
            outputJacobians: j, samples: samples, outputs: outputs, dimension: dimension, metric: outputMetric))
}

@_cdecl("ng_factor_exact_fisher")
public func ngFactorExactFisher(
    _ contextHandle: UInt64, _ dtypeCode: Int32, _ jacobians: UnsafeRawPointer?, _ samples: Int64, _ outputs: Int64,
    _ dimension: Int64, _ metric: Int32, _ values: UnsafeRawPointer?, _ sigma: Double,
    _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    boundary {
        let context = try ContextObject.lookup(contextHandle).context
        let dtype = try DType(code: dtypeCode)
        let out = try nonNull(out, "factor")
        let (n, o, p) = (try count(samples, "samples"), try count(outputs, "outputs"), try count(dimension, "dimension"))
        out.pointee = try dtype.dispatch(
            {
                try makeExactFisher(
                    $0, context, jacobians, samples: n, outputs: o, dimension: p, metric: metric, values: values,
                    sigma: sigma)
            },
            {
                try makeExactFisher(
                    $0, context, jacobians, samples: n, outputs: o, dimension: p, metric: metric, values: values,
                    sigma: sigma)
            })
    }
}

private func makeFormalMetric<E: BridgeScalar>(
    _: E.Type, _ context: Context, _ jacobians: UnsafeRawPointer?, _ outputs: UnsafeRawPointer?, samples: Int,
    dimension: Int, family: PredictiveFamily, measure: SimilarityMeasure
) throws -> UInt64 {
    let o = family.outputCount
    let j = try Buffer<E>.uploading(
        context, jacobians, count: try product(try product(samples, o, "jacobians"), dimension, "jacobians"),
        "jacobians")
    let z = try Buffer<E>.uploading(context, outputs, count: try product(samples, o, "outputs"), "outputs")
    return try publish(
        CurvatureFactor.formalMetric(
            outputJacobians: j, outputs: z, samples: samples, dimension: dimension, family: family, measure: measure))
}

@_cdecl("ng_factor_formal_metric")
public func ngFactorFormalMetric(
    _ contextHandle: UInt64, _ dtypeCode: Int32, _ jacobians: UnsafeRawPointer?, _ outputs: UnsafeRawPointer?,
    _ samples: Int64, _ dimension: Int64, _ family: UnsafePointer<ng_family>?, _ measure: UnsafePointer<ng_measure>?,
    _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    boundary {
        let context = try ContextObject.lookup(contextHandle).context
        let dtype = try DType(code: dtypeCode)
        let out = try nonNull(out, "factor")
        let family = try PredictiveFamily(try nonNull(family, "family").pointee)
        let measure = try SimilarityMeasure(try nonNull(measure, "measure").pointee)
        let (n, p) = (try count(samples, "samples"), try count(dimension, "dimension"))
        out.pointee = try dtype.dispatch(
            {
                try makeFormalMetric(
                    $0, context, jacobians, outputs, samples: n, dimension: p, family: family, measure: measure)
            },
            {
                try makeFormalMetric(
                    $0, context, jacobians, outputs, samples: n, dimension: p, family: family, measure: measure)
            })
    }
}

@_cdecl("ng_factor_info")
public func ngFactorInfo(
    _ handle: UInt64, _ dtype: UnsafeMutablePointer<Int32>?, _ rows: UnsafeMutablePointer<Int64>?,
    _ dimension: UnsafeMutablePointer<Int64>?, _ samples: UnsafeMutablePointer<Int64>?
) -> Int32 {
    boundary {
        let object = try FactorObject.lookup(handle)
        store(object.dtype.rawValue, dtype)
        store(Int64(object.rows), rows)
        store(Int64(object.dimension), dimension)
        store(Int64(object.samples), samples)
    }
}

private func downloadFactor<E: BridgeScalar>(
    _: E.Type, _ handle: UInt64, _ matrix: UnsafeMutableRawPointer?, _ length: Int64
) throws {
    let factor = try FactorObject.typed(handle, E.self)
    let total = factor.rows * factor.dimension
    try check(length == Int64(total), "length", "is \(length), the factor holds \(factor.rows) x \(factor.dimension)")
    try factor.download(into: destination(matrix, count: total, "matrix"))
}

@_cdecl("ng_factor_download")
public func ngFactorDownload(
    _ handle: UInt64, _ dtypeCode: Int32, _ matrix: UnsafeMutableRawPointer?, _ length: Int64
)
    -> Int32
{
    boundary {
        let object = try FactorObject.lookup(handle)
        try object.dtype.require(dtypeCode)
        try object.serialized {
            try object.dtype.dispatch(
                { try downloadFactor($0, handle, matrix, length) }, { try downloadFactor($0, handle, matrix, length) })
        }
    }
}
