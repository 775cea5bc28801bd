import CMPI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A group of processes (ranks) that talk over MPI: rank, size and the collectives the
/// distributed curvature needs (`Communicator+Collectives.swift`, and the rank-ordered sum in
/// `Communicator+RankOrderedSum.swift`).
///
/// `world()` initialises MPI once per process and returns a duplicate of `MPI_COMM_WORLD`,
/// so the library's messages never mix with the application's, with `MPI_ERRORS_RETURN`
/// set: a failing call throws `MPIError.callFailed` naming the call and MPI's error string
/// instead of killing the job. Call `Communicator.finalize()` once before the process exits.
///
/// Collectives must be entered by every rank in the same order with matching shapes; a rank
/// that throws while the others wait in a collective leaves them waiting, so a program ends
/// the job on an error with `abortingOnError(_:)` (it prints the error and calls `MPI_Abort`).
/// An instance serves one thread at a time (MPI is initialised with `MPI_THREAD_FUNNELED`).
public final class Communicator: @unchecked Sendable {
    let handle: MPI_Comm
    /// This process's rank, `0..<size`.
    public let rank: Int
    /// The number of ranks.
    public let size: Int
    /// The bytes this rank has received from the other ranks through this communicator's
    /// collectives so far (what the algorithms here move: exact for the gathers, the
    /// rank-ordered sum and broadcast; `2(p−1)/p·n` values, a bandwidth-optimal algorithm's,
    /// for the plain `allreduce`, whose algorithm is MPI's). For accounting per step: read
    /// it before and after.
    public internal(set) var bytesReceived = 0

    private init(handle: MPI_Comm) throws {
        self.handle = handle
        var rank: Int32 = 0
        var size: Int32 = 0
        try check(MPI_Comm_rank(handle, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(handle, &size), "MPI_Comm_size")
        self.rank = Int(rank)
        self.size = Int(size)
    }

    deinit {
        // Freeing after MPI_Finalize is erroneous; the handle dies with MPI then anyway.
        guard !Self.isFinalized else { return }
        var freed: MPI_Comm? = handle
        MPI_Comm_free(&freed)
    }

    /// All processes of the job, initialising MPI first if needed.
    /// - Throws: `MPIError.callFailed` when MPI cannot start or duplicate the communicator.
    public static func world() throws -> Communicator {
        try initialize()
        let world = cmpi_comm_world()
        // On the world communicator too: errors inside MPI_Comm_dup itself then return.
        try check(MPI_Comm_set_errhandler(world, cmpi_errors_return()), "MPI_Comm_set_errhandler")
        var duplicate: MPI_Comm?
        try check(MPI_Comm_dup(world, &duplicate), "MPI_Comm_dup")
        guard let duplicate else {
            throw MPIError.callFailed(function: "MPI_Comm_dup", code: 0, message: "returned no communicator")
        }
        try check(MPI_Comm_set_errhandler(duplicate, cmpi_errors_return()), "MPI_Comm_set_errhandler")
        return try Communicator(handle: duplicate)
    }

    /// Initialises MPI (`MPI_Init_thread`, funneled) unless it already is.
    public static func initialize() throws {
        var initialized: Int32 = 0
        try check(MPI_Initialized(&initialized), "MPI_Initialized")
        guard initialized == 0 else { return }
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided), "MPI_Init_thread")
    }

    /// Ends MPI (`MPI_Finalize`) if it was started and not yet ended. Every rank calls it
    /// once, after its last collective; `mpirun` reports a rank that exits without it.
    public static func finalize() throws {
        var initialized: Int32 = 0
        try check(MPI_Initialized(&initialized), "MPI_Initialized")
        guard initialized != 0, !isFinalized else { return }
        try check(MPI_Finalize(), "MPI_Finalize")
    }

    static var isFinalized: Bool {
        var finalized: Int32 = 0
        return MPI_Finalized(&finalized) == cmpi_success() && finalized != 0
    }

    /// Waits until every rank has called it.
    public func barrier() throws {
        try check(MPI_Barrier(handle), "MPI_Barrier")
    }

    // MARK: - Ending the job on a failure

    /// Prints `message` to standard error as `ngrad: rank r of n: message`, then ends every
    /// rank of the job with `MPI_Abort(code)`: the way out of an error that the other ranks,
    /// waiting in a collective, cannot know about.
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        fflush(nil) // what the rank printed so far comes first
        let line = Array("ngrad: rank \(rank) of \(size): \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        MPI_Abort(cmpi_comm_world(), code)
        exit(code) // MPI_Abort does not return; this is for an MPI that does
    }

    /// The value of `body`, or, if it throws, `abort` with the error's description.
    public func abortingOnError<T>(_ body: () throws -> T) -> T {
        do { return try body() } catch { abort("\(error)") }
    }
}

/// Throws `MPIError.callFailed` naming `function` and MPI's error string unless `code` is
/// MPI_SUCCESS.
func check(_ code: Int32, _ function: String) throws {
    guard code != cmpi_success() else { return }
    var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
    var length: Int32 = 0
    let message: String
    if MPI_Error_string(code, &text, &length) == cmpi_success() {
        message = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    } else {
        message = "unknown MPI error"
    }
    throw MPIError.callFailed(function: function, code: code, message: message)
}
