import Testing
import NaturalGradientTestSupport

@_spi(Benchmarks) @testable import NaturalGradient

/// Bad input is rejected with an error naming the argument, before anything launches.
@Suite("Curvature input validation")
struct CurvatureValidationTests {
    private func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func factorShapesAndWeights() throws {
        let context = try TestDevice.context()
        let u: [Float] = randomValues(12, seed: 1)
        #expect(message { _ = try CurvatureFactor(context: context, matrix: u, rows: 3, dimension: 4, samples: 3) } == nil)
        #expect(
            message { _ = try CurvatureFactor(context: context, matrix: u, rows: 3, dimension: 5, samples: 3) }?
                .contains("'matrix'") == true)
        #expect(
            message { _ = try CurvatureFactor<Float>(context: context, matrix: [], rows: 0, dimension: 4, samples: 3) } != nil)
        #expect(
            message { _ = try CurvatureFactor(context: context, matrix: u, rows: 3, dimension: 4, samples: 0) }?
                .contains("'samples'") == true)
        for bad: Float in [-1, .nan, .infinity] {
            let text = message {
                _ = try CurvatureFactor(
                    context: context, matrix: u, rows: 3, dimension: 4, samples: 3, weights: [1, bad, 1])
            }
            #expect(text?.contains("'weights'") == true && text?.contains("weight 1") == true)
        }
        #expect(
            message {
                _ = try CurvatureFactor(context: context, matrix: u, rows: 3, dimension: 4, samples: 3, weights: [1, 1])
            } != nil)
        let device = try Buffer<Float>(context: context, copying: u)
        #expect(
            message {
                _ = try CurvatureFactor(
                    matrix: device, rows: 3, dimension: 4, samples: 3,
                    weights: Buffer(context: context, copying: [1, -2, 1]))
            }?.contains("'weights'") == true)
        #expect(
            message { _ = try CurvatureFactor(matrix: device, rows: 0, dimension: 4, samples: 1) }?.contains("empty batch")
                == true)
    }

    @Test func dampingAndVectorShapes() throws {
        let context = try TestDevice.context()
        let factor = try CurvatureFactor<Float>(
            context: context, matrix: randomValues(20, seed: 2), rows: 4, dimension: 5, samples: 4)
        let curvature = try ImplicitCurvature(factor: factor)
        let x = try VectorBatch<Float>(context: context, vectors: [randomValues(5, seed: 3)])
        let y = try VectorBatch<Float>(context: context, dimension: 5)
        for bad: Float in [.nan, .infinity, -1] {
            #expect(message { try curvature.apply(x, damping: bad, into: y) }?.contains("'damping'") == true)
        }
        let wide = try VectorBatch<Float>(context: context, dimension: 6)
        #expect(message { try curvature.apply(wide, damping: 0, into: wide) }?.contains("'x'") == true)
        let two = try VectorBatch<Float>(context: context, dimension: 5, count: 2)
        #expect(message { try curvature.apply(x, damping: 0, into: two) }?.contains("'y'") == true)
        #expect(message { try curvature.apply(x, damping: 0, into: x) }?.contains("'y'") == true)
        #expect(message { _ = try VectorBatch<Float>(context: context, vectors: [[1, 2], [3]]) }?.contains("'vectors'") == true)
        #expect(message { _ = try VectorBatch<Float>(context: context, vectors: []) } != nil)
        #expect(message { _ = try VectorBatch(x.buffer, dimension: 5, count: 2) }?.contains("'buffer'") == true)
    }

    @Test func blockListsMustCoverTheParameters() throws {
        let context = try TestDevice.context()
        let factor = try CurvatureFactor<Float>(
            context: context, matrix: randomValues(30, seed: 4), rows: 3, dimension: 10, samples: 3)
        #expect(message { _ = try BlockDiagonalCurvature(factor: factor, blockSizes: [3, 7]) } == nil)
        #expect(message { _ = try BlockDiagonalCurvature(factor: factor, blockSizes: [3, 6]) }?.contains("'blockSizes'") == true)
        #expect(message { _ = try BlockDiagonalCurvature(factor: factor, blockSizes: [3, 8]) }?.contains("'blockSizes'") == true)
        #expect(message { _ = try BlockDiagonalCurvature(factor: factor, blockSizes: [10, 0]) } != nil)
        #expect(message { _ = try BlockDiagonalCurvature(factor: factor, blockSizes: []) } != nil)
        let product = try BlockDenseProduct<Float>(context: context)
        let matrices = try Buffer<Float>(context: context, count: 100)
        let x = try VectorBatch<Float>(context: context, dimension: 10)
        let y = try VectorBatch<Float>(context: context, dimension: 10)
        let gap = [DenseBlock(offset: 0, size: 3, matrixOffset: 0), DenseBlock(offset: 4, size: 6, matrixOffset: 9)]
        #expect(message { try product.apply(gap, matrices: matrices, x, damping: 0, into: y) }?.contains("starts at 4") == true)
    }

    @Test func outputMetricsCheckTheirInputs() throws {
        let context = try TestDevice.context()
        let jacobians = try Buffer<Float>(context: context, copying: randomValues(12, seed: 5))
        let notADistribution = try Buffer<Float>(context: context, copying: [0.5, 0.7, 0.2, 0.3])
        #expect(
            message {
                _ = try CurvatureFactor.exactFisher(
                    outputJacobians: jacobians, samples: 2, outputs: 2, dimension: 3,
                    metric: .softmaxCrossEntropy(probabilities: notADistribution))
            }?.contains("'probabilities'") == true)
        #expect(
            message {
                _ = try CurvatureFactor.exactFisher(
                    outputJacobians: jacobians, samples: 2, outputs: 1, dimension: 3,
                    metric: .bernoulli(probabilities: Buffer(context: context, copying: [0.5, 1.5])))
            }?.contains("'probabilities'") == true)
        #expect(
            message {
                _ = try CurvatureFactor.exactFisher(
                    outputJacobians: jacobians, samples: 2, outputs: 2, dimension: 3, metric: .gaussianMean(sigma: 0))
            }?.contains("'sigma'") == true)
        #expect(
            message {
                _ = try CurvatureFactor.exactFisher(
                    outputJacobians: jacobians, samples: 3, outputs: 2, dimension: 3, metric: .gaussianMean(sigma: 1))
            }?.contains("'outputJacobians'") == true)
    }

    /// Non-finite values in U are counted by the opt-in check, never hidden.
    @Test func nonFiniteValuesAreCounted() throws {
        let context = try TestDevice.context()
        var u: [Float] = randomValues(33 * 257, seed: 6)
        #expect(try CurvatureFactor(context: context, matrix: u, rows: 33, dimension: 257, samples: 33).nonFiniteCount() == 0)
        for (index, value) in [(0, Float.nan), (100, .infinity), (4000, -.infinity), (33 * 257 - 1, .nan), (17, .nan)] {
            u[index] = value
        }
        let factor = try CurvatureFactor(context: context, matrix: u, rows: 33, dimension: 257, samples: 33)
        #expect(try factor.nonFiniteCount() == 5)
        #expect(throws: NaturalGradientError.nonFiniteValues(name: "matrix", count: 5)) { try factor.requireFinite() }
    }
}
