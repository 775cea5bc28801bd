import OpenCLHost

// `@_spi(Benchmarks)`: Benchmarks/ is a package of its own, so `package` does not reach it,
// and it times this launch plan bare (no representation's checks around it) so that its
// numbers are the kernel's. Not for users, who reach it through the representations.
/// Launch plan for the fused implicit product of `CurvatureProducts.cl`:
/// `Y = (1/N) Uᵀ (w ∘ (U X)) + λX` for a batch of vectors, reading each row of U from
/// memory once per pass (up to `maxVectorsPerPass` vectors share a pass).
///
/// Work-group g owns a contiguous range of U's rows and accumulates its own partial
/// result; a second launch adds the partials in group order, so results are bitwise
/// repeatable. Owns kernels and scratch, so one instance serves one thread.
@_spi(Benchmarks) public final class ImplicitProduct<Element: DeviceScalar> {
    /// Right-hand sides handled by one pass over U; more are done in several passes.
    public static var maxVectorsPerPass: Int { 8 }

    /// The context everything runs on.
    public let context: Context
    /// The tunables in effect: the caller's, else the tuning cache's for this device, else
    /// the device defaults.
    public let tunables: CurvatureProductTunables
    private var plans: [PlanKey: Plan] = [:]
    private var partials: Buffer<Element>?

    private struct PlanKey: Hashable {
        let vectors: Int
        let rowBlock: Int
    }

    private struct Plan {
        let partial: Kernel
        let finish: Kernel
        let groupSize: Int
        let rowBlock: Int
    }

    /// - Parameter tunables: the kernel's tunables and `GROUPS` (work-groups per pass);
    ///   nil: `TuningCache.current`'s for this device, else the device defaults. Throws when
    ///   they are outside the family's valid space.
    public init(context: Context, tunables: CurvatureProductTunables? = nil) throws {
        self.context = context
        self.tunables = try (tunables ?? .resolved(for: context.device, element: Element.self))
            .validated(on: context.device, element: Element.self)
        _ = try plan(vectors: 1, dimension: 1)
    }

    /// `y ← (1/N) Uᵀ (w ∘ (U x)) + λx` for every vector of the batch.
    public func apply(
        _ factor: CurvatureFactor<Element>, _ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>
    ) throws {
        try validateDamping(damping)
        try require(x.dimension == factor.dimension, "x", "has dimension \(x.dimension), the factor \(factor.dimension)")
        try x.requireSameShape(y, "y")
        try require(x.buffer !== y.buffer, "y", "must not share x's buffer")
        try forEachChunk(x, y, limit: Self.maxVectorsPerPass) { x, y in
            try pass(factor, x, damping: damping, into: y)
        }
    }

    private func pass(
        _ factor: CurvatureFactor<Element>, _ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>
    ) throws {
        let plan = try plan(vectors: x.count, dimension: factor.dimension)
        let dimension = factor.dimension
        // `GROUPS` groups (default `defaultGroups`), no more than there are row blocks, and
        // partial results of at most 256 MiB: from the problem and the tunables alone, never
        // the device's compute units, so the partials' summation order and every bit of
        // the result are the same whatever threads the device runs. A factor split into
        // row pieces gets the rule per piece (and a share of the budget), one launch each,
        // its groups' partials after the previous pieces': the finish adds them in row
        // order. Bitwise the unsplit result when every piece boundary falls on a group
        // boundary of the unsplit partition; else the rows are grouped differently and the
        // result agrees to rounding.
        let budget = max(1, (256 << 20) / (dimension * x.count * MemoryLayout<Element>.stride) / factor.pieces.count)
        let layout = factor.pieces.map { piece -> (piece: FactorPiece<Element>, rowsPerGroup: Int, groups: Int) in
            let blocks = (piece.rows.count + plan.rowBlock - 1) / plan.rowBlock
            let wanted = max(1, min(tunables.groups ?? defaultGroups(blocks: blocks), blocks, budget))
            let rowsPerGroup = roundUp((piece.rows.count + wanted - 1) / wanted, toMultipleOf: plan.rowBlock)
            return (piece, rowsPerGroup, (piece.rows.count + rowsPerGroup - 1) / rowsPerGroup)
        }
        let groups = layout.reduce(0) { $0 + $1.groups }
        let partials = try scratch(count: groups * dimension * x.count)

        var firstGroup = 0
        for (piece, rowsPerGroup, pieceGroups) in layout {
            try plan.partial.setArguments(
                try uint32(piece.rows.count, "rows"), try uint32(dimension, "dimension"), try uint32(dimension, "dimension"),
                UInt32(rowsPerGroup), piece.matrix, piece.weights ?? piece.matrix, UInt32(piece.weights == nil ? 0 : 1),
                1 / Element(factor.samples), x.buffer, partials, UInt32(firstGroup))
            try context.enqueue(plan.partial, globalSize: [pieceGroups * plan.groupSize], localSize: [plan.groupSize])
            firstGroup += pieceGroups
        }
        try plan.finish.setArguments(UInt32(dimension), UInt32(groups), partials, damping, x.buffer, y.buffer)
        try context.enqueue1D(plan.finish, items: dimension * x.count)
    }

