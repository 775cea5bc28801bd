import COpenBLAS
import Foundation
import NaturalGradientTestSupport
// The launch plans themselves, timed bare (see the comment on ImplicitProduct).
@_spi(Benchmarks) import NaturalGradient

// The size sweep: every operation in Float and Double (where the peer has the routine), at
// small, medium and large sizes, through one harness. A contestant either runs on the
// device (enqueue only; the harness brackets each run with profiling markers, then waits)
// or on the host.

/// One contestant of a sweep case.
struct Contender {
    let contestant: Contestant
    let label: String?
    let routine: String
    /// Device contestants enqueue and return; the harness waits. Host ones run to completion.
    let onDevice: Bool
    let run: (Int) throws -> Void

    static func device(
        _ contestant: Contestant, _ routine: String, label: String? = nil, _ run: @escaping (Int) throws -> Void
    )
        -> Contender
    {
        Contender(contestant: contestant, label: label, routine: routine, onDevice: true, run: run)
    }
    static func host(
        _ contestant: Contestant, _ routine: String, label: String? = nil, _ run: @escaping (Int) throws -> Void
    )
        -> Contender
    {
        Contender(contestant: contestant, label: label, routine: routine, onDevice: false, run: run)
    }
}

/// Times `contender`: one untimed run to size the repetitions, `warmup` more, then timed
/// runs. Slow contestants get fewer timed runs (at least 3, and about `settings.budget`
/// seconds in all), so the large sizes stay affordable; the JSON lists every run.
func time(_ contender: Contender, context: Context, settings: Settings) throws -> (Timing, Double?) {
    let clock = ContinuousClock()
    let first = try clock.measure {
        try contender.run(0)
        if contender.onDevice { try context.finish() }
    }.seconds
    let repetitions = max(min(3, settings.repetitions), min(settings.repetitions, Int(settings.budget / max(first, 1e-6))))
    let warmup = first > 0.5 ? 0 : settings.warmup
    var deviceSeconds: [Double] = []
    let timing = try measure(warmup: warmup, repetitions: repetitions) { run in
        if contender.onDevice {
            let before = try DeviceMarker(context)
            try contender.run(run + 1)
            let after = try DeviceMarker(context)
            try context.finish()
            if run >= warmup, let span = DeviceMarker.span(from: before, to: after) { deviceSeconds.append(span) }
            before.release()
            after.release()
        } else {
            try contender.run(run + 1)
        }
    }
    let device = deviceSeconds.isEmpty ? nil : Timing(seconds: deviceSeconds, interference: nil).median
    return (timing, device)
}

/// Runs every contender of one case and builds its result.
func sweepCase(
    _ operation: Operation, element: String, rows: Int, dimension: Int, shape: String? = nil, flops: Double,
    bytes: Double, work: Double, checks: [Check], contenders: [Contender], context: Context, settings: Settings,
    notes: [String] = []
) throws -> CaseResult {
    var results: [ContestantResult] = []
    for contender in contenders {
        let (timing, device) = try time(contender, context: context, settings: settings)
        var result = ContestantResult(
            contender.contestant, label: contender.label, routine: contender.routine, timing: timing, work: work)
        result.deviceMedianSeconds = device
        results.append(result)
    }
    var result = CaseResult(
        operation: operation, rows: rows, dimension: dimension, work: work, contestants: results, checks: checks,
        notes: notes)
    result.element = element
    result.shape = shape
    result.flops = flops
    result.bytes = bytes
    result.residentBytes = peakResidentBytes()
    return result
}

func tolerance<Element: PeerScalar>(_: Element.Type) -> Double { Element.self == Double.self ? 1e-12 : 1e-4 }

/// `count` inputs uniform in [-1, 1), rounded to Element, with their float64 values.
func inputs<Element: PeerScalar>(_: Element.Type, count: Int, seed: UInt64) -> [Element] {
    var generator = SplitMix64(seed: seed)
    return Element.narrowed(generator.symmetricFloats(count: count).map { Double($0) })
}

// MARK: - Accumulation (dense), both element types

