import Foundation
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
}

/// Dense Fisher accumulation `F = (1/N) Uᵀ U` (N = M), U row-major M x P: ours
/// (`FisherAccumulation`, full symmetric output) vs OpenBLAS `cblas_ssyrk` vs CLBlast
/// `CLBlastSsyrk` (upper triangle), all counted as M·P·(P+1) flops.
func benchmarkAccumulation(context: Context, rows m: Int, dimension p: Int, settings: Settings) throws -> CaseResult {
    var generator = InputGenerator(seed: UInt64(0xF15E_0000 + m * 65_537 + p))
    let hosts = (0..<settings.copies).map { _ in generator.uniform(count: m * p) }
    let factors = try hosts.map {
        try CurvatureFactor(matrix: Buffer(context: context, copying: $0), rows: m, dimension: p, samples: m)
    }
    let alpha = 1 / Float(m)
    let copies = settings.copies

    let accumulation = try FisherAccumulation<Float>(context: context)
    let ours = try Buffer<Float>(context: context, count: p * p)
    let clblast = CLBlast(context: context)
    let clblastOutput = try Buffer<Float>(context: context, count: p * p)
    try clblastOutput.fill(0)  // CLBlast leaves the lower triangle alone
    try context.finish()
    var host = [Float](repeating: 0, count: p * p)

    // One run of each on copy 0, compared before anything is timed.
    try accumulation.accumulate(factors[0], into: ours)
    try clblast.syrk(factors[0].matrix, rows: m, dimension: p, alpha: alpha, into: clblastOutput)
    try context.finish()
    try hosts[0].withBase { u in
        try host.withMutableBase { c in OpenBLAS.syrk(u, rows: m, dimension: p, alpha: alpha, into: c) }
    }
    let oursResult = try ours.download(0..<(p * p))
    let clblastResult = try clblastOutput.download(0..<(p * p))
    let entries = sampledUpperEntries(p)
    let reference = referenceAccumulation(hosts[0], rows: m, dimension: p, entries: entries)
    let tolerance = settings.tolerance
    let checks = [
        Check(
            name: "ours vs OpenBLAS (upper triangle)",
            value: relativeDifference(oursResult, host, over: upperTriangle(p)), tolerance: tolerance),
        Check(
            name: "CLBlast vs OpenBLAS (upper triangle)",
            value: relativeDifference(clblastResult, host, over: upperTriangle(p)), tolerance: tolerance),
        Check(
            name: "ours vs CLBlast (upper triangle)",
            value: relativeDifference(oursResult, clblastResult, over: upperTriangle(p)), tolerance: tolerance),
        Check(
            name: "ours vs float64 (\(entries.count) entries)",
            value: relativeDifference(oursResult, at: entries, from: reference), tolerance: tolerance),
        Check(
            name: "OpenBLAS vs float64 (\(entries.count) entries)",
            value: relativeDifference(host, at: entries, from: reference), tolerance: tolerance),
        Check(
            name: "CLBlast vs float64 (\(entries.count) entries)",
            value: relativeDifference(clblastResult, at: entries, from: reference), tolerance: tolerance),
        Check(
            name: "ours symmetric (largest |F_ij - F_ji|)", value: Double(asymmetry(oursResult, p)), tolerance: 0),
    ]

    let oursTiming = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
        try accumulation.accumulate(factors[run % copies], into: ours)
        try context.finish()
    }
    let openBLASTiming = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
        try hosts[run % copies].withBase { u in
            try host.withMutableBase { c in OpenBLAS.syrk(u, rows: m, dimension: p, alpha: alpha, into: c) }
        }
    }
    let clblastTiming = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
        try clblast.syrk(factors[run % copies].matrix, rows: m, dimension: p, alpha: alpha, into: clblastOutput)
        try context.finish()
    }

    let flops = Double(m) * Double(p) * Double(p + 1)
    return CaseResult(
        operation: .accumulation, rows: m, dimension: p, work: flops,
        contestants: [
            ContestantResult(.ours, routine: "FisherAccumulation.accumulate", timing: oursTiming, work: flops),
            ContestantResult(.openBLAS, routine: "cblas_ssyrk", timing: openBLASTiming, work: flops),
            ContestantResult(.clblast, routine: "CLBlastSsyrk", timing: clblastTiming, work: flops),
        ],
        checks: checks)
}

