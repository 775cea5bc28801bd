import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

@Suite("EKFAC (eigenvalue-corrected K-FAC) curvature")
struct EigenvalueCorrectedKroneckerTests {
    /// Layers 5 x 7 and 3 x 4 (bias columns included), 13 weighted samples.
    private static let shapes = [(outputs: 5, inputs: 7), (outputs: 3, inputs: 4)]
    private static let samples = 13

    /// Random activations (with the bias 1) and output gradients per layer, on host and device.
    private func inputs<T: DeviceScalar>(
        _: T.Type, samples: Int, seed: UInt64, shapes: [(outputs: Int, inputs: Int)] = Self.shapes
    ) throws -> (layers: [KFACLayer<T>], host: [(a: [Double], g: [Double])]) {
        let (layers, host) = try randomKFACLayers(
            T.self, context: TestDevice.context(), shapes: shapes, samples: samples, seed: seed)
        return (layers, host.map { (T.widened($0.a), T.widened($0.g)) })
    }

    /// Per layer the dense float64 empirical Fisher `(1/N) Σ w u uᵀ` and the basis K.
    private func references(
        _ curvature: EigenvalueCorrectedKroneckerCurvature<some DeviceScalar>, host: [(a: [Double], g: [Double])],
        weights: [Double], samples: Int
    ) throws -> [(fisher: [Double], basis: [Double])] {
        try Self.shapes.enumerated().map { index, shape in
            let u = referencePerSampleGradients(
                a: host[index].a, g: host[index].g, samples: samples, outputs: shape.outputs, inputs: shape.inputs)
            let fisher = referenceAccumulation(
                u, rows: samples, dim: shape.outputs * shape.inputs, weights: weights, alpha: 1 / Double(samples))
            let (qa, qg) = try curvature.eigenbasis(index)
            return (fisher, referenceKroneckerBasis(qG: qg, qA: qa, outputs: shape.outputs, inputs: shape.inputs))
        }
    }

