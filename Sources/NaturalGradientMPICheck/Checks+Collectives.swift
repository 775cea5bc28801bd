import NaturalGradientDistributed
import OpenCLHost
import NaturalGradientTestSupport

extension CheckRunner {
    /// The communicator's collectives for T against what every rank can compute locally.
    func checkCollectives<T: CommunicableScalar>(_: T.Type) throws {
        let p = communicator.size
        let rank = communicator.rank
        let label = "\(T.self)"
        // Sizes below, at and past the rank count, so some ranks own empty chunks.
        for n in [1, 2, 7, 33, 1000] {
            let contributions: [[T]] = (0..<p).map { randomValues(n, seed: UInt64(100 + 7 * $0 + n)) }
            var values = contributions[rank]
            try communicator.sumInRankOrder(&values)
            let expected = (0..<n).map { i in
                T(float64: (1..<p).reduce(contributions[0][i].float64) { $0 + contributions[$1][i].float64 })
            }
            try expect(
                "sumInRankOrder \(label) n=\(n) equals the rank-order float64 sum exactly",
                zip(values, expected).allSatisfy { $0.float64.bitPattern == $1.float64.bitPattern })
            try expectIdentical("sumInRankOrder \(label) n=\(n)", values)

            let exact = (0..<n).map { i in (0..<p).reduce(0.0) { $0 + contributions[$1][i].float64 } }
            var reduced = contributions[rank]
            try communicator.allreduce(&reduced)
            try expectClose("allreduce \(label) n=\(n)", reduced, exact, bound: tolerance(for: T.self))

            let pending = try communicator.startAllreduce(contributions[rank])
            try expectClose("startAllreduce/wait \(label) n=\(n)", try pending.wait(), exact, bound: tolerance(for: T.self))

            var broadcast = contributions[rank]
            try communicator.broadcast(&broadcast, root: p - 1)
            try expect("broadcast \(label) n=\(n) from rank \(p - 1)", broadcast == contributions[p - 1])

            let gathered = try communicator.allgather(contributions[rank])
            try expect("allgather \(label) n=\(n) in rank order", gathered == contributions.flatMap { $0 })

            // Rank r passes r + n values.
            let counts = (0..<p).map { $0 + n }
            let variable: [[T]] = (0..<p).map { randomValues(counts[$0], seed: UInt64(900 + $0)) }
            let gatheredVariable = try communicator.allgather(variable[rank], counts: counts)
            try expect("allgather \(label) with counts \(counts)", gatheredVariable == variable.flatMap { $0 })
        }

        // The gradient average: Σ N_r g_r / Σ N_r.
        let dimension = 33
        let samples = (0..<p).map { 2 * $0 + 1 }
        let gradients: [[T]] = (0..<p).map { randomValues(dimension, seed: UInt64(500 + $0)) }
        let average = try communicator.averageGradient(gradients[rank], samples: samples[rank])
        let total = Double(samples.reduce(0, +))
        let reference = (0..<dimension).map { i in
            (0..<p).reduce(0.0) { $0 + Double(samples[$1]) * gradients[$1][i].float64 } / total
        }
        try expectClose("averageGradient \(label)", average, reference, bound: tolerance(for: T.self))
        try expectIdentical("averageGradient \(label)", average)
    }

    /// Error paths: an argument MPI or the communicator rejects, on every rank alike.
    func checkErrors() throws {
        var values: [Double] = [1, 2, 3]
        do {
            try communicator.broadcast(&values, root: communicator.size)
            try expect("broadcast to a rank out of range throws", false, "it returned")
        } catch let error as MPIError {
            try expect(
                "broadcast to a rank out of range throws invalidArgument(root)",
                error == .invalidArgument(name: "root", reason: "\(communicator.size) is not a rank of 0..<\(communicator.size)"),
                "\(error)")
        }
        do {
            _ = try communicator.allgather([1.0], counts: [1])
            try expect("allgather with too few counts throws", communicator.size == 1, "it returned")
        } catch let error as MPIError {
            try expect(
                "allgather with too few counts throws invalidArgument(counts)", "\(error)".contains("'counts'"), "\(error)")
        }
        // An error inside MPI comes back as a Swift error naming the call and MPI's message
        // (MPI_ERRORS_RETURN): the last rank (a leaf of every broadcast tree from rank 0, so
        // no rank waits on it) receives into a buffer one value too short.
        if communicator.size > 1 {
            let last = communicator.rank == communicator.size - 1
            var received = [Double](repeating: 0, count: last ? 2 : 3)
            if communicator.rank == 0 { received = [1, 2, 3] }
            var failure = ""
            do { try communicator.broadcast(&received, root: 0) } catch { failure = "\(error)" }
            try expect(
                "a truncated broadcast throws MPIError.callFailed naming MPI_Bcast and MPI's message on that rank only",
                last ? failure.hasPrefix("MPI_Bcast failed with error") && failure.contains("truncat") : failure.isEmpty,
                failure)
        }
        // A rank left in a collective by an error would hang here (the script's timeout fails it).
        try communicator.barrier()
    }
}
