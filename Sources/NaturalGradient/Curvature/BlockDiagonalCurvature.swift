import OpenCLHost

/// F approximated by dense symmetric blocks on its diagonal, one per group of consecutive
/// parameters (typically one per layer); the blocks' matrices are packed one after another.
/// All blocks are accumulated in one launch and applied in one launch.
public final class BlockDiagonalCurvature<Element: DeviceScalar>: CurvatureOperator {
    /// The blocks, in parameter order, tiling `0..<dimension`.
    public let blocks: [DenseBlock]
    /// The packed block matrices (Σ size² values).
    public let matrices: Buffer<Element>
    public let dimension: Int
    private let accumulation: FisherAccumulation<Element>
    private let product: BlockDenseProduct<Element>

    /// Zero blocks of the given sizes (they must be positive; they tile the parameters).
    public init(context: Context, blockSizes: [Int]) throws {
        try require(!blockSizes.isEmpty, "blockSizes", "is empty")
        var blocks: [DenseBlock] = []
        var offset = 0
        var matrixOffset = 0
        for (index, size) in blockSizes.enumerated() {
            try require(size > 0, "blockSizes", "block \(index) has size \(size)")
            blocks.append(DenseBlock(offset: offset, size: size, matrixOffset: matrixOffset))
            offset += size
            matrixOffset += size * size
        }
        self.blocks = blocks
        self.dimension = offset
        matrices = try Buffer(context: context, count: matrixOffset)
        try matrices.fill(0)
        accumulation = try FisherAccumulation(context: context)
        product = try BlockDenseProduct(context: context)
    }

    /// The block-diagonal part of the Fisher of `factor`; `blockSizes` must add up to P.
    public convenience init(factor: CurvatureFactor<Element>, blockSizes: [Int]) throws {
        try require(
            blockSizes.reduce(0, +) == factor.dimension, "blockSizes",
            "cover \(blockSizes.reduce(0, +)) parameters, the factor has \(factor.dimension)")
        try self.init(context: factor.context, blockSizes: blockSizes)
        try accumulate(factor, beta: 0)
    }

    public var context: Context { matrices.context }

    /// `F_b ← β F_b + α U_bᵀ diag(w) U_b` for every block at once, where U_b are the block's
    /// columns of U; α = 1/N by default. Call once per chunk of rows (β = 1 after the
    /// first, α = 1/N of all chunks) to stream N without bound, or with β < 1 for an
    /// exponential moving average.
    public func accumulate(_ factor: CurvatureFactor<Element>, alpha: Element? = nil, beta: Element = 1) throws {
        try require(
            factor.dimension == dimension, "factor", "has dimension \(factor.dimension), the blocks \(dimension)")
        // A split factor: one accumulation per row piece (β for the first, 1 after).
        for (index, piece) in factor.pieces.enumerated() {
            let descriptors = blocks.map { block in
                AccumulationBlock(
                    factorOffset: block.offset, rowStride: factor.dimension, rows: piece.rows.count, dimension: block.size,
                    outputOffset: block.matrixOffset, weightOffset: piece.weights == nil ? nil : 0)
            }
            try accumulation.accumulate(
                descriptors, factors: piece.matrix, weights: piece.weights, into: matrices,
                alpha: alpha ?? 1 / Element(factor.samples), beta: index == 0 ? beta : 1)
        }
    }

    public func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        try validate(x, y)
        try product.apply(blocks, matrices: matrices, x, damping: damping, into: y)
    }

    public func diagonal() throws -> Buffer<Element> {
        let diagonal = try Buffer<Element>(context: context, count: dimension)
        let checks = try VectorChecks<Element>(context: context)
        for block in blocks {
            let values = try Buffer<Element>(context: context, count: block.size)
            try checks.gather(matrices, offset: block.matrixOffset, stride: block.size + 1, count: block.size, into: values)
            try diagonal.copy(from: values, range: 0..<block.size, to: block.offset)
        }
        return diagonal
    }

    /// Block `index`'s matrix (row-major, size x size), read back to the host.
    public func blockMatrix(_ index: Int) throws -> [Element] {
        try require(blocks.indices.contains(index), "index", "\(index) is not one of \(blocks.count) blocks")
        let block = blocks[index]
        return try matrices.download(block.matrixOffset..<(block.matrixOffset + block.size * block.size))
    }
}

extension BlockDiagonalCurvature: FactorAccumulatingCurvature, ExportableCurvature {
    /// The packed block matrices.
    public func exportState() throws -> SavedCurvature {
        .blockDiagonal(matrices: try matrices.downloadFloat64())
    }
}