    /// S equals the diagonal of the exact empirical Fisher in the Kronecker eigenbasis; the
    /// product, diagonal, trace and solve match the explicit `K diag(S) Kᵀ (+ λI)`; the
    /// bases are orthonormal eigenbases of the K-FAC factors; EKFAC is no farther from the
    /// empirical Fisher (Frobenius) than K-FAC.
    @Test(arguments: [false, true]) func denseReference(double: Bool) throws {
        if double { try #require(deviceSupports(Double.self)) }
        try double ? check(Double.self) : check(Float.self)
    }

    private func check<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let samples = Self.samples
        let weightValues: [T] = randomValues(samples, seed: 5).map { abs($0) + 0.2 }
        let (layers, host) = try inputs(T.self, samples: samples, seed: 100)
        let curvature = try EigenvalueCorrectedKroneckerCurvature(
            layers: layers, samples: samples, weights: Buffer(context: context, copying: weightValues))
        let weights = T.widened(weightValues)
        let refs = try references(curvature, host: host, weights: weights, samples: samples)
        let tol = tolerance(for: T.self)

        var dense: [[Double]] = []
        var expectedTrace = 0.0
        for (index, shape) in Self.shapes.enumerated() {
            let p = shape.outputs * shape.inputs
            let (qa, qg) = try curvature.eigenbasis(index)
            // Orthonormal eigenbases of A and G: Qᵀ X Q diagonal, Qᵀ Q = I.
            let (a, g) = try curvature.layerFactors(index)
            for (q, x, n) in [(qa, T.widened(a), shape.inputs), (qg, T.widened(g), shape.outputs)] {
                var offDiagonal = 0.0, scale = 0.0, orthogonality = 0.0
                for r in 0..<n {
                    for c in 0..<n {
                        var qxq = 0.0, qq = 0.0
                        for i in 0..<n {
                            qq += q[i * n + r] * q[i * n + c]
                            for j in 0..<n { qxq += q[i * n + r] * x[i * n + j] * q[j * n + c] }
                        }
                        if r != c { offDiagonal = max(offDiagonal, abs(qxq)) } else { scale = max(scale, abs(qxq)) }
                        orthogonality = max(orthogonality, abs(qq - (r == c ? 1 : 0)))
                    }
                }
                #expect(offDiagonal <= tol * scale * Double(n), "Qᵀ X Q off-diagonal, layer \(index)")
                #expect(orthogonality <= 1e-12, "Qᵀ Q = I, layer \(index)")
            }
            let s = referenceDiagonalInBasis(refs[index].fisher, basis: refs[index].basis, dimension: p)
            #expect(relativeError(try curvature.eigenvalues(index), s) < tol, "S of layer \(index)")
            expectedTrace += s.reduce(0, +)
            let ekfac = referenceMatrixFromBasis(s, basis: refs[index].basis, dimension: p)
            dense.append(ekfac)

            // Optimality in the basis: closer to the empirical Fisher than K-FAC's λ_G λ_A.
            var kfacValues = [Double](repeating: 0, count: p)
            let dA = referenceDiagonalInBasis(T.widened(a), basis: qa, dimension: shape.inputs)
            let dG = referenceDiagonalInBasis(T.widened(g), basis: qg, dimension: shape.outputs)
            for k in 0..<shape.outputs { for j in 0..<shape.inputs { kfacValues[k * shape.inputs + j] = dG[k] * dA[j] } }
            let kfac = referenceMatrixFromBasis(kfacValues, basis: refs[index].basis, dimension: p)
            func distance(_ m: [Double]) -> Double { zip(m, refs[index].fisher).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
            #expect(distance(ekfac) < distance(kfac), "EKFAC nearer the empirical Fisher than K-FAC, layer \(index)")
        }

        // Product with λ, outputs poisoned.
        let damping = 0.07
        let xs: [[T]] = (0..<2).map { randomValues(curvature.dimension, seed: UInt64(60 + $0)) }
        let x = try VectorBatch(context: context, vectors: xs)
        let y = try VectorBatch<T>(context: context, dimension: curvature.dimension, count: 2)
        try y.buffer.fill(.nan)
        try curvature.apply(x, damping: T(damping), into: y)
        let expected = xs.map { vector in
            curvature.layers.enumerated().flatMap { index, layer in
                let p = layer.outputs * layer.inputs
                let v = T.widened(Array(vector[layer.parameterOffset..<(layer.parameterOffset + p)]))
                return referenceDenseProduct(dense[index], dim: p, x: v, damping: damping)
            }
        }
        let out = try y.download()
        for vector in 0..<2 { #expect(relativeError(out[vector], expected[vector]) < tol, "apply, vector \(vector)") }

        // Diagonal and trace.
        let diagonal = curvature.layers.enumerated().flatMap { index, layer in
            let p = layer.outputs * layer.inputs
            return (0..<p).map { dense[index][$0 * p + $0] }
        }
        #expect(relativeError(try curvature.diagonal().download(), diagonal) < tol)
        #expect(abs(try curvature.trace() - expectedTrace) <= tol * expectedTrace)

        // Solve: x = (F + λI)⁻¹ b, checked by the float64 residual of the dense reference.
        let solution = try NaturalGradientSolver.solve(curvature, x, damping: T(damping))
        #expect(solution.method == .kfac)
        let solved = try solution.x.download()
        for vector in 0..<2 {
            let residual = curvature.layers.enumerated().flatMap { index, layer in
                let p = layer.outputs * layer.inputs
                let v = T.widened(Array(solved[vector][layer.parameterOffset..<(layer.parameterOffset + p)]))
                return referenceDenseProduct(dense[index], dim: p, x: v, damping: damping)
            }
            #expect(relativeError(T.narrowed(residual), T.widened(xs[vector])) < tol * 10, "solve, vector \(vector)")
        }
        let inverse = try curvature.makeInverse(damping: T(damping))
        #expect(inverse.method == .kfac && inverse.damping == T(damping))
        #expect((inverse.systemReciprocalCondition ?? 0) > 0)
    }

    /// One sample: S is K-FAC's eigenvalue products `λ_G,k λ_A,j` and F the exact layer
    /// Fisher `u uᵀ`.
    @Test func oneSampleEqualsKFACEigenvalueProducts() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let (layers, host) = try inputs(Double.self, samples: 1, seed: 300)
        let curvature = try EigenvalueCorrectedKroneckerCurvature(layers: layers, samples: 1)
        let kfac = try KroneckerCurvature(layers: layers, samples: 1)
        for (index, shape) in Self.shapes.enumerated() {
            let (qa, qg) = try curvature.eigenbasis(index)
            let (a, g) = try kfac.layerFactors(index)
            let dA = referenceDiagonalInBasis(a, basis: qa, dimension: shape.inputs)
            let dG = referenceDiagonalInBasis(g, basis: qg, dimension: shape.outputs)
            let products = (0..<shape.outputs).flatMap { k in (0..<shape.inputs).map { dG[k] * dA[$0] } }
            let s = try curvature.eigenvalues(index)
            let scale = products.map(abs).max() ?? 1
            #expect(zip(s, products).allSatisfy { abs($0 - $1) <= 1e-12 * scale }, "layer \(index)")
            #expect(host[index].a.last == 1, "the bias column")
        }
        let x = try VectorBatch<Double>(context: context, vectors: [randomValues(curvature.dimension, seed: 9)])
        #expect(relativeError(try curvature.apply(x).download()[0], try kfac.apply(x).download()[0].map { $0 }) < 1e-12)
    }

    /// After `refreshEigenbasis()` the operator is K-FAC's `G ⊗ A`; `accumulate` with α, β
    /// averages both the factors and S (in the fixed basis); `correctEigenvalues` moves S
    /// alone.
    @Test func refreshAccumulateAndCorrect() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let samples = Self.samples
        let first = try inputs(Double.self, samples: samples, seed: 400)
        let second = try inputs(Double.self, samples: samples, seed: 500)
        let curvature = try EigenvalueCorrectedKroneckerCurvature(layers: first.layers, samples: samples)
        let before = try (0..<2).map { try curvature.eigenvalues($0) }
        let basis = try (0..<2).map { try curvature.eigenbasis($0) }
        let ones = [Double](repeating: 1, count: samples)
        try curvature.accumulate(second.layers, samples: samples, alpha: 0.25, beta: 0.5)
        let refs = try references(curvature, host: second.host, weights: ones, samples: samples)
        for index in 0..<2 {
            #expect(try curvature.eigenbasis(index).a == basis[index].a, "the basis stays")
            let p = Self.shapes[index].outputs * Self.shapes[index].inputs
            // refs' Fisher has α = 1/N; rescale to α = 0.25.
            let fresh = referenceDiagonalInBasis(refs[index].fisher, basis: refs[index].basis, dimension: p)
            let expected = zip(before[index], fresh).map { 0.5 * $0 + 0.25 * Double(samples) * $1 }
            #expect(relativeError(try curvature.eigenvalues(index), expected) < 1e-12, "EMA of S, layer \(index)")
        }
        // K-FAC's factors took the same average.
        let kfac = try KroneckerCurvature(layers: first.layers, samples: samples)
        try kfac.accumulate(second.layers, samples: samples, alpha: 0.25, beta: 0.5)
        for index in 0..<2 {
            #expect(relativeError(try curvature.layerFactors(index).a, try kfac.layerFactors(index).a) < 1e-12)
        }
        try curvature.refreshEigenbasis()
        let x = try VectorBatch<Double>(context: context, vectors: [randomValues(curvature.dimension, seed: 11)])
        #expect(relativeError(try curvature.apply(x).download()[0], try kfac.apply(x).download()[0]) < 1e-12)
        // The correction from the second batch alone, in the refreshed basis.
        try curvature.correctEigenvalues(second.layers, samples: samples)
        let refreshed = try references(curvature, host: second.host, weights: ones, samples: samples)
        for index in 0..<2 {
            let p = Self.shapes[index].outputs * Self.shapes[index].inputs
            let s = referenceDiagonalInBasis(refreshed[index].fisher, basis: refreshed[index].basis, dimension: p)
            #expect(relativeError(try curvature.eigenvalues(index), s) < 1e-12, "corrected S, layer \(index)")
        }
    }

