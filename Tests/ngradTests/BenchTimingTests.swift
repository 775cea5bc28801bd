import NaturalGradientTestSupport
import Testing

@testable import ngrad

/// The CG-iteration time `ngrad bench` derives by subtracting paired solves: a run whose
/// difference is not positive makes the row unmeasurable, never a negative time.
@Suite("bench iteration timing")
struct BenchTimingTests {
    private func timing(_ seconds: [Double]) -> Timing { Timing(seconds: seconds, interference: nil) }

    @Test func positiveDifferencesGiveTheTimePerIteration() throws {
        let result = try #require(
            QuickBenchmark.iterationTiming(short: timing([1, 2, 1.5]), long: timing([3, 2.5, 3.5]), extraIterations: 4))
        #expect(result.seconds == [0.5, 0.125, 0.5])
        #expect(result.min > 0 && result.min <= result.median && result.median <= result.max)
    }

    @Test(arguments: [
        ([1.0, 1.0, 1.0], [2.0, 0.5, 3.0]), // one run with the long solve faster: once a negative minimum
        ([1.0, 1.0], [1.0, 2.0]), // a zero difference
        ([1.0], [Double.nan]), // a broken clock
        ([Double](), [Double]()), // nothing timed
    ])
    func anyNonPositiveDifferenceIsNotMeasurable(short: [Double], long: [Double]) {
        #expect(QuickBenchmark.iterationTiming(short: timing(short), long: timing(long), extraIterations: 8) == nil)
    }

    @Test func noExtraIterationsIsNotMeasurable() {
        #expect(QuickBenchmark.iterationTiming(short: timing([1]), long: timing([2]), extraIterations: 0) == nil)
    }
}
