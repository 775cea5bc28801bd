import Testing
import NaturalGradientTestSupport

@_spi(Benchmarks) @testable import NaturalGradient

/// Dense and batched accumulation against the float64 reference at awkward sizes: rows
/// and columns of 1, primes, one past the micro-tile (8 rows, 16 float columns), and a few
/// hundred. Outputs are poisoned with NaN first; β = 0 must not read them.
@Suite("Fisher accumulation")
struct FisherAccumulationTests {
    static let rowCounts = [1, 7, 33, 257]
    static let dimensions = [1, 7, 9, 17, 33, 257, 300]

    @Test(arguments: rowCounts, dimensions)
    func floatDense(rows: Int, dimension: Int) throws {
        try checkDense(Float.self, rows: rows, dimension: dimension, weighted: (rows + dimension) % 2 == 0)
    }

    @Test(arguments: rowCounts, dimensions)
    func doubleDense(rows: Int, dimension: Int) throws {
        try #require(deviceSupports(Double.self))
        try checkDense(Double.self, rows: rows, dimension: dimension, weighted: (rows + dimension) % 2 == 1)
    }

    private func checkDense<T: DeviceScalar>(
        _: T.Type, rows: Int, dimension: Int, weighted: Bool
    )
        throws
    {
        let context = try TestDevice.context()
        let u: [T] = randomValues(rows * dimension, seed: UInt64(rows * 1000 + dimension))
        let weights: [T]? = weighted ? randomValues(rows, seed: 5).map { abs($0) + 0.25 } : nil
        let samples = max(1, rows / 3)
        let factor = try CurvatureFactor(
            context: context, matrix: u, rows: rows, dimension: dimension, samples: samples, weights: weights)
        let output = try Buffer<T>(context: context, count: dimension * dimension)
        try output.fill(.nan)
        try FisherAccumulation<T>(context: context).accumulate(factor, into: output)
        let reference = referenceAccumulation(
            u, rows: rows, dim: dimension, weights: weights, alpha: 1 / Double(samples))
        let result = try output.download()
        #expect(relativeError(result, reference) < tolerance(for: T.self), "M=\(rows) P=\(dimension)")
        for i in 0..<dimension {
            for j in 0..<i where result[i * dimension + j] != result[j * dimension + i] {
                Issue.record("not symmetric at (\(i), \(j))")
                return
            }
        }
    }

    @Test func movingAverageUsesBeta() throws {
        let context = try TestDevice.context()
        let (rows, dimension) = (33, 41)
        let u: [Float] = randomValues(rows * dimension, seed: 11)
        let initialRows: [Float] = randomValues(rows * dimension, seed: 12)
        let initial = referenceAccumulation(initialRows, rows: rows, dim: dimension, alpha: 1)
        let output = try Buffer<Float>(context: context, copying: initial.map { Float($0) })
        let factor = try CurvatureFactor(context: context, matrix: u, rows: rows, dimension: dimension, samples: rows)
        try FisherAccumulation<Float>(context: context).accumulate(factor, into: output, alpha: 0.05, beta: 0.95)
        let reference = referenceAccumulation(u, rows: rows, dim: dimension, alpha: 0.05, beta: 0.95, initial: initial)
        #expect(relativeError(try output.download(), reference) < 1e-5)
    }

    @Test func chunkedAccumulationEqualsOneCall() throws {
        let context = try TestDevice.context()
        let (rows, dimension) = (257, 37)
        let u: [Float] = randomValues(rows * dimension, seed: 21)
        let whole = try DenseCurvature(
            factor: CurvatureFactor(context: context, matrix: u, rows: rows, dimension: dimension, samples: rows))

        let chunked = try DenseCurvature<Float>(context: context, dimension: dimension)
        try chunked.matrix.fill(.nan) // β = 0 on the first chunk must not read this
        for (index, range) in [0..<100, 100..<101, 101..<257].enumerated() {
            let chunk = try CurvatureFactor(
                context: context, matrix: Array(u[(range.lowerBound * dimension)..<(range.upperBound * dimension)]),
                rows: range.count, dimension: dimension, samples: range.count)
            try chunked.accumulate(chunk, alpha: 1 / Float(rows), beta: index == 0 ? 0 : 1)
        }
        let expected = try whole.download().map { Double($0) }
        #expect(relativeError(try chunked.download(), expected) < 1e-6)
    }

