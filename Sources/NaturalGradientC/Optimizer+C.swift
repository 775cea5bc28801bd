import CNaturalGradient
import Foundation
import NaturalGradient

/// An optimizer behind a handle; `TypedOptimizer` holds it in its element type.
class OptimizerObject: HandledObject, @unchecked Sendable {
    let dtype: DType
    let dimension: Int

    init(dtype: DType, dimension: Int) {
        self.dtype = dtype
        self.dimension = dimension
        super.init(kind: .optimizer)
    }

    static func lookup(_ handle: UInt64, _ name: String = "optimizer") throws -> OptimizerObject {
        try Registry.shared.lookup(handle, OptimizerObject.self, .optimizer, name)
    }

    func info() -> (step: Int, damping: Double, needsCurvature: Bool) { (0, 0, false) }

    /// One step; with `apply`, `parameters` is updated in place, else `update` receives δ.
    func update(
        parameters: UnsafeMutableRawPointer?, gradient: UnsafeRawPointer?, input: ng_curvature_input?, loss: Double,
        lossAt: ng_loss_callback?, user: UnsafeMutableRawPointer?, update: UnsafeMutableRawPointer?, apply: Bool
    ) throws -> ng_step_report {
        throw NaturalGradientError.invalidArgument(name: "optimizer", reason: "has no implementation")
    }

    func state() throws -> NaturalGradientOptimizerState {
        throw NaturalGradientError.invalidArgument(name: "optimizer", reason: "has no implementation")
    }

    func restore(_ state: NaturalGradientOptimizerState) throws {
        throw NaturalGradientError.invalidArgument(name: "optimizer", reason: "has no implementation")
    }
}

final class TypedOptimizer<E: BridgeScalar>: OptimizerObject, @unchecked Sendable {
    let optimizer: NaturalGradientOptimizer<E>

    init(_ optimizer: NaturalGradientOptimizer<E>) {
        self.optimizer = optimizer
        super.init(dtype: E.dtype, dimension: optimizer.dimension)
    }

    override func info() -> (step: Int, damping: Double, needsCurvature: Bool) {
        (optimizer.stepCount, optimizer.damping, optimizer.needsCurvature)
    }

    override func update(
        parameters: UnsafeMutableRawPointer?, gradient: UnsafeRawPointer?, input: ng_curvature_input?, loss: Double,
        lossAt: ng_loss_callback?, user: UnsafeMutableRawPointer?, update: UnsafeMutableRawPointer?, apply: Bool
    ) throws -> ng_step_report {
        let theta = try hostArray(UnsafeRawPointer(parameters), count: dimension, "parameters", as: E.self)
        let g = try hostArray(gradient, count: dimension, "gradient", as: E.self)
        let output = try destination(apply ? parameters : update, count: dimension, apply ? "parameters" : "update", as: E.self)
        let curvature = try input.flatMap { try curvatureInput($0) }
        let lossClosure: (([E]) throws -> Double)? = lossAt.map { callback in
            { candidate in
                var value = Double.nan
                let code = candidate.withUnsafeBytes { callback($0.baseAddress, Int64(candidate.count), &value, user) }
                if code != 0 { throw BridgeError.callback("the loss_at callback returned \(code); the step was abandoned") }
                return value
            }
        }
        let report = try optimizer.update(
            parameters: theta, gradient: g, curvature: curvature, loss: loss.isNaN ? nil : loss, lossAt: lossClosure)
        if apply {
            // θ + δ in float64, rounded once, as `NaturalGradientOptimizer.step` does.
            for i in 0..<dimension { output[i] = E(float64: theta[i].float64 + report.update[i].float64) }
        } else {
            for i in 0..<dimension { output[i] = report.update[i] }
        }
        return ng_step_report(report)
    }

