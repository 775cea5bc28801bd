import CBLAS
import Foundation
import NaturalGradientTestSupport

/// A fully connected tanh network with a softmax cross-entropy output, on the host in
/// Float: every layer of the forward and backward pass is one `cblas_sgemm` over the whole
/// batch, the tanh and the softmax are loops the compiler vectorises.
///
/// Parameters follow the library's convention: layer by layer, each layer's matrix `[W | b]`
/// (outputs x (inputs + 1)) row-major, and each layer's input rows carry a trailing 1, so
/// a layer's affine map is one product with the bias folded in.
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

    /// Runs OpenBLAS on one thread unless `OPENBLAS_NUM_THREADS` says otherwise, for a
    /// data-parallel run whose ranks share the cores (on a busy machine OpenBLAS's waiting
    /// threads spun in `sched_yield` for about 40% of a run's samples: perf, load 7-11 on 2
    /// vCPUs). One process keeps OpenBLAS's default: on the quiet 2-vCPU machine two threads
    /// took Adam to the threshold in 0.43 s against 0.85 s (medians of five alternated runs),
    /// K-FAC in 0.22 s against 0.28 s. Process-wide: call it from a command.
    public static func preferOneBLASThread() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil else { return }
        openblas_set_num_threads(1)
    }

    var classes: Int { sizes[sizes.count - 1] }
    var layerCount: Int { shapes.count }

    /// Glorot-uniform weights, zero biases, reproducible from `seed` (Benchmarks/python/
    /// train_peers.py replicates this draw: layer by layer, row by row, `nextUnit()`).
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
        /// Per layer: its input rows with the trailing 1 (count x inputs); these are K-FAC's
        /// layer activations as they are, no copy.
        var activations: [[Float]]
        /// The output layer's logits (count x classes), the z of the exact Fisher's metric.
        var logits: [Float]
        /// Softmax probabilities (count x classes).
        var probabilities: [Float]
    }

    /// The forward pass over `count` rows of `inputs` (count x sizes[0]).
    func forward(_ parameters: [Float], inputs: [Float], count n: Int) -> Pass {
        inputs.withUnsafeBufferPointer { forward(parameters, inputs: $0, count: n) }
    }

    /// The forward pass over `count` rows at `inputs`: per layer one sgemm writes the
    /// pre-activations straight into the next layer's input rows (leading dimension
    /// outputs + 1, the trailing 1 already there), and the tanh runs in place.
    private func forward(_ parameters: [Float], inputs: UnsafeBufferPointer<Float>, count n: Int) -> Pass {
        let features = sizes[0]
        var first = [Float](repeating: 1, count: n * (features + 1))
        first.withUnsafeMutableBufferPointer { a in
            for i in 0..<n {
                for k in 0..<features { a[i * (features + 1) + k] = inputs[i * features + k] }
            }
        }
        var activations = [first]
        activations.reserveCapacity(layerCount)
        var logits = [Float](repeating: 0, count: n * classes)
        parameters.withUnsafeBufferPointer { w in
            for (layer, shape) in shapes.enumerated() {
                let last = layer == layerCount - 1
                var next = last ? [] : [Float](repeating: 1, count: n * (shape.outputs + 1))
                activations[layer].withUnsafeBufferPointer { a in
                    func multiply(_ c: UnsafeMutableBufferPointer<Float>, _ ldc: Int) {
                        cblas_sgemm(
                            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(shape.outputs), Int32(shape.inputs),
                            1, a.baseAddress, Int32(shape.inputs), w.baseAddress! + offsets[layer], Int32(shape.inputs), 0,
                            c.baseAddress, Int32(ldc))
                    }
                    if last {
                        logits.withUnsafeMutableBufferPointer { multiply($0, shape.outputs) }
                    } else {
                        next.withUnsafeMutableBufferPointer { out in
                            multiply(out, shape.outputs + 1)
                            guard let base = out.baseAddress else { return }
                            for i in 0..<n { tanhInPlace(shape.outputs, base + i * (shape.outputs + 1)) }
                        }
                    }
                }
                if !last { activations.append(next) }
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
        let chunk = 1024
        inputs.withUnsafeBufferPointer { x in
            for start in stride(from: 0, to: labels.count, by: chunk) {
                let end = min(start + chunk, labels.count)
                let rows = UnsafeBufferPointer(rebasing: x[(start * sizes[0])..<(end * sizes[0])])
                let pass = forward(parameters, inputs: rows, count: end - start)
                total += loss(pass, labels: Array(labels[start..<end])) * Double(end - start)
            }
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

    /// Back-propagates gradients at the logits and returns the gradients at every layer's
    /// outputs (pre-activations), layer order. `logitGradients` holds `rowsPerSample`
    /// consecutive rows per sample of the pass (rows x classes): 1 for per-sample loss
    /// gradients, `classes` for the unit vectors of the output Jacobians, which so reuse
    /// the pass's activations instead of a forward pass over repeated inputs.
    func backward(_ parameters: [Float], _ pass: Pass, logitGradients: [Float], rowsPerSample: Int = 1) -> [[Float]] {
        let rows = logitGradients.count / classes
        var gradients = [[Float]](repeating: [], count: layerCount)
        gradients[layerCount - 1] = logitGradients
        parameters.withUnsafeBufferPointer { w in
            for layer in stride(from: layerCount - 1, to: 0, by: -1) {
                let (outputs, inputs) = shapes[layer]
                let fanIn = inputs - 1
                var previous = [Float](repeating: 0, count: rows * fanIn)
                gradients[layer].withUnsafeBufferPointer { dz in
                    previous.withUnsafeMutableBufferPointer { da in
                        // dA = dZ · W[:, :fanIn] (the bias column is not an input of the layer below).
                        cblas_sgemm(
                            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(fanIn), Int32(outputs), 1,
                            dz.baseAddress, Int32(outputs), w.baseAddress! + offsets[layer], Int32(inputs), 0,
                            da.baseAddress, Int32(fanIn))
                        pass.activations[layer].withUnsafeBufferPointer { a in
                            guard let da = da.baseAddress, let a = a.baseAddress else { return }
                            for r in 0..<rows {
                                let row = da + r * fanIn
                                let h = a + (r / rowsPerSample) * inputs
                                for k in 0..<fanIn { row[k] *= 1 - h[k] * h[k] }
                            }
                        }
                    }
                }
                gradients[layer - 1] = previous
            }
        }
        return gradients
    }

    /// `scale · Σ_i vec(dz_i ⊗ a_i)`: the gradient when `dz` are per-sample output
    /// gradients and `scale` is 1/count; one sgemm `dZᵀ A` per layer.
    func parameterGradient(_ pass: Pass, outputGradients dz: [[Float]], scale: Float) -> [Float] {
        var gradient = [Float](repeating: 0, count: parameterCount)
        gradient.withUnsafeMutableBufferPointer { g in
            for (layer, shape) in shapes.enumerated() {
                dz[layer].withUnsafeBufferPointer { dz in
                    pass.activations[layer].withUnsafeBufferPointer { a in
                        cblas_sgemm(
                            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(shape.outputs), Int32(shape.inputs),
                            Int32(pass.count), scale, dz.baseAddress, Int32(shape.outputs), a.baseAddress,
                            Int32(shape.inputs), 0, g.baseAddress! + offsets[layer], Int32(shape.inputs))
                    }
                }
            }
        }
        return gradient
    }

    /// One row per gradient row of `dz`: `vec(dz_r ⊗ a_{r / rowsPerSample})` over the
    /// layers (rows x P, row-major), for the first `count` rows (all by default).
    func perSampleGradients(
        _ pass: Pass, outputGradients dz: [[Float]], count: Int? = nil, rowsPerSample: Int = 1
    )
        -> [Float]
    {
        let p = parameterCount
        let n = min(count ?? Int.max, dz[layerCount - 1].count / classes)
        var rows = [Float](repeating: 0, count: n * p)
        rows.withUnsafeMutableBufferPointer { u in
            for (layer, shape) in shapes.enumerated() {
                dz[layer].withUnsafeBufferPointer { dz in
                    pass.activations[layer].withUnsafeBufferPointer { a in
                        guard let u = u.baseAddress, let a = a.baseAddress else { return }
                        let base = offsets[layer]
                        for r in 0..<n {
                            let x = a + (r / rowsPerSample) * shape.inputs
                            for o in 0..<shape.outputs {
                                let d = dz[r * shape.outputs + o]
                                let row = u + r * p + base + o * shape.inputs
                                for k in 0..<shape.inputs { row[k] = d * x[k] }
                            }
                        }
                    }
                }
            }
        }
        return rows
    }

    /// The Jacobians of the logits for the first `count` samples of `pass`:
    /// (count·classes) x P, sample-major, row c of sample i = ∂z_c/∂θ. One backward pass of
    /// the unit vectors over the pass's own activations.
    func outputJacobians(_ parameters: [Float], _ pass: Pass, count: Int) -> [Float] {
        let n = min(count, pass.count)
        var unit = [Float](repeating: 0, count: n * classes * classes)
        for row in 0..<(n * classes) { unit[row * classes + row % classes] = 1 }
        let dz = backward(parameters, pass, logitGradients: unit, rowsPerSample: classes)
        return perSampleGradients(pass, outputGradients: dz, rowsPerSample: classes)
    }

    // MARK: - Pieces

    /// Row-wise softmax with the vectorised exp.
    private func softmax(_ logits: [Float], rows n: Int) -> [Float] {
        var probabilities = [Float](repeating: 0, count: n * classes)
        let classes = self.classes
        logits.withUnsafeBufferPointer { z in
            probabilities.withUnsafeMutableBufferPointer { p in
                guard let z = z.baseAddress, let p = p.baseAddress else { return }
                for i in 0..<n {
                    let row = z + i * classes
                    let out = p + i * classes
                    var largest = row[0]
                    for c in 1..<max(classes, 1) { largest = max(largest, row[c]) }
                    var sum: Float = 0
                    for c in 0..<classes {
                        let e = expNonPositive(row[c] - largest)
                        out[c] = e
                        sum += e
                    }
                    let inverse = 1 / sum
                    for c in 0..<classes { out[c] *= inverse }
                }
            }
        }
        return probabilities
    }
}

/// `exp(x)` for x ≤ 0, within 3e-7 (relative) of the float64 exp above −87 (0 below, NaN
/// stays NaN): `2^k · exp(r)` with |r| ≤ ln2/2 and exp(r) by its degree-6 Taylor
/// polynomial. Branch-free and without trapping integer conversions (k and 2^k come from
/// the bits of `x·log₂e + 1.5·2²³`), so the loops that call it vectorise, where libm's
/// scalar `expf`/`tanhf` are a call per element.
@inline(__always)
func expNonPositive(_ x: Float) -> Float {
    let clamped = x > -87 ? x : -87 // also maps NaN to −87; restored below
    let magic: Float = 12_582_912 // 1.5·2²³: adding it rounds to an integer in the low bits
    let shifted = clamped * 1.442_695_04 + magic
    let k = shifted - magic
    // Cody-Waite: ln 2 in two parts (the first exact with k), so r keeps float accuracy.
    let r = (clamped - k * 0.693_145_751_953_125) - k * 1.428_606_765_330_187e-6
    var p: Float = 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let exponent = (shifted.bitPattern &- magic.bitPattern &+ 127) &<< 23 // 2^k, k in [−126, 0]
    let e = p * Float(bitPattern: exponent)
    return x.isNaN ? x : (x > -87 ? e : 0)
}

/// `x = tanh(x)` elementwise, within 1.2e-7 of the float64 tanh (checked on [-12, 12]);
/// NaN stays NaN: `(1 − e)/(1 + e)` with `e = exp(−2|x|)`.
@inline(__always)
func tanhInPlace(_ count: Int, _ x: UnsafeMutablePointer<Float>) {
    for j in 0..<count {
        let v = x[j]
        let a = abs(v) < 9 ? abs(v) : 9 // tanh(9) = 1 − 3e-8; also maps NaN to 9
        let e = expNonPositive(-2 * a)
        let m = (1 - e) / (1 + e)
        x[j] = v.isNaN ? v : (v < 0 ? -m : m)
    }
}
