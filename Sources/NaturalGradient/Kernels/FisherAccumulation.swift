import OpenCLHost

/// One block of a batched accumulation: the factor slice it reads and the dense symmetric
/// matrix it writes. Used as the cache key of the block's task table.
@_spi(Benchmarks) public struct AccumulationBlock: Hashable, Sendable {
    /// Where the slice's first element sits in the factor buffer.
    public var factorOffset: Int
    /// The distance between consecutive rows of the slice.
    public var rowStride: Int
    /// The distance between consecutive columns of the slice: 1 for a row-major factor;
    /// the row count M to accumulate the rows of Uᵀ (that is, U Uᵀ) straight from U.
    public var columnStride: Int
    /// The number of factor rows (M for this chunk).
    public var rows: Int
    /// The block's size P_b: it reads P_b columns and writes a P_b x P_b matrix.
    public var dimension: Int
    /// Where the block's matrix starts in the output buffer.
    public var outputOffset: Int
    /// Where the block's M row weights start in the weight buffer, or nil for all ones.
    public var weightOffset: Int?

    public init(
        factorOffset: Int, rowStride: Int, columnStride: Int = 1, rows: Int, dimension: Int, outputOffset: Int,
        weightOffset: Int? = nil
    ) {
        self.factorOffset = factorOffset
        self.rowStride = rowStride
        self.columnStride = columnStride
        self.rows = rows
        self.dimension = dimension
        self.outputOffset = outputOffset
        self.weightOffset = weightOffset
    }
}

// `@_spi(Benchmarks)`: Benchmarks/ is a package of its own, so `package` does not reach it,
// and it times the accumulation bare (no representation's checks around it) so that its
// numbers are the kernel's. Not for users, who reach it through the representations.
/// Launch plan for `FisherAccumulation.cl`: `F_b ← βF_b + α U_bᵀ diag(w) U_b` for any
/// number of blocks in one launch, upper-triangle micro-tiles only, full symmetric output.
///
/// Owns kernel objects and cached task tables, so one instance serves one thread.
@_spi(Benchmarks) public final class FisherAccumulation<Element: DeviceScalar> {
    /// The context everything runs on.
    public let context: Context
    /// Rows and columns of one micro-tile (a register tile).
    public let microTile: (rows: Int, columns: Int)
    /// Rows and columns of one work-item's block of micro-tiles.
    public let itemBlock: (rows: Int, columns: Int)

    private let packKernel: Kernel
    private let blocksKernel: Kernel
    private let diagonalKernel: Kernel
    private var tables: [[AccumulationBlock]: TaskTable] = [:]
    private var packed: Buffer<Element>?
    private let groupCap: Int

    private struct TaskTable {
        let tasks: Buffer<UInt32>
        let blocks: Buffer<UInt64>
        let count: Int
        let packedCount: Int
    }

    /// - Parameter tunables: the micro-tile (default: the tuning cache's for this device,
    ///   else the device defaults); throws when outside the family's valid space.
    public init(context: Context, tunables: FisherAccumulationTunables? = nil) throws {
        self.context = context
        let tunables = try (tunables ?? .resolved(for: context.device, element: Element.self))
            .validated(on: context.device, element: Element.self)
        let configuration = KernelConfiguration(tunables, element: Element.self)
        let (rows, columns) = (tunables.rows, tunables.columns)
        let program = try context.build(configuration).program
        packKernel = try program.makeKernel(named: "pack_panels")
        blocksKernel = try program.makeKernel(named: "accumulate_blocks")
        diagonalKernel = try program.makeKernel(named: "accumulate_diagonal")
        microTile = (rows, columns)
        itemBlock = (rows * tunables.itemTiles, columns * tunables.itemStrips)
        // 64 micro-tiles per group as before; an item block of several (CPUs) runs alone in
        // its group, so PoCL's threads share out the item blocks.
        groupCap = max(1, 64 / (tunables.itemTiles * tunables.itemStrips))
    }

