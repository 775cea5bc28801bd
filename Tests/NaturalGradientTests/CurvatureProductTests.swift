import Testing
import NaturalGradientTestSupport

@_spi(Benchmarks) @testable import NaturalGradient

/// Every representation's product against the float64 reference, outputs poisoned first.
@Suite("Curvature products")
struct CurvatureProductTests {
    static let shapes: [(rows: Int, dimension: Int)] = [
        (1, 1), (7, 33), (33, 7), (257, 257), (33, 1000), (9, 4097), (300, 129),
    ]

    @Test(arguments: 0..<shapes.count, [1, 3, 11])
    func floatImplicit(shape: Int, vectors: Int) throws {
        try checkImplicit(Float.self, Self.shapes[shape], vectors: vectors)
    }

    @Test(arguments: 0..<shapes.count, [1, 3, 11])
    func doubleImplicit(shape: Int, vectors: Int) throws {
        try #require(deviceSupports(Double.self))
        try checkImplicit(Double.self, Self.shapes[shape], vectors: vectors)
    }

    private func checkImplicit<T: DeviceScalar>(
        _: T.Type, _ shape: (rows: Int, dimension: Int), vectors: Int
    ) throws {
        let context = try TestDevice.context()
        let (rows, dimension) = shape
        let u: [T] = randomValues(rows * dimension, seed: UInt64(rows * 7 + dimension))
        let weights: [T]? = vectors == 3 ? randomValues(rows, seed: 4).map { abs($0) } : nil
        let samples = max(1, rows / 2)
        let xs: [[T]] = (0..<vectors).map { randomValues(dimension, seed: UInt64(100 + $0)) }
        let factor = try CurvatureFactor(
            context: context, matrix: u, rows: rows, dimension: dimension, samples: samples, weights: weights)
        let operatorUnderTest = try ImplicitCurvature(factor: factor)
        let x = try VectorBatch(context: context, vectors: xs)
        let y = try VectorBatch<T>(context: context, dimension: dimension, count: vectors)
        try y.buffer.fill(.nan)
        try operatorUnderTest.apply(x, damping: 0.125, into: y)
        let reference = referenceImplicitProduct(
            u, rows: rows, dim: dimension, samples: samples, weights: weights, xs: xs, damping: 0.125)
        #expect(relativeError(try y.download().flatMap { $0 }, reference.flatMap { $0 }) < tolerance(for: T.self))
    }

    /// Wide factors make the CPU plan use short row blocks (RB·P·k within 1 MiB: RB = 2 for
    /// one vector at P = 70001, RB = 1 for three), with a partial last block per group.
    @Test(arguments: [1, 3]) func implicitWithShortRowBlocks(vectors: Int) throws {
        try checkImplicit(Float.self, (rows: 13, dimension: 70_001), vectors: vectors)
    }

    @Test func implicitProductIsBitwiseRepeatable() throws {
        let context = try TestDevice.context()
        let (rows, dimension) = (257, 4097)
        let factor = try CurvatureFactor<Float>(
            context: context, matrix: randomValues(rows * dimension, seed: 9), rows: rows, dimension: dimension,
            samples: rows)
        let curvature = try ImplicitCurvature(factor: factor)
        let x = try VectorBatch<Float>(context: context, vectors: [randomValues(dimension, seed: 10)])
        let first = try curvature.apply(x, damping: 0.5).download()[0].map(\.bitPattern)
        for _ in 0..<3 {
            #expect(try curvature.apply(x, damping: 0.5).download()[0].map(\.bitPattern) == first)
        }
    }

    /// `Implicit`, `Dense` from the same U, and `BlockDiagonal` with one block agree.
    @Test(arguments: [(7, 9), (33, 257), (300, 17)])
    func representationsAgree(rows: Int, dimension: Int) throws {
        let context = try TestDevice.context()
        let u: [Float] = randomValues(rows * dimension, seed: UInt64(rows + dimension))
        let factor = try CurvatureFactor(context: context, matrix: u, rows: rows, dimension: dimension, samples: rows)
        let xs: [[Float]] = (0..<2).map { randomValues(dimension, seed: UInt64(50 + $0)) }
        let x = try VectorBatch(context: context, vectors: xs)
        let operators: [any CurvatureOperator<Float>] = [
            try ImplicitCurvature(factor: factor), try DenseCurvature(factor: factor),
            try BlockDiagonalCurvature(factor: factor, blockSizes: [dimension]),
        ]
        let reference = referenceImplicitProduct(
            u, rows: rows, dim: dimension, samples: rows, xs: xs, damping: 1e-2
        ).flatMap { $0 }
        let full = referenceAccumulation(u, rows: rows, dim: dimension, alpha: 1 / Double(rows))
        let diagonalReference = (0..<dimension).map { full[$0 * dimension + $0] }
        for curvature in operators {
            let y = try VectorBatch<Float>(context: context, dimension: dimension, count: 2)
            try y.buffer.fill(.nan)
            try curvature.apply(x, damping: 1e-2, into: y)
            #expect(relativeError(try y.download().flatMap { $0 }, reference) < 1e-5, "\(type(of: curvature))")
            #expect(relativeError(try curvature.diagonal().download(), diagonalReference) < 1e-5)
            let trace = diagonalReference.reduce(0, +)
            #expect(abs(try curvature.trace() - trace) <= 1e-5 * trace)
        }
    }

    @Test(arguments: [false, true]) func blockDiagonalWithMixedBlocks(double: Bool) throws {
        if double {
            try #require(deviceSupports(Double.self))
            try checkBlockDiagonal(Double.self)
        } else {
            try checkBlockDiagonal(Float.self)
        }
    }

