import COpenBLAS
import Foundation
import NaturalGradientTestSupport
import NaturalGradient

/// How each operation is timed.
struct Settings {
    var warmup: Int
    var repetitions: Int
    /// Untimed and timed runs of the solver rows (each run takes up to a second or two).
    var solverWarmup = 1
    var solverRepetitions = 7
    /// Input copies the runs rotate between, so repeats do not all find U in the cache.
    var copies = 2
    /// λ of the implicit product.
    var damping: Float = 1e-3
    /// The largest relative difference between contestants' results that passes the check.
    var tolerance = 1e-4
    /// Seconds of timed runs a slow contestant gets (at least 3 runs) in the sweep.
    var budget = 2.0
}

/// The ceilings measured in the same run (not contestants): OpenBLAS SGEMM and DGEMM of the
/// whole `Uᵀ U` and CLBlast SGEMM (the best is the compute roof), each SGEMV pass, a
/// single-threaded host copy and a device buffer copy (the best streaming rate is the
/// bandwidth roof). `scale` 1 is the full size; the tiny suite passes a small one.
func measureHostCeilings(context: Context, settings: Settings, tiny: Bool = false) throws -> [Ceiling] {
    var ceilings: [Ceiling] = []
    let quick = Settings(warmup: min(settings.warmup, 1), repetitions: min(settings.repetitions, 5))
    do {
        let (m, p) = tiny ? (64, 128) : (1024, 4096)
        var generator = SplitMix64(seed: 0xCE11)
        let hosts = (0..<settings.copies).map { _ in generator.symmetricFloats(count: m * p) }
        var c = [Float](repeating: 0, count: p * p)
        let timing = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
            try hosts[run % hosts.count].withBase { u in
                try c.withMutableBase { c in OpenBLAS.gemm(u, rows: m, dimension: p, alpha: 1 / Float(m), into: c) }
            }
        }
        ceilings.append(
            Ceiling(
                name: "cblas_sgemm UᵀU (full matrix)", rows: m, dimension: p, unit: "GFLOP/s",
                work: 2 * Double(m) * Double(p) * Double(p), timing: timing, kind: .flops, element: "float"))
        let doubles = hosts.map { $0.map(Double.init) }
        let (dm, dp) = tiny ? (64, 128) : (1024, 2048)
        var cd = [Double](repeating: 0, count: dp * dp)
        let dgemm = try measure(warmup: quick.warmup, repetitions: quick.repetitions) { run in
            doubles[run % doubles.count].withUnsafeBufferPointer { u in
                cd.withUnsafeMutableBufferPointer { c in
                    cblas_dgemm(
                        CblasRowMajor, CblasTrans, CblasNoTrans, blasint(dp), blasint(dp), blasint(dm), 1, u.baseAddress!,
                        blasint(dp), u.baseAddress!, blasint(dp), 0, c.baseAddress!, blasint(dp))
                }
            }
        }
        ceilings.append(
            Ceiling(
                name: "cblas_dgemm UᵀU (full matrix)", rows: dm, dimension: dp, unit: "GFLOP/s",
                work: 2 * Double(dm) * Double(dp) * Double(dp), timing: dgemm, kind: .flops, element: "double"))
        // CLBlast SGEMM on the device, n x n x n.
        let n = tiny ? 64 : 1024
        let a = try Buffer<Float>(context: context, copying: Array(hosts[0].prefix(n * n)))
        let cBuffer = try Buffer<Float>(context: context, count: n * n)
        let clblast = try measure(warmup: quick.warmup, repetitions: quick.repetitions) { _ in
            try context.withQueue { queue in
                try checkCLBlast(
                    Float.clGemm(
                        m: n, n: n, k: n, a.unsafeMemoryHandle, aOffset: 0, a.unsafeMemoryHandle, bOffset: 0,
                        cBuffer.unsafeMemoryHandle, cOffset: 0, queue), "CLBlastSgemm")
            }
            try context.finish()
        }
        ceilings.append(
            Ceiling(
                name: "CLBlastSgemm n x n x n (device)", rows: n, dimension: n, unit: "GFLOP/s",
                work: 2 * Double(n) * Double(n) * Double(n), timing: clblast, kind: .flops, element: "float"))
    }
    do {
        let (m, p) = tiny ? (64, 1024) : (1024, 65536)
        var generator = SplitMix64(seed: 0xCE12)
        let hosts = (0..<settings.copies).map { _ in generator.symmetricFloats(count: m * p) }
        let x = generator.symmetricFloats(count: p)
        var t = generator.symmetricFloats(count: m)
        var y = [Float](repeating: 0, count: p)
        var copy = [Float](repeating: 0, count: m * p)
        let bytes = Double(m) * Double(p) * 4
        let noTrans = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
            try hosts[run % hosts.count].withBase { u in
                try x.withBase { x in
                    try t.withMutableBase { t in
                        OpenBLAS.gemv(u, rows: m, dimension: p, transposed: false, x: x, into: t)
                    }
                }
            }
        }
        let trans = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
            try hosts[run % hosts.count].withBase { u in
                try t.withBase { t in
                    try y.withMutableBase { y in
                        OpenBLAS.gemv(u, rows: m, dimension: p, transposed: true, x: t, into: y)
                    }
                }
            }
        }
        let copying = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
            try hosts[run % hosts.count].withBase { u in
                try copy.withMutableBase { destination in destination.update(from: u, count: m * p) }
            }
        }
        let source = try Buffer<Float>(context: context, copying: hosts[0])
        let destination = try Buffer<Float>(context: context, count: m * p)
        let deviceCopy = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { _ in
            try destination.copy(from: source)
            try context.finish()
        }
        ceilings += [
            Ceiling(
                name: "cblas_sgemv U x (one pass)", rows: m, dimension: p, unit: "GB/s", work: bytes, timing: noTrans,
                kind: .bandwidth, element: "float"),
            Ceiling(
                name: "cblas_sgemv Uᵀ t (one pass)", rows: m, dimension: p, unit: "GB/s", work: bytes, timing: trans,
                kind: .bandwidth, element: "float"),
            Ceiling(
                name: "memcpy of U, 1 thread (bytes read + written)", rows: m, dimension: p, unit: "GB/s",
                work: 2 * bytes, timing: copying, kind: .bandwidth, element: "float"),
            Ceiling(
                name: "device copy of U, clEnqueueCopyBuffer (bytes read + written)", rows: m, dimension: p,
                unit: "GB/s", work: 2 * bytes, timing: deviceCopy, kind: .bandwidth, element: "float"),
        ]
    }
    return ceilings
}

/// An array handed to a C routine that needs elements (every input here has some).
struct EmptyArrayError: Error, CustomStringConvertible {
    var description: String { "an input array is empty" }
}

extension Array where Element == Float {
    func withBase<Result>(_ body: (UnsafePointer<Float>) throws -> Result) throws -> Result {
        try withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { throw EmptyArrayError() }
            return try body(base)
        }
    }

    mutating func withMutableBase<Result>(_ body: (UnsafeMutablePointer<Float>) throws -> Result) throws -> Result {
        try withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { throw EmptyArrayError() }
            return try body(base)
        }
    }
}