    /// `F_b ← β F_b + α U_bᵀ diag(w_b) U_b` for every block, in one launch. β = 0 never
    /// reads the output, so it may start uninitialised.
    @discardableResult
    public func accumulate(
        _ blocks: [AccumulationBlock], factors: Buffer<Element>, weights: Buffer<Element>? = nil,
        into output: Buffer<Element>, alpha: Element, beta: Element
    ) throws -> Event {
        try validate(blocks, factors: factors, weights: weights, output: output)
        try require(alpha.isFinite && beta.isFinite, "alpha", "alpha \(alpha) and beta \(beta) must be finite")
        let table = try taskTable(for: blocks)
        let packed = try packingBuffer(count: table.packedCount)
        // The kernel needs some weight buffer even when every block is unweighted.
        // One packing work-item per row of VW elements (every block's packed length is a
        // multiple of VW).
        let packedRows = table.packedCount / microTile.columns
        try packKernel.setArguments(
            UInt64(packedRows), UInt32(blocks.count), table.blocks, factors, weights ?? factors, packed)
        try context.enqueue1D(packKernel, items: packedRows)
        try blocksKernel.setArguments(UInt32(table.count), table.tasks, table.blocks, packed, output, alpha, beta)
        return try context.enqueue1D(blocksKernel, items: table.count, cap: groupCap)
    }

    /// Dense accumulation of a whole factor: `F ← βF + α Uᵀ diag(w) U`, α = 1/N by default.
    /// A factor split into row pieces is accumulated piece by piece (β for the first, 1
    /// after), so F is rounded to the element type between pieces: equal to the unsplit
    /// result to rounding, not bitwise.
    @discardableResult
    public func accumulate(
        _ factor: CurvatureFactor<Element>, into output: Buffer<Element>, alpha: Element? = nil, beta: Element = 0
    ) throws -> Event {
        var event: Event?
        for (index, piece) in factor.pieces.enumerated() {
            let block = AccumulationBlock(
                factorOffset: 0, rowStride: factor.dimension, rows: piece.rows.count, dimension: factor.dimension,
                outputOffset: 0, weightOffset: piece.weights == nil ? nil : 0)
            let pieceBeta: Element = index == 0 ? beta : 1
            event = try accumulate(
                [block], factors: piece.matrix, weights: piece.weights, into: output,
                alpha: alpha ?? 1 / Element(factor.samples), beta: pieceBeta)
        }
        guard let event else { throw NaturalGradientError.invalidArgument(name: "factor", reason: "has no rows") }
        return event
    }

    /// `d ← βd + α Σ_m w_m u_m²` (the diagonal of the accumulated matrix), α = 1/N by default;
    /// piece by piece for a split factor (as `accumulate(_:into:alpha:beta:)`).
    @discardableResult
    public func accumulateDiagonal(
        _ factor: CurvatureFactor<Element>, into diagonal: Buffer<Element>, alpha: Element? = nil, beta: Element = 0
    ) throws -> Event {
        try require(
            diagonal.count >= factor.dimension, "diagonal",
            "holds \(diagonal.count) values for \(factor.dimension) parameters")
        var event: Event?
        let scale: Element = alpha ?? 1 / Element(factor.samples)
        for (index, piece) in factor.pieces.enumerated() {
            let pieceBeta: Element = index == 0 ? beta : 1
            let weights: Buffer<Element> = piece.weights ?? piece.matrix
            try diagonalKernel.setArguments(
                UInt64(piece.rows.count), UInt64(factor.dimension), UInt64(factor.dimension), piece.matrix,
                weights, UInt32(piece.weights == nil ? 0 : 1), diagonal, scale, pieceBeta)
            event = try context.enqueue1D(diagonalKernel, items: factor.dimension)
        }
        guard let event else { throw NaturalGradientError.invalidArgument(name: "factor", reason: "has no rows") }
        return event
    }

    // MARK: - Task tables