func sweepAccumulation<Element: PeerScalar>(
    _: Element.Type, context: Context, rows m: Int, dimension p: Int, settings: Settings
) throws -> CaseResult {
    let hosts = (0..<settings.copies).map { inputs(Element.self, count: m * p, seed: UInt64(0xACC0_0000 + m * 65_537 + p + $0)) }
    let buffers = try hosts.map { try Buffer<Element>(context: context, copying: $0) }
    let factors = try buffers.map { try CurvatureFactor(matrix: $0, rows: m, dimension: p, samples: m) }
    let alpha = Element(float64: 1 / Double(m))
    let accumulation = try FisherAccumulation<Element>(context: context)
    let ours = try Buffer<Element>(context: context, count: p * p)
    let peer = try Buffer<Element>(context: context, count: p * p)
    try peer.fill(0)
    var host = [Element](repeating: 0, count: p * p)
    let copies = settings.copies

    try ours.fill(Element(float64: .nan))
    try accumulation.accumulate(factors[0], into: ours)
    try context.withQueue { queue in
        try checkCLBlast(
            Element.clSyrk(
                rows: m, n: p, alpha: alpha, buffers[0].unsafeMemoryHandle, offset: 0, lda: p, peer.unsafeMemoryHandle,
                cOffset: 0, ldc: p, queue), "CLBlast syrk")
    }
    hosts[0].withUnsafeBufferPointer { u in
        host.withUnsafeMutableBufferPointer { c in
            Element.hostSyrk(u.baseAddress!, rows: m, n: p, lda: p, alpha: alpha, c.baseAddress!, ldc: p)
        }
    }
    let oursValues = Element.widened(try ours.download())
    let peerValues = Element.widened(try peer.download())
    let hostValues = Element.widened(host)
    let entries = sampledUpperEntries(p)
    let reference = referenceAccumulation(hosts[0], rows: m, dim: p, samples: m, entries: entries)
    let upper = Array(upperTriangle(p))
    let limit = tolerance(Element.self) * (Element.self == Double.self ? 1 : 1)
    let checks = [
        Check(
            name: "ours vs float64 (\(entries.count) entries)", value: relativeError(entries.map { oursValues[$0] }, reference),
            tolerance: limit),
        Check(name: "OpenBLAS vs float64", value: relativeError(entries.map { hostValues[$0] }, reference), tolerance: limit),
        Check(name: "CLBlast vs float64", value: relativeError(entries.map { peerValues[$0] }, reference), tolerance: limit),
        Check(
            name: "ours vs OpenBLAS (upper triangle)",
            value: relativeError(upper.map { oursValues[$0] }, upper.map { hostValues[$0] }), tolerance: limit),
        Check(name: "ours symmetric (largest |F_ij - F_ji|)", value: largestAsymmetry(oursValues, p), tolerance: 0),
    ]
    let flops = Double(m) * Double(p) * Double(p + 1)
    let bytes = Double((m * p + p * p) * MemoryLayout<Element>.size)
    let name = Element.self == Double.self ? "d" : "s"
    return try sweepCase(
        .accumulation, element: Element.openCLTypeName, rows: m, dimension: p, flops: flops, bytes: bytes, work: flops,
        checks: checks,
        contenders: [
            .device(.ours, "FisherAccumulation.accumulate") { run in
                try accumulation.accumulate(factors[run % copies], into: ours)
            },
            .host(.openBLAS, "cblas_\(name)syrk") { run in
                hosts[run % copies].withUnsafeBufferPointer { u in
                    host.withUnsafeMutableBufferPointer { c in
                        Element.hostSyrk(u.baseAddress!, rows: m, n: p, lda: p, alpha: alpha, c.baseAddress!, ldc: p)
                    }
                }
            },
            .device(.clblast, "CLBlast\(name.uppercased())syrk") { run in
                try context.withQueue { queue in
                    try checkCLBlast(
                        Element.clSyrk(
                            rows: m, n: p, alpha: alpha, buffers[run % copies].unsafeMemoryHandle, offset: 0, lda: p,
                            peer.unsafeMemoryHandle, cOffset: 0, ldc: p, queue), "CLBlast syrk")
                }
            },
        ], context: context, settings: settings)
}

