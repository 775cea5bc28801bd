import Foundation
import NaturalGradientDistributed
import OpenCLHost
import NaturalGradientTestSupport

/// Records checks; a check passes only if it passed on every rank (agreed with one
/// allgather each), so every rank counts the same and rank 0's closing line speaks for all.
final class CheckRunner {
    let communicator: Communicator
    private(set) var passed = 0
    private(set) var failed = 0

    init(communicator: Communicator) {
        self.communicator = communicator
    }

    /// Records `name` as passed where `condition` holds on every rank; `detail` is printed
    /// by each rank where it does not.
    func expect(_ name: String, _ condition: Bool, _ detail: @autoclosure () -> String = "") throws {
        if !condition { print("rank \(communicator.rank): FAIL \(name): \(detail())") }
        let flags = try communicator.allgather([condition ? 0.0 : 1.0])
        if flags.allSatisfy({ $0 == 0 }) {
            passed += 1
        } else {
            failed += 1
            if communicator.rank == 0 { print("FAIL \(name) (on ranks \(flags.indices.filter { flags[$0] != 0 }))") }
        }
    }

    /// `relativeError(values, reference) < bound`, with the error in the message.
    func expectClose<T: DeviceScalar>(_ name: String, _ values: [T], _ reference: [Double], bound: Double) throws {
        let error = values.count == reference.count ? relativeError(values, reference) : .infinity
        if communicator.rank == 0, getenv("NGRAD_MPI_CHECK_VERBOSE") != nil { print("\(name): \(error)") }
        try expect(name, error < bound, "relative error \(error), bound \(bound)")
    }

    /// Whether `values` are bitwise the same on every rank (float32 widens to float64 exactly,
    /// so the float64 bit patterns compare the originals).
    func expectIdentical<T: DeviceScalar>(_ name: String, _ values: [T]) throws {
        let local = values.map { $0.float64 }
        let all = try communicator.allgather(local)
        let same = (0..<communicator.size).allSatisfy { rank in
            zip(all[(rank * local.count)..<((rank + 1) * local.count)], local).allSatisfy {
                $0.bitPattern == $1.bitPattern
            }
        }
        try expect(name + " (bitwise identical on every rank)", same, "differs from another rank")
    }
}
