import Foundation
import NaturalGradientTestSupport
import Testing

@testable import NaturalGradientExamples

/// The MLP's BLAS forward and backward pass against float64 central differences of a
/// float64 model at awkward sizes: the mean gradient, the per-sample gradients, the output
/// Jacobians and the vectorised exp and tanh.
@Suite("MLP pass")
struct MLPPassTests {
    /// The float64 logits of sample `i` (the same parameter layout: `[W | b]` row-major).
    static func logits(_ model: MLP, _ theta: [Double], _ x: [Float], sample i: Int) -> [Double] {
        var h = (0..<model.sizes[0]).map { Double(x[i * model.sizes[0] + $0]) }
        for (layer, shape) in model.shapes.enumerated() {
            var z = [Double](repeating: 0, count: shape.outputs)
            for o in 0..<shape.outputs {
                let row = model.offsets[layer] + o * shape.inputs
                z[o] = theta[row + shape.inputs - 1] + (0..<(shape.inputs - 1)).reduce(0.0) { $0 + theta[row + $1] * h[$1] }
            }
            h = layer == model.layerCount - 1 ? z : z.map { Foundation.tanh($0) }
        }
        return h
    }

    static func loss(_ model: MLP, _ theta: [Double], _ x: [Float], sample i: Int, label: Int) -> Double {
        let z = logits(model, theta, x, sample: i)
        let top = z.max() ?? 0
        return log(z.reduce(0) { $0 + exp($1 - top) }) + top - z[label]
    }

    /// Central differences of `f` at `theta`, one per parameter.
    static func differences(_ theta: [Double], _ f: ([Double]) -> Double) -> [Double] {
        let h = 1e-5
        return theta.indices.map { k in
            var plus = theta
            var minus = theta
            plus[k] += h
            minus[k] -= h
            return (f(plus) - f(minus)) / (2 * h)
        }
    }

    static let model = MLP(sizes: [7, 5, 3])
    static let n = 6

    static func setup() -> (theta: [Float], x: [Float], labels: [Int]) {
        var parameters = model.initialParameters(seed: 3)
        // Non-zero biases, so that the bias column is exercised.
        for (layer, shape) in model.shapes.enumerated() {
            for o in 0..<shape.outputs {
                parameters[model.offsets[layer] + o * shape.inputs + shape.inputs - 1] = 0.1 * Float(o + 1)
            }
        }
        let x: [Float] = randomValues(n * 7, seed: 5)
        return (parameters, x, (0..<n).map { ($0 * 2) % 3 })
    }

    @Test func gradientAndPerSampleGradientsMatchFloat64Differences() throws {
        let (theta, x, labels) = Self.setup()
        let model = Self.model
        let wide = theta.map(Double.init)
        let pass = model.forward(theta, inputs: x, count: Self.n)
        let dz = model.backward(theta, pass, logitGradients: model.outputGradients(pass, labels: labels))
        let gradient = model.parameterGradient(pass, outputGradients: dz, scale: 1 / Float(Self.n))
        let reference = Self.differences(wide) { t in
            (0..<Self.n).reduce(0.0) { $0 + Self.loss(model, t, x, sample: $1, label: labels[$1]) } / Double(Self.n)
        }
        #expect(relativeError(gradient, reference) < 1e-5)
        let rows = model.perSampleGradients(pass, outputGradients: dz)
        for i in 0..<Self.n {
            let row = Array(rows[(i * model.parameterCount)..<((i + 1) * model.parameterCount)])
            let expected = Self.differences(wide) { Self.loss(model, $0, x, sample: i, label: labels[i]) }
            #expect(relativeError(row, expected) < 1e-5, "sample \(i)")
        }
        // The pass's loss is the float64 mean cross-entropy.
        let mean = (0..<Self.n).reduce(0.0) { $0 + Self.loss(model, wide, x, sample: $1, label: labels[$1]) } / Double(Self.n)
        #expect(abs(model.loss(pass, labels: labels) - mean) < 1e-6)
    }

    @Test func outputJacobiansMatchFloat64Differences() throws {
        let (theta, x, _) = Self.setup()
        let model = Self.model
        let wide = theta.map(Double.init)
        let pass = model.forward(theta, inputs: x, count: Self.n)
        let count = 5 // a subset of the batch, as the exact-Fisher method takes
        let jacobians = model.outputJacobians(theta, pass, count: count)
        #expect(jacobians.count == count * model.classes * model.parameterCount)
        for i in 0..<count {
            for c in 0..<model.classes {
                let start = (i * model.classes + c) * model.parameterCount
                let row = Array(jacobians[start..<(start + model.parameterCount)])
                let expected = Self.differences(wide) { Self.logits(model, $0, x, sample: i)[c] }
                #expect(relativeError(row, expected) < 1e-5, "sample \(i) class \(c)")
            }
        }
    }

    @Test func vectorisedExpAndTanhAreAccurate() {
        var worstExp = 0.0
        var worstTanh = 0.0
        var values = stride(from: -12.0, through: 12.0, by: 0.0137).map { Float($0) }
        values += [0, -0, 1e-8, -1e-8, 9, -9, 30, -30]
        var y = values
        y.withUnsafeMutableBufferPointer { tanhInPlace($0.count, $0.baseAddress!) }
        for (v, t) in zip(values, y) {
            worstTanh = max(worstTanh, abs(Double(t) - Foundation.tanh(Double(v))))
            if v <= 0 {
                let reference = exp(Double(v))
                worstExp = max(worstExp, abs(Double(expNonPositive(v)) - reference) / reference)
            }
        }
        #expect(worstTanh < 2e-7)
        #expect(worstExp < 3e-7)
        #expect(expNonPositive(-200) == 0)
        #expect(expNonPositive(.nan).isNaN)
        var nan: [Float] = [.nan]
        nan.withUnsafeMutableBufferPointer { tanhInPlace(1, $0.baseAddress!) }
        #expect(nan[0].isNaN)
    }
}