    /// Item blocks of several micro-tiles, micro-tiles whose rows straddle two strips (RM
    /// not dividing VW) and k-blocks that do not divide the rows, with weights, β ≠ 0 and
    /// three blocks of awkward sizes in one launch (one past an item block, smaller than a
    /// micro-tile): every element against the float64 reference.
    @Test(arguments: [
        FisherAccumulationTunables(rows: 6, columns: 16, itemTiles: 3, itemStrips: 2, depth: 4),
        FisherAccumulationTunables(rows: 3, columns: 4, itemTiles: 2, itemStrips: 3, depth: 1),
        FisherAccumulationTunables(rows: 5, columns: 8, itemTiles: 1, itemStrips: 1, depth: 0),
        FisherAccumulationTunables(rows: 7, columns: 2, itemTiles: 4, itemStrips: 5, depth: 32),
    ])
    func itemBlocksAndKBlocks(tunables: FisherAccumulationTunables) throws {
        let context = try TestDevice.context()
        let rows = 37
        let sizes = [1, 5, 7 * 16 * 3 / 2 + 1, 41]
        let stride = sizes.reduce(0, +)
        let u: [Float] = randomValues(rows * stride, seed: 51)
        let weights: [Float] = randomValues(rows, seed: 52).map { abs($0) + 0.1 }
        var blocks: [AccumulationBlock] = []
        var initial: [Float] = []
        var column = 0
        for size in sizes {
            blocks.append(
                AccumulationBlock(
                    factorOffset: column, rowStride: stride, rows: rows, dimension: size, outputOffset: initial.count,
                    weightOffset: 0))
            let previous: [Float] = randomValues(size * size, seed: UInt64(60 + size))
            initial += (0..<(size * size)).map { previous[min($0 / size, $0 % size) * size + max($0 / size, $0 % size)] }
            column += size
        }
        let output = try Buffer(context: context, copying: initial)
        try FisherAccumulation<Float>(context: context, tunables: tunables).accumulate(
            blocks, factors: Buffer(context: context, copying: u), weights: Buffer(context: context, copying: weights),
            into: output, alpha: 0.3, beta: 0.7)
        let values = try output.download()
        for (index, block) in blocks.enumerated() {
            let range = block.outputOffset..<(block.outputOffset + block.dimension * block.dimension)
            let reference = referenceAccumulation(
                u, rows: rows, dim: block.dimension, stride: stride, offset: block.factorOffset, weights: weights,
                alpha: 0.3, beta: 0.7, initial: initial[range].map { Double($0) })
            #expect(relativeError(Array(values[range]), reference) < 1e-5, "block \(index), \(tunables)")
        }
    }

    /// Several blocks of mixed sizes, strided column slices of one factor, weighted, in one
    /// launch; the gaps between output regions stay poisoned.
    @Test(arguments: [false, true]) func batchedBlocks(weighted: Bool) throws {
        let context = try TestDevice.context()
        let rows = 45
        let sizes = [1, 17, 9, 64, 3, 130]
        let stride = sizes.reduce(0, +) + 5
        let u: [Float] = randomValues(rows * stride, seed: 31)
        let weights: [Float] = randomValues(rows, seed: 32).map { abs($0) }
        var blocks: [AccumulationBlock] = []
        var column = 2
        var output = 0
        for size in sizes {
            blocks.append(
                AccumulationBlock(
                    factorOffset: column, rowStride: stride, rows: rows, dimension: size, outputOffset: output,
                    weightOffset: weighted ? 0 : nil))
            column += size
            output += size * size + 3 // a poisoned gap after each block
        }
        let factors = try Buffer(context: context, copying: u)
        let weightBuffer = try Buffer(context: context, copying: weights)
        let result = try Buffer<Float>(context: context, count: output)
        try result.fill(.nan)
        try FisherAccumulation<Float>(context: context).accumulate(
            blocks, factors: factors, weights: weightBuffer, into: result, alpha: 0.5, beta: 0)
        let values = try result.download()
        for (index, block) in blocks.enumerated() {
            let reference = referenceAccumulation(
                u, rows: rows, dim: block.dimension, stride: stride, offset: block.factorOffset,
                weights: weighted ? weights : nil, alpha: 0.5)
            let range = block.outputOffset..<(block.outputOffset + block.dimension * block.dimension)
            #expect(relativeError(Array(values[range]), reference) < 1e-5, "block \(index)")
            #expect(values[range.upperBound..<(range.upperBound + 3)].allSatisfy { $0.isNaN }, "gap after \(index)")
        }
    }