    /// The Swift curvature input an `ng_curvature_input` describes (nil for NG_INPUT_NONE).
    private func curvatureInput(_ input: ng_curvature_input) throws -> CurvatureInput<E>? {
        let p = dimension
        switch input.kind {
        case Int32(NG_INPUT_NONE):
            return nil
        case Int32(NG_INPUT_PER_SAMPLE_GRADIENTS):
            let n = try count(input.samples, "input.samples")
            return .perSampleGradients(
                try hostArray(input.data, count: try product(n, p, "input.data"), "input.data", as: E.self), samples: n)
        case Int32(NG_INPUT_OUTPUT_JACOBIANS):
            let n = try count(input.samples, "input.samples")
            let measure: OutputMeasure<E>
            var outputs = input.outputs
            if input.output_metric == Int32(NG_OUTPUT_SIMILARITY) {
                let family = try PredictiveFamily(input.family)
                let z = try hostArray(
                    input.values, count: try product(n, family.outputCount, "input.values"), "input.values", as: E.self)
                measure = .similarity(family: family, measure: try SimilarityMeasure(input.measure), outputs: z)
                if outputs == 0 { outputs = Int64(family.outputCount) }
            } else {
                let o = try count(outputs, "input.outputs")
                measure = .metric(
                    try builtInMetric(
                        E.self, optimizer.context, input.output_metric, input.values, samples: n, outputs: o,
                        sigma: input.sigma))
            }
            let o = try count(outputs, "input.outputs")
            let jacobians = try hostArray(
                input.data, count: try product(try product(n, o, "input.data"), p, "input.data"), "input.data", as: E.self)
            return .outputJacobians(jacobians, samples: n, outputs: o, measure: measure)
        case Int32(NG_INPUT_LAYERS):
            guard case let .kfac(shapes) = optimizer.options.curvature else {
                throw NaturalGradientError.invalidArgument(
                    name: "input.kind", reason: "layer statistics are for a K-FAC optimizer")
            }
            let n = try count(input.samples, "input.samples")
            let layerCount = try count(input.layer_count, "input.layer_count")
            try check(
                layerCount == shapes.count, "input.layer_count", "is \(layerCount), the optimizer has \(shapes.count) layers")
            let layers = UnsafeBufferPointer(start: try nonNull(input.layers, "input.layers"), count: layerCount)
            let statistics = try zip(layers, shapes).enumerated().map { index, pair in
                let (layer, shape) = pair
                try check(
                    layer.inputs == Int64(shape.inputs) && layer.outputs == Int64(shape.outputs), "input.layers[\(index)]",
                    "is \(layer.outputs) x \(layer.inputs), the optimizer's layer is \(shape.outputs) x \(shape.inputs)")
                return LayerStatistics(
                    activations: try hostArray(
                        layer.activations, count: try product(n, shape.inputs, "activations"),
                        "input.layers[\(index)].activations", as: E.self),
                    outputGradients: try hostArray(
                        layer.output_gradients, count: try product(n, shape.outputs, "output_gradients"),
                        "input.layers[\(index)].output_gradients", as: E.self))
            }
            return .layers(statistics, samples: n)
        case Int32(NG_INPUT_FACTOR):
            return .factor(try FactorObject.typed(input.factor, E.self, "input.factor"))
        default:
            throw NaturalGradientError.invalidArgument(
                name: "input.kind", reason: "\(input.kind) is not an NG_INPUT_* code (0-4)")
        }
    }

    override func state() throws -> NaturalGradientOptimizerState { try optimizer.state() }

    override func restore(_ state: NaturalGradientOptimizerState) throws { try optimizer.restore(state) }
}

extension ng_step_report {
    init<E: BridgeScalar>(_ report: OptimizerStepReport<E>) {
        self.init()
        step = Int64(report.step)
        damping = report.damping
        next_damping = report.nextDamping
        step_size = report.stepSize
        update_norm = report.updateNorm
        clipped = report.clipped ? 1 : 0
        method = methodCode(report.method)
        has_solve = report.solve == nil ? 0 : 1
        refreshed_curvature = report.refreshedCurvature ? 1 : 0
        refreshed_inverse = report.refreshedInverse ? 1 : 0
        solve =
            report.solve.map(ng_column_report.init)
            ?? ng_column_report(status: 0, reserved: 0, iterations: 0, relative_residual: .nan, objective: .nan)
        predicted_change = report.predictedChange ?? .nan
        actual_change = report.actualChange ?? .nan
        reduction_ratio = report.reductionRatio ?? .nan
    }
}

private func makeOptimizer<E: BridgeScalar>(
    _: E.Type, _ context: Context, dimension: Int, options: NaturalGradientOptimizerOptions
) throws -> UInt64 {
    try Registry.shared.insert(
        TypedOptimizer(NaturalGradientOptimizer<E>(context: context, dimension: dimension, options: options)))
}

@_cdecl("ng_optimizer_create")
public func ngOptimizerCreate(
    _ contextHandle: UInt64, _ dtypeCode: Int32, _ dimension: Int64, _ json: UnsafePointer<CChar>?,
    _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    boundary {
        let context = try ContextObject.lookup(contextHandle).context
        let dtype = try DType(code: dtypeCode)
        let out = try nonNull(out, "optimizer")
        let p = try count(dimension, "dimension")
        let options = try NaturalGradientOptimizerOptions(json: json.map { String(cString: $0) })
        out.pointee = try dtype.dispatch(
            { try makeOptimizer($0, context, dimension: p, options: options) },
            { try makeOptimizer($0, context, dimension: p, options: options) })
    }
}