    /// Rows per block: on a CPU the block (RB rows of P values, re-read by the update) and
    /// the group's partial result must stay in L2, so RB·P·KB stays within 1 MiB (measured on
    /// a 2 MiB-L2 Xeon: RB = 4 at P = 65536 beat 8 by 30%); GPUs stream and take 8 rows.
    private func rowBlock(vectors: Int, dimension: Int) -> Int {
        if let override = tunables.rowBlock { return override }
        let limit = max(1, ImplicitProductRowBlock.maximum / vectors)
        guard context.device.kind == .cpu else { return limit }
        let fitting = (1 << 20) / max(1, dimension * vectors * MemoryLayout<Element>.stride)
        return max(1, min(limit, largestPowerOfTwo(atMost: max(1, fitting))))
    }

    /// Kernels compiled for `vectors` right-hand sides per pass and a row block size.
    private func plan(vectors: Int, dimension: Int) throws -> Plan {
        let rowBlock = rowBlock(vectors: vectors, dimension: dimension)
        let key = PlanKey(vectors: vectors, rowBlock: rowBlock)
        if let plan = plans[key] { return plan }
        let built = try context.buildFixedGroupKernels(
            tunables, element: Element.self, planDefines: ["KB": vectors, "RB": rowBlock],
            names: ["implicit_product_partial", "implicit_product_finish"])
        let plan = Plan(
            partial: built.kernels[0], finish: built.kernels[1], groupSize: built.tunables.groupSize, rowBlock: rowBlock)
        plans[key] = plan
        return plan
    }

    /// Work-groups per pass without a `GROUPS` tunable, from the problem (its row blocks)
    /// and the device's kind alone, never its compute-unit count, so the result does not
    /// depend on the device's thread count: on CPUs two row blocks per group, at most 16
    /// groups (each group's partial result is P values the finish re-reads); on GPUs one
    /// block per group, at most 256 (a group per compute unit and more).
    private func defaultGroups(blocks: Int) -> Int {
        context.device.kind == .cpu ? min(16, (blocks + 1) / 2) : min(256, blocks)
    }

    private func scratch(count: Int) throws -> Buffer<Element> {
        if let partials, partials.count >= count { return partials }
        let buffer = try Buffer<Element>(context: context, count: count)
        partials = buffer
        return buffer
    }
}

/// One block of a block-diagonal matrix: parameters `offset..<offset + size`, whose dense
/// symmetric `size x size` matrix starts at `matrixOffset` in the matrix buffer.
public struct DenseBlock: Hashable, Sendable {
    /// The first parameter of the block.
    public var offset: Int
    /// The number of parameters in the block.
    public var size: Int
    /// Where the block's matrix starts in the matrix buffer.
    public var matrixOffset: Int

    public init(offset: Int, size: Int, matrixOffset: Int) {
        self.offset = offset
        self.size = size
        self.matrixOffset = matrixOffset
    }
}

/// Launch plan for `block_dense_product`: `y = (F + λI) x` for a block-diagonal F whose
/// blocks are dense symmetric matrices (a dense matrix is one block), one work-group per
/// `DRB` consecutive rows of a block, batched over up to `maxVectorsPerPass` vectors per pass.
@_spi(Benchmarks) public final class BlockDenseProduct<Element: DeviceScalar> {
    /// Right-hand sides handled by one pass over the matrix.
    public static var maxVectorsPerPass: Int { 8 }

    /// The context everything runs on.
    public let context: Context
    private var plans: [Int: Plan] = [:]
    private var tables: [TableKey: (tasks: Buffer<UInt32>, blocks: Buffer<UInt64>, count: Int)] = [:]
    /// The kernel's tunables.
    let tunables: CurvatureProductTunables

    private struct Plan {
        let kernel: Kernel
        let groupSize: Int
        let rowsPerGroup: Int
    }
    private struct TableKey: Hashable {
        let blocks: [DenseBlock]
        let rowsPerGroup: Int
    }

    /// - Parameter tunables: the kernel's tunables (`DRB`, `DWGS`, `VW`, `CONTIGUOUS`); nil:
    ///   the tuning cache's for this device, else the device defaults.
    public init(context: Context, tunables: CurvatureProductTunables? = nil) throws {
        self.context = context
        self.tunables = try (tunables ?? .resolved(for: context.device, element: Element.self))
            .validated(on: context.device, element: Element.self)
    }

