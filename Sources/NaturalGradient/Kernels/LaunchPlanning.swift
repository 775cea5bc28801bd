import OpenCLHost

/// Work-group sizes for kernels without a fixed (`reqd_work_group_size`) size: a multiple
/// of the kernel's preferred SIMD width, at most `cap` and at most the kernel's limit.
func workGroupSize(for info: KernelInfo, cap: Int = 256) -> Int {
    let limit = max(1, min(cap, info.maxWorkGroupSize))
    let multiple = max(1, info.preferredWorkGroupMultiple)
    return limit >= multiple ? limit / multiple * multiple : limit
}

extension Context {
    /// Enqueues a 1-D launch of at least `items` work-items in groups sized for `kernel`.
    @discardableResult
    func enqueue1D(_ kernel: Kernel, items: Int, cap: Int = 256) throws -> Event {
        let local = workGroupSize(for: kernel.info, cap: cap)
        return try enqueue(kernel, globalSize: [roundUp(max(items, 1), toMultipleOf: local)], localSize: [local])
    }

    /// Enqueues a 2-D launch over `columns x rows` work-items (dimension 0 is the column,
    /// the fast-moving index), grouping only along the columns.
    @discardableResult
    func enqueue2D(_ kernel: Kernel, columns: Int, rows: Int, cap: Int = 256) throws -> Event {
        let local = min(workGroupSize(for: kernel.info, cap: cap), roundUp(columns, toMultipleOf: 8))
        return try enqueue(
            kernel, globalSize: [roundUp(columns, toMultipleOf: local), rows], localSize: [local, 1])
    }
}

/// Throws unless `value` fits a 32-bit kernel parameter.
func uint32(_ value: Int, _ name: String) throws -> UInt32 {
    guard let converted = UInt32(exactly: value) else {
        throw NaturalGradientError.invalidArgument(name: name, reason: "\(value) does not fit 32 bits")
    }
    return converted
}

/// Tunables with one fixed (`reqd_work_group_size`) work-group size, `WGS`.
protocol FixedGroupSizeTunables: KernelTunables {
    var groupSize: Int { get set }
}

extension ReductionTunables: FixedGroupSizeTunables {}
extension ConjugateGradientTunables: FixedGroupSizeTunables {}
extension CurvatureProductTunables: FixedGroupSizeTunables {}

extension Context {
    /// The one build-shrink-rebuild loop: builds `tunables` (with the plan's defines) and
    /// makes the kernels `names`; where a kernel allows fewer work-items than
    /// `groupSize(tunables)` (registers, local memory), rebuilds with `shrink(tunables,
    /// limit)` until the kernels take the group size or `shrink` has nothing smaller.
    /// Validates `tunables` first, so a caller's value outside the family's space throws.
    func buildKernels<Tunables: KernelTunables, Element: DeviceScalar>(
        _ tunables: Tunables, element: Element.Type, planDefines: [String: Int] = [:], names: [String],
        groupSize: (Tunables) -> Int, shrink: (Tunables, _ limit: Int) -> Tunables?
    ) throws -> (kernels: [Kernel], tunables: Tunables) {
        var tunables = try tunables.validated(on: device, element: element)
        while true {
            let program = try build(KernelConfiguration(tunables, element: element, planDefines: planDefines)).program
            let kernels = try names.map { try program.makeKernel(named: $0) }
            let limit = kernels.map(\.info.maxWorkGroupSize).min() ?? groupSize(tunables)
            guard groupSize(tunables) > limit, let smaller = shrink(tunables, limit), groupSize(smaller) < groupSize(tunables)
            else { return (kernels, tunables) }
            tunables = smaller
        }
    }

    /// `buildKernels` for the families whose group size is `WGS`: shrinks it to the largest
    /// power of two the kernels allow.
    func buildFixedGroupKernels<Tunables: FixedGroupSizeTunables, Element: DeviceScalar>(
        _ tunables: Tunables, element: Element.Type, planDefines: [String: Int] = [:], names: [String]
    ) throws -> (kernels: [Kernel], tunables: Tunables) {
        try buildKernels(
            tunables, element: element, planDefines: planDefines, names: names, groupSize: \.groupSize
        ) { tunables, limit in
            var smaller = tunables
            smaller.groupSize = largestPowerOfTwo(atMost: limit)
            return smaller
        }
    }
}

/// Runs `body` over slices of at most `limit` vectors of `x` and `y`. A batch within the
/// limit is passed through; a larger one is staged through scratch batches, because
/// OpenCL 1.2 sub-buffers need offsets aligned to the device's base alignment.
func forEachChunk<Element: DeviceScalar>(
    _ x: VectorBatch<Element>, _ y: VectorBatch<Element>, limit: Int,
    _ body: (VectorBatch<Element>, VectorBatch<Element>) throws -> Void
) throws {
    if x.count <= limit { return try body(x, y) }
    let context = x.buffer.context
    let dimension = x.dimension
    let xChunk = try VectorBatch<Element>(context: context, dimension: dimension, count: limit)
    let yChunk = try VectorBatch<Element>(context: context, dimension: dimension, count: limit)
    for first in stride(from: 0, to: x.count, by: limit) {
        let count = min(limit, x.count - first)
        let range = (first * dimension)..<((first + count) * dimension)
        try xChunk.buffer.copy(from: x.buffer, range: range, to: 0)
        let xs = try VectorBatch(xChunk.buffer, dimension: dimension, count: count)
        let ys = try VectorBatch(yChunk.buffer, dimension: dimension, count: count)
        try body(xs, ys)
        try y.buffer.copy(from: yChunk.buffer, range: 0..<(count * dimension), to: first * dimension)
    }
}
