import CMPI

// The reproducible sum every distributed statistic goes through.
//
// MPI_Allreduce leaves the order of the additions to the implementation, and Open MPI's
// algorithms add float data in different orders on different ranks (3 ranks, recursive
// doubling), so ranks can end a step a bit apart and drift. Here every element is added in
// rank order 0, 1, …, p−1, by exactly one rank, and copied to the others:
//   1. MPI_Alltoallv: the vector is cut into p near-equal chunks; rank j receives chunk j of
//      every rank (it sends (p−1)/p of its n values).
//   2. Each rank adds its chunk's p contributions in rank order (in float64, rounded once).
//   3. MPI_Allgatherv in place: every rank receives the other p−1 summed chunks.
// It moves 2(p−1)/p·n values per rank, as many as a bandwidth-optimal (ring) allreduce, and
// is bitwise-identical on every rank and from run to run for a given p, whatever algorithm
// MPI picks. It costs two collectives' latency instead of one, and ~p·n additions in
// total, spread over the ranks. (Allgathering the whole partials and summing on every rank
// would be as reproducible but move (p−1)·n values; allreduce-then-broadcast would add
// n·log p to allreduce's traffic.)

extension Communicator {
    /// Sums `values` element-wise over all ranks in place, adding the ranks' contributions
    /// in rank order (in float64, rounded once to `T`), so every rank holds bitwise-identical
    /// results. Every rank passes the same count.
    // Specialised: the per-element loop must not go through the generic witness tables.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func sumInRankOrder<T: CommunicableScalar>(_ values: inout [T]) throws {
        let n = values.count
        _ = try mpiCount(n, "values")
        guard size > 1, n > 0 else { return }
        let p = size
        let starts = (0...p).map { $0 * n / p }
        let counts = (0..<p).map { starts[$0 + 1] - starts[$0] }
        let mine = counts[rank]
        var received = [T](repeating: 0, count: max(mine * p, 1))
        let sendCounts = counts.map { Int32($0) }
        let sendOffsets = starts.dropLast().map { Int32($0) }
        let receiveCounts = [Int32](repeating: Int32(mine), count: p)
        let receiveOffsets = (0..<p).map { Int32($0 * mine) }
        try values.withUnsafeBufferPointer { local in
            try received.withUnsafeMutableBufferPointer { gathered in
                try check(
                    MPI_Alltoallv(
                        local.baseAddress, sendCounts, sendOffsets, T.datatype, gathered.baseAddress, receiveCounts,
                        receiveOffsets, T.datatype, handle),
                    "MPI_Alltoallv")
            }
        }
        bytesReceived += (p - 1) * mine * MemoryLayout<T>.stride
        let base = starts[rank]
        for element in 0..<mine {
            var sum = received[element].float64
            for source in 1..<p { sum += received[source * mine + element].float64 }
            values[base + element] = T(float64: sum)
        }
        try values.withUnsafeMutableBufferPointer { buffer in
            try check(
                MPI_Allgatherv(
                    cmpi_in_place(), 0, cmpi_byte(), buffer.baseAddress, sendCounts, sendOffsets, T.datatype, handle),
                "MPI_Allgatherv")
        }
        bytesReceived += (n - mine) * MemoryLayout<T>.stride
    }

    /// Runs `validate` (this rank's checks before a collective step), then tells every rank
    /// in one small allgather whether any rank failed, whether all passed the same `shape`,
    /// and the sum of their `samples`, which it returns. A failure or a mismatch throws on
    /// every rank, so no rank is left waiting in the collective that would have followed:
    /// the failing rank rethrows its own error, the others throw `MPIError.ranksDisagree`.
    func collectively(_ name: String, shape: [Int], samples: Int = 0, _ validate: () throws -> Void) throws -> Int {
        var failure: (any Error)?
        do { try validate() } catch { failure = error }
        // A fixed width on every rank, whatever the shape's length: MPI needs equal counts.
        let local: [Int64] = [failure == nil ? 0 : 1, Int64(shape.count), Self.digest(shape), Int64(samples)]
        let width = local.count
        let all = try allgather(integers: local)
        let reports = (0..<size).map { Array(all[($0 * width)..<(($0 + 1) * width)]) }
        if let failure { throw failure }
        let failing = reports.indices.filter { reports[$0][0] != 0 }
        if !failing.isEmpty {
            throw MPIError.ranksDisagree(name: name, reason: "rank(s) \(failing) failed before the collective")
        }
        if let other = reports.firstIndex(where: { $0[1...2] != local[1...2] }) {
            throw MPIError.ranksDisagree(
                name: name, reason: "rank \(rank) passed the shape \(shape), rank \(other) a different one")
        }
        return Int(reports.reduce(0) { $0 + $1[3] })
    }

    /// FNV-1a over the values: the same on every rank (Swift's `Hasher` is seeded per process).
    static func digest(_ values: [Int]) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for value in values {
            for byte in 0..<8 {
                hash ^= UInt64(truncatingIfNeeded: value >> (8 * byte)) & 0xff
                hash &*= 0x100_0000_01b3
            }
        }
        return Int64(bitPattern: hash)
    }
}