    /// The packed strips of a call (about the size of the factor slices), kept between calls.
    private func packingBuffer(count: Int) throws -> Buffer<Element> {
        if let packed, packed.count >= count { return packed }
        let buffer = try Buffer<Element>(context: context, count: count)
        packed = buffer
        return buffer
    }

    /// The item blocks that meet the upper triangle, of every block, in block, column,
    /// row order, so consecutive work-items share column strips in cache; and each block's
    /// place in the packed strips. Cached per block list.
    private func taskTable(for blocks: [AccumulationBlock]) throws -> TaskTable {
        if let table = tables[blocks] { return table }
        var tasks: [UInt32] = []
        var descriptors: [UInt64] = []
        var packedCount = 0
        for (index, block) in blocks.enumerated() {
            descriptors += AccumulationBlockField.row { field in
                switch field {
                case .factorOffset: UInt64(block.factorOffset)
                case .rowStride: UInt64(block.rowStride)
                case .rows: UInt64(block.rows)
                case .dimension: UInt64(block.dimension)
                case .outputOffset: UInt64(block.outputOffset)
                case .weightOffset: block.weightOffset.map(UInt64.init) ?? UInt64.max
                case .packOffset: UInt64(packedCount)
                case .columnStride: UInt64(block.columnStride)
                }
            }
            packedCount += roundUp(block.dimension, toMultipleOf: microTile.columns) * block.rows
            for j0 in stride(from: 0, to: block.dimension, by: itemBlock.columns) {
                let lastRow = min(block.dimension - 1, j0 + itemBlock.columns - 1)
                for i0 in stride(from: 0, through: lastRow, by: itemBlock.rows) {
                    tasks += [UInt32(index), UInt32(i0), UInt32(j0)]
                }
            }
        }
        let table = TaskTable(
            tasks: try Buffer(context: context, copying: tasks), blocks: try Buffer(context: context, copying: descriptors),
            count: tasks.count / 3, packedCount: packedCount)
        if tables.count > 64 { tables.removeAll() } // callers that vary chunk sizes forever
        tables[blocks] = table
        return table
    }

    private func validate(
        _ blocks: [AccumulationBlock], factors: Buffer<Element>, weights: Buffer<Element>?, output: Buffer<Element>
    ) throws {
        try require(!blocks.isEmpty, "blocks", "is empty")
        for (index, block) in blocks.enumerated() {
            let name = "blocks[\(index)]"
            try require(block.rows > 0, name, "has no rows (an empty batch)")
            try require(block.dimension > 0, name, "has dimension \(block.dimension)")
            try require(block.dimension < 1 << 31, name, "dimension \(block.dimension) is too large")
            try require(block.rowStride >= 1 && block.columnStride >= 1, name, "strides must be positive")
            try require(
                block.columnStride > 1 || block.rowStride >= block.dimension, name,
                "row stride \(block.rowStride) < dimension")
            try require(block.factorOffset >= 0 && block.outputOffset >= 0, name, "has a negative offset")
            try require(
                block.factorOffset + (block.rows - 1) * block.rowStride + (block.dimension - 1) * block.columnStride
                    < factors.count, name, "reads past the end of the factor buffer (\(factors.count) elements)")
            try require(
                block.outputOffset + block.dimension * block.dimension <= output.count, name,
                "writes past the end of the output buffer (\(output.count) elements)")
            if let offset = block.weightOffset {
                guard let weights else {
                    throw NaturalGradientError.invalidArgument(name: name, reason: "has weights but none were passed")
                }
                try require(
                    offset >= 0 && offset + block.rows <= weights.count, name,
                    "reads past the end of the weights (\(weights.count) values)")
            }
        }
        let regions = blocks.map { $0.outputOffset..<($0.outputOffset + $0.dimension * $0.dimension) }
            .sorted { $0.lowerBound < $1.lowerBound }
        for (first, second) in zip(regions, regions.dropFirst()) where first.overlaps(second) {
            throw NaturalGradientError.invalidArgument(
                name: "blocks", reason: "output regions \(first) and \(second) overlap")
        }
        try require(factors !== output, "output", "must not be the factor buffer")
    }
}
