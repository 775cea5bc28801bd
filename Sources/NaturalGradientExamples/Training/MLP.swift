import Foundation
import NaturalGradientTestSupport

/// A fully connected tanh network with a softmax cross-entropy output, on the host in
/// Float with concrete loops (the inner loops are contiguous axpys the compiler vectorises).
///
/// Parameters follow the library's convention: layer by layer, each layer's matrix `[W | b]`
/// (outputs x (inputs + 1)) row-major, and each layer's input rows carry a trailing 1.
public struct MLP: Sendable {
    /// Units per layer, input first (for example [64, 128, 64, 10]).
    public let sizes: [Int]
    /// Per layer: the parameter matrix's rows and columns (bias column included).
    let shapes: [(outputs: Int, inputs: Int)]
    /// Per layer: the first parameter.
    let offsets: [Int]
    /// P.
    public let parameterCount: Int

    /// The network with these layer widths (at least two).
    public init(sizes: [Int]) {
        self.sizes = sizes
        var shapes: [(outputs: Int, inputs: Int)] = []
        var offsets: [Int] = []
        var total = 0
        for index in 0..<(sizes.count - 1) {
            shapes.append((sizes[index + 1], sizes[index] + 1))
            offsets.append(total)
            total += sizes[index + 1] * (sizes[index] + 1)
        }
        self.shapes = shapes
        self.offsets = offsets
        parameterCount = total
    }

    var classes: Int { sizes[sizes.count - 1] }
    var layerCount: Int { shapes.count }

    /// Glorot-uniform weights, zero biases, reproducible from `seed`.
    func initialParameters(seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        var parameters = [Float](repeating: 0, count: parameterCount)
        for (layer, shape) in shapes.enumerated() {
            let fanIn = shape.inputs - 1
            let limit = (6 / Float(fanIn + shape.outputs)).squareRoot()
            for o in 0..<shape.outputs {
                for k in 0..<fanIn {
                    parameters[offsets[layer] + o * shape.inputs + k] = (2 * generator.nextUnit() - 1) * limit
                }
            }
        }
        return parameters
    }

    /// What a forward pass keeps for the backward pass.
    struct Pass {
        /// Samples in the batch.
        var count: Int
        /// Per layer: its input rows with the trailing 1 (count x inputs).
        var activations: [[Float]]
        /// The output layer's logits (count x classes), the z of the exact Fisher's metric.
        var logits: [Float]
        /// Softmax probabilities (count x classes).
        var probabilities: [Float]
    }

    /// The forward pass over `count` rows of `inputs` (count x sizes[0]).
    func forward(_ parameters: [Float], inputs: [Float], count n: Int) -> Pass {
        var activations: [[Float]] = []
        var current = withBias(inputs, rows: n, columns: sizes[0])
        var logits: [Float] = []
        for (layer, shape) in shapes.enumerated() {
            activations.append(current)
            let z = affine(parameters, layer: layer, input: current, rows: n)
            if layer == shapes.count - 1 {
                logits = z
            } else {
                var next = [Float](repeating: 1, count: n * (shape.outputs + 1))
                next.withUnsafeMutableBufferPointer { out in
                    z.withUnsafeBufferPointer { z in
                        guard let out = out.baseAddress, let z = z.baseAddress else { return }
                        for i in 0..<n { tanhRow(shape.outputs, z + i * shape.outputs, out + i * (shape.outputs + 1)) }
                    }
                }
                current = next
            }
        }
        return Pass(count: n, activations: activations, logits: logits, probabilities: softmax(logits, rows: n))
    }

    /// Mean cross-entropy of `probabilities` at `labels`.
    func loss(_ pass: Pass, labels: [Int]) -> Double {
        var total = 0.0
        for i in 0..<pass.count { total -= log(max(Double(pass.probabilities[i * classes + labels[i]]), 1e-30)) }
        return total / Double(pass.count)
    }

    /// Mean cross-entropy of the model at `parameters` over a whole data set, in chunks.
    func loss(_ parameters: [Float], inputs: [Float], labels: [Int]) -> Double {
        var total = 0.0
        let chunk = 512
        for start in stride(from: 0, to: labels.count, by: chunk) {
            let end = min(start + chunk, labels.count)
            let pass = forward(parameters, inputs: Array(inputs[(start * sizes[0])..<(end * sizes[0])]), count: end - start)
            total += loss(pass, labels: Array(labels[start..<end])) * Double(end - start)
        }
        return total / Double(labels.count)
    }

