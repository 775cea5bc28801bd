import Foundation
import Testing

/// `ngrad bench` as a user runs it, at the tiny size: the format and the correctness of
/// every row, never the timings.
@Suite("ngrad bench")
struct BenchCommandTests {
    static let operations: Set<String> = [
        "device copy", "upload", "download", "accumulation", "batched-block accumulation", "implicit product",
        "dense product", "Kronecker product", "CG iteration",
    ]

    @Test func jsonHasEveryOperationCheckedAndTimed() throws {
        let result = try runNgrad(["bench", "--size", "tiny", "--repetitions", "2", "--precision", "all", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let output = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(output["device"] is String)
        #expect(output["size"] as? String == "tiny")
        #expect((output["peakResidentBytes"] as? Int ?? 0) > 0)
        let rows = try #require(output["rows"] as? [[String: Any]])
        #expect(Set(rows.compactMap { $0["operation"] as? String }) == Self.operations)
        for row in rows {
            let name = "\(row["operation"] ?? "?") \(row["element"] ?? "?")"
            #expect(row["passed"] as? Bool == true, "\(name): \(row)")
            let median = try #require(row["medianSeconds"] as? Double, "\(name)")
            let low = try #require(row["minSeconds"] as? Double)
            let high = try #require(row["maxSeconds"] as? Double)
            #expect(median > 0 && low <= median && median <= high, "\(name)")
            #expect((row["gbytes"] as? Double ?? 0) > 0, "\(name)")
            if let error = row["relativeError"] as? Double, let tolerance = row["tolerance"] as? Double {
                #expect(error <= tolerance, "\(name)")
            }
        }
        // Memory-bound rows are read against the measured copy bandwidth.
        let product = try #require(rows.first { $0["operation"] as? String == "implicit product" })
        #expect((product["rooflineFraction"] as? Double ?? 0) > 0)
        // Both element types where the device has fp64.
        let elements = Set(rows.compactMap { $0["element"] as? String })
        #expect(elements.contains("float"))
    }

    @Test func tableAndProgressLines() throws {
        let result = try runNgrad(["bench", "--size", "tiny", "--repetitions", "1", "--warmup", "0"])
        #expect(result.status == 0, "\(result.stderr)")
        for header in ["operation", "median ms", "GFLOP/s", "GB/s", "of copy BW"] {
            #expect(result.stdout.contains(header), "\(header)")
        }
        #expect(!result.stdout.contains("WRONG"))
        // Progress goes to standard error, one line per operation when it is not a terminal.
        #expect(result.stderr.contains("[1/9] device copy"))
        #expect(result.stderr.contains("[9/9] CG iteration"))
        #expect(try runNgrad(["bench", "--repetitions", "0"]).status == 2)
        #expect(try runNgrad(["bench", "--size", "huge"]).status == 2)
    }
}