// MARK: - Batched-block accumulation

/// Per-layer blocks of one factor in one launch, against one syrk per block from each peer.
func sweepBlockAccumulation<Element: PeerScalar>(
    _: Element.Type, context: Context, rows m: Int, blockSizes: [Int], settings: Settings
) throws -> CaseResult {
    let p = blockSizes.reduce(0, +)
    let hosts = (0..<settings.copies).map { inputs(Element.self, count: m * p, seed: UInt64(0xB10C_0000 + m + p + $0)) }
    let buffers = try hosts.map { try Buffer<Element>(context: context, copying: $0) }
    let factors = try buffers.map { try CurvatureFactor(matrix: $0, rows: m, dimension: p, samples: m) }
    let curvature = try BlockDiagonalCurvature<Element>(context: context, blockSizes: blockSizes)
    let blocks = curvature.blocks
    let total = blocks.reduce(0) { $0 + $1.size * $1.size }
    let peer = try Buffer<Element>(context: context, count: total)
    try peer.fill(0)
    var host = [Element](repeating: 0, count: total)
    let alpha = Element(float64: 1 / Double(m))
    let copies = settings.copies

    func runHost(_ copy: Int) {
        hosts[copy].withUnsafeBufferPointer { u in
            host.withUnsafeMutableBufferPointer { c in
                for block in blocks {
                    Element.hostSyrk(
                        u.baseAddress! + block.offset, rows: m, n: block.size, lda: p, alpha: alpha,
                        c.baseAddress! + block.matrixOffset, ldc: block.size)
                }
            }
        }
    }
    func runCLBlast(_ copy: Int) throws {
        try context.withQueue { queue in
            for block in blocks {
                try checkCLBlast(
                    Element.clSyrk(
                        rows: m, n: block.size, alpha: alpha, buffers[copy].unsafeMemoryHandle, offset: block.offset,
                        lda: p, peer.unsafeMemoryHandle, cOffset: block.matrixOffset, ldc: block.size, queue),
                    "CLBlast syrk")
            }
        }
    }

    try curvature.matrices.fill(Element(float64: .nan))
    try curvature.accumulate(factors[0], beta: 0)
    try runCLBlast(0)
    runHost(0)
    let oursValues = Element.widened(try curvature.matrices.download())
    let peerValues = Element.widened(try peer.download())
    let hostValues = Element.widened(host)
    var upper: [Int] = []
    for block in blocks {
        for i in 0..<block.size { for j in i..<block.size { upper.append(block.matrixOffset + i * block.size + j) } }
    }
    let limit = tolerance(Element.self)
    let checks = [
        Check(
            name: "ours vs OpenBLAS (upper triangles)",
            value: relativeError(upper.map { oursValues[$0] }, upper.map { hostValues[$0] }), tolerance: limit),
        Check(
            name: "CLBlast vs OpenBLAS (upper triangles)",
            value: relativeError(upper.map { peerValues[$0] }, upper.map { hostValues[$0] }), tolerance: limit),
    ]
    let flops = blockSizes.reduce(0.0) { $0 + Double(m) * Double($1) * Double($1 + 1) }
    let bytes = Double((m * p + total) * MemoryLayout<Element>.size)
    let name = Element.self == Double.self ? "d" : "s"
    return try sweepCase(
        .blockAccumulation, element: Element.openCLTypeName, rows: m, dimension: p,
        shape: "M=\(m) blocks \(blockSizes.map(String.init).joined(separator: ","))", flops: flops, bytes: bytes,
        work: flops, checks: checks,
        contenders: [
            .device(.ours, "BlockDiagonalCurvature.accumulate (one launch)") { run in
                try curvature.accumulate(factors[run % copies], beta: 0)
            },
            .host(.openBLAS, "cblas_\(name)syrk per block") { run in runHost(run % copies) },
            .device(.clblast, "CLBlast\(name.uppercased())syrk per block") { run in try runCLBlast(run % copies) },
        ], context: context, settings: settings)
}

// MARK: - Implicit product