    /// A column stride reads the transpose in place: accumulating the columns of U (M x P)
    /// as rows gives U Uᵀ, with a column range chosen by the offset.
    @Test(arguments: [(1, 1), (7, 33), (33, 100), (20, 257)])
    func columnStrideGivesTheGramOfRows(rows: Int, columns: Int) throws {
        let context = try TestDevice.context()
        let u: [Float] = randomValues(rows * columns, seed: UInt64(rows * columns))
        let first = columns / 3
        let count = columns - first
        let gram = try Buffer<Float>(context: context, count: rows * rows)
        try gram.fill(.nan)
        try FisherAccumulation<Float>(context: context).accumulate(
            [
                AccumulationBlock(
                    factorOffset: first, rowStride: 1, columnStride: columns, rows: count, dimension: rows,
                    outputOffset: 0)
            ],
            factors: Buffer(context: context, copying: u), into: gram, alpha: 1, beta: 0)
        let reference = (0..<(rows * rows)).map { index -> Double in
            let (a, b) = (index / rows, index % rows)
            return (first..<columns).reduce(0.0) { $0 + Double(u[a * columns + $1]) * Double(u[b * columns + $1]) }
        }
        #expect(relativeError(try gram.download(), reference) < 1e-5)
    }

    @Test(arguments: [1, 7, 257, 300]) func diagonal(dimension: Int) throws {
        let context = try TestDevice.context()
        let rows = 33
        let u: [Float] = randomValues(rows * dimension, seed: UInt64(dimension))
        let weights: [Float] = randomValues(rows, seed: 2).map { abs($0) }
        let factor = try CurvatureFactor(
            context: context, matrix: u, rows: rows, dimension: dimension, samples: 10, weights: weights)
        let diagonal = try Buffer<Float>(context: context, count: dimension)
        try diagonal.fill(.nan)
        try FisherAccumulation<Float>(context: context).accumulateDiagonal(factor, into: diagonal)
        let full = referenceAccumulation(u, rows: rows, dim: dimension, weights: weights, alpha: 0.1)
        let reference = (0..<dimension).map { full[$0 * dimension + $0] }
        #expect(relativeError(try diagonal.download(), reference) < 1e-5)
    }

    @Test func rejectsBadBlocksBeforeLaunching() throws {
        let context = try TestDevice.context()
        let accumulation = try FisherAccumulation<Float>(context: context)
        let factors = try Buffer<Float>(context: context, count: 100)
        let output = try Buffer<Float>(context: context, count: 100)
        func attempt(_ blocks: [AccumulationBlock], weights: Buffer<Float>? = nil) -> String? {
            do {
                try accumulation.accumulate(blocks, factors: factors, weights: weights, into: output, alpha: 1, beta: 0)
                return nil
            } catch {
                return "\(error)"
            }
        }
        let good = AccumulationBlock(factorOffset: 0, rowStride: 10, rows: 10, dimension: 5, outputOffset: 0)
        #expect(attempt([good]) == nil)
        #expect(attempt([]) != nil)
        var block = good
        block.rows = 0
        #expect(attempt([block])?.contains("empty batch") == true)
        block = good
        block.rowStride = 4
        #expect(attempt([block]) != nil)
        block = good
        block.rows = 11
        #expect(attempt([block])?.contains("past the end of the factor") == true)
        block = good
        block.dimension = 11
        #expect(attempt([block]) != nil)
        block = good
        block.weightOffset = 0
        #expect(attempt([block])?.contains("none were passed") == true)
        var second = good
        second.outputOffset = 20
        #expect(attempt([good, second])?.contains("overlap") == true)
    }
}
