import CBLAS
import NaturalGradient

extension MLP {
    /// The Jacobian-vector products `J_i v` of the logits for every sample of `pass`
    /// (count x classes, row-major) along a parameter direction `v` (P values, the
    /// parameters' layout): the forward-mode (R-op) pass, two sgemm per layer over the batch
    /// (one for the first), no backward pass and no Jacobian formed.
    ///
    /// With `a_l` the layer's input rows (trailing 1), `ȧ_l` their tangents (trailing 0;
    /// `ȧ_0 = 0`), `[W | b]` and `[V | v_b]` the layer's parameters and their tangents:
    /// `ż_l = ȧ_l [W | b]ᵀ + a_l [V | v_b]ᵀ`, then `ȧ_{l+1} = (1 − h²) ⊙ ż_l` through the
    /// tanh, whose outputs h the pass keeps.
    func jacobianVectorProducts(_ parameters: [Float], _ pass: Pass, direction v: [Float]) -> [Float] {
        let n = pass.count
        var tangent = [Float]() // ȧ_l, n x inputs; empty for the first layer (ȧ_0 = 0)
        var output = [Float](repeating: 0, count: n * classes)
        parameters.withUnsafeBufferPointer { w in
            v.withUnsafeBufferPointer { v in
                for (layer, shape) in shapes.enumerated() {
                    let last = layer == layerCount - 1
                    var z = last ? [] : [Float](repeating: 0, count: n * (shape.outputs + 1))
                    let ldz = last ? shape.outputs : shape.outputs + 1
                    func products(_ zdot: UnsafeMutablePointer<Float>) {
                        pass.activations[layer].withUnsafeBufferPointer { a in
                            cblas_sgemm(
                                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(shape.outputs), Int32(shape.inputs),
                                1, a.baseAddress, Int32(shape.inputs), v.baseAddress! + offsets[layer], Int32(shape.inputs),
                                0, zdot, Int32(ldz))
                        }
                        guard !tangent.isEmpty else { return }
                        tangent.withUnsafeBufferPointer { t in
                            cblas_sgemm(
                                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(shape.outputs), Int32(shape.inputs),
                                1, t.baseAddress, Int32(shape.inputs), w.baseAddress! + offsets[layer], Int32(shape.inputs),
                                1, zdot, Int32(ldz))
                        }
                    }
                    if last {
                        output.withUnsafeMutableBufferPointer { products($0.baseAddress!) }
                    } else {
                        z.withUnsafeMutableBufferPointer { zdot in
                            guard let zdot = zdot.baseAddress else { return }
                            products(zdot)
                            // Through the tanh: h = the next layer's inputs; the trailing
                            // (bias) column's tangent is 0.
                            pass.activations[layer + 1].withUnsafeBufferPointer { h in
                                guard let h = h.baseAddress else { return }
                                let width = shape.outputs + 1
                                for i in 0..<n {
                                    let row = zdot + i * width
                                    let hrow = h + i * width
                                    for k in 0..<shape.outputs { row[k] *= 1 - hrow[k] * hrow[k] }
                                    row[shape.outputs] = 0
                                }
                            }
                        }
                        tangent = z
                    }
                }
            }
        }
        return output
    }
}

/// The exact generalised Gauss-Newton matrix of a mini-batch, `C = (1/n) Σ_i J_iᵀ H_i J_i`
/// (J_i the logits' Jacobian, `H_i = diag(p_i) − p_i p_iᵀ` the softmax cross-entropy's
/// Hessian in the logits; for this loss also the exact Fisher), as the Gram of a few
/// directions for the optimizer's quadratic model: one forward-mode pass per direction
/// (`MLP.jacobianVectorProducts`), then `(J_i u)ᵀ H_i (J_i v)` per sample. In a
/// data-parallel run the per-rank means are averaged over the ranks.
struct GaussNewtonGram: CurvatureGram {
    let model: MLP
    let parameters: [Float]
    let pass: MLP.Pass
    let parallel: (any DataParallel)?

    func gram(_ directions: [[Double]]) throws -> [Double] {
        let k = directions.count
        let n = pass.count
        let classes = model.classes
        let products = directions.map {
            model.jacobianVectorProducts(parameters, pass, direction: $0.map { Float($0) })
        }
        var gram = [Double](repeating: 0, count: k * k)
        for a in 0..<k {
            for b in a..<k {
                var total = 0.0
                for i in 0..<n {
                    var weighted = 0.0
                    var pu = 0.0
                    var pv = 0.0
                    for c in 0..<classes {
                        let p = Double(pass.probabilities[i * classes + c])
                        let u = Double(products[a][i * classes + c])
                        let v = Double(products[b][i * classes + c])
                        weighted += p * u * v
                        pu += p * u
                        pv += p * v
                    }
                    total += weighted - pu * pv
                }
                gram[a * k + b] = total / Double(n)
                gram[b * k + a] = gram[a * k + b]
            }
        }
        guard let parallel else { return gram }
        let sums = try parallel.sum(gram.map { $0 * Double(n) } + [Double(n)])
        return sums.dropLast().map { $0 / sums[k * k] }
    }
}