func sweepImplicitProduct<Element: PeerScalar>(
    _: Element.Type, context: Context, rows m: Int, dimension p: Int, settings: Settings
) throws -> CaseResult {
    let hosts = (0..<settings.copies).map { inputs(Element.self, count: m * p, seed: UInt64(0x1A9D_0000 + m * 65_537 + p + $0)) }
    let buffers = try hosts.map { try Buffer<Element>(context: context, copying: $0) }
    let factors = try buffers.map { try CurvatureFactor(matrix: $0, rows: m, dimension: p, samples: m) }
    let x = inputs(Element.self, count: p, seed: UInt64(0x1A9E_0000 + p))
    let alpha = Element(float64: 1 / Double(m))
    let damping = Element(float64: Double(settings.damping))
    let product = try ImplicitProduct<Element>(context: context)
    let xBatch = try VectorBatch<Element>(context: context, vectors: [x])
    let ours = try VectorBatch<Element>(context: context, dimension: p, count: 1)
    let scratch = try Buffer<Element>(context: context, count: m)
    let peer = try Buffer<Element>(context: context, count: p)
    try scratch.fill(0)
    var hostScratch = [Element](repeating: 0, count: m)
    var host = [Element](repeating: 0, count: p)
    let copies = settings.copies

    func runHost(_ copy: Int) {
        hosts[copy].withUnsafeBufferPointer { u in
            x.withUnsafeBufferPointer { x in
                hostScratch.withUnsafeMutableBufferPointer { t in
                    host.withUnsafeMutableBufferPointer { y in
                        Element.hostGemv(
                            transposed: false, rows: m, columns: p, alpha: 1, u.baseAddress!, x.baseAddress!, beta: 0,
                            t.baseAddress!)
                        y.baseAddress!.update(from: x.baseAddress!, count: p)
                        Element.hostGemv(
                            transposed: true, rows: m, columns: p, alpha: alpha, u.baseAddress!, t.baseAddress!, beta: damping,
                            y.baseAddress!)
                    }
                }
            }
        }
    }
    func runCLBlast(_ copy: Int) throws {
        try context.withQueue { queue in
            try checkCLBlast(
                Element.clGemv(
                    transposed: false, rows: m, columns: p, alpha: 1, buffers[copy].unsafeMemoryHandle,
                    xBatch.buffer.unsafeMemoryHandle, beta: 0, scratch.unsafeMemoryHandle, queue), "CLBlast gemv")
            try peer.copy(from: xBatch.buffer, range: 0..<p)
            try checkCLBlast(
                Element.clGemv(
                    transposed: true, rows: m, columns: p, alpha: alpha, buffers[copy].unsafeMemoryHandle,
                    scratch.unsafeMemoryHandle, beta: damping, peer.unsafeMemoryHandle, queue), "CLBlast gemv")
        }
    }

    try ours.buffer.fill(Element(float64: .nan))
    try product.apply(factors[0], xBatch, damping: damping, into: ours)
    try runCLBlast(0)
    runHost(0)
    let oursValues = Element.widened(try ours.buffer.download())
    let peerValues = Element.widened(try peer.download())
    let hostValues = Element.widened(host)
    let reference = referenceImplicitProduct(hosts[0], rows: m, dim: p, samples: m, xs: [x], damping: damping.float64)[0]
    let limit = tolerance(Element.self)
    let checks = [
        Check(name: "ours vs float64", value: relativeError(oursValues, reference), tolerance: limit),
        Check(name: "OpenBLAS vs float64", value: relativeError(hostValues, reference), tolerance: limit),
        Check(name: "CLBlast vs float64", value: relativeError(peerValues, reference), tolerance: limit),
    ]
    let bytes = Double(m * p * MemoryLayout<Element>.size)
    let name = Element.self == Double.self ? "d" : "s"
    return try sweepCase(
        .implicitProduct, element: Element.openCLTypeName, rows: m, dimension: p, flops: 4 * Double(m) * Double(p),
        bytes: bytes, work: bytes, checks: checks,
        contenders: [
            .device(.ours, "ImplicitProduct.apply") { run in
                try product.apply(factors[run % copies], xBatch, damping: damping, into: ours)
            },
            .host(.openBLAS, "cblas_\(name)gemv x2 + copy") { run in runHost(run % copies) },
            .device(.clblast, "CLBlast\(name.uppercased())gemv x2 + clEnqueueCopyBuffer") { run in try runCLBlast(run % copies) },
        ], context: context, settings: settings)
}