@_cdecl("ng_optimizer_info")
public func ngOptimizerInfo(
    _ handle: UInt64, _ step: UnsafeMutablePointer<Int64>?, _ damping: UnsafeMutablePointer<Double>?,
    _ needsCurvature: UnsafeMutablePointer<Int32>?
) -> Int32 {
    boundary {
        let object = try OptimizerObject.lookup(handle)
        let info = object.serialized { object.info() }
        store(Int64(info.step), step)
        store(info.damping, damping)
        store(info.needsCurvature ? 1 : 0, needsCurvature)
    }
}

private func runStep(
    _ handle: UInt64, _ dtypeCode: Int32, parameters: UnsafeMutableRawPointer?, gradient: UnsafeRawPointer?,
    dimension: Int64, input: UnsafePointer<ng_curvature_input>?, loss: Double, lossAt: ng_loss_callback?,
    user: UnsafeMutableRawPointer?, update: UnsafeMutableRawPointer?, apply: Bool,
    report: UnsafeMutablePointer<ng_step_report>?
) -> Int32 {
    boundary {
        let object = try OptimizerObject.lookup(handle)
        try object.dtype.require(dtypeCode)
        try check(
            dimension == Int64(object.dimension), "dimension",
            "is \(dimension), the optimizer has \(object.dimension) parameters")
        try check(!loss.isInfinite, "loss", "must be finite (or NaN for none), got \(loss)")
        let result = try object.serialized {
            try object.update(
                parameters: parameters, gradient: gradient, input: input?.pointee, loss: loss, lossAt: lossAt,
                user: user, update: update, apply: apply)
        }
        store(result, report)
    }
}

@_cdecl("ng_optimizer_update")
public func ngOptimizerUpdate(
    _ handle: UInt64, _ dtypeCode: Int32, _ parameters: UnsafeRawPointer?, _ gradient: UnsafeRawPointer?,
    _ dimension: Int64, _ input: UnsafePointer<ng_curvature_input>?, _ loss: Double, _ lossAt: ng_loss_callback?,
    _ user: UnsafeMutableRawPointer?, _ update: UnsafeMutableRawPointer?, _ report: UnsafeMutablePointer<ng_step_report>?
) -> Int32 {
    runStep(
        handle, dtypeCode, parameters: UnsafeMutableRawPointer(mutating: parameters), gradient: gradient,
        dimension: dimension, input: input, loss: loss, lossAt: lossAt, user: user, update: update, apply: false,
        report: report)
}

@_cdecl("ng_optimizer_step")
public func ngOptimizerStep(
    _ handle: UInt64, _ dtypeCode: Int32, _ parameters: UnsafeMutableRawPointer?, _ gradient: UnsafeRawPointer?,
    _ dimension: Int64, _ input: UnsafePointer<ng_curvature_input>?, _ loss: Double, _ lossAt: ng_loss_callback?,
    _ user: UnsafeMutableRawPointer?, _ report: UnsafeMutablePointer<ng_step_report>?
) -> Int32 {
    runStep(
        handle, dtypeCode, parameters: parameters, gradient: gradient, dimension: dimension, input: input, loss: loss,
        lossAt: lossAt, user: user, update: nil, apply: true, report: report)
}

@_cdecl("ng_optimizer_state")
public func ngOptimizerState(
    _ handle: UInt64, _ bytes: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ length: UnsafeMutablePointer<Int>?
) -> Int32 {
    boundary {
        let object = try OptimizerObject.lookup(handle)
        let (bytes, length) = (try nonNull(bytes, "bytes"), try nonNull(length, "length"))
        let state = try object.serialized { try object.state() }
        let data = try JSONEncoder().encode(state)
        bytes.pointee = try mallocCopy([UInt8](data), nulTerminated: false)
        length.pointee = data.count
    }
}

@_cdecl("ng_optimizer_restore")
public func ngOptimizerRestore(_ handle: UInt64, _ bytes: UnsafeRawPointer?, _ length: Int) -> Int32 {
    boundary {
        let object = try OptimizerObject.lookup(handle)
        try check(length > 0, "length", "must be positive, got \(length)")
        let data = Data(bytes: try nonNull(bytes, "bytes"), count: length)
        let state = try JSONDecoder().decode(NaturalGradientOptimizerState.self, from: data)
        try object.serialized { try object.restore(state) }
    }
}
