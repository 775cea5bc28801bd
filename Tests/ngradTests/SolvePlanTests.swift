import Foundation
import NumPyFormat
import Testing
import NaturalGradientTestSupport

/// `ngrad solve`'s memory plan through the real binary: --dry-run prints it and touches
/// nothing; a solve that cannot fit is refused before anything is allocated.
@Suite("ngrad solve memory plan")
struct SolvePlanTests {
    final class Files {
        let directory: String
        init(rows: Int, dimension: Int) throws {
            directory = NSTemporaryDirectory() + "ngrad-plan-\(UInt64.random(in: 0...UInt64.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try NumPyArray(shape: [rows, dimension], elementType: .float32, values: randomValues(rows * dimension, seed: 1))
                .write(to: path("U.npy"))
            try NumPyArray(shape: [dimension], elementType: .float32, values: randomValues(dimension, seed: 2))
                .write(to: path("g.npy"))
        }
        deinit { try? FileManager.default.removeItem(atPath: directory) }
        func path(_ name: String) -> String { directory + "/" + name }
        func arguments(_ extra: [String]) -> [String] {
            ["solve", "--factor", path("U.npy"), "--gradient", path("g.npy"), "--damping", "0.1", "--output", path("x.npy")]
                + extra
        }
    }

    @Test func dryRunPrintsThePlanAndWritesNothing() throws {
        let files = try Files(rows: 7, dimension: 33)
        let result = try runNgrad(files.arguments(["--dry-run"]))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("ngrad solve --dry-run: U 7 x 33"))
        #expect(result.stdout.contains("method: woodbury (auto), allocating woodbury"))
        for representation in ["dense F", "implicit", "woodbury", "diagonal"] {
            #expect(result.stdout.contains("  \(representation)"), "\(representation)")
        }
        #expect(result.stdout.contains("the solve fits"))
        #expect(!FileManager.default.fileExists(atPath: files.path("x.npy")))

        let json = try runNgrad(files.arguments(["--dry-run", "--json", "--method", "cg"]))
        #expect(json.status == 0, "\(json.stderr)")
        let plan = try #require(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(plan["method"] as? String == "cg")
        #expect(plan["representation"] as? String == "implicit")
        #expect(plan["fits"] as? Bool == true)
        let requirements = try #require(plan["requirements"] as? [[String: Any]])
        let dense = try #require(requirements.first { $0["representation"] as? String == "dense F" })
        #expect(dense["deviceBytes"] as? Int == 33 * 33 * 4 + 7 * 33 * 4 + 3 * 33 * 4)
    }

    /// Dense F for P = 200,000 is 160 GB of float32: refused with the bytes and the
    /// alternatives, from a 5.6 MB factor, before anything is allocated.
    @Test func aDenseFThatCannotFitIsRefused() throws {
        let files = try Files(rows: 7, dimension: 200_000)
        let result = try runNgrad(files.arguments(["--method", "cholesky"]))
        #expect(result.status != 0)
        #expect(result.stderr.contains("dense F for P = 200,000 needs 160.0 GB; the device"), "\(result.stderr)")
        #expect(result.stderr.contains("use implicit, woodbury or diagonal"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: files.path("x.npy")))
        let dryRun = try runNgrad(files.arguments(["--method", "cholesky", "--dry-run"]))
        #expect(dryRun.status == 0)
        #expect(dryRun.stdout.contains("would be refused: dense F for P = 200,000 needs 160.0 GB"), "\(dryRun.stdout)")
    }
}
