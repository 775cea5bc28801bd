// ngrad-mpi-check: the distributed checks, run under mpirun by scripts/test-mpi.sh.
//
//   mpirun -np 3 ngrad-mpi-check                  every check; "N passed, M failed" on rank 0
//   mpirun -np 2 ngrad-mpi-check --fail-on-rank R rank R passes a bad factor: the job must end
//                                                 with its message (MPI_Abort), not hang
//   mpirun -np 2 ngrad-mpi-check --kill-rank R    rank R dies without MPI_Finalize
//   mpirun -np 2 ngrad-mpi-check --bench          α-β constants and a K-FAC step (Benchmarks/NOTES.md)
import Foundation
import NaturalGradient
import NaturalGradientDistributed
import OpenCLHost
import NaturalGradientTestSupport

let arguments = CommandLine.arguments
func option(_ name: String) -> Int? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return Int(arguments[index + 1])
}

let communicator: Communicator
do {
    communicator = try Communicator.world()
} catch {
    FileHandle.standardError.write(Data("ngrad-mpi-check: \(error)\n".utf8))
    exit(2)
}

let runner = CheckRunner(communicator: communicator)
communicator.abortingOnError {
    let context = try Context(selector: DeviceSelector.resolve(explicit: nil, environment: TestDevice.environment()))
    if let killed = option("--kill-rank") {
        try communicator.barrier()
        if communicator.rank == killed { kill(getpid(), SIGKILL) }
        try communicator.barrier() // the survivors wait here for the dead rank
    }
    if let failing = option("--fail-on-rank") {
        // A NaN weight on one rank: its factor throws before the collective it should join.
        let data = GlobalData<Float>(rows: 13, dimension: 33, seed: 5, rank: communicator.rank, size: communicator.size)
        let weights = communicator.rank == failing ? [Float](repeating: .nan, count: data.share.count) : nil
        let factor = try CurvatureFactor(
            context: context, matrix: data.localRows(data.matrix, width: 33), rows: data.share.count, dimension: 33,
            samples: data.share.count, weights: weights)
        let curvature = DistributedCurvature(
            try DenseCurvature<Float>(context: context, dimension: 33), communicator: communicator)
        try curvature.accumulate(factor, alpha: nil, beta: 0)
        try communicator.barrier()
    }
    if arguments.contains("--bench") {
        try DistributedBenchmark(communicator: communicator, context: context).run()
        try Communicator.finalize()
        exit(0)
    }
    try runner.checkErrors()
    try runner.checkCollectives(Float.self)
    try runner.checkAccumulation(Float.self, context: context)
    try runner.checkKFAC(Float.self, context: context)
    try runner.checkImplicit(Float.self, context: context)
    try runner.checkOptimizer(Float.self, context: context)
    try runner.checkKFACOptimizer(Float.self, context: context, gradientWorkers: .all)
    try runner.checkKFACOptimizer(Float.self, context: context, gradientWorkers: .owners)
    if context.device.supportsFloat64 {
        try runner.checkCollectives(Double.self)
        try runner.checkAccumulation(Double.self, context: context)
        try runner.checkKFAC(Double.self, context: context)
        try runner.checkImplicit(Double.self, context: context)
        try runner.checkOptimizer(Double.self, context: context)
        try runner.checkKFACOptimizer(Double.self, context: context, gradientWorkers: .all)
        try runner.checkKFACOptimizer(Double.self, context: context, gradientWorkers: .owners)
    } else if communicator.rank == 0 {
        print("float64 checks skipped: \(context.device.name) has no cl_khr_fp64")
    }
}
if communicator.rank == 0 { print("\(runner.passed) passed, \(runner.failed) failed (\(communicator.size) ranks)") }
communicator.abortingOnError { try Communicator.finalize() }
exit(runner.failed == 0 ? 0 : 1)
