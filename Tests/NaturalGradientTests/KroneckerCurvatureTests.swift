import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

@Suite("K-FAC (Kronecker) curvature")
struct KroneckerCurvatureTests {
    /// Random layers of mixed shapes, weighted samples: factors, factored damping and the
    /// product against the float64 reference.
    @Test(arguments: [false, true]) func factorsAndProduct(double: Bool) throws {
        if double {
            try #require(deviceSupports(Double.self))
            try check(Double.self)
        } else {
            try check(Float.self)
        }
    }

    private func check<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let samples = 13
        let shapes = [(outputs: 3, inputs: 8), (outputs: 10, inputs: 4), (outputs: 1, inputs: 1), (outputs: 17, inputs: 33)]
        let weights: [T] = randomValues(samples, seed: 8).map { abs($0) + 0.1 }
        let (layers, hostData) = try randomKFACLayers(
            T.self, context: context, shapes: shapes, samples: samples, seed: 10)
        let curvature = try KroneckerCurvature(
            layers: layers, samples: samples, weights: Buffer(context: context, copying: weights))
        #expect(curvature.dimension == shapes.reduce(0) { $0 + $1.outputs * $1.inputs })

        let damping = 0.09
        let xs: [[T]] = (0..<2).map { randomValues(curvature.dimension, seed: UInt64(40 + $0)) }
        let y = try VectorBatch<T>(context: context, dimension: curvature.dimension, count: 2)
        try y.buffer.fill(.nan)
        try curvature.apply(VectorBatch(context: context, vectors: xs), damping: T(damping), into: y)

