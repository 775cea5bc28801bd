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
        let stored = try #require(
            entries.first { $0["family"] as? String == "FisherAccumulation.cl" }?["defines"] as? [String: Int])
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

    /// `--show` checks each entry against the device it names where that device is here: an
    /// entry outside its family's space (the kernels ignore it) is listed as rejected with
    /// the rule, never as loaded.
    @Test func showMarksOutOfRangeEntriesRejectedWithTheRule() throws {
        let directory = NSTemporaryDirectory() + "ngrad-tune-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let devices = try runNgrad(["devices", "--json"])
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(devices.stdout.utf8)) as? [[String: Any]])
        let name = try #require(reports.first?["name"] as? String)
        let driver = try #require(reports.first?["driverVersion"] as? String)
        func entry(_ device: String, _ family: String, _ element: String, _ defines: [String: Int]) -> [String: Any] {
            ["device": device, "driverVersion": driver, "family": family, "element": element, "defines": defines]
        }
        let entries: [[String: Any]] = [
            entry(name, "Reduction.cl", "float", ["WGS": 3]), // not a power of two
            entry(name, "Reduction.cl", "double", [:]), // the defaults: used
            entry(name, "Reduction.cl", "half", [:]),
            entry(name, "Nope.cl", "float", ["WGS": 8]),
            entry(name, "Vector.cl", "float", ["NO_SUCH_TUNABLE": 1]),
            entry("a device that is not here", "Reduction.cl", "float", ["WGS": 3]),
        ]
        let file = directory + "/tuning.json"
        try JSONSerialization.data(withJSONObject: ["format": "naturalgradient-tuning", "version": 1, "entries": entries])
            .write(to: URL(fileURLWithPath: file))
        let environment = ["NGRAD_TUNING_CACHE": file]

        let show = try runNgradWithEnvironment(["tune", "--show", "--json"], environment: environment)
        #expect(show.status == 0, "\(show.stderr)")
        let shown = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        let states = try #require(shown["entryStates"] as? [String])
        try #require(states.count == entries.count, "\(states)")
        #expect(states[0].hasPrefix("rejected: WGS=3 is not one of"), "\(states[0])")
        #expect(states[1] == "used", "\(states[1])")
        #expect(states[2].hasPrefix("rejected: unknown element type 'half'"), "\(states[2])")
        #expect(states[3].hasPrefix("rejected: unknown kernel file 'Nope.cl'"), "\(states[3])")
        #expect(states[4].hasPrefix("rejected: ") && states[4].contains("NO_SUCH_TUNABLE"), "\(states[4])")
        #expect(states[5].hasPrefix("not checked"), "\(states[5])")

        // The table says the same, one state per row.
        let table = try runNgradWithEnvironment(["tune", "--show"], environment: environment)
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("rejected: WGS=3 is not one of"), "\(table.stdout)")
        #expect(table.stdout.components(separatedBy: "rejected: ").count - 1 == 4, "\(table.stdout)")
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
func runNgradWithEnvironment(
    _ arguments: [String], environment: [String: String]
) throws
    -> (status: Int32, stdout: String, stderr: String)
{
    try runNgrad(arguments, environment: environment)
}
