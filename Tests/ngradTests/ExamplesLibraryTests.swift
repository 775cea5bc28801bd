import Foundation
import NaturalGradient
import NaturalGradientExamples
import NaturalGradientTestSupport
import Testing

/// The examples target called in process (no binary): the trainer, the training comparison
/// and the Gaussian-process comparison, at sizes that take well under a second.
@Suite("examples in process")
struct ExamplesLibraryTests {
    /// 40 training and 10 test samples of a learnable task: the label is which quarter of
    /// the image holds the brightest pixel, so a few SGD steps lower the loss.
    static func smallDigits(seed: UInt64) -> DigitsData {
        var generator = SplitMix64(seed: seed)
        func sample() -> ([Float], Int) {
            var pixels = (0..<DigitsData.features).map { _ in generator.nextUnit() * 0.2 }
            let label = Int(generator.next() % 4)
            pixels[label * 16 + Int(generator.next() % 16)] = 1
            return (pixels, label)
        }
        let train = (0..<40).map { _ in sample() }
        let test = (0..<10).map { _ in sample() }
        return DigitsData(
            trainInputs: train.flatMap(\.0), trainLabels: train.map(\.1), testInputs: test.flatMap(\.0),
            testLabels: test.map(\.1))
    }

    @Test func firstOrderRunsLowerTheLossAndTheComparisonReportsThem() throws {
        let context = try TestDevice.context()
        let steps = 7
        let trainer = Trainer(
            model: MLP(sizes: [DigitsData.features, 9, DigitsData.classes]), data: Self.smallDigits(seed: 4),
            steps: steps, batchSize: 8, seed: 1, context: context, stopBelow: 0,
            progress: ProgressBar(interactive: false))
        let comparison = try TrainingComparison.run(methods: [.sgd, .adam], trainer: trainer, threshold: 1e-9, steps: steps)
        // Every learning rate of both grids ran; one best run per method.
        #expect(comparison.runs.count == TrainMethod.sgd.learningRates.count + TrainMethod.adam.learningRates.count)
        #expect(comparison.best.map(\.method) == [.sgd, .adam])
        for run in comparison.best {
            #expect(run.records.map(\.step) == Array(0...steps), "\(run.method)")
            #expect(run.finalLoss < run.records[0].trainLoss, "\(run.method): \(run.records.map(\.trainLoss))")
            #expect((0...1).contains(run.testAccuracy))
        }
        // No run reaches 1e-9: the best is the lowest final loss.
        for method in [TrainMethod.sgd, .adam] {
            let lowest = comparison.runs.filter { $0.method == method }.map(\.finalLoss).min()
            #expect(comparison.best.first { $0.method == method }?.finalLoss == lowest)
        }
        // steps.csv: a header and one line per record of every run; summary.csv one per method.
        let recordCount = comparison.runs.reduce(0) { $0 + $1.records.count }
        #expect(comparison.stepsCSV().split(separator: "\n").count == 1 + recordCount)
        #expect(comparison.summaryCSV().split(separator: "\n").count == 1 + comparison.best.count)
        #expect(comparison.table().rows.count == comparison.best.count)
        #expect(comparison.chart().contains("<svg"))
    }

    @Test func theSameSeedTrainsTheSameWay() throws {
        let context = try TestDevice.context()
        func losses() throws -> [Double] {
            let trainer = Trainer(
                model: MLP(sizes: [DigitsData.features, 5, DigitsData.classes]), data: Self.smallDigits(seed: 9),
                steps: 3, batchSize: 8, seed: 2, context: context, stopBelow: 0, progress: ProgressBar(interactive: false))
            return try trainer.run(.adam, learningRate: 0.01, label: "adam").records.map(\.trainLoss)
        }
        #expect(try losses() == (try losses()))
    }

    @Test func gaussianProcessComparisonConvergesAndReportsEveryMetric() throws {
        let model = GaussianProcessModel(data: .synthetic(points: 12, seed: 3))
        let start = RBFHyperparameters(lengthScale: 2, signalVariance: 0.5, noiseVariance: 0.5)
        let iterations = 30
        let result = GaussianProcessComparison.run(
            model: model, stepSizes: [1, 0.5, 0.1], iterations: iterations, start: start, tolerance: 1e-3)
        #expect(result.runs.map(\.metric) == ParameterMetric.allCases)
        #expect(result.best.isFinite)
        // The best NLL is below the start's, and some chosen run converges to it.
        let startNLL = try #require(model.evaluate(start.logarithms)).negativeLogLikelihood
        #expect(result.best < startNLL)
        #expect(result.runs.contains { $0.iterationsToReach(result.best, tolerance: 1e-3) != nil })
        for run in result.runs where !run.diverged {
            #expect(run.negativeLogLikelihoods.count == iterations + 1, "\(run.metric)")
        }
        #expect(result.csv().split(separator: "\n").count == iterations + 2)
        #expect(result.verdict()?.hasPrefix("fastest: ") == true)
    }

    @Test func aCovarianceThatIsNotPositiveDefiniteEndsTheRun() throws {
        // Two equal inputs and no noise: K is singular, so the NLL does not exist there.
        let model = GaussianProcessModel(data: GaussianProcessData(x: [0, 0, 1], y: [0.1, 0.2, 0.3]))
        let theta = RBFHyperparameters(lengthScale: 1, signalVariance: 1, noiseVariance: 1e-300).logarithms
        #expect(model.evaluate(theta) == nil)
        #expect(model.evaluate(RBFHyperparameters(lengthScale: 1, signalVariance: 1, noiseVariance: 0.1).logarithms) != nil)
    }

    @Test func theNLLMatchesAnIndependentDeterminant() throws {
        // For n = 2 the NLL has a closed form: ½ yᵀK⁻¹y + ½ log det K + log 2π.
        let data = GaussianProcessData(x: [-0.4, 0.9], y: [0.3, -0.7])
        let h = RBFHyperparameters(lengthScale: 0.7, signalVariance: 1.3, noiseVariance: 0.2)
        let evaluation = try #require(GaussianProcessModel(data: data).evaluate(h.logarithms))
        let off = h.signalVariance * exp(-(1.3 * 1.3) / (2 * 0.7 * 0.7))
        let diagonal = h.signalVariance + h.noiseVariance
        let determinant = diagonal * diagonal - off * off
        let quadratic = (diagonal * 0.3 * 0.3 + diagonal * 0.7 * 0.7 + 2 * off * 0.3 * 0.7) / determinant
        let expected = 0.5 * quadratic + 0.5 * log(determinant) + log(2 * Double.pi)
        #expect(abs(evaluation.negativeLogLikelihood - expected) <= 1e-13 * abs(expected))
    }
}
