import ArgumentParser
import Foundation
// `ngrad bench` times the launch plans themselves, as the benchmark package does.
@_spi(Benchmarks) import NaturalGradient
import NaturalGradientTestSupport

/// The quick suite behind `ngrad bench`: each operation once per element type at one size,
/// checked against a float64 host reference, then timed (warm-ups, repeated runs, median
/// and spread), with rates read against the device's own copy bandwidth. The references,
/// inputs, error measure and timing are the benchmark suite's (NaturalGradientTestSupport).
struct QuickBenchmark {
    enum Size: String, CaseIterable, ExpressibleByArgument, Encodable {
        /// Milliseconds in all: for tests and smoke runs (the rates mean little).
        case tiny
        /// The default: under a minute on a 2-core PoCL machine, U larger than its L3.
        case quick

        var accumulation: (rows: Int, dimension: Int) { self == .tiny ? (33, 65) : (512, 2048) }
        var blocks: (rows: Int, sizes: [Int]) { self == .tiny ? (33, [9, 17, 33, 7]) : (512, [1024, 512, 300, 100, 10]) }
        var product: (rows: Int, dimension: Int) { self == .tiny ? (33, 257) : (512, 32768) }
        var dense: Int { self == .tiny ? 65 : 2048 }
        /// K-FAC layers as (outputs, inputs incl. bias), and samples.
        var kronecker: (samples: Int, shapes: [(Int, Int)]) {
            self == .tiny ? (17, [(9, 17), (5, 10)]) : (256, [(256, 513), (128, 257), (10, 129)])
        }
        var transferBytes: Int { self == .tiny ? 1 << 16 : 64 << 20 }
        var cgCaps: (short: Int, long: Int) { self == .tiny ? (1, 3) : (1, 11) }
    }

    /// One operation at one size and element type.
    struct Row: Encodable {
        let operation: String
        let element: String
        let shape: String
        /// FLOPs and minimum bytes moved per run.
        let flops: Double
        let bytes: Double
        var medianSeconds = Double.nan
        var minSeconds = Double.nan
        var maxSeconds = Double.nan
        var gflops: Double { flops / medianSeconds / 1e9 }
        var gbytes: Double { bytes / medianSeconds / 1e9 }
        /// GB/s over the device's measured copy bandwidth (memory-bound operations).
        var rooflineFraction: Double?
        /// `‖ours − float64‖/‖float64‖` (nil where the row has no numeric result).
        var relativeError: Double?
        var tolerance: Double?
        /// A check other than a relative error that failed.
        var failure: String?
        var passed: Bool { failure == nil && (relativeError.map { $0 <= (tolerance ?? 0) } ?? true) }
        var note: String?

        enum CodingKeys: String, CodingKey {
            case operation, element, shape, flops, bytes, medianSeconds, minSeconds, maxSeconds, gflops, gbytes,
                rooflineFraction, relativeError, tolerance, passed, failure, note
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(operation, forKey: .operation)
            try c.encode(element, forKey: .element)
            try c.encode(shape, forKey: .shape)
            try c.encode(flops, forKey: .flops)
            try c.encode(bytes, forKey: .bytes)
            // JSON has no NaN or infinity: a time the noise swamped is written as null.
            func finite(_ value: Double) -> Double? { value.isFinite ? value : nil }
            try c.encode(finite(medianSeconds), forKey: .medianSeconds)
            try c.encode(finite(minSeconds), forKey: .minSeconds)
            try c.encode(finite(maxSeconds), forKey: .maxSeconds)
            try c.encode(flops > 0 ? finite(gflops) : nil, forKey: .gflops)
            try c.encode(finite(gbytes), forKey: .gbytes)
            try c.encodeIfPresent(rooflineFraction, forKey: .rooflineFraction)
            try c.encodeIfPresent(relativeError, forKey: .relativeError)
            try c.encodeIfPresent(tolerance, forKey: .tolerance)
            try c.encode(passed, forKey: .passed)
            try c.encodeIfPresent(failure, forKey: .failure)
            try c.encodeIfPresent(note, forKey: .note)
        }
    }

