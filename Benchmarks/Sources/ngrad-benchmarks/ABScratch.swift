import Foundation
import NaturalGradientTestSupport
// The launch plans themselves, timed bare (see the comment on ImplicitProduct).
@_spi(Benchmarks) import NaturalGradient

/// Scratch: interleaved A/B of two ImplicitProduct tunings (not part of the suite).
func abImplicitProduct(context: Context, rows m: Int, dimension p: Int, a: String, b: String, rounds: Int) throws {
    let hosts = (0..<2).map { inputs(Float.self, count: m * p, seed: UInt64(0xAB00 + $0)) }
    let factors = try hosts.map {
        try CurvatureFactor(matrix: Buffer<Float>(context: context, copying: $0), rows: m, dimension: p, samples: m)
    }
    let x = try VectorBatch<Float>(context: context, vectors: [inputs(Float.self, count: p, seed: 0xAB10)])
    let y = try VectorBatch<Float>(context: context, dimension: p, count: 1)
    let defaults = CurvatureProductTunables.defaults(for: context.device, element: Float.self)
    let products = try [a, b].map { try ImplicitProduct<Float>(context: context, tunables: defaults.overriding($0)) }
    var hostT = [Float](repeating: 0, count: m)
    var hostY = [Float](repeating: 0, count: p)
    var times: [[Double]] = [[], [], []]
    let clock = ContinuousClock()
    for round in 0..<(rounds + 2) {
        for (index, product) in products.enumerated() {
            let t = try clock.measure {
                try product.apply(factors[round % 2], x, damping: 1e-3, into: y)
                try context.finish()
            }
            if round >= 2 { times[index].append(t.seconds) }
        }
        let t = clock.measure {
            hosts[round % 2].withUnsafeBufferPointer { u in
                hostT.withUnsafeMutableBufferPointer { tt in
                    hostY.withUnsafeMutableBufferPointer { yy in
                        Float.hostGemv(
                            transposed: false, rows: m, columns: p, alpha: 1, u.baseAddress!, u.baseAddress!, beta: 0,
                            tt.baseAddress!)
                        Float.hostGemv(
                            transposed: true, rows: m, columns: p, alpha: 1, u.baseAddress!, tt.baseAddress!, beta: 0,
                            yy.baseAddress!)
                    }
                }
            }
        }
        if round >= 2 { times[2].append(t.seconds) }
    }
    let medians = times.map { Timing(seconds: $0, interference: nil).median * 1e3 }
    print(
        String(
            format:
                "A %@: %.2f ms  B %@: %.2f ms  OpenBLAS 2xgemv: %.2f ms  B/A speed %.3f  A vs OpenBLAS %.2fx  B vs OpenBLAS %.2fx",
            "\(a)", medians[0], "\(b)", medians[1], medians[2], medians[0] / medians[1], medians[2] / medians[0],
            medians[2] / medians[1]))
}