    /// The device defaults with `defines` replacing some of them (tests).
    convenience init(context: Context, defines: [String: Int]) throws {
        try self.init(
            context: context,
            tunables: CurvatureProductTunables.defaults(for: context.device, element: Element.self).overriding(defines))
    }

    /// `y ← (F + λI) x` for every vector; `blocks` must tile `0..<x.dimension` in order.
    public func apply(
        _ blocks: [DenseBlock], matrices: Buffer<Element>, _ x: VectorBatch<Element>, damping: Element,
        into y: VectorBatch<Element>
    ) throws {
        try validateDamping(damping)
        try x.requireSameShape(y, "y")
        try require(x.buffer !== y.buffer, "y", "must not share x's buffer")
        try validate(blocks, dimension: x.dimension, matrices: matrices)
        try forEachChunk(x, y, limit: Self.maxVectorsPerPass) { x, y in
            let plan = try plan(vectors: x.count)
            let table = try taskTable(for: blocks, rowsPerGroup: plan.rowsPerGroup)
            try plan.kernel.setArguments(
                UInt32(x.dimension), table.tasks, table.blocks, matrices, damping, x.buffer, y.buffer)
            try context.enqueue(plan.kernel, globalSize: [table.count * plan.groupSize], localSize: [plan.groupSize])
        }
    }

    private func plan(vectors: Int) throws -> Plan {
        if let plan = plans[vectors] { return plan }
        let built = try context.buildKernels(
            tunables, element: Element.self, planDefines: ["KB": vectors], names: ["block_dense_product"],
            groupSize: \.denseGroupSize
        ) { tunables, limit in
            var smaller = tunables
            smaller.denseGroupSize = largestPowerOfTwo(atMost: limit)
            return smaller
        }
        let plan = Plan(
            kernel: built.kernels[0], groupSize: built.tunables.denseGroupSize, rowsPerGroup: built.tunables.denseRows)
        plans[vectors] = plan
        return plan
    }

    private func taskTable(
        for blocks: [DenseBlock], rowsPerGroup: Int
    ) throws
        -> (tasks: Buffer<UInt32>, blocks: Buffer<UInt64>, count: Int)
    {
        let key = TableKey(blocks: blocks, rowsPerGroup: rowsPerGroup)
        if let table = tables[key] { return table }
        var tasks: [UInt32] = []
        for (index, block) in blocks.enumerated() {
            for row in stride(from: 0, to: block.size, by: rowsPerGroup) { tasks += [UInt32(index), UInt32(row)] }
        }
        let descriptors = blocks.flatMap { block in
            DenseBlockField.row { field in
                switch field {
                case .offset: UInt64(block.offset)
                case .size: UInt64(block.size)
                case .matrixOffset: UInt64(block.matrixOffset)
                }
            }
        }
        let table = (
            tasks: try Buffer(context: context, copying: tasks), blocks: try Buffer(context: context, copying: descriptors),
            count: tasks.count / 2
        )
        tables[key] = table
        return table
    }

    private func validate(_ blocks: [DenseBlock], dimension: Int, matrices: Buffer<Element>) throws {
        try require(!blocks.isEmpty, "blocks", "is empty")
        var next = 0
        for (index, block) in blocks.enumerated() {
            try require(block.size > 0, "blocks[\(index)]", "has size \(block.size)")
            try require(
                block.offset == next, "blocks", "block \(index) starts at \(block.offset), expected \(next)")
            try require(
                block.matrixOffset >= 0 && block.matrixOffset + block.size * block.size <= matrices.count,
                "blocks[\(index)]", "reads past the end of the matrix buffer (\(matrices.count) elements)")
            next += block.size
        }
        try require(next == dimension, "blocks", "cover \(next) parameters, the vectors have \(dimension)")
    }
}

/// Launch plan for `diagonal_product`: `y = (d + λ) ∘ x` for every vector.
final class DiagonalProduct<Element: DeviceScalar> {
    let context: Context
    private let kernel: Kernel

    init(context: Context) throws {
        self.context = context
        kernel = try context.build(KernelConfiguration(.curvatureProducts, element: Element.self, device: context.device))
            .program.makeKernel(named: "diagonal_product")
    }

    func apply(
        _ diagonal: Buffer<Element>, _ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>
    )
        throws
    {
        try validateDamping(damping)
        try x.requireSameShape(y, "y")
        try require(diagonal.count >= x.dimension, "diagonal", "holds \(diagonal.count) values for \(x.dimension)")
        let total = x.dimension * x.count
        try kernel.setArguments(UInt32(x.dimension), UInt64(total), diagonal, damping, x.buffer, y.buffer)
        try context.enqueue1D(kernel, items: total)
    }
}