    let context: Context
    let size: Size
    let warmup: Int
    let repetitions: Int
    /// Called before each operation with its place and name (the progress line).
    var progress: (Int, Int, String) -> Void = { _, _, _ in }

    /// Every row, in order; the first is the ceiling (device copy bandwidth).
    func run(doubles: Bool) throws -> [Row] {
        var steps: [(String, () throws -> Row)] = [
            ("device copy (the ceiling)", copyCeiling),
            ("upload host -> device", { try transfer(upload: true) }),
            ("download device -> host", { try transfer(upload: false) }),
        ]
        func add<Element: DeviceScalar>(_: Element.Type) {
            let name = Element.openCLTypeName
            steps += [
                ("accumulation \(name)", { try accumulation(Element.self) }),
                ("batched-block accumulation \(name)", { try blockAccumulation(Element.self) }),
                ("implicit product \(name)", { try implicitProduct(Element.self) }),
                ("dense product \(name)", { try denseProduct(Element.self) }),
                ("Kronecker product \(name)", { try kroneckerProduct(Element.self) }),
                ("CG iteration \(name)", { try cgIteration(Element.self) }),
            ]
        }
        add(Float.self)
        if doubles { add(Double.self) }
        var rows: [Row] = []
        var copyBandwidth = Double.nan
        for (index, step) in steps.enumerated() {
            progress(index + 1, steps.count, step.0)
            var row = try step.1()
            if index == 0 { copyBandwidth = row.gbytes }
            if row.note == "memory-bound", copyBandwidth.isFinite { row.rooflineFraction = row.gbytes / copyBandwidth }
            rows.append(row)
        }
        return rows
    }

    // MARK: - Operations

    /// `clEnqueueCopyBuffer` of a large buffer: bytes read plus bytes written per second,
    /// the bandwidth ceiling the memory-bound rows are read against.
    private func copyCeiling() throws -> Row {
        let count = size.transferBytes / 4
        let source = try Buffer<Float>(context: context, copying: Float.narrowedSample(count))
        let destination = try Buffer<Float>(context: context, count: count)
        var row = Row(
            operation: "device copy", element: "float", shape: byteSize(count * 4), flops: 0,
            bytes: 2 * Double(count) * 4, note: "ceiling: bytes read + written")
        try destination.copy(from: source)
        let check = try destination.download()
        row.relativeError = check == (try source.download()) ? 0 : 1
        row.tolerance = 0
        try time(&row) {
            try destination.copy(from: source)
            try context.finish()
        }
        return row
    }

    private func transfer(upload: Bool) throws -> Row {
        let count = size.transferBytes / 4
        let host = Float.narrowedSample(count)
        let buffer = try Buffer<Float>(context: context, count: count)
        var row = Row(
            operation: upload ? "upload" : "download", element: "float", shape: byteSize(count * 4), flops: 0,
            bytes: Double(count) * 4, note: upload ? "blocking clEnqueueWriteBuffer" : "blocking clEnqueueReadBuffer")
        try buffer.upload(host)
        let back = try buffer.download()
        row.relativeError = back == host ? 0 : 1
        row.tolerance = 0
        try time(&row) {
            if upload { try buffer.upload(host) } else { _ = try buffer.download() }
        }
        return row
    }

    private func accumulation<Element: DeviceScalar>(_: Element.Type) throws -> Row {
        let (m, p) = size.accumulation
        let (u, factor) = try makeFactor(Element.self, rows: m, dimension: p, seed: 1)
        let accumulation = try FisherAccumulation<Element>(context: context)
        let output = try Buffer<Element>(context: context, count: p * p)
        var row = Row(
            operation: "accumulation", element: Element.openCLTypeName, shape: "M=\(m) P=\(p)",
            flops: Double(m) * Double(p) * Double(p + 1), bytes: Double((m * p + p * p) * MemoryLayout<Element>.size),
            note: "compute-bound")
        try output.fill(Element(float64: .nan))
        try accumulation.accumulate(factor, into: output)
        let values = Element.widened(try output.download())
        let entries = sampledUpperEntries(p)
        let reference = referenceAccumulation(u, rows: m, dim: p, samples: m, entries: entries)
        row.relativeError = relativeError(entries.map { values[$0] }, reference)
        row.tolerance = tolerance(for: Element.self)
        try time(&row) {
            try accumulation.accumulate(factor, into: output)
            try context.finish()
        }
        return row
    }