// MARK: - Dense product

/// `y = (F + λI) x` with F a dense symmetric P x P matrix: ours (`BlockDenseProduct`, one
/// block) against symv from each peer (`y = x`, then `y ← F x + λ y`).
func sweepDenseProduct<Element: PeerScalar>(
    _: Element.Type, context: Context, dimension p: Int, settings: Settings
) throws -> CaseResult {
    let matricesHost = (0..<settings.copies).map { copy -> [Element] in
        let raw = inputs(Element.self, count: p * p, seed: UInt64(0xDE45_0000 + p + copy))
        var symmetric = raw
        for i in 0..<p { for j in (i + 1)..<p { symmetric[j * p + i] = raw[i * p + j] } }
        return symmetric
    }
    let matrices = try matricesHost.map { try Buffer<Element>(context: context, copying: $0) }
    let x = inputs(Element.self, count: p, seed: UInt64(0xDE46_0000 + p))
    let damping = Element(float64: Double(settings.damping))
    let product = try BlockDenseProduct<Element>(context: context)
    let blocks = [DenseBlock(offset: 0, size: p, matrixOffset: 0)]
    let xBatch = try VectorBatch<Element>(context: context, vectors: [x])
    let ours = try VectorBatch<Element>(context: context, dimension: p, count: 1)
    let peer = try Buffer<Element>(context: context, count: p)
    var host = [Element](repeating: 0, count: p)
    let copies = settings.copies

    func runHost(_ copy: Int) {
        matricesHost[copy].withUnsafeBufferPointer { a in
            x.withUnsafeBufferPointer { x in
                host.withUnsafeMutableBufferPointer { y in
                    y.baseAddress!.update(from: x.baseAddress!, count: p)
                    Element.hostSymv(n: p, alpha: 1, a.baseAddress!, x.baseAddress!, beta: damping, y.baseAddress!)
                }
            }
        }
    }
    func runCLBlast(_ copy: Int) throws {
        try peer.copy(from: xBatch.buffer, range: 0..<p)
        try context.withQueue { queue in
            try checkCLBlast(
                Element.clSymv(
                    n: p, alpha: 1, matrices[copy].unsafeMemoryHandle, xBatch.buffer.unsafeMemoryHandle, beta: damping,
                    peer.unsafeMemoryHandle, queue), "CLBlast symv")
        }
    }
    try ours.buffer.fill(Element(float64: .nan))
    try product.apply(blocks, matrices: matrices[0], xBatch, damping: damping, into: ours)
    try runCLBlast(0)
    runHost(0)
    let a64 = Element.widened(matricesHost[0])
    let x64 = Element.widened(x)
    let reference = (0..<p).map { i -> Double in
        var sum = damping.float64 * x64[i]
        for j in 0..<p { sum += a64[i * p + j] * x64[j] }
        return sum
    }
    let limit = tolerance(Element.self)
    let checks = [
        Check(
            name: "ours vs float64", value: relativeError(Element.widened(try ours.buffer.download()), reference),
            tolerance: limit),
        Check(name: "OpenBLAS vs float64", value: relativeError(Element.widened(host), reference), tolerance: limit),
        Check(
            name: "CLBlast vs float64", value: relativeError(Element.widened(try peer.download()), reference), tolerance: limit),
    ]
    let bytes = Double(p * p * MemoryLayout<Element>.size)
    let name = Element.self == Double.self ? "d" : "s"
    return try sweepCase(
        .denseProduct, element: Element.openCLTypeName, rows: 0, dimension: p, shape: "P=\(p)",
        flops: 2 * Double(p) * Double(p), bytes: bytes, work: bytes, checks: checks,
        contenders: [
            .device(.ours, "BlockDenseProduct.apply (one block, full matrix read)") { run in
                try product.apply(blocks, matrices: matrices[run % copies], xBatch, damping: damping, into: ours)
            },
            .host(.openBLAS, "cblas_\(name)symv + copy") { run in runHost(run % copies) },
            .device(.clblast, "CLBlast\(name.uppercased())symv + clEnqueueCopyBuffer") { run in try runCLBlast(run % copies) },
        ], context: context, settings: settings)
}

