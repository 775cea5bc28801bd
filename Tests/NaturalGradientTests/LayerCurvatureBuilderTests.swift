import Foundation
import NaturalGradient
import Testing
import NaturalGradientTestSupport

/// `CurvatureBuilder(buildFromLayers:)`: an optimizer configured for K-FAC takes the
/// caller's representation of the layer statistics (NaturalGradientDistributed passes one
/// summed over MPI ranks). Built here from a plain `KroneckerCurvature`, it must take bit
/// for bit the built-in K-FAC optimizer's steps, moving average and momentum included.
@Suite("A K-FAC curvature builder from layer statistics")
struct LayerCurvatureBuilderTests {
    private static let shapes = [LayerShape(outputs: 3, inputs: 7), LayerShape(outputs: 1, inputs: 5)]

    private static func options() -> NaturalGradientOptimizerOptions {
        var options = NaturalGradientOptimizerOptions(curvature: .kfac(layers: shapes))
        options.damping = .fixed(0.1)
        options.curvatureDecay = 0.5
        options.momentum = 0.5
        options.stepSize = .learningRate(0.4)
        return options
    }

    @Test func takesTheBuiltInKFACStepsBitForBit() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let dimension = Self.shapes.reduce(0) { $0 + $1.outputs * $1.inputs }
        var built = 0
        let builder = CurvatureBuilder<Double>(buildFromLayers: { layers, samples in
            built += 1
            let kronecker = try KroneckerCurvature<Double>(
                context: context, shapes: Self.shapes.map { ($0.outputs, $0.inputs) })
            try kronecker.accumulate(layers, samples: samples, alpha: 1 / Double(samples), beta: 0)
            return kronecker
        })
        let custom = try NaturalGradientOptimizer<Double>(
            context: context, dimension: dimension, options: Self.options(), curvature: builder)
        let reference = try NaturalGradientOptimizer<Double>(context: context, dimension: dimension, options: Self.options())
        var parameters: [Double] = randomValues(dimension, seed: 1)
        var expected = parameters
        for step in 0..<3 {
            let samples = 9 + step
            let statistics = Self.shapes.enumerated().map { index, shape in
                LayerStatistics<Double>(
                    activations: randomValues(samples * shape.inputs, seed: UInt64(10 * step + index)),
                    outputGradients: randomValues(samples * shape.outputs, seed: UInt64(100 + 10 * step + index)))
            }
            let gradient: [Double] = randomValues(dimension, seed: UInt64(200 + step))
            let report = try custom.step(
                parameters: &parameters, gradient: gradient, curvature: .layers(statistics, samples: samples))
            try reference.step(parameters: &expected, gradient: gradient, curvature: .layers(statistics, samples: samples))
            #expect(report.method == .kfac)
        }
        #expect(built == 1, "later refreshes average into the built curvature")
        #expect(parameters.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test func aBuilderThatDoesNotFitTheCurvatureIsRefusedByName() throws {
        let context = try TestDevice.context()
        let layers = CurvatureBuilder<Float>(buildFromLayers: { _, _ in
            throw NaturalGradientError.invalidArgument(name: "test", reason: "not called")
        })
        let factors = CurvatureBuilder<Float>(build: { try DenseCurvature(factor: $0) })
        var empirical = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        empirical.representation = .dense
        #expect(throws: NaturalGradientError.self) {
            _ = try NaturalGradientOptimizer<Float>(context: context, dimension: 26, options: empirical, curvature: layers)
        }
        do {
            _ = try NaturalGradientOptimizer<Float>(context: context, dimension: 26, options: Self.options(), curvature: factors)
            Issue.record("a factor builder was accepted for K-FAC")
        } catch let NaturalGradientError.invalidArgument(name, reason) {
            #expect(name == "curvature")
            #expect(reason.contains("buildFromLayers"), "\(reason)")
        }
    }
}
