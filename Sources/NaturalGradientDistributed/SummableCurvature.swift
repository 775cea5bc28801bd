import NaturalGradient
import OpenCLHost

/// A dense symmetric matrix inside a statistics buffer: `size x size` values, row-major,
/// from `offset`.
public struct SymmetricBlock: Hashable, Sendable {
    /// Where the matrix starts in the buffer.
    public let offset: Int
    /// Its number of rows and columns.
    public let size: Int

    /// A block of `size x size` values at `offset`.
    public init(offset: Int, size: Int) {
        self.offset = offset
        self.size = size
    }
}

/// How a representation's statistics sit in its buffer, which decides what goes over the
/// wire: the upper triangles of symmetric blocks (n(n+1)/2 values for an n x n block, not
/// n²), or a plain vector.
public enum StatisticsLayout: Hashable, Sendable {
    /// Symmetric matrices; their upper triangles are summed and mirrored back.
    case symmetric([SymmetricBlock])
    /// `count` values from the start of the buffer, summed as they are.
    case vector(count: Int)

    /// The number of values summed over the ranks.
    public var packedCount: Int {
        switch self {
        case let .symmetric(blocks): blocks.reduce(0) { $0 + $1.size * ($1.size + 1) / 2 }
        case let .vector(count): count
        }
    }

    /// The buffer elements the layout spans, from 0.
    var extent: Int {
        switch self {
        case let .symmetric(blocks): blocks.map { $0.offset + $0.size * $0.size }.max() ?? 0
        case let .vector(count): count
        }
    }

    /// The upper triangles of every block, row by row, one block after another.
    func pack<T>(_ values: [T]) -> [T] {
        guard case let .symmetric(blocks) = self else { return values }
        var packed: [T] = []
        packed.reserveCapacity(packedCount)
        for block in blocks {
            for row in 0..<block.size {
                let start = block.offset + row * block.size
                packed += values[(start + row)..<(start + block.size)]
            }
        }
        return packed
    }

    /// Writes `packed` back into `values`, both triangles (so every block is exactly symmetric).
    func unpack<T>(_ packed: [T], into values: inout [T]) {
        guard case let .symmetric(blocks) = self else {
            values = packed
            return
        }
        var next = 0
        for block in blocks {
            let n = block.size
            for row in 0..<n {
                for column in row..<n {
                    values[block.offset + row * n + column] = packed[next]
                    values[block.offset + column * n + row] = packed[next]
                    next += 1
                }
            }
        }
    }
}

/// A representation whose statistics are sums over samples, so the ranks' partial
/// statistics add up to the global ones: `DistributedCurvature` accumulates each rank's rows
/// into it and sums the statistics over the ranks. `DenseCurvature`, `BlockDiagonalCurvature`,
/// `DiagonalCurvature` and `KroneckerCurvature` conform.
public protocol SummableCurvature<Element>: CurvatureOperator where Element: CommunicableScalar {
    /// The element type of vectors and data.
    associatedtype Element

    /// The buffer the statistics live in.
    var statistics: Buffer<Element> { get }
    /// Where in `statistics` they are, and so what is communicated.
    var statisticsLayout: StatisticsLayout { get }

    /// `(F + λI)⁻¹` when every rank holds the same F. The default factors
    /// `makeInverse(damping:)` redundantly on every rank (identical inputs, identical
    /// inverses, no communication) and ignores `gradientWorkers`; K-FAC spreads its layers
    /// over the ranks instead.
    func makeInverse(
        damping: Element, communicator: Communicator, gradientWorkers: GradientWorkers
    ) throws
        -> any CurvatureInverse<Element>
}

extension SummableCurvature {
    /// `makeInverse(damping:)` on every rank.
    public func makeInverse(
        damping: Element, communicator _: Communicator, gradientWorkers _: GradientWorkers
    ) throws
        -> any CurvatureInverse<Element>
    {
        try makeInverse(damping: damping)
    }

    /// Replaces the statistics on every rank by their sum over the ranks, added in rank
    /// order (`Communicator.sumInRankOrder`): download, pack the upper triangles, one
    /// reproducible allreduce, unpack, upload.
    public func sumStatistics(over communicator: Communicator) throws {
        let layout = statisticsLayout
        guard communicator.size > 1 else { return }
        var values = try statistics.download(0..<layout.extent)
        var packed = layout.pack(values)
        try communicator.sumInRankOrder(&packed)
        layout.unpack(packed, into: &values)
        try statistics.upload(values)
    }
}

extension DenseCurvature: SummableCurvature where Element: CommunicableScalar {
    /// The P x P matrix.
    public var statistics: Buffer<Element> { matrix }
    /// One symmetric block.
    public var statisticsLayout: StatisticsLayout { .symmetric([SymmetricBlock(offset: 0, size: dimension)]) }
}

extension BlockDiagonalCurvature: SummableCurvature where Element: CommunicableScalar {
    /// The packed block matrices.
    public var statistics: Buffer<Element> { matrices }
    /// One symmetric block per diagonal block.
    public var statisticsLayout: StatisticsLayout {
        .symmetric(blocks.map { SymmetricBlock(offset: $0.matrixOffset, size: $0.size) })
    }
}

extension DiagonalCurvature: SummableCurvature where Element: CommunicableScalar {
    /// The P diagonal values.
    public var statistics: Buffer<Element> { values }
    /// P values.
    public var statisticsLayout: StatisticsLayout { .vector(count: dimension) }
}

extension KroneckerCurvature: SummableCurvature where Element: CommunicableScalar {
    /// The packed factors A_l, G_l.
    public var statistics: Buffer<Element> { factors }
    /// A_l and G_l of every layer. (The factors' traces, which the factored damping needs,
    /// are cached by `accumulate` lazily, so summing right after accumulating is safe.)
    public var statisticsLayout: StatisticsLayout {
        .symmetric(
            layers.flatMap {
                [SymmetricBlock(offset: $0.aOffset, size: $0.inputs), SymmetricBlock(offset: $0.gOffset, size: $0.outputs)]
            })
    }

    /// KAISA: each layer's inversion on one rank (`DistributedKroneckerSolver`).
    public func makeInverse(
        damping: Element, communicator: Communicator, gradientWorkers: GradientWorkers
    ) throws
        -> any CurvatureInverse<Element>
    {
        try DistributedKroneckerSolver(
            curvature: self, communicator: communicator, damping: damping, gradientWorkers: gradientWorkers)
    }
}