// MARK: - Kronecker product

/// K-FAC `vec(G V A)` per layer (λ = 0): ours (two launches for all layers) against two
/// gemm per layer from each peer, on the factors ours accumulated.
func sweepKroneckerProduct<Element: PeerScalar>(
    _: Element.Type, context: Context, samples n: Int, shapes: [(outputs: Int, inputs: Int)], settings: Settings
) throws -> CaseResult {
    let layers = try shapes.enumerated().map { index, shape -> KFACLayer<Element> in
        KFACLayer(
            activations: try Buffer(
                context: context, copying: inputs(Element.self, count: n * shape.inputs, seed: UInt64(0x4FAC + index))),
            outputGradients: try Buffer(
                context: context, copying: inputs(Element.self, count: n * shape.outputs, seed: UInt64(0x5FAC + index))),
            inputs: shape.inputs, outputs: shape.outputs)
    }
    let curvature = try KroneckerCurvature<Element>(layers: layers, samples: n)
    let p = curvature.dimension
    let x = inputs(Element.self, count: p, seed: 0x6FAC)
    let xBatch = try VectorBatch<Element>(context: context, vectors: [x])
    let ours = try VectorBatch<Element>(context: context, dimension: p, count: 1)
    let factorsHost = try curvature.factors.download()
    let peerScratch = try Buffer<Element>(context: context, count: p)
    let peer = try Buffer<Element>(context: context, count: p)
    var hostScratch = [Element](repeating: 0, count: p)
    var host = [Element](repeating: 0, count: p)
    let table = curvature.layers

    func runHost() {
        factorsHost.withUnsafeBufferPointer { f in
            x.withUnsafeBufferPointer { x in
                hostScratch.withUnsafeMutableBufferPointer { t in
                    host.withUnsafeMutableBufferPointer { y in
                        for layer in table {
                            let (o, i, at) = (layer.outputs, layer.inputs, layer.parameterOffset)
                            Element.hostGemm(
                                m: o, n: i, k: i, x.baseAddress! + at, f.baseAddress! + layer.aOffset, t.baseAddress! + at)
                            Element.hostGemm(
                                m: o, n: i, k: o, f.baseAddress! + layer.gOffset, t.baseAddress! + at, y.baseAddress! + at)
                        }
                    }
                }
            }
        }
    }
    func runCLBlast() throws {
        try context.withQueue { queue in
            for layer in table {
                let (o, i, at) = (layer.outputs, layer.inputs, layer.parameterOffset)
                try checkCLBlast(
                    Element.clGemm(
                        m: o, n: i, k: i, xBatch.buffer.unsafeMemoryHandle, aOffset: at, curvature.factors.unsafeMemoryHandle,
                        bOffset: layer.aOffset, peerScratch.unsafeMemoryHandle, cOffset: at, queue), "CLBlast gemm")
                try checkCLBlast(
                    Element.clGemm(
                        m: o, n: i, k: o, curvature.factors.unsafeMemoryHandle, aOffset: layer.gOffset,
                        peerScratch.unsafeMemoryHandle, bOffset: at, peer.unsafeMemoryHandle, cOffset: at, queue), "CLBlast gemm")
            }
        }
    }
    try ours.buffer.fill(Element(float64: .nan))
    try curvature.apply(xBatch, damping: 0, into: ours)
    try runCLBlast()
    runHost()
    // float64 reference from the same factors.
    let f64 = Element.widened(factorsHost)
    let x64 = Element.widened(x)
    var reference = [Double](repeating: 0, count: p)
    for layer in table {
        let (o, i, at) = (layer.outputs, layer.inputs, layer.parameterOffset)
        var va = [Double](repeating: 0, count: o * i)
        for r in 0..<o {
            for k in 0..<i {
                let v = x64[at + r * i + k]
                for c in 0..<i { va[r * i + c] += v * f64[layer.aOffset + k * i + c] }
            }
        }
        for r in 0..<o {
            for k in 0..<o {
                let g = f64[layer.gOffset + r * o + k]
                for c in 0..<i { reference[at + r * i + c] += g * va[k * i + c] }
            }
        }
    }
    let limit = tolerance(Element.self)
    let checks = [
        Check(
            name: "ours vs float64", value: relativeError(Element.widened(try ours.buffer.download()), reference),
            tolerance: limit),
        Check(name: "OpenBLAS vs float64", value: relativeError(Element.widened(host), reference), tolerance: limit),
        Check(
            name: "CLBlast vs float64", value: relativeError(Element.widened(try peer.download()), reference), tolerance: limit),
    ]
    let flops = shapes.reduce(0.0) { $0 + 2 * Double($1.outputs) * Double($1.inputs) * Double($1.outputs + $1.inputs) }
    let factorCount = shapes.reduce(0) { $0 + $1.outputs * $1.outputs + $1.inputs * $1.inputs }
    let bytes = Double((factorCount + 2 * p) * MemoryLayout<Element>.size)
    let name = Element.self == Double.self ? "d" : "s"
    return try sweepCase(
        .kroneckerProduct, element: Element.openCLTypeName, rows: n, dimension: p,
        shape: "layers " + shapes.map { "\($0.outputs)x\($0.inputs)" }.joined(separator: ","), flops: flops, bytes: bytes,
        work: flops, checks: checks,
        contenders: [
            .device(.ours, "KroneckerCurvature.apply (all layers, two launches)") { _ in
                try curvature.apply(xBatch, damping: 0, into: ours)
            },
            .host(.openBLAS, "cblas_\(name)gemm x2 per layer") { _ in runHost() },
            .device(.clblast, "CLBlast\(name.uppercased())gemm x2 per layer") { _ in try runCLBlast() },
        ], context: context, settings: settings)
}

