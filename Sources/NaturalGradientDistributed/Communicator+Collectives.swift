import CMPI

// The collectives on host arrays. The blocking forms work in place on the caller's array
// (MPI reads and writes its storage directly: no staging copy); the non-blocking allreduce
// owns one buffer of its own, because a Swift array's address may not outlive the call that
// lends it.

extension CommunicableScalar {
    /// MPI_FLOAT or MPI_DOUBLE.
    static var datatype: MPI_Datatype {
        switch mpiElement {
        case .float32: cmpi_float()
        case .float64: cmpi_double()
        }
    }
}

/// `count` as MPI's `int`, or `invalidArgument(name, …)` past 2³¹ − 1 elements.
func mpiCount(_ count: Int, _ name: String) throws -> Int32 {
    guard count >= 0, count <= Int(Int32.max) else {
        throw MPIError.invalidArgument(name: name, reason: "\(count) elements exceed MPI's count limit of \(Int32.max)")
    }
    return Int32(count)
}

extension Communicator {
    /// Sums `values` element-wise over all ranks, in place (`MPI_Allreduce`, `MPI_SUM`).
    ///
    /// The order of the additions is MPI's: for float data it may differ between ranks
    /// (Open MPI's recursive doubling on 3 ranks does), so the ranks' results may differ in
    /// the last bit. `sumInRankOrder(_:)` is the reproducible form the curvature uses.
    public func allreduce<T: CommunicableScalar>(_ values: inout [T]) throws {
        let count = try mpiCount(values.count, "values")
        guard count > 0 else { return }
        try values.withUnsafeMutableBufferPointer { buffer in
            try check(
                MPI_Allreduce(cmpi_in_place(), buffer.baseAddress, count, T.datatype, cmpi_sum(), handle),
                "MPI_Allreduce")
        }
        bytesReceived += 2 * (size - 1) * values.count / size * MemoryLayout<T>.stride
    }

    /// Replaces `values` on every rank by `root`'s (`MPI_Bcast`); every rank passes an array
    /// of the same length.
    public func broadcast<T: CommunicableScalar>(_ values: inout [T], root: Int) throws {
        try requireRank(root, "root")
        let count = try mpiCount(values.count, "values")
        guard count > 0 else { return }
        try values.withUnsafeMutableBufferPointer { buffer in
            try check(MPI_Bcast(buffer.baseAddress, count, T.datatype, Int32(root), handle), "MPI_Bcast")
        }
        if rank != root { bytesReceived += values.count * MemoryLayout<T>.stride }
    }

    /// Every rank's `values` one after another in rank order (`MPI_Allgather`); every rank
    /// passes the same count. The result holds `size * values.count` elements.
    public func allgather<T: CommunicableScalar>(_ values: [T]) throws -> [T] {
        let count = try mpiCount(values.count, "values")
        _ = try mpiCount(values.count * size, "values")
        guard count > 0 else { return [] }
        return try [T](unsafeUninitializedCapacity: values.count * size) { gathered, initialized in
            try values.withUnsafeBufferPointer { local in
                try check(
                    MPI_Allgather(local.baseAddress, count, T.datatype, gathered.baseAddress, count, T.datatype, handle),
                    "MPI_Allgather")
            }
            initialized = values.count * size
            bytesReceived += (size - 1) * values.count * MemoryLayout<T>.stride
        }
    }

    /// Every rank's integers one after another in rank order (shapes and status flags).
    func allgather(integers values: [Int64]) throws -> [Int64] {
        let count = try mpiCount(values.count, "values")
        guard count > 0 else { return [] }
        return try [Int64](unsafeUninitializedCapacity: values.count * size) { gathered, initialized in
            try values.withUnsafeBufferPointer { local in
                try check(
                    MPI_Allgather(
                        local.baseAddress, count, cmpi_int64(), gathered.baseAddress, count, cmpi_int64(), handle),
                    "MPI_Allgather")
            }
            initialized = values.count * size
            bytesReceived += (size - 1) * values.count * MemoryLayout<Int64>.stride
        }
    }