    private func blockAccumulation<Element: DeviceScalar>(_: Element.Type) throws -> Row {
        let (m, sizes) = size.blocks
        let p = sizes.reduce(0, +)
        let (u, factor) = try makeFactor(Element.self, rows: m, dimension: p, seed: 2)
        let curvature = try BlockDiagonalCurvature<Element>(context: context, blockSizes: sizes)
        let flops = sizes.reduce(0.0) { $0 + Double(m) * Double($1) * Double($1 + 1) }
        var row = Row(
            operation: "batched-block accumulation", element: Element.openCLTypeName,
            shape: "M=\(m) blocks \(sizes.map(String.init).joined(separator: ","))", flops: flops,
            bytes: Double((m * p + sizes.reduce(0) { $0 + $1 * $1 }) * MemoryLayout<Element>.size),
            note: "compute-bound")
        try curvature.matrices.fill(Element(float64: .nan))
        try curvature.accumulate(factor, beta: 0)
        var got: [Double] = []
        var reference: [Double] = []
        for (index, block) in curvature.blocks.enumerated() {
            let values = Element.widened(try curvature.blockMatrix(index))
            let entries = Array(sampledUpperEntries(block.size).prefix(40))
            got += entries.map { values[$0] }
            reference += referenceAccumulation(
                u, rows: m, dim: block.size, stride: p, offset: block.offset, samples: m, entries: entries)
        }
        row.relativeError = relativeError(got, reference)
        row.tolerance = tolerance(for: Element.self)
        try time(&row) {
            try curvature.accumulate(factor, beta: 0)
            try context.finish()
        }
        return row
    }

    private func implicitProduct<Element: DeviceScalar>(_: Element.Type) throws -> Row {
        let (m, p) = size.product
        let (u, factor) = try makeFactor(Element.self, rows: m, dimension: p, seed: 3)
        let x = Element.widened(Element.narrowed(uniformValues(count: p, seed: 4)))
        let xBatch = try VectorBatch<Element>(context: context, vectors: [Element.narrowed(x)])
        let y = try VectorBatch<Element>(context: context, dimension: p, count: 1)
        let product = try ImplicitProduct<Element>(context: context)
        let damping = Element(float64: 1e-3)
        var row = Row(
            operation: "implicit product", element: Element.openCLTypeName, shape: "M=\(m) P=\(p)",
            flops: 4 * Double(m) * Double(p), bytes: Double(m * p * MemoryLayout<Element>.size), note: "memory-bound")
        try y.buffer.fill(Element(float64: .nan))
        try product.apply(factor, xBatch, damping: damping, into: y)
        row.relativeError = relativeError(
            Element.widened(try y.buffer.download()),
            referenceImplicitProduct(u, rows: m, dim: p, samples: m, xs: [x], damping: damping.float64)[0])
        row.tolerance = tolerance(for: Element.self)
        try time(&row) {
            try product.apply(factor, xBatch, damping: damping, into: y)
            try context.finish()
        }
        return row
    }

