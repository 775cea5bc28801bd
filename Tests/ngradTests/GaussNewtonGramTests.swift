import Foundation
import NaturalGradientTestSupport
import Testing

@testable import NaturalGradientExamples

/// The forward-mode Jacobian-vector products of the MLP and the exact GGN Gram built on them
/// (K-FAC's quadratic model in `ngrad train`) against float64 references: the explicit
/// Jacobian from central differences of a float64 model, and `(1/n) Σ (J_i u)ᵀ H_i (J_i v)`
/// with the float64 softmax's `H_i = diag(p_i) − p_i p_iᵀ`, at awkward sizes.
@Suite("MLP Gauss-Newton Gram")
struct GaussNewtonGramTests {
    static let cases: [(sizes: [Int], samples: Int)] = [([7, 5, 3], 6), ([5, 9, 4, 3], 11)]

    /// Parameters with non-zero biases (so the bias columns' tangents are exercised) and inputs.
    static func setup(_ model: MLP, samples n: Int, seed: UInt64) -> (theta: [Float], x: [Float]) {
        var theta = model.initialParameters(seed: seed)
        for (layer, shape) in model.shapes.enumerated() {
            for o in 0..<shape.outputs {
                theta[model.offsets[layer] + o * shape.inputs + shape.inputs - 1] = 0.2 * Float(o) - 0.3
            }
        }
        return (theta, randomValues(n * model.sizes[0], seed: seed + 1))
    }

    /// Float64 central differences of sample i's logits along v: J_i v.
    static func directional(_ model: MLP, _ theta: [Float], _ x: [Float], sample i: Int, _ v: [Float]) -> [Double] {
        let h = 1e-6
        let wide = theta.map(Double.init)
        let plus = zip(wide, v).map { $0 + h * Double($1) }
        let minus = zip(wide, v).map { $0 - h * Double($1) }
        let zp = MLPPassTests.logits(model, plus, x, sample: i)
        let zm = MLPPassTests.logits(model, minus, x, sample: i)
        return zip(zp, zm).map { ($0 - $1) / (2 * h) }
    }

    @Test(arguments: [0, 1])
    func jacobianVectorProductsMatchFloat64Differences(index: Int) throws {
        let (sizes, n) = Self.cases[index]
        let model = MLP(sizes: sizes)
        let (theta, x) = Self.setup(model, samples: n, seed: UInt64(10 + index))
        let v: [Float] = randomValues(model.parameterCount, seed: UInt64(20 + index))
        let pass = model.forward(theta, inputs: x, count: n)
        let products = model.jacobianVectorProducts(theta, pass, direction: v)
        #expect(products.count == n * model.classes)
        let reference = (0..<n).flatMap { Self.directional(model, theta, x, sample: $0, v) }
        #expect(relativeError(products, reference) < 1e-5, "\(sizes)")
        // Linear in v: the product along 2v − w is 2Jv − Jw.
        let w: [Float] = randomValues(model.parameterCount, seed: UInt64(30 + index))
        let combined = model.jacobianVectorProducts(theta, pass, direction: zip(v, w).map { 2 * $0 - $1 })
        let expected = zip(products, model.jacobianVectorProducts(theta, pass, direction: w)).map { Double(2 * $0 - $1) }
        #expect(relativeError(combined, expected) < 1e-5)
    }

    @Test(arguments: [0, 1])
    func gramMatchesTheFloat64GaussNewtonMatrix(index: Int) throws {
        let (sizes, n) = Self.cases[index]
        let model = MLP(sizes: sizes)
        let (theta, x) = Self.setup(model, samples: n, seed: UInt64(40 + index))
        let directions: [[Float]] = (0..<2).map { randomValues(model.parameterCount, seed: UInt64(50 + 2 * index + $0)) }
        let pass = model.forward(theta, inputs: x, count: n)
        let gram = try GaussNewtonGram(model: model, parameters: theta, pass: pass, parallel: nil)
            .gram(directions.map { $0.map(Double.init) })
        #expect(gram.count == 4)
        var reference = [Double](repeating: 0, count: 4)
        let wide = theta.map(Double.init)
        for i in 0..<n {
            let z = MLPPassTests.logits(model, wide, x, sample: i)
            let top = z.max() ?? 0
            let e = z.map { exp($0 - top) }
            let p = e.map { $0 / e.reduce(0, +) }
            let jv = directions.map { Self.directional(model, theta, x, sample: i, $0) }
            for a in 0..<2 {
                for b in 0..<2 {
                    let weighted = (0..<model.classes).reduce(0.0) { $0 + p[$1] * jv[a][$1] * jv[b][$1] }
                    let pu = (0..<model.classes).reduce(0.0) { $0 + p[$1] * jv[a][$1] }
                    let pv = (0..<model.classes).reduce(0.0) { $0 + p[$1] * jv[b][$1] }
                    reference[a * 2 + b] += (weighted - pu * pv) / Double(n)
                }
            }
        }
        #expect(relativeError(gram, reference) < 1e-4, "\(gram) vs \(reference)")
        #expect(gram[1] == gram[2] && gram[0] > 0 && gram[3] > 0)
        #expect(gram[0] * gram[3] >= gram[1] * gram[1], "a Gram of a PSD matrix")
    }
}