/// The implicit Fisher-vector product `y = (1/N) Uᵀ (U x) + λx` (N = M) for one vector:
/// ours (`ImplicitProduct`, one fused pass over U) vs two SGEMV from OpenBLAS and from
/// CLBlast, all counted as the minimum traffic M·P·4 bytes (U read once).
func benchmarkImplicitProduct(context: Context, rows m: Int, dimension p: Int, settings: Settings) throws
    -> CaseResult
{
    var generator = InputGenerator(seed: UInt64(0x1A9D_0000 + m * 65_537 + p))
    let hosts = (0..<settings.copies).map { _ in generator.uniform(count: m * p) }
    let factors = try hosts.map {
        try CurvatureFactor(matrix: Buffer(context: context, copying: $0), rows: m, dimension: p, samples: m)
    }
    let x = generator.uniform(count: p)
    let alpha = 1 / Float(m)
    let damping = settings.damping
    let copies = settings.copies

    let product = try ImplicitProduct<Float>(context: context)
    let xBatch = try VectorBatch<Float>(context: context, vectors: [x])
    let ours = try VectorBatch<Float>(context: context, dimension: p, count: 1)
    let clblast = CLBlast(context: context)
    let clblastScratch = try Buffer<Float>(context: context, count: m)
    let clblastOutput = try Buffer<Float>(context: context, count: p)
    try clblastScratch.fill(0)
    try context.finish()
    var hostScratch = [Float](repeating: 0, count: m)
    var host = [Float](repeating: 0, count: p)

    func runOpenBLAS(_ copy: Int) throws {
        try hosts[copy].withBase { u in
            try x.withBase { x in
                try hostScratch.withMutableBase { t in
                    try host.withMutableBase { y in
                        OpenBLAS.implicitProduct(
                            u, rows: m, dimension: p, alpha: alpha, damping: damping, x: x, scratch: t, into: y)
                    }
                }
            }
        }
    }
    func runCLBlast(_ copy: Int) throws {
        try clblast.implicitProduct(
            factors[copy].matrix, rows: m, dimension: p, alpha: alpha, damping: damping, x: xBatch.buffer,
            scratch: clblastScratch, into: clblastOutput)
    }

    // One run of each on copy 0, compared before anything is timed.
    try product.apply(factors[0], xBatch, damping: damping, into: ours)
    try runCLBlast(0)
    try context.finish()
    try runOpenBLAS(0)
    let oursResult = try ours.buffer.download(0..<p)
    let clblastResult = try clblastOutput.download(0..<p)
    let reference = referenceImplicitProduct(hosts[0], rows: m, dimension: p, x: x, damping: damping)
    let all = Array(0..<p)
    let tolerance = settings.tolerance
    let checks = [
        Check(name: "ours vs OpenBLAS", value: relativeDifference(oursResult, host, over: all), tolerance: tolerance),
        Check(
            name: "CLBlast vs OpenBLAS", value: relativeDifference(clblastResult, host, over: all),
            tolerance: tolerance),
        Check(
            name: "ours vs CLBlast", value: relativeDifference(oursResult, clblastResult, over: all),
            tolerance: tolerance),
        Check(
            name: "ours vs float64", value: relativeDifference(oursResult, at: all, from: reference),
            tolerance: tolerance),
        Check(
            name: "OpenBLAS vs float64", value: relativeDifference(host, at: all, from: reference),
            tolerance: tolerance),
        Check(
            name: "CLBlast vs float64", value: relativeDifference(clblastResult, at: all, from: reference),
            tolerance: tolerance),
    ]

    let oursTiming = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
        try product.apply(factors[run % copies], xBatch, damping: damping, into: ours)
        try context.finish()
    }
    let openBLASTiming = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
        try runOpenBLAS(run % copies)
    }
    let clblastTiming = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
        try runCLBlast(run % copies)
        try context.finish()
    }

    let bytes = Double(m) * Double(p) * Double(MemoryLayout<Float>.size)
    return CaseResult(
        operation: .implicitProduct, rows: m, dimension: p, work: bytes,
        contestants: [
            ContestantResult(.ours, routine: "ImplicitProduct.apply", timing: oursTiming, work: bytes),
            ContestantResult(.openBLAS, routine: "cblas_sgemv x2 + cblas_scopy", timing: openBLASTiming, work: bytes),
            ContestantResult(
                .clblast, routine: "CLBlastSgemv x2 + clEnqueueCopyBuffer", timing: clblastTiming, work: bytes),
        ],
        checks: checks)
}

/// Host ceilings measured in the same run (OpenBLAS alone, not contestants): SGEMM of the
/// whole `Uᵀ U` at the accumulation target, each SGEMV alone and a single-threaded copy of U
/// at the implicit-product target, so the contestants' rates can be read against what this
/// machine does right now.
func measureHostCeilings(settings: Settings) throws -> [Ceiling] {
    var ceilings: [Ceiling] = []
    do {
        let (m, p) = (1024, 4096)
        var generator = InputGenerator(seed: 0xCE11)
        let hosts = (0..<settings.copies).map { _ in generator.uniform(count: m * p) }
        var c = [Float](repeating: 0, count: p * p)
        let timing = try measure(warmup: settings.warmup, repetitions: settings.repetitions) { run in
            try hosts[run % hosts.count].withBase { u in
                try c.withMutableBase { c in OpenBLAS.gemm(u, rows: m, dimension: p, alpha: 1 / Float(m), into: c) }
            }
        }
        ceilings.append(
            Ceiling(
                name: "cblas_sgemm UᵀU (full matrix)", rows: m, dimension: p, unit: "GFLOP/s",
                work: 2 * Double(m) * Double(p) * Double(p), timing: timing))
    }
    do {
        let (m, p) = (1024, 65536)
        var generator = InputGenerator(seed: 0xCE12)
        let hosts = (0..<settings.copies).map { _ in generator.uniform(count: m * p) }
        let x = generator.uniform(count: p)
        var t = generator.uniform(count: m)
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
        ceilings += [
            Ceiling(
                name: "cblas_sgemv U x (one pass)", rows: m, dimension: p, unit: "GB/s", work: bytes, timing: noTrans),
            Ceiling(
                name: "cblas_sgemv Uᵀ t (one pass)", rows: m, dimension: p, unit: "GB/s", work: bytes, timing: trans),
            Ceiling(
                name: "memcpy of U, 1 thread (bytes read)", rows: m, dimension: p, unit: "GB/s", work: bytes,
                timing: copying),
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