    /// The fraction of rows whose most probable class is the label.
    func accuracy(_ parameters: [Float], inputs: [Float], labels: [Int]) -> Double {
        let pass = forward(parameters, inputs: inputs, count: labels.count)
        var correct = 0
        for i in 0..<labels.count {
            let row = pass.probabilities[(i * classes)..<((i + 1) * classes)]
            if let best = row.indices.max(by: { row[$0] < row[$1] }), best - i * classes == labels[i] { correct += 1 }
        }
        return Double(correct) / Double(labels.count)
    }

    /// Per-sample output gradients `∂ℓ_i/∂z` of the cross-entropy at `labels`: `p − onehot`.
    func outputGradients(_ pass: Pass, labels: [Int]) -> [Float] {
        var gradient = pass.probabilities
        for i in 0..<pass.count { gradient[i * classes + labels[i]] -= 1 }
        return gradient
    }

    /// Labels drawn from the model's own predictive distribution (for the true Fisher).
    func sampledLabels(_ pass: Pass, generator: inout SplitMix64) -> [Int] {
        (0..<pass.count).map { i in
            let u = generator.nextUnit()
            var cumulative: Float = 0
            for c in 0..<classes {
                cumulative += pass.probabilities[i * classes + c]
                if u < cumulative { return c }
            }
            return classes - 1
        }
    }

    /// Back-propagates per-sample gradients at the logits (count x classes) and returns the
    /// per-sample gradients at every layer's outputs (pre-activations), layer order.
    func backward(_ parameters: [Float], _ pass: Pass, logitGradients: [Float]) -> [[Float]] {
        let n = pass.count
        var gradients = [[Float]](repeating: [], count: shapes.count)
        var dz = logitGradients
        for layer in stride(from: shapes.count - 1, through: 0, by: -1) {
            gradients[layer] = dz
            if layer == 0 { break }
            let (outputs, inputs) = shapes[layer]
            let fanIn = inputs - 1
            var previous = [Float](repeating: 0, count: n * fanIn)
            previous.withUnsafeMutableBufferPointer { da in
                parameters.withUnsafeBufferPointer { w in
                    dz.withUnsafeBufferPointer { dz in
                        pass.activations[layer].withUnsafeBufferPointer { a in
                            guard let da = da.baseAddress, let w = w.baseAddress, let a = a.baseAddress else { return }
                            let base = offsets[layer]
                            for i in 0..<n {
                                let row = da + i * fanIn
                                for o in 0..<outputs {
                                    let d = dz[i * outputs + o]
                                    if d != 0 { axpy(fanIn, d, w + base + o * inputs, row) }
                                }
                                let h = a + i * inputs
                                for k in 0..<fanIn { row[k] *= 1 - h[k] * h[k] }
                            }
                        }
                    }
                }
            }
            dz = previous
        }
        return gradients
    }

    /// `scale · Σ_i vec(dz_i ⊗ a_i)`: the gradient when `dz` are per-sample output
    /// gradients and `scale` is 1/count.
    func parameterGradient(_ pass: Pass, outputGradients dz: [[Float]], scale: Float) -> [Float] {
        var gradient = [Float](repeating: 0, count: parameterCount)
        gradient.withUnsafeMutableBufferPointer { g in
            for (layer, shape) in shapes.enumerated() {
                dz[layer].withUnsafeBufferPointer { dz in
                    pass.activations[layer].withUnsafeBufferPointer { a in
                        guard let g = g.baseAddress, let a = a.baseAddress else { return }
                        let base = offsets[layer]
                        for i in 0..<pass.count {
                            for o in 0..<shape.outputs {
                                let d = dz[i * shape.outputs + o] * scale
                                if d != 0 { axpy(shape.inputs, d, a + i * shape.inputs, g + base + o * shape.inputs) }
                            }
                        }
                    }
                }
            }
        }
        return gradient
    }

    /// One row per sample: `vec(dz_i ⊗ a_i)` over the layers (count x P, row-major), for
    /// the first `count` samples of the pass (all by default).
    func perSampleGradients(_ pass: Pass, outputGradients dz: [[Float]], count: Int? = nil) -> [Float] {
        let p = parameterCount
        let n = min(count ?? pass.count, pass.count)
        var rows = [Float](repeating: 0, count: n * p)
        rows.withUnsafeMutableBufferPointer { u in
            for (layer, shape) in shapes.enumerated() {
                dz[layer].withUnsafeBufferPointer { dz in
                    pass.activations[layer].withUnsafeBufferPointer { a in
                        guard let u = u.baseAddress, let a = a.baseAddress else { return }
                        let base = offsets[layer]
                        for i in 0..<n {
                            for o in 0..<shape.outputs {
                                let d = dz[i * shape.outputs + o]
                                let row = u + i * p + base + o * shape.inputs
                                let x = a + i * shape.inputs
                                for k in 0..<shape.inputs { row[k] = d * x[k] }
                            }
                        }
                    }
                }
            }
        }
        return rows
    }