    /// The rotations under forced Kronecker tunables (the local-memory GPU path and odd
    /// register tiles on the direct path) give the default path's product and solve, on
    /// layers that span several tiles, outputs poisoned.
    @Test func everyKernelPath() throws {
        let context = try TestDevice.context()
        let shapes = [(outputs: 5, inputs: 7), (outputs: 37, inputs: 29), (outputs: 1, inputs: 2)]
        let samples = 41
        let (layers, _) = try inputs(Float.self, samples: samples, seed: 700, shapes: shapes)
        let reference = try EigenvalueCorrectedKroneckerCurvature(layers: layers, samples: samples)
        let damping: Float = 0.03
        let x = try VectorBatch<Float>(
            context: context, vectors: (0..<2).map { randomValues(reference.dimension, seed: UInt64(80 + $0)) })
        let expectedProduct = try reference.apply(x, damping: damping).download()
        let expectedSolve = try reference.makeInverse(damping: damping).solve(x).download()
        let configurations: [[String: Int]] = [
            ["LOCAL_TILES": 1, "RM": 3, "RN": 2, "WGX": 8, "WGY": 4, "KT": 5],
            ["LOCAL_TILES": 0, "RM": 3, "RN": 5, "WGX": 4, "WGY": 2, "VW": 8],
        ]
        for defines in configurations {
            let curvature = try EigenvalueCorrectedKroneckerCurvature<Float>(context: context, shapes: shapes, defines: defines)
            try curvature.accumulate(layers, samples: samples, beta: 0)
            try curvature.refreshEigenbasis()
            try curvature.correctEigenvalues(layers, samples: samples)
            let y = try VectorBatch<Float>(context: context, dimension: curvature.dimension, count: 2)
            try y.buffer.fill(.nan)
            try curvature.apply(x, damping: damping, into: y)
            let product = try y.download()
            let solved = try curvature.makeInverse(damping: damping).solve(x).download()
            for vector in 0..<2 {
                #expect(relativeError(product[vector], Float.widened(expectedProduct[vector])) < 1e-5, "apply, \(defines)")
                #expect(relativeError(solved[vector], Float.widened(expectedSolve[vector])) < 1e-4, "solve, \(defines)")
            }
        }
    }

