import Foundation
import Testing

/// `ngrad train --dry-run`: each method's memory plan, and no training.
@Suite("ngrad train memory plan")
struct TrainPlanTests {
    @Test func dryRunPrintsEachMethodsPlanAndTrainsNothing() throws {
        let directory = NSTemporaryDirectory() + "ngrad-train-plan-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try runNgrad([
            "train", "--dry-run", "--methods", "adam,kfac,fisher-cg,empirical-woodbury", "--batch-size", "100",
            "--output", directory,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("ngrad train --dry-run: MLP 64-128-64-10, 17226 parameters, batch 100"))
        #expect(result.stdout.contains("adam: first-order"))
        #expect(result.stdout.contains("kfac: kronecker"))
        // The exact Fisher of 32 samples x 10 outputs; the empirical one of min(128, batch) rows.
        #expect(result.stdout.contains("fisher-cg: implicit, factor rows per step 320; fits"))
        #expect(result.stdout.contains("empirical-woodbury: woodbury, factor rows per step 100; fits"))
        #expect(result.stdout.contains("  dense F"))
        #expect(!FileManager.default.fileExists(atPath: directory))
    }
}