    /// The Jacobians of the logits for `count` rows of `inputs`: (count·classes) x P,
    /// sample-major, row c of sample i = ∂z_c/∂θ.
    func outputJacobians(_ parameters: [Float], inputs: [Float], count n: Int) -> [Float] {
        let features = sizes[0]
        var repeated: [Float] = []
        repeated.reserveCapacity(n * classes * features)
        for i in 0..<n {
            for _ in 0..<classes { repeated += inputs[(i * features)..<((i + 1) * features)] }
        }
        let pass = forward(parameters, inputs: repeated, count: n * classes)
        var unit = [Float](repeating: 0, count: n * classes * classes)
        for row in 0..<(n * classes) { unit[row * classes + row % classes] = 1 }
        return perSampleGradients(pass, outputGradients: backward(parameters, pass, logitGradients: unit))
    }

    // MARK: - Pieces

    private func withBias(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var result = [Float](repeating: 1, count: rows * (columns + 1))
        for i in 0..<rows {
            for k in 0..<columns { result[i * (columns + 1) + k] = values[i * columns + k] }
        }
        return result
    }

    /// `input · [W | b]ᵀ` for one layer (rows x outputs), through the transposed matrix so
    /// the inner loop is a contiguous axpy.
    private func affine(_ parameters: [Float], layer: Int, input: [Float], rows n: Int) -> [Float] {
        let (outputs, inputs) = shapes[layer]
        let base = offsets[layer]
        var transposed = [Float](repeating: 0, count: inputs * outputs)
        for o in 0..<outputs {
            for k in 0..<inputs { transposed[k * outputs + o] = parameters[base + o * inputs + k] }
        }
        var z = [Float](repeating: 0, count: n * outputs)
        z.withUnsafeMutableBufferPointer { z in
            transposed.withUnsafeBufferPointer { w in
                input.withUnsafeBufferPointer { a in
                    guard let z = z.baseAddress, let w = w.baseAddress else { return }
                    for i in 0..<n {
                        let row = z + i * outputs
                        for k in 0..<inputs {
                            let value = a[i * inputs + k]
                            if value != 0 { axpy(outputs, value, w + k * outputs, row) }
                        }
                    }
                }
            }
        }
        return z
    }

    private func softmax(_ logits: [Float], rows n: Int) -> [Float] {
        var probabilities = [Float](repeating: 0, count: n * classes)
        for i in 0..<n {
            let row = logits[(i * classes)..<((i + 1) * classes)]
            let largest = row.max() ?? 0
            var sum: Float = 0
            for c in 0..<classes {
                let e = expf(logits[i * classes + c] - largest)
                probabilities[i * classes + c] = e
                sum += e
            }
            for c in 0..<classes { probabilities[i * classes + c] /= sum }
        }
        return probabilities
    }
}

/// `y[0..<count] += alpha · x[0..<count]`: the one inner loop of the MLP (vectorised).
@inline(__always)
private func axpy(_ count: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
    for j in 0..<count { y[j] += alpha * x[j] }
}

/// `y = tanh(x)` elementwise, within 1.2e-7 of the float64 tanh (checked on [-12, 12]);
/// NaN stays NaN. A range-reduced exp the compiler vectorises: libm's scalar `tanhf` was
/// most of the forward pass.
@inline(__always)
private func tanhRow(_ count: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
    for j in 0..<count {
        let v = x[j]
        let a = abs(v) < 9 ? abs(v) : 9  // tanh(9) = 1 − 3e-8; also maps NaN to 9
        // e = exp(−2a) = 2^k · exp(r), |r| ≤ ln2/2, exp(r) by its degree-6 Taylor polynomial.
        let t = -2 * a * 1.442_695_04
        let k = t.rounded(.toNearestOrEven)
        let r = (t - k) * 0.693_147_18
        var p: Float = 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let e = p * Float(bitPattern: UInt32(Int32(k) + 127) << 23)
        let m = (1 - e) / (1 + e)
        y[j] = v.isNaN ? v : (v < 0 ? -m : m)
    }
}