    @Test func rejectsBadInput() throws {
        let context = try TestDevice.context()
        let curvature = try EigenvalueCorrectedKroneckerCurvature<Float>(context: context, shapes: [(outputs: 2, inputs: 3)])
        let buffer = try Buffer<Float>(context: context, copying: [Float](repeating: 1, count: 12))
        let fine = KFACLayer(activations: buffer, outputGradients: buffer, inputs: 3, outputs: 2)
        func invalid(_ name: String, _ body: () throws -> Void) {
            do {
                try body()
                Issue.record("no error; expected invalid argument '\(name)'")
            } catch {
                #expect(DenseTestMatrices.argumentName(error as? NaturalGradientError) == name, "\(error)")
            }
        }
        invalid("layers[0]") {
            try curvature.accumulate([KFACLayer(activations: buffer, outputGradients: buffer, inputs: 4, outputs: 2)], samples: 2)
        }
        invalid("layers") { try curvature.accumulate([fine, fine], samples: 2) }
        invalid("layers[0].activations") { try curvature.accumulate([fine], samples: 5) }
        invalid("samples") { try curvature.accumulate([fine], samples: 0) }
        invalid("beta") { try curvature.accumulate([fine], samples: 2, beta: -1) }
        invalid("alpha") { try curvature.correctEigenvalues([fine], samples: 2, alpha: .nan) }
        invalid("index") { _ = try curvature.eigenvalues(1) }
        invalid("index") { _ = try curvature.eigenbasis(-1) }
        invalid("layers") { _ = try EigenvalueCorrectedKroneckerCurvature<Float>(layers: [], samples: 1) }
        let poisoned = try Buffer<Float>(context: context, copying: [1, 2, .nan, 4, .infinity, 6])
        #expect(throws: NaturalGradientError.nonFiniteValues(name: "layers[0].activations", count: 2)) {
            try curvature.accumulate(
                [KFACLayer(activations: poisoned, outputGradients: buffer, inputs: 3, outputs: 2)], samples: 2)
        }
        // Nothing changed by the refused calls: S is still all zero, so λ = 0 has no inverse.
        #expect(try curvature.trace() == 0)
        invalid("damping") { _ = try curvature.makeInverse(damping: 0) }
        invalid("damping") { _ = try curvature.makeInverse(damping: -1) }
        let x = try VectorBatch<Float>(context: context, dimension: 6, count: 1)
        invalid("y") { try curvature.apply(x, damping: 0, into: x) }
        invalid("damping") {
            try curvature.apply(x, damping: .infinity, into: try VectorBatch(context: context, dimension: 6, count: 1))
        }
        invalid("x") { _ = try curvature.apply(try VectorBatch<Float>(context: context, dimension: 5, count: 1)) }
        let inverse = try curvature.makeInverse(damping: 0.5)
        invalid("b") { _ = try inverse.solve(try VectorBatch<Float>(context: context, dimension: 5, count: 1)) }
    }
}
