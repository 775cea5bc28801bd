import Foundation
import Testing

/// `mpirun -np 2 ngrad train --distributed` against one process on the same global batches,
/// and the two ways a rank fails: each ends the job (status ≠ 0, a message naming the
/// rank) within the harness's time limit instead of hanging.
@Suite("MPI: ngrad train --distributed under mpirun", .serialized)
struct DistributedTrainTests {
    /// A short run: 12 steps of a global batch of 64 from the first 512 training samples.
    static let training = ["train", "--steps", "12", "--batch-size", "64", "--train-samples", "512", "--seed", "3"]

    /// Per-step train losses of K-FAC and SGD over 2 ranks equal one process's, to
    /// rounding, not bitwise: one process computes a batch's mean gradient and K-FAC factors
    /// in one float32 GEMM over 64 rows, two ranks in two GEMMs over 32 rows each, added in
    /// float64 (the rank-ordered sum, so the two ranks agree with each other bitwise, which
    /// ngrad checks after every step). The first three steps agree to 1e-6 relative (steps.csv
    /// prints 8 digits; they printed equal); later steps to 1e-3, because training amplifies
    /// float32 rounding (SGD at lr = 1, which diverges, reached 2e-5 by step 9; K-FAC 3e-7 at
    /// step 12). A wrong share, a rank's statistics counted twice or not at all, or a different
    /// batch moves the first step's loss by far more than 1e-6.
    @Test func twoRanksMatchOneProcess() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ngrad-dist-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let ngrad = builtProduct("ngrad")
        // The fixed-settings K-FAC: `kfac`'s λ from 10⁻³ amplifies the ranks' float32
        // rounding through its first steps (Docs/Distributed.md), not a bitwise match.
        let methods = ["--methods", "kfac-fixed,sgd"]
        let single = try mpirun(
            ranks: nil, command: [ngrad] + Self.training + methods + ["--output", directory.path + "/one"], limit: 600)
        #expect(single.status == 0, "\(single.stdout)\n\(single.stderr)")
        let pair = try mpirun(
            ranks: 2,
            command: [ngrad] + Self.training + methods + ["--distributed", "--output", directory.path + "/two"], limit: 600)
        #expect(pair.status == 0, "\(pair.stdout)\n\(pair.stderr)")
        // Only rank 0 prints: one header, naming the ranks.
        #expect(pair.stdout.components(separatedBy: "digits:").count == 2, "\(pair.stdout)")
        #expect(pair.stdout.contains("2 ranks, 32-32 samples each"), "\(pair.stdout)")
        #expect(pair.stdout.contains("communication: "), "\(pair.stdout)")
        let one = try losses(directory.path + "/one/steps.csv")
        let two = try losses(directory.path + "/two/steps.csv")
        #expect(one.keys.sorted() == two.keys.sorted())
        #expect(one.keys.count == 4, "kfac and sgd's three learning rates: \(one.keys.sorted())")
        for (run, reference) in one {
            let distributed = two[run] ?? []
            #expect(distributed.count == reference.count, "\(run): \(distributed.count) steps, one process \(reference.count)")
            #expect(reference.count >= 4, "\(run): \(reference.count) records")
            for (step, (a, b)) in zip(reference, distributed).enumerated() {
                let bound = step <= 3 ? 1e-6 : 1e-3
                #expect(abs(a - b) <= bound * abs(a), "\(run) step \(step): one process \(a), 2 ranks \(b)")
            }
        }
    }

    /// The bytes `ngrad` reports are what the collectives move: an SGD step over 2 ranks
    /// receives the rank-ordered sum of the P + 1 = 17,227 gradient values (2(p−1)/p·n·4 =
    /// 68,908 bytes: half of the vector in the alltoallv, the other half in the allgatherv)
    /// and the other rank's 16-byte parameter digest, nothing else.
    @Test func anSGDStepReceivesTheGradientSumAndTheDigest() throws {
        let run = try mpirun(
            ranks: 2,
            command: [builtProduct("ngrad")] + Self.training + [
                "--methods", "sgd", "--distributed", "--output", "/tmp/ngrad-dist-\(getpid())-sgd",
            ],
            limit: 300)
        defer { try? FileManager.default.removeItem(atPath: "/tmp/ngrad-dist-\(getpid())-sgd") }
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(
            run.stdout.contains("communication: 68924 bytes received per step by rank 0 (the most), 68924 on average"),
            "\(run.stdout)")
    }

    /// K-FAC's bytes per step (the fixed settings' K-FAC, factors every second step) count the timed steps only, not the untimed warm-up's
    /// collectives: over 2 steps (factors and inverses refreshed on the first) rank 0 receives
    /// the gradient sum and digest each step (68,940) and, once, the packed factor sum with
    /// its argument check (92,296) and the KAISA gather of the layer rank 1 inverted
    /// (50,404): 68,940 + 142,700 / 2 = 140,290 (Benchmarks/NOTES.md has the breakdown).
    @Test func aKFACStepCountsOnlyTheTimedStepsBytes() throws {
        let output = "/tmp/ngrad-dist-\(getpid())-kfac-bytes"
        let run = try mpirun(
            ranks: 2,
            command: [
                builtProduct("ngrad"), "train", "--steps", "2", "--batch-size", "512", "--seed", "3",
                "--threshold", "1e-30", "--methods", "kfac-fixed", "--distributed", "--output", output,
            ],
            limit: 300)
        defer { try? FileManager.default.removeItem(atPath: output) }
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("communication: 140290 bytes received per step by rank 0 (the most)"), "\(run.stdout)")
    }

    /// Rank 1 reads a data file that does not exist (the others the right one): the job ends
    /// with rank 1's message and its usage status instead of rank 0 waiting for it.
    @Test func aRankWithBadInputEndsTheJob() throws {
        let script = #"if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then set -- "$@" --data /nonexistent/digits.csv; fi; exec "$0" "$@""#
        let run = try mpirun(
            ranks: 2,
            command: ["bash", "-c", script, builtProduct("ngrad")] + Self.training + [
                "--methods", "kfac", "--distributed", "--output", "/tmp/ngrad-dist-unused",
            ],
            limit: 300)
        #expect(run.status != 0)
        #expect(run.stderr.contains("ngrad: rank 1 of 2: "), "\(run.stdout)\n\(run.stderr)")
        #expect(run.stderr.contains("/nonexistent/digits.csv"), "\(run.stderr)")
    }

    /// Rank 1 is killed (SIGKILL) mid-training while rank 0 waits in a collective: mpirun
    /// sees it and ends the job.
    @Test func aKilledRankEndsTheJob() throws {
        let script = #"if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then (sleep 6; kill -9 $$) & fi; exec "$0" "$@""#
        let run = try mpirun(
            ranks: 2,
            command: [
                "bash", "-c", script, builtProduct("ngrad"), "train", "--steps", "100000", "--threshold", "1e-30",
                "--batch-size", "64", "--methods", "kfac", "--distributed", "--output", "/tmp/ngrad-dist-unused",
            ],
            limit: 300)
        #expect(run.status != 0)
        #expect(
            run.stdout.contains("exited on signal 9") || run.stderr.contains("exited on signal 9"), "\(run.stdout)\n\(run.stderr)"
        )
    }
}

/// The train-loss column of a steps.csv, per run ("method setting"), in step order.
private func losses(_ path: String) throws -> [String: [Double]] {
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst()
    var runs: [String: [Double]] = [:]
    for line in lines {
        let fields = line.split(separator: ",", omittingEmptySubsequences: false)
        guard fields.count == 6, let loss = Double(fields[5]) else { continue }
        runs["\(fields[0]) \(fields[1])", default: []].append(loss)
    }
    return runs
}
