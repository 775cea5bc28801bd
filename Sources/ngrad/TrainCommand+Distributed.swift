import ArgumentParser
import Foundation
import NaturalGradient
import NaturalGradientExamples

#if NGRAD_MPI
    import NaturalGradientDistributed
#endif

extension TrainCommand {
    /// `--distributed` needs an `ngrad` built with MPI, and methods that train data-parallel.
    func validateDistributed() throws {
        guard distributed else { return }
        #if !NGRAD_MPI
            throw ValidationError(
                "--distributed needs ngrad built with MPI: install Open MPI (libopenmpi-dev and openmpi-bin, "
                    + "scripts/setup-debian.sh) and build without NGRAD_WITHOUT_MPI=1")
        #else
            let refused = try selectedMethods().filter { !TrainMethod.dataParallel.contains($0) }
            guard refused.isEmpty else {
                throw ValidationError(
                    "--distributed trains \(TrainMethod.dataParallel.map(\.rawValue).joined(separator: ", ")); "
                        + "not \(refused.map(\.rawValue).joined(separator: ", ")) (pass --methods)")
            }
        #endif
    }
}

extension TrainCommand {
    /// "communication: …" for the table's footer: the bytes each rank received per training
    /// step over all runs (one sum over the ranks, so every rank must call it).
    static func trafficLine(_ parallel: any DataParallel, runs: [TrainRun]) throws -> String {
        let steps = max(runs.reduce(0) { $0 + $1.records.count - 1 }, 1)
        var slots = [Double](repeating: 0, count: parallel.size)
        // The timed steps' bytes only: the untimed warm-up's collectives are not a step's.
        slots[parallel.rank] = Double(runs.reduce(0) { $0 + $1.bytesReceivedInTimedSteps })
        let received = try parallel.sum(slots)
        let perStep = received.map { $0 / Double(steps) }
        let busiest = perStep.indices.max { perStep[$0] < perStep[$1] } ?? 0
        return String(
            format:
                "communication: %.0f bytes received per step by rank %d (the most), %.0f on average over the %d ranks (%d steps)",
            perStep[busiest], busiest, perStep.reduce(0, +) / Double(parallel.size), parallel.size, steps)
    }
}

#if NGRAD_MPI
    extension TrainCommand {
        /// One rank of `mpirun -np N ngrad train --distributed`: every rank trains on its share
        /// of each global batch on its own device; any error on any rank ends the whole job
        /// with `ngrad: rank r of N: <error>` (MPI_Abort with the error's exit status), so no
        /// rank is left waiting in a collective.
        func runDistributed() {
            let communicator: Communicator
            do {
                communicator = try Communicator.world()
            } catch {
                NgradMain.fail("--distributed: MPI did not start: \(error)", status: ExitStatus.failure)
            }
            do {
                let device = try Self.rankDevice(explicit: deviceOptions.device)
                try train(parallel: MPIDataParallel(communicator), device: device)
                fflush(nil)
                try Communicator.finalize()
            } catch {
                let (status, message) = ExitStatus.classify(error)
                communicator.abort(message, code: status)
            }
        }

        /// This rank's device: the one `--device` or `NGRAD_DEVICE` names (every rank the
        /// same), or, when they ask for the default or a GPU, the node's GPUs in turn by the
        /// local rank (`OMPI_COMM_WORLD_LOCAL_RANK`, MPICH's `MPI_LOCALRANKID`), else the
        /// first CPU device as in one process.
        static func rankDevice(explicit: String?) throws -> Device {
            let environment = ProcessInfo.processInfo.environment
            let selector = try DeviceSelector.resolve(explicit: explicit, environment: environment)
            let devices = try Device.all()
            let gpus = devices.filter { $0.kind == .gpu }
            let localRank = (environment["OMPI_COMM_WORLD_LOCAL_RANK"] ?? environment["MPI_LOCALRANKID"]).flatMap { Int($0) }
            switch selector {
            case .automatic, .gpu:
                if !gpus.isEmpty { return gpus[(localRank ?? 0) % gpus.count] }
            default: break
            }
            return try selector.select(from: devices)
        }
    }

    /// `DataParallel` over MPI: rank-ordered sums (bitwise-identical on every rank), K-FAC
    /// through `DistributedCurvature` and KAISA's `DistributedKroneckerSolver`.
    final class MPIDataParallel: DataParallel {
        let communicator: Communicator
        var rank: Int { communicator.rank }
        var size: Int { communicator.size }
        var bytesReceived: Int { communicator.bytesReceived }

        init(_ communicator: Communicator) { self.communicator = communicator }

        func averageGradient(_ gradient: [Float], samples: Int) throws -> [Float] {
            try communicator.averageGradient(gradient, samples: samples)
        }

        func sum(_ values: [Double]) throws -> [Double] {
            var values = values
            try communicator.sumInRankOrder(&values)
            return values
        }

        func kfacBuilder(context: Context, layers: [LayerShape]) -> CurvatureBuilder<Float> {
            let communicator = self.communicator
            let shapes = layers.map { (outputs: $0.outputs, inputs: $0.inputs) }
            return CurvatureBuilder(buildFromLayers: { statistics, samples in
                let curvature = DistributedCurvature(
                    try KroneckerCurvature<Float>(context: context, shapes: shapes), communicator: communicator)
                try curvature.accumulate(statistics, samples: samples, weights: nil, alpha: nil, beta: 0)
                return curvature
            })
        }

        /// One allgather of a 64-bit FNV-1a digest of the parameters' bits (as two exact
        /// 32-bit halves in doubles): every rank compares every rank's digest.
        func requireIdentical(_ parameters: [Float], step: Int) throws {
            guard size > 1 else { return }
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for value in parameters {
                hash ^= UInt64(value.bitPattern)
                hash &*= 0x100_0000_01b3
            }
            let digests = try communicator.allgather([Double(hash >> 32), Double(hash & 0xffff_ffff)])
            let differing = (0..<size).filter { digests[2 * $0] != digests[0] || digests[2 * $0 + 1] != digests[1] }
            guard differing.isEmpty else {
                throw CommandFailure(
                    "after step \(step) the parameters of rank(s) \(differing) differ from rank 0's (the ranks' devices compute differently?)"
                )
            }
        }
    }
#endif
