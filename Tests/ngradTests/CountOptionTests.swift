import Foundation
import Testing

/// Every count option of `ngrad bench`, `tune`, `train`, `solve` and `example gp` is bounded before any work:
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
        (["tune"], "--repetitions", 1, 10_000),
        (["tune"], "--warmup", 0, 1_000),
        (
            ["solve", "--factor", "U.npy", "--gradient", "g.npy", "--damping", "1", "--output", "x.npy"],
            "--max-iterations", 0, 100_000_000
        ),
    ]

    /// Every other numeric option of every command, with a value its rule refuses and the
    /// text the one-line usage error must hold: non-finite and negative reals, integers
    /// beyond their type, and the extremes of the bounded lists.
    static let otherNumbers: [([String], String)] = {
        let solve = ["solve", "--factor", "U.npy", "--gradient", "g.npy", "--output", "x.npy"]
        let metric = ["metric", "--family", "gaussian", "--measure", "kl"]
        var rows: [([String], String)] = []
        for value in ["nan", "inf", "-inf", "-1", "1e400"] {
            rows.append((solve + ["--damping=\(value)"], "--damping"))
            rows.append((solve + ["--damping", "1", "--tolerance=\(value)"], "--tolerance"))
        }
        for value in ["nan", "inf", "0", "-1", "1e400"] {
            rows.append((["train", "--threshold=\(value)"], "--threshold"))
        }
        for value in ["0", "-3", "9223372036854775808"] {
            rows.append((solve + ["--damping", "1", "--samples=\(value)"], "--samples"))
        }
        for value in ["-1", "18446744073709551616", "1.5"] {
            rows.append((["train", "--seed=\(value)"], "--seed"))
            rows.append((["example", "gp", "--seed=\(value)"], "--seed"))
        }
        // One past Int.max: refused by the parser, naming the option.
        for (command, option) in [
            (["bench"], "--repetitions"), (["tune"], "--warmup"), (["train"], "--steps"), (["example", "gp"], "--points"),
        ] {
            rows.append((command + ["\(option)=9223372036854775808"], option))
        }
        rows.append((metric + ["--at", Array(repeating: "1", count: 600).joined(separator: ",")], "limit"))
        rows.append((metric + ["--at", "1,nan"], "--at"))
        rows.append((metric + ["--at", ""], "--at"))
        return rows
    }()

    @Test(arguments: otherNumbers)
    func everyOtherNumericOptionIsChecked(arguments: [String], mentions: String) throws {
        let result = try runNgrad(arguments)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains(mentions), "\(arguments): \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments): \(result.stderr)")
        #expect(result.stdout.isEmpty, "\(arguments)")
    }

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