    private func checkBlockDiagonal<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let sizes = [1, 17, 9, 130, 33]
        let dimension = sizes.reduce(0, +)
        let rows = 21
        let u: [T] = randomValues(rows * dimension, seed: 77)
        let factor = try CurvatureFactor(context: context, matrix: u, rows: rows, dimension: dimension, samples: 5)
        let curvature = try BlockDiagonalCurvature(factor: factor, blockSizes: sizes)
        let xs: [[T]] = (0..<3).map { randomValues(dimension, seed: UInt64(60 + $0)) }
        let y = try VectorBatch<T>(context: context, dimension: dimension, count: 3)
        try y.buffer.fill(.nan)
        try curvature.apply(VectorBatch(context: context, vectors: xs), damping: 0.3, into: y)

        // Reference: the full Fisher with everything off the diagonal blocks zeroed.
        var full = referenceAccumulation(u, rows: rows, dim: dimension, alpha: 1.0 / 5)
        let owner = sizes.enumerated().flatMap { index, size in Array(repeating: index, count: size) }
        for i in 0..<dimension {
            for j in 0..<dimension where owner[i] != owner[j] { full[i * dimension + j] = 0 }
        }
        let reference = xs.flatMap { x in referenceDenseProduct(full, dim: dimension, x: x.map { Double($0) }, damping: 0.3) }
        #expect(relativeError(try y.download().flatMap { $0 }, reference) < tolerance(for: T.self))
        for (index, block) in curvature.blocks.enumerated() {
            let expected = (0..<(block.size * block.size)).map { element in
                full[(block.offset + element / block.size) * dimension + block.offset + element % block.size]
            }
            #expect(relativeError(try curvature.blockMatrix(index), expected) < tolerance(for: T.self))
        }
    }

    /// `BlockDenseProduct` at awkward block sizes (1, 7, 300, 257, 33, 513) with 1, 3 and 11
    /// vectors (11: two passes), outputs poisoned, under the device's tunables and forced
    /// alternatives (interleaved columns, short groups, rows per group that do not divide
    /// the blocks).
    @Test(arguments: [false, true]) func blockDenseAwkwardSizes(double: Bool) throws {
        if double {
            try #require(deviceSupports(Double.self))
            try checkBlockDense(Double.self)
        } else {
            try checkBlockDense(Float.self)
        }
    }

    private func checkBlockDense<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let sizes = [1, 7, 300, 257, 33, 513]
        var blocks: [DenseBlock] = []
        var offset = 0, matrixOffset = 0
        for size in sizes {
            blocks.append(DenseBlock(offset: offset, size: size, matrixOffset: matrixOffset))
            offset += size
            matrixOffset += size * size
        }
        let dimension = offset
        var matrices = [T](repeating: 0, count: matrixOffset)
        var full = [Double](repeating: 0, count: dimension * dimension)
        for (index, block) in blocks.enumerated() {
            let raw: [T] = randomValues(block.size * block.size, seed: UInt64(500 + index))
            for i in 0..<block.size {
                for j in 0..<block.size {
                    let value = i <= j ? raw[i * block.size + j] : raw[j * block.size + i]
                    matrices[block.matrixOffset + i * block.size + j] = value
                    full[(block.offset + i) * dimension + block.offset + j] = Double(value)
                }
            }
        }
        let buffer = try Buffer<T>(context: context, copying: matrices)
        let configurations: [[String: Int]] = [
            [:], ["DRB": 3, "DWGS": 4, "CONTIGUOUS": 1, "VW": 8], ["DRB": 5, "DWGS": 32, "CONTIGUOUS": 0, "VW": 4],
            ["DRB": 1, "DWGS": 64, "CONTIGUOUS": 0, "VW": 2],
        ]
        var references: [Int: [[Double]]] = [:]
        for defines in configurations {
            let product = try BlockDenseProduct<T>(context: context, defines: defines)
            for count in [1, 3, 11] {
                let xs: [[T]] = (0..<count).map { randomValues(dimension, seed: UInt64(600 + $0)) }
                let y = try VectorBatch<T>(context: context, dimension: dimension, count: count)
                try y.buffer.fill(.nan)
                try product.apply(blocks, matrices: buffer, VectorBatch(context: context, vectors: xs), damping: 0.7, into: y)
                let out = try y.download()
                let expected =
                    references[count]
                    ?? xs.map {
                        referenceDenseProduct(full, dim: dimension, x: $0.map { Double($0) }, damping: 0.7)
                    }
                references[count] = expected
                for j in 0..<count {
                    #expect(relativeError(out[j], expected[j]) < tolerance(for: T.self), "vector \(j) of \(count), \(defines)")
                }
            }
        }
    }

    @Test func diagonalRepresentation() throws {
        let context = try TestDevice.context()
        let (rows, dimension) = (33, 1000)
        let u: [Float] = randomValues(rows * dimension, seed: 3)
        let factor = try CurvatureFactor(context: context, matrix: u, rows: rows, dimension: dimension, samples: rows)
        let curvature = try DiagonalCurvature(factor: factor)
        let xs: [[Float]] = [randomValues(dimension, seed: 1), randomValues(dimension, seed: 2)]
        let y = try VectorBatch<Float>(context: context, dimension: dimension, count: 2)
        try y.buffer.fill(.nan)
        try curvature.apply(VectorBatch(context: context, vectors: xs), damping: 0.5, into: y)
        let full = referenceAccumulation(u, rows: rows, dim: dimension, alpha: 1 / Double(rows))
        let reference = xs.flatMap { x in (0..<dimension).map { (full[$0 * dimension + $0] + 0.5) * Double(x[$0]) } }
        #expect(relativeError(try y.download().flatMap { $0 }, reference) < 1e-5)
    }
}