    /// Starts summing `values` over all ranks (`MPI_Iallreduce`) and returns at once; the
    /// sum is `wait()`'s result. Every rank starts the same collectives in the same order.
    public func startAllreduce<T: CommunicableScalar>(_ values: [T]) throws -> PendingAllreduce<T> {
        try PendingAllreduce(values, communicator: self)
    }

    func requireRank(_ value: Int, _ name: String) throws {
        guard (0..<size).contains(value) else {
            throw MPIError.invalidArgument(name: name, reason: "\(value) is not a rank of 0..<\(size)")
        }
    }
}

/// A non-blocking allreduce in flight (`Communicator.startAllreduce(_:)`). It owns the buffer
/// MPI works on until `wait()`; one dropped without waiting is waited for on release.
public final class PendingAllreduce<T: CommunicableScalar> {
    private let storage: UnsafeMutableBufferPointer<T>
    private let count: Int
    private var request: MPI_Request?
    private let communicator: Communicator

    init(_ values: [T], communicator: Communicator) throws {
        let count = try mpiCount(values.count, "values")
        storage = .allocate(capacity: max(values.count, 1))
        _ = storage.initialize(from: values)
        self.count = values.count
        self.communicator = communicator
        guard count > 0 else { return }
        communicator.bytesReceived += 2 * (communicator.size - 1) * values.count / communicator.size * MemoryLayout<T>.stride
        var started: MPI_Request?
        do {
            try check(
                MPI_Iallreduce(
                    cmpi_in_place(), storage.baseAddress, count, T.datatype, cmpi_sum(), communicator.handle, &started),
                "MPI_Iallreduce")
        } catch {
            storage.deallocate()
            throw error
        }
        request = started
    }

    /// Waits for the sum and returns it (the same on a second call).
    public func wait() throws -> [T] {
        if request != nil {
            try check(MPI_Wait(&request, cmpi_status_ignore()), "MPI_Wait")
            request = nil
        }
        return Array(storage.prefix(count))
    }

    deinit {
        // MPI may still write into the buffer: wait before freeing it.
        if request != nil, !Communicator.isFinalized { MPI_Wait(&request, cmpi_status_ignore()) }
        storage.deallocate()
    }
}

extension Communicator {
    /// Every rank's `values` one after another in rank order (`MPI_Allgatherv`), where rank r
    /// passes `counts[r]` values and every rank knows `counts` (no count exchange).
    public func allgather<T: CommunicableScalar>(_ values: [T], counts: [Int]) throws -> [T] {
        guard counts.count == size, counts.allSatisfy({ $0 >= 0 }) else {
            throw MPIError.invalidArgument(name: "counts", reason: "needs \(size) non-negative counts, got \(counts)")
        }
        guard values.count == counts[rank] else {
            throw MPIError.invalidArgument(
                name: "values", reason: "rank \(rank) passes \(values.count) values, counts says \(counts[rank])")
        }
        let total = counts.reduce(0, +)
        _ = try mpiCount(total, "counts")
        guard total > 0 else { return [] }
        let receiveCounts = counts.map { Int32($0) }
        var offset = 0
        let offsets = counts.map { count -> Int32 in
            defer { offset += count }
            return Int32(offset)
        }
        return try [T](unsafeUninitializedCapacity: total) { gathered, initialized in
            try values.withUnsafeBufferPointer { local in
                try check(
                    MPI_Allgatherv(
                        local.baseAddress, Int32(values.count), T.datatype, gathered.baseAddress, receiveCounts, offsets,
                        T.datatype, handle),
                    "MPI_Allgatherv")
            }
            initialized = total
            bytesReceived += (total - values.count) * MemoryLayout<T>.stride
        }
    }
}
