import Foundation
import Testing

/// The distributed checks (`ngrad-mpi-check`, which compares every distributed operation
/// with one process on the same global data) run under `mpirun` with 2 and 3 ranks, so
/// `swift test` covers them; and the two failure paths end the job instead of hanging.
/// `scripts/test-mpi.sh` runs the same by hand, with 1 rank too.
@Suite("MPI: ngrad-mpi-check under mpirun", .serialized)
struct MPIRunTests {
    @Test(arguments: [2, 3])
    func everyCheckPasses(ranks: Int) throws {
        let run = try mpirun(ranks: ranks, [])
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains(" passed, 0 failed (\(ranks) ranks)"), "\(run.stdout)")
        #expect(!run.stdout.contains("FAIL"), "\(run.stdout)")
    }

    @Test func aRankWithBadInputEndsTheJobWithItsMessage() throws {
        let run = try mpirun(ranks: 2, ["--fail-on-rank", "1"])
        #expect(run.status != 0)
        #expect(
            run.stderr.contains("ngrad: rank 1 of 2: invalid argument 'weights': weight 0 is nan"),
            "\(run.stdout)\n\(run.stderr)")
    }

    @Test func aKilledRankEndsTheJob() throws {
        let run = try mpirun(ranks: 2, ["--kill-rank", "1"])
        #expect(run.status != 0)
        #expect(run.stdout.contains("exited on signal 9") || run.stderr.contains("exited on signal 9"), "\(run.stderr)")
    }
}

/// Runs `mpirun -np ranks ngrad-mpi-check arguments` (oversubscribing the cores, one PoCL
/// thread per rank) and fails, killing it, if it runs past `limit` seconds: a hang fails.
func mpirun(
    ranks: Int, _ arguments: [String], limit: Double = 600
) throws
    -> (status: Int32, stdout: String, stderr: String)
{
    try mpirun(ranks: ranks, command: [builtProduct("ngrad-mpi-check")] + arguments, limit: limit)
}

/// The path of the executable product `name` built beside this test bundle.
func builtProduct(_ name: String) -> String {
    let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = runner.deletingLastPathComponent()
    while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent(name).path),
        directory.path != "/"
    {
        directory = directory.deletingLastPathComponent()
    }
    return directory.appendingPathComponent(name).path
}

/// Runs `mpirun -np ranks command…` (or `command` alone when `ranks` is nil) under the same
/// time limit: a hang fails the test instead of stalling it.
func mpirun(
    ranks: Int?, command: [String], limit: Double = 600
) throws
    -> (status: Int32, stdout: String, stderr: String)
{
    var flags = ["--oversubscribe", "-x", "POCL_MAX_PTHREAD_COUNT"]
    if getuid() == 0 { flags.append("--allow-run-as-root") }
    if ProcessInfo.processInfo.environment["NGRAD_DEVICE"] != nil { flags += ["-x", "NGRAD_DEVICE"] }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ranks.map { ["mpirun"] + flags + ["-np", "\($0)"] + command } ?? command
    var environment = ProcessInfo.processInfo.environment
    environment["POCL_MAX_PTHREAD_COUNT"] = environment["POCL_MAX_PTHREAD_COUNT"] ?? "1"
    process.environment = environment
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    try process.run()
    // Read both pipes on their own threads, so a full pipe cannot block the job.
    nonisolated(unsafe) var outputData = Data()
    nonisolated(unsafe) var errorData = Data()
    let readers = DispatchGroup()
    DispatchQueue.global().async(group: readers) { outputData = output.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: readers) { errorData = errors.fileHandleForReading.readDataToEndOfFile() }
    if finished.wait(timeout: .now() + limit) == .timedOut {
        process.terminate()
        finished.wait()
        Issue.record("mpirun -np \(ranks.map(String.init) ?? "-") \(command) ran past \(limit) s (a hang)")
    }
    readers.wait()
    return (
        process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self)
    )
}
