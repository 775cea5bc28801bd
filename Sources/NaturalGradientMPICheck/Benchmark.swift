import Foundation
import NaturalGradient
import NaturalGradientDistributed
import OpenCLHost
import NaturalGradientTestSupport

/// `ngrad-mpi-check --bench`: the α-β constants of `sumInRankOrder` on this machine, and the
/// phases of a small K-FAC step with their communication volume. Rank 0 prints Markdown
/// rows for Benchmarks/NOTES.md; every time is the slowest rank's median.
struct DistributedBenchmark {
    let communicator: Communicator
    let context: Context

    /// The median of `repetitions` timings of `body` (after one warm-up), the slowest rank's.
    func median(_ repetitions: Int, _ body: () throws -> Void) throws -> Double {
        try body()
        var times: [Double] = []
        for _ in 0..<repetitions {
            try communicator.barrier()
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        }
        let local = times.sorted()[times.count / 2]
        return try communicator.allgather([local]).max() ?? local
    }

    func run() throws {
        let p = communicator.size
        // α: the sum of one value; β: of 4 M float32 values (16 MiB), per wire byte.
        var one: [Float] = [1]
        let alphaTime = try median(200) { try communicator.sumInRankOrder(&one) }
        let n = 4 << 20
        var large: [Float] = randomValues(n, seed: 1)
        let largeTime = try median(5) { try communicator.sumInRankOrder(&large) }
        var plain = large
        let plainTime = try median(5) { try communicator.allreduce(&plain) }
        if communicator.rank == 0 {
            print(
                "16 MiB: sumInRankOrder \(largeTime * 1e3) ms, MPI_Allreduce \(plainTime * 1e3) ms; 1 value: \(alphaTime * 1e6) µs"
            )
        }
        let wireBytes = p > 1 ? 2 * Double(p - 1) / Double(p) * Double(n * 4) : 0
        let steps = p > 1 ? 2 * Double(p - 1) : 0
        let alpha = steps > 0 ? alphaTime / steps : 0
        let beta = wireBytes > 0 ? max(largeTime - steps * alpha, 0) / wireBytes : 0

        // A small K-FAC problem: an MLP 256-128-128-10 with biases, global batch 512, float32.
        let shapes = [(outputs: 128, inputs: 257), (outputs: 128, inputs: 129), (outputs: 10, inputs: 129)]
        let batch = 512
        let share = (communicator.rank * batch / p)..<((communicator.rank + 1) * batch / p)
        let layers = try shapes.enumerated().map { index, shape in
            KFACLayer<Float>(
                activations: try Buffer(context: context, copying: randomValues(share.count * shape.inputs, seed: UInt64(index))),
                outputGradients: try Buffer(
                    context: context, copying: randomValues(share.count * shape.outputs, seed: UInt64(10 + index))),
                inputs: shape.inputs, outputs: shape.outputs)
        }
        let curvature = DistributedCurvature(
            try KroneckerCurvature<Float>(context: context, shapes: shapes), communicator: communicator)
        let dimension = curvature.dimension
        let gradient: [Float] = randomValues(dimension, seed: 99)
        var inverse: (any CurvatureInverse<Float>)?
        let accumulate = try median(5) {
            try curvature.accumulate(layers, samples: share.count, weights: nil, alpha: nil, beta: 0)
            try context.finish()
        }
        let invert = try median(5) { inverse = try curvature.makeInverse(damping: 0.01) }
        let b = try VectorBatch<Float>(context: context, vectors: [gradient])
        let solve = try median(5) {
            _ = try inverse?.solve(b).buffer.download()
        }
        let average = try median(5) { _ = try communicator.averageGradient(gradient, samples: share.count) }

        let factorValues = curvature.base.statisticsLayout.packedCount
        let s = 4.0
        func sumBytes(_ values: Int) -> Double { p > 1 ? 2 * Double(p - 1) / Double(p) * Double(values) * s : 0 }
        // The inverses: each rank receives everything but its own layers' triangles.
        let owners = (inverse as? DistributedKroneckerSolver<Float>)?.owners ?? []
        let layerValues = shapes.map { $0.inputs * ($0.inputs + 1) / 2 + $0.outputs * ($0.outputs + 1) / 2 }
        let own = zip(owners, layerValues).filter { $0.0 == communicator.rank }.reduce(0) { $0 + $1.1 }
        let received = Double(factorValues - own) * s
        let bytes = p > 1 ? sumBytes(factorValues) + received + sumBytes(dimension + 1) + Double(32 * p) : 0
        let predicted =
            p > 1
            ? (2 * Double(p - 1) * alpha + sumBytes(factorValues) * beta) + (Double(p - 1) * alpha + received * beta)
                + (2 * Double(p - 1) * alpha + sumBytes(dimension + 1) * beta) + Double(p - 1) * alpha
            : 0
        let maxBytes = try communicator.allgather([bytes]).max() ?? bytes
        if communicator.rank == 0 {
            print(
                "| ranks | α (µs) | β (GB/s) | accumulate + sum (ms) | KAISA invert + gather (ms) | solve (ms) | gradient average (ms) | step (ms) | bytes per step per rank | predicted communication (ms) |"
            )
            func f(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
            let cells = [
                "\(p)", f(alpha * 1e6, 1), f(beta > 0 ? 1e-9 / beta : 0, 2), f(accumulate * 1e3, 2), f(invert * 1e3, 2),
                f(solve * 1e3, 2), f(average * 1e3, 3), f((accumulate + invert + solve + average) * 1e3, 2), f(maxBytes, 0),
                f(predicted * 1e3, 3),
            ]
            print("| " + cells.joined(separator: " | ") + " |")
            print("P = \(dimension), factor triangles \(factorValues) values, owners \(owners)")
        }
    }
}