    private func denseProduct<Element: DeviceScalar>(_: Element.Type) throws -> Row {
        let p = size.dense
        // A symmetric matrix (the product does not need it positive definite).
        let raw = uniformValues(count: p * p, seed: 5)
        var symmetric = [Double](repeating: 0, count: p * p)
        for i in 0..<p {
            for j in i..<p {
                symmetric[i * p + j] = raw[i * p + j]
                symmetric[j * p + i] = raw[i * p + j]
            }
        }
        let matrixValues = Element.widened(Element.narrowed(symmetric))
        let matrix = try Buffer<Element>(context: context, copying: Element.narrowed(matrixValues))
        let x = Element.widened(Element.narrowed(uniformValues(count: p, seed: 6)))
        let xBatch = try VectorBatch<Element>(context: context, vectors: [Element.narrowed(x)])
        let y = try VectorBatch<Element>(context: context, dimension: p, count: 1)
        let product = try BlockDenseProduct<Element>(context: context)
        let blocks = [DenseBlock(offset: 0, size: p, matrixOffset: 0)]
        let damping = Element(float64: 1e-3)
        var row = Row(
            operation: "dense product", element: Element.openCLTypeName, shape: "P=\(p)",
            flops: 2 * Double(p) * Double(p), bytes: Double(p * p * MemoryLayout<Element>.size), note: "memory-bound")
        try y.buffer.fill(Element(float64: .nan))
        try product.apply(blocks, matrices: matrix, xBatch, damping: damping, into: y)
        let reference = referenceDenseProduct(matrixValues, dim: p, x: x, damping: damping.float64)
        row.relativeError = relativeError(Element.widened(try y.buffer.download()), reference)
        row.tolerance = tolerance(for: Element.self)
        try time(&row) {
            try product.apply(blocks, matrices: matrix, xBatch, damping: damping, into: y)
            try context.finish()
        }
        return row
    }

    private func kroneckerProduct<Element: DeviceScalar>(_: Element.Type) throws -> Row {
        let (n, shapes) = size.kronecker
        let layers = try shapes.enumerated().map { index, shape -> KFACLayer<Element> in
            let a = Element.narrowed(uniformValues(count: n * shape.1, seed: UInt64(10 + index)))
            let g = Element.narrowed(uniformValues(count: n * shape.0, seed: UInt64(20 + index)))
            return KFACLayer(
                activations: try Buffer(context: context, copying: a), outputGradients: try Buffer(context: context, copying: g),
                inputs: shape.1, outputs: shape.0)
        }
        let curvature = try KroneckerCurvature<Element>(layers: layers, samples: n)
        let p = curvature.dimension
        let x = Element.widened(Element.narrowed(uniformValues(count: p, seed: 7)))
        let xBatch = try VectorBatch<Element>(context: context, vectors: [Element.narrowed(x)])
        let y = try VectorBatch<Element>(context: context, dimension: p, count: 1)
        let flops = shapes.reduce(0.0) { $0 + 2 * Double($1.0) * Double($1.1) * Double($1.0 + $1.1) }
        let factorCount = shapes.reduce(0) { $0 + $1.0 * $1.0 + $1.1 * $1.1 }
        var row = Row(
            operation: "Kronecker product", element: Element.openCLTypeName,
            shape: shapes.map { "\($0.0)x\($0.1)" }.joined(separator: ","), flops: flops,
            bytes: Double((factorCount + 2 * p) * MemoryLayout<Element>.size), note: "compute-bound")
        try y.buffer.fill(Element(float64: .nan))
        try curvature.apply(xBatch, damping: 0, into: y)
        // Reference: vec(G V A) per layer, from the factors the device accumulated.
        var reference = [Double](repeating: 0, count: p)
        for (index, layer) in curvature.layers.enumerated() {
            let (a, g) = try curvature.layerFactors(index)
            let range = layer.parameterOffset..<(layer.parameterOffset + layer.outputs * layer.inputs)
            reference.replaceSubrange(
                range,
                with: referenceKronecker(
                    g: Element.widened(g), a: Element.widened(a), v: Array(x[range]), rows: layer.outputs,
                    cols: layer.inputs, gammaG: 0, gammaA: 0))
        }
        row.relativeError = relativeError(Element.widened(try y.buffer.download()), reference)
        row.tolerance = tolerance(for: Element.self)
        try time(&row) {
            try curvature.apply(xBatch, damping: 0, into: y)
            try context.finish()
        }
        return row
    }