// MARK: - Transfers

/// Host-to-device and device-to-host copies of `bytes` bytes, against a host memcpy of the
/// same size (the host's own copy rate).
func sweepTransfers(context: Context, bytes: Int, settings: Settings) throws -> [CaseResult] {
    let count = bytes / 4
    var generator = SplitMix64(seed: UInt64(0x7F00 + count))
    let host = generator.symmetricFloats(count: count)
    var back = [Float](repeating: 0, count: count)
    let buffer = try Buffer<Float>(context: context, count: count)
    try buffer.upload(host)
    let roundTrip = try buffer.download()
    let check = Check(name: "round trip bit for bit", value: roundTrip == host ? 0 : 1, tolerance: 0)
    let memcpy = Contender.host(.host, "memcpy (Array.update), 1 thread", label: "host memcpy") { _ in
        host.withUnsafeBufferPointer { s in
            back.withUnsafeMutableBufferPointer { d in d.baseAddress!.update(from: s.baseAddress!, count: count) }
        }
    }
    let upload = try sweepCase(
        .upload, element: "float", rows: 0, dimension: count, shape: byteLabel(bytes), flops: 0, bytes: Double(bytes),
        work: Double(bytes), checks: [check],
        contenders: [.host(.ours, "Buffer.upload (blocking clEnqueueWriteBuffer)") { _ in try buffer.upload(host) }, memcpy],
        context: context, settings: settings)
    let download = try sweepCase(
        .download, element: "float", rows: 0, dimension: count, shape: byteLabel(bytes), flops: 0, bytes: Double(bytes),
        work: Double(bytes), checks: [check],
        contenders: [
            .host(.ours, "Buffer.download(into:) (blocking clEnqueueReadBuffer into reused storage)") { _ in
                try buffer.download(into: &back)
            },
            .host(
                .host, "Buffer.download() (a new array per call: allocation and first-touch page faults)",
                label: "download, new array"
            ) { _ in _ = try buffer.download() },
            memcpy,
        ],
        context: context, settings: settings)
    return [upload, download]
}

func byteLabel(_ bytes: Int) -> String { bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB" }