        var expected: [[Double]] = [[], []]
        var expectedTrace = 0.0
        for (index, shape) in shapes.enumerated() {
            let aReference = referenceAccumulation(
                hostData[index].a, rows: samples, dim: shape.inputs, weights: weights, alpha: 1 / Double(samples))
            let gReference = referenceAccumulation(
                hostData[index].g, rows: samples, dim: shape.outputs, weights: weights, alpha: 1 / Double(samples))
            let (a, g) = try curvature.layerFactors(index)
            #expect(relativeError(a, aReference) < tolerance(for: T.self), "A of layer \(index)")
            #expect(relativeError(g, gReference) < tolerance(for: T.self), "G of layer \(index)")

            let traceA = (0..<shape.inputs).reduce(0.0) { $0 + aReference[$1 * shape.inputs + $1] }
            let traceG = (0..<shape.outputs).reduce(0.0) { $0 + gReference[$1 * shape.outputs + $1] }
            expectedTrace += traceA * traceG
            let pi = ((traceA / Double(shape.inputs)) / (traceG / Double(shape.outputs))).squareRoot()
            let offset = curvature.layers[index].parameterOffset
            for (vector, x) in xs.enumerated() {
                let v = x[offset..<(offset + shape.outputs * shape.inputs)].map { Double($0) }
                expected[vector] += referenceKronecker(
                    g: gReference, a: aReference, v: v, rows: shape.outputs, cols: shape.inputs,
                    gammaG: damping.squareRoot() / pi, gammaA: damping.squareRoot() * pi)
            }
        }
        #expect(relativeError(try y.download().flatMap { $0 }, expected.flatMap { $0 }) < tolerance(for: T.self))
        #expect(abs(try curvature.trace() - expectedTrace) <= tolerance(for: T.self) * expectedTrace)
    }

    /// With one sample, K-FAC of a dense layer is exact: `(g gᵀ) ⊗ (a aᵀ) = u uᵀ` for the
    /// per-sample gradient `u = vec(g aᵀ)` (row-major).
    @Test func oneSampleEqualsTheExactLayerFisher() throws {
        let context = try TestDevice.context()
        let (outputs, inputs) = (5, 7)
        let a: [Double] = randomValues(inputs, seed: 1)
        let g: [Double] = randomValues(outputs, seed: 2)
        try #require(deviceSupports(Double.self))
        let u = (0..<outputs).flatMap { o in (0..<inputs).map { i in g[o] * a[i] } }
        let exact = try DenseCurvature(
            factor: CurvatureFactor(context: context, matrix: u, rows: 1, dimension: outputs * inputs, samples: 1))
        let kfac = try KroneckerCurvature(
            layers: [
                KFACLayer(
                    activations: Buffer(context: context, copying: a), outputGradients: Buffer(context: context, copying: g),
                    inputs: inputs, outputs: outputs)
            ], samples: 1)
        let x = try VectorBatch<Double>(context: context, vectors: [randomValues(outputs * inputs, seed: 3)])
        let expected = try exact.apply(x).download()[0]
        #expect(relativeError(try kfac.apply(x).download()[0], expected) < 1e-12)
        #expect(relativeError(try kfac.diagonal().download(), try exact.diagonal().download().map { $0 }) < 1e-12)
    }

    /// Awkward layer shapes (1 x 1, sizes one past a tile, 7 x 300, 513 x 129) batched in
    /// one launch, two vectors, outputs poisoned, under the device's tunables and under
    /// forced alternatives: the local-memory (GPU) path and odd register tiles on the
    /// direct path, so every code path runs on whichever device the tests use.
    @Test(arguments: [false, true]) func awkwardShapesEveryPath(double: Bool) throws {
        if double {
            try #require(deviceSupports(Double.self))
            try checkAwkward(Double.self)
        } else {
            try checkAwkward(Float.self)
        }
    }

    private func checkAwkward<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let shapes = [
            (outputs: 1, inputs: 1), (outputs: 7, inputs: 300), (outputs: 257, inputs: 33), (outputs: 513, inputs: 129),
            (outputs: 10, inputs: 1), (outputs: 65, inputs: 17),
        ]
        // Symmetric factors with a positive diagonal (positive traces for the damping split).
        func symmetric(_ n: Int, seed: UInt64) -> [T] {
            let raw: [T] = randomValues(n * n, seed: seed)
            var m = raw
            for i in 0..<n {
                for j in 0..<n where j < i { m[i * n + j] = raw[j * n + i] }
                m[i * n + i] = raw[i * n + i] + 2
            }
            return m
        }
        let damping = 0.05
        let configurations: [[String: Int]] = [
            [:],
            ["LOCAL_TILES": 1, "RM": 4, "RN": 4, "WGX": 16, "WGY": 16, "KT": 16],
            ["LOCAL_TILES": 1, "RM": 3, "RN": 2, "WGX": 8, "WGY": 4, "KT": 5],
            ["LOCAL_TILES": 0, "RM": 3, "RN": 5, "WGX": 4, "WGY": 2, "VW": 8],
        ]
        var factors: [T] = []
        var expected: [[Double]]?
        let xs: [[T]] = (0..<2).map { randomValues(shapes.reduce(0) { $0 + $1.outputs * $1.inputs }, seed: UInt64(90 + $0)) }
        for defines in configurations {
            let curvature = try KroneckerCurvature<T>(context: context, shapes: shapes, defines: defines)
            if factors.isEmpty {
                factors = [T](repeating: 0, count: curvature.factors.count)
                for (index, layer) in curvature.layers.enumerated() {
                    let a = symmetric(layer.inputs, seed: UInt64(200 + index))
                    let g = symmetric(layer.outputs, seed: UInt64(300 + index))
                    for e in a.indices { factors[layer.aOffset + e] = a[e] }
                    for e in g.indices { factors[layer.gOffset + e] = g[e] }
                }
            }
            try curvature.factors.upload(factors)
            let dampings = try curvature.factoredDampings(T(damping))
            if expected == nil {
                let f = factors.map { Double($0) }
                expected = xs.map { x in
                    curvature.layers.enumerated().flatMap { index, layer in
                        let v = x[layer.parameterOffset..<(layer.parameterOffset + layer.outputs * layer.inputs)].map {
                            Double($0)
                        }
                        return referenceKronecker(
                            g: Array(f[layer.gOffset..<(layer.gOffset + layer.outputs * layer.outputs)]),
                            a: Array(f[layer.aOffset..<(layer.aOffset + layer.inputs * layer.inputs)]), v: v,
                            rows: layer.outputs, cols: layer.inputs, gammaG: dampings[index].g, gammaA: dampings[index].a)
                    }
                }
            }
            let y = try VectorBatch<T>(context: context, dimension: curvature.dimension, count: 2)
            try y.buffer.fill(.nan)
            try curvature.apply(VectorBatch(context: context, vectors: xs), damping: T(damping), into: y)
            let out = try y.download()
            for vector in 0..<2 {
                #expect(
                    relativeError(out[vector], expected![vector]) < tolerance(for: T.self), "vector \(vector), \(defines)")
            }
        }
    }

    @Test func rejectsMismatchedLayers() throws {
        let context = try TestDevice.context()
        let buffer = try Buffer<Float>(context: context, count: 12)
        let curvature = try KroneckerCurvature<Float>(context: context, shapes: [(outputs: 2, inputs: 3)])
        let wrongShape = KFACLayer(activations: buffer, outputGradients: buffer, inputs: 4, outputs: 2)
        #expect(throws: NaturalGradientError.self) { try curvature.accumulate([wrongShape], samples: 2) }
        let fine = KFACLayer(activations: buffer, outputGradients: buffer, inputs: 3, outputs: 2)
        #expect(throws: NaturalGradientError.self) { try curvature.accumulate([fine, fine], samples: 2) }
        #expect(throws: NaturalGradientError.self) { try curvature.accumulate([fine], samples: 5) }
        #expect(throws: NaturalGradientError.self) { try curvature.accumulate([fine], samples: 0) }
        #expect(throws: NaturalGradientError.self) {
            try KroneckerCurvature<Float>(context: context, shapes: [(outputs: 0, inputs: 3)])
        }
    }
}
