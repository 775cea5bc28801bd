import Foundation
import NaturalGradient
import NaturalGradientExamples
import NaturalGradientTestSupport
import Testing

/// `ngrad train` keeps one-time costs out of its timed steps: the warm-up builds every
/// program the steps use (none is compiled or read from disk while the clock runs), its
/// seconds are reported apart, and the summary never says "0.6x less time".
@Suite("ngrad train: no compilation in the timed steps")
struct TrainWarmupTests {
    @Test(arguments: [TrainMethod.kfac, .fisherCG, .empiricalWoodbury])
    func theTimedStepsBuildNoProgram(method: TrainMethod) throws {
        // A fresh context: its program cache starts empty, so the warm-up has to compile
        // (PoCL keeps no binaries on disk), and any program a timed step needed would count.
        let context = try Context(device: TestDevice.context().device)
        let steps = 6
        let trainer = Trainer(
            model: MLP(sizes: [DigitsData.features, 9, DigitsData.classes]),
            data: ExamplesLibraryTests.smallDigits(seed: 5), steps: steps, batchSize: 8, seed: 3, context: context,
            stopBelow: 0, progress: ProgressBar(interactive: false))
        let run = try trainer.run(method, learningRate: 0, label: method.rawValue)
        let statistics = context.programCacheStatistics
        #expect(statistics.compiles > 0, "the warm-up built the programs")
        // Programs in the timed steps came from memory only; the counter does count there.
        #expect(statistics.compiles + statistics.diskHits > 0 && run.programBuildsInTimedSteps <= statistics.compiles)
        #expect(run.programBuildsInTimedSteps == 0, "\(method)")
        #expect(run.warmupSeconds > 0)
        #expect(run.records.map(\.step) == Array(0...steps))
    }

    @Test func firstOrderMethodsHaveNoWarmup() throws {
        let trainer = Trainer(
            model: MLP(sizes: [DigitsData.features, 5, DigitsData.classes]),
            data: ExamplesLibraryTests.smallDigits(seed: 6), steps: 2, batchSize: 8, seed: 1,
            context: try TestDevice.context(), stopBelow: 0, progress: ProgressBar(interactive: false))
        let run = try trainer.run(.adam, learningRate: 0.01, label: "adam")
        #expect(run.warmupSeconds == 0 && run.programBuildsInTimedSteps == 0)
    }

    @Test func theRatioIsWordedAtLeastOne() {
        func time(_ value: Double, _ baseline: Double) -> String {
            TrainingComparison.ratioPhrase(value, baseline, less: "less time", more: "more time")
        }
        #expect(time(1, 2.8) == "2.8x less time")
        // The case the old wording printed as "0.6x less time".
        #expect(time(5, 3) == "1.7x more time")
        #expect(time(2, 2) == "1.0x less time")
        #expect(TrainingComparison.ratioPhrase(30, 10, less: "fewer steps", more: "more steps") == "3.0x more steps")
        #expect(time(0, 1).hasSuffix("less time"))
    }

    @Test func summaryJSONCarriesTheWarmup() throws {
        let trainer = Trainer(
            model: MLP(sizes: [DigitsData.features, 5, DigitsData.classes]),
            data: ExamplesLibraryTests.smallDigits(seed: 7), steps: 2, batchSize: 8, seed: 1,
            context: try TestDevice.context(), stopBelow: 0, progress: ProgressBar(interactive: false))
        let comparison = try TrainingComparison.run(methods: [.sgd, .kfac], trainer: trainer, threshold: 1e-9, steps: 2)
        let entries = try #require(
            try JSONSerialization.jsonObject(with: Data(comparison.summaryJSON().utf8)) as? [[String: Any]])
        #expect(entries.map { $0["method"] as? String } == ["sgd", "kfac"])
        let warmups = entries.map { $0["warmup_seconds"] as? Double }
        #expect(warmups[0] == 0 && (warmups[1] ?? 0) > 0)
        #expect(entries.allSatisfy { $0["program_builds_in_timed_steps"] as? Int == 0 })
        #expect(comparison.table().render().contains("warm-up s"))
    }
}
