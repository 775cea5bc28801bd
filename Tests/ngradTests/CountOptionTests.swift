import Foundation
import Testing

/// Every count option of `ngrad bench`, `train` and `example gp` is bounded before any work:
/// a value past either end (up to Int.max, which once reached malloc) is a one-line usage
/// error naming the option, the value and the rule, with exit status 2.
@Suite("count options are bounded")
struct CountOptionTests {
    /// (command words, option, lowest, highest) for every bounded count option.
    static let bounds: [([String], String, Int, Int)] = [
        (["bench", "--size", "tiny"], "--repetitions", 1, 10_000),
        (["bench", "--size", "tiny"], "--warmup", 0, 1_000),
        (["train"], "--steps", 1, 100_000),
        (["train"], "--batch-size", 1, 100_000),
        (["train"], "--train-samples", 1, 1_000_000),
        (["example", "gp"], "--iterations", 1, 100_000),
        (["example", "gp"], "--points", 3, 400),
    ]

    /// Each bound's rejected neighbours: one past each end, and the extremes of Int.
    static let cases: [([String], String, Int, Int, Int)] = bounds.flatMap { command, option, low, high in
        [low - 1, high + 1, Int.max, Int.min].map { (command, option, low, high, $0) }
    }

    @Test(arguments: cases)
    func outOfRangeIsAUsageError(command: [String], option: String, low: Int, high: Int, value: Int) throws {
        // `=` so that a negative value is not read as an option.
        let result = try runNgrad(command + ["\(option)=\(value)"])
        #expect(result.status == 2, "\(command) \(option)=\(value): \(result.stderr)")
        let expected = "\(option) \(value): must be between \(low) and \(high)"
        #expect(result.stderr.contains(expected), "\(command): \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test func helpStatesTheBounds() throws {
        for (command, option, low, high) in Self.bounds where option != "--batch-size" && option != "--train-samples" {
            let help = try runNgrad(command + ["--help"]).stdout
            #expect(help.contains("\(low)-\(high)"), "\(command) \(option): \(help)")
        }
    }
}
