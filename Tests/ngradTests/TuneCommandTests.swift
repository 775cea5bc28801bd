import Foundation
import Testing

/// `ngrad tune` as a user runs it, at the tiny size, against a cache file of its own.
@Suite("ngrad tune")
struct TuneCommandTests {
    @Test func tuneStoresCheckedWinnersThatShowReads() throws {
        let directory = NSTemporaryDirectory() + "ngrad-tune-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/tuning.json"
        let environment = ["NGRAD_TUNING_CACHE": file]

        let result = try runNgradWithEnvironment(
            ["tune", "--size", "tiny", "--repetitions", "2", "--json"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let output = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(output["stored"] as? Bool == true)
        let searches = try #require(output["searches"] as? [[String: Any]])
        #expect(Set(searches.compactMap { $0["family"] as? String }) == ["FisherAccumulation.cl", "CurvatureProducts.cl"])
        for search in searches {
            let candidates = try #require(search["candidates"] as? [[String: Any]])
            #expect(candidates.count == 3)
            #expect(candidates.filter { $0["winner"] as? Bool == true }.count == 1)
            #expect(candidates.first?["isDefault"] as? Bool == true)
            for candidate in candidates where candidate["rejection"] == nil {
                let error = try #require(candidate["relativeError"] as? Double)
                #expect(error < 1e-5)
                #expect((candidate["medianSeconds"] as? Double ?? 0) > 0)
            }
        }

        // The file is a valid cache with one entry per family, and `--show` reads it.
        let show = try runNgradWithEnvironment(["tune", "--show", "--json"], environment: environment)
        #expect(show.status == 0, "\(show.stderr)")
        let shown = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        #expect(shown["cacheState"] as? String == "loaded")
        #expect(shown["cache"] as? String == file)
        let entries = try #require(shown["entries"] as? [[String: Any]])
        #expect(entries.count == 2)
        #expect(entries.allSatisfy { ($0["defines"] as? [String: Int])?.isEmpty == false })

        // Later runs use it: the kernels still build and compute with the tuned values.
        let kernels = try runNgradWithEnvironment(["kernels", "--precision", "float", "--json"], environment: environment)
        #expect(kernels.status == 0, "\(kernels.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(kernels.stdout.utf8)) as? [[String: Any]])
        let accumulationOptions = rows.first { $0["file"] as? String == "FisherAccumulation.cl" }?["buildOptions"] as? String
        let stored = try #require(entries.first { $0["family"] as? String == "FisherAccumulation.cl" }?["defines"] as? [String: Int])
        for (name, value) in stored {
            #expect(accumulationOptions?.contains("-D\(name)=\(value)") == true, "\(accumulationOptions ?? "")")
        }
    }

    @Test func aCorruptCacheIsReportedAndReplaced() throws {
        let directory = NSTemporaryDirectory() + "ngrad-tune-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = directory + "/tuning.json"
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: file))
        let environment = ["NGRAD_TUNING_CACHE": file]

        let show = try runNgradWithEnvironment(["tune", "--show"], environment: environment)
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("ignored"))
        // Every command still runs with the defaults.
        #expect(try runNgradWithEnvironment(["kernels", "--precision", "float"], environment: environment).status == 0)

        let tune = try runNgradWithEnvironment(["tune", "--size", "tiny", "--repetitions", "1"], environment: environment)
        #expect(tune.status == 0, "\(tune.stderr)")
        #expect(tune.stdout.contains("winner"))
        #expect(tune.stdout.contains("replaced"))
        let after = try runNgradWithEnvironment(["tune", "--show", "--json"], environment: environment)
        #expect(after.stdout.contains("\"cacheState\" : \"loaded\""))
    }

    @Test func disabledCacheAndDryRunWriteNothing() throws {
        let directory = NSTemporaryDirectory() + "ngrad-tune-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/tuning.json"
        let dry = try runNgradWithEnvironment(
            ["tune", "--size", "tiny", "--repetitions", "1", "--dry-run"], environment: ["NGRAD_TUNING_CACHE": file])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(!FileManager.default.fileExists(atPath: file))
        let off = try runNgradWithEnvironment(
            ["tune", "--size", "tiny", "--repetitions", "1"], environment: ["NGRAD_TUNING_CACHE": "off"])
        #expect(off.status == 0, "\(off.stderr)")
        #expect(off.stdout.contains("disabled"))
        #expect(try runNgradWithEnvironment(["tune", "--repetitions", "0"], environment: [:]).status == 2)
    }
}

/// `runNgrad` with extra environment variables.
func runNgradWithEnvironment(_ arguments: [String], environment: [String: String]) throws
    -> (status: Int32, stdout: String, stderr: String)
{
    try runNgrad(arguments, environment: environment)
}