    /// One CG iteration on the implicit curvature: (t(cap long) − t(cap short)) / (long − short),
    /// the two solves paired within each run.
    private func cgIteration<Element: DeviceScalar>(_: Element.Type) throws -> Row {
        let (m, p) = size.product
        let (_, factor) = try makeFactor(Element.self, rows: m, dimension: p, seed: 3)
        let curvature = try ImplicitCurvature(factor: factor)
        let b = try VectorBatch<Element>(
            context: context, vectors: [Element.narrowed(uniformValues(count: p, seed: 8))])
        let cg = try ConjugateGradient<Element>(context: context)
        let (short, long) = size.cgCaps
        let damping = Element(float64: 1e-3)
        var row = Row(
            operation: "CG iteration", element: Element.openCLTypeName, shape: "M=\(m) P=\(p)",
            flops: 4 * Double(m) * Double(p), bytes: Double(m * p * MemoryLayout<Element>.size), note: "memory-bound")
        let reports = try cg.solve(
            curvature, b, damping: damping, options: ConjugateGradientOptions(tolerance: 0, maxIterations: long)
        ).reports
        // It must run every iteration and stop at the cap with a finite residual (the
        // solver recomputes it in float64 from x).
        if reports[0].iterations != long || reports[0].status != .iterationCap || !reports[0].relativeResidual.isFinite {
            row.failure = "CG stopped after \(reports[0].iterations) of \(long) iterations: \(reports[0].status.rawValue)"
        }
        func solve(cap: Int) -> (times: Int, body: (Int) throws -> Void) {
            (
                1,
                { _ in
                    _ = try cg.solve(
                        curvature, b, damping: damping, options: ConjugateGradientOptions(tolerance: 0, maxIterations: cap))
                }
            )
        }
        // The two solves alternate within each run, so the machine's drift cancels in the difference.
        let timings = try measureInterleaved(
            warmup: warmup, repetitions: repetitions, [solve(cap: short), solve(cap: long)])
        if let perIteration = Self.iterationTiming(short: timings[0], long: timings[1], extraIterations: long - short) {
            record(perIteration, in: &row)
        } else {
            row.note = "not measurable: timing noise exceeded the extra iterations' time"
        }
        return row
    }

    /// The time of one iteration from paired solves that ran `extraIterations` apart: each
    /// run's difference divided by the extra iterations. Nil where any run's difference is
    /// not positive: the longer solve cannot take less time, so such a run shows noise at
    /// least as large as the signal, and a median or spread with it (a negative minimum
    /// time, as `bench` once printed) would be made of noise.
    static func iterationTiming(short: Timing, long: Timing, extraIterations: Int) -> Timing? {
        let seconds = zip(short.seconds, long.seconds).map { ($1 - $0) / Double(extraIterations) }
        guard extraIterations > 0, !seconds.isEmpty, seconds.allSatisfy({ $0 > 0 && $0.isFinite }) else { return nil }
        return Timing(seconds: seconds, interference: short.interference)
    }

    // MARK: - Helpers

    private func makeFactor<Element: DeviceScalar>(
        _: Element.Type, rows m: Int, dimension p: Int, seed: UInt64
    ) throws
        -> ([Double], CurvatureFactor<Element>)
    {
        let rounded = Element.narrowed(uniformValues(count: m * p, seed: 0xBE7C_0000 + seed))
        let factor = try CurvatureFactor(
            matrix: Buffer(context: context, copying: rounded), rows: m, dimension: p, samples: m)
        return (Element.widened(rounded), factor)
    }

    private func time(_ row: inout Row, _ body: () throws -> Void) throws {
        record(try measure(warmup: warmup, repetitions: repetitions) { _ in try body() }, in: &row)
    }

    private func record(_ timing: Timing, in row: inout Row) {
        guard !timing.seconds.isEmpty else { return }
        (row.medianSeconds, row.minSeconds, row.maxSeconds) = (timing.median, timing.min, timing.max)
    }
}

extension Float {
    /// `count` reproducible values for transfer rows.
    static func narrowedSample(_ count: Int) -> [Float] {
        (0..<count).map { Float(($0 &* 2_654_435_761) & 0xFFFF) / 65536 - 0.5 }
    }
}

/// A byte count as KiB or MiB.
func byteSize(_ bytes: Int) -> String {
    bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
}
