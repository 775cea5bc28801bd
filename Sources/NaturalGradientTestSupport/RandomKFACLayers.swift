import NaturalGradient
import OpenCLHost

/// Random K-FAC inputs of `shapes` (the bias column counted in `inputs`) for `samples`
/// samples, uploaded to `context`, with the host values they hold: layer l's activations
/// are `randomValues` of seed `seed + l` with the bias 1 appended, its output gradients of
/// seed `seed + 10 + l`.
public func randomKFACLayers<T: DeviceScalar>(
    _: T.Type, context: Context, shapes: [(outputs: Int, inputs: Int)], samples: Int, seed: UInt64
) throws -> (layers: [KFACLayer<T>], host: [(a: [T], g: [T])]) {
    var layers: [KFACLayer<T>] = []
    var host: [(a: [T], g: [T])] = []
    for (index, shape) in shapes.enumerated() {
        let a: [T] = KFACLayer<T>.appendingBiasColumn(
            randomValues(samples * (shape.inputs - 1), seed: seed + UInt64(index)), rows: samples,
            columns: shape.inputs - 1)
        let g: [T] = randomValues(samples * shape.outputs, seed: seed + 10 + UInt64(index))
        layers.append(
            KFACLayer(
                activations: try Buffer(context: context, copying: a),
                outputGradients: try Buffer(context: context, copying: g), inputs: shape.inputs,
                outputs: shape.outputs))
        host.append((a, g))
    }
    return (layers, host)
}
