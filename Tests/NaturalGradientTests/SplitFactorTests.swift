import OpenCLHost
import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

/// Factors split into row pieces by a small allocation limit on the PoCL device (the
/// context's package-level `limitAllocations(to:)`), so CI needs no large memory: every
/// operation on the pieces against the float64 reference and against the unsplit factor.
@Suite("Split factors")
struct SplitFactorTests {
    /// A fresh context on the test device whose largest allocation holds `rows` rows of
    /// `dimension` elements of `T` (its own context: the shared one keeps the real limit).
    private func limitedContext<T: DeviceScalar>(_: T.Type, rowsPerPiece rows: Int, dimension: Int) throws -> Context {
        let context = try Context(device: TestDevice.context().device)
        context.limitAllocations(to: UInt64(rows * dimension * MemoryLayout<T>.stride))
        return context
    }

    /// Awkward shapes and piece sizes: a piece of one row, pieces that do not divide M, a
    /// last piece of one row.
    static let cases: [(rows: Int, dimension: Int, rowsPerPiece: Int)] = [
        (7, 33, 1), (37, 33, 10), (33, 257, 16), (129, 70, 64),
    ]

    @Test(arguments: 0..<cases.count)
    func piecesCoverTheRowsInOrder(index: Int) throws {
        let (rows, dimension, perPiece) = Self.cases[index]
        let context = try limitedContext(Float.self, rowsPerPiece: perPiece, dimension: dimension)
        let u: [Float] = randomValues(rows * dimension, seed: UInt64(index + 1))
        let factor = try CurvatureFactor(context: context, matrix: u, rows: rows, dimension: dimension, samples: rows)
        #expect(factor.pieces.count == (rows + perPiece - 1) / perPiece)
        #expect(factor.pieces.map(\.rows.lowerBound) == Array(stride(from: 0, to: rows, by: perPiece)))
        #expect(factor.pieces.last?.rows.upperBound == rows)
        #expect(factor.pieces.allSatisfy { UInt64($0.matrix.byteCount) <= context.maxAllocationBytes })
        #expect(try factor.downloadFloat64().map { Float($0).bitPattern } == u.map(\.bitPattern))
        if factor.pieces.count > 1 {
            #expect(throws: NaturalGradientError.self) { _ = try factor.matrix }
        }
    }

    @Test(arguments: 0..<cases.count, [1, 3, 11])
    func implicitProductMatchesReference(index: Int, vectors: Int) throws {
        let (rows, dimension, perPiece) = Self.cases[index]
        let context = try limitedContext(Float.self, rowsPerPiece: perPiece, dimension: dimension)
        let u: [Float] = randomValues(rows * dimension, seed: UInt64(index + 11))
        let weights: [Float]? = vectors == 3 ? randomValues(rows, seed: 5).map { abs($0) } : nil
        let samples = max(1, rows / 3)
        let xs: [[Float]] = (0..<vectors).map { randomValues(dimension, seed: UInt64(200 + $0)) }
        let split = try CurvatureFactor(
            context: context, matrix: u, rows: rows, dimension: dimension, samples: samples, weights: weights)
        let whole = try CurvatureFactor(
            context: TestDevice.context(), matrix: u, rows: rows, dimension: dimension, samples: samples, weights: weights)
        #expect(whole.pieces.count == 1)
        let reference = referenceImplicitProduct(
            u, rows: rows, dim: dimension, samples: samples, weights: weights, xs: xs, damping: 0.25)
        let outputs = try [split, whole].map { factor in
            let context = factor.context
            let y = try VectorBatch<Float>(context: context, dimension: dimension, count: vectors)
            try y.buffer.fill(.nan)
            try ImplicitCurvature(factor: factor).apply(
                VectorBatch(context: context, vectors: xs), damping: 0.25, into: y)
            return try y.download().flatMap { $0 }
        }
        #expect(relativeError(outputs[0], reference.flatMap { $0 }) < tolerance(for: Float.self))
        // Rows are grouped per piece, so split and unsplit agree to rounding, not bitwise.
        #expect(relativeError(outputs[0], outputs[1].map { Double($0) }) < tolerance(for: Float.self))
    }

    @Test func doubleImplicitProductMatchesReference() throws {
        try #require(deviceSupports(Double.self))
        let (rows, dimension) = (41, 65)
        let context = try limitedContext(Double.self, rowsPerPiece: 9, dimension: dimension)
        let u: [Double] = randomValues(rows * dimension, seed: 77)
        let xs: [[Double]] = [randomValues(dimension, seed: 78), randomValues(dimension, seed: 79)]
        let factor = try CurvatureFactor(context: context, matrix: u, rows: rows, dimension: dimension, samples: rows)
        #expect(factor.pieces.count == 5)
        let y = try ImplicitCurvature(factor: factor).apply(VectorBatch(context: context, vectors: xs), damping: 0.5)
        let reference = referenceImplicitProduct(u, rows: rows, dim: dimension, samples: rows, xs: xs, damping: 0.5)
        #expect(relativeError(try y.download().flatMap { $0 }, reference.flatMap { $0 }) < tolerance(for: Double.self))
    }

    /// The Woodbury Gram (gathered per column chunk), `U b` and `Uᵀ c` (continued sums) keep
    /// the unsplit summation order: the split solve is bitwise the unsplit one.
    @Test(arguments: [(rows: 37, dimension: 2100, perPiece: 10), (rows: 9, dimension: 4099, perPiece: 4)])
    func woodburyIsBitwiseTheUnsplitSolve(shape: (rows: Int, dimension: Int, perPiece: Int)) throws {
        let (rows, dimension, perPiece) = shape
        let context = try limitedContext(Float.self, rowsPerPiece: perPiece, dimension: dimension)
        let u: [Float] = randomValues(rows * dimension, seed: 31)
        let weights: [Float] = randomValues(rows, seed: 32).map { abs($0) + 0.1 }
        let b: [[Float]] = [randomValues(dimension, seed: 33), randomValues(dimension, seed: 34)]
        let split = try CurvatureFactor(
            context: context, matrix: u, rows: rows, dimension: dimension, samples: rows, weights: weights)
        let whole = try CurvatureFactor(
            context: TestDevice.context(), matrix: u, rows: rows, dimension: dimension, samples: rows, weights: weights)
        #expect(split.pieces.count > 1)
        let solutions = try [split, whole].map { factor in
            let solver = try WoodburySolver(factor: factor, damping: 0.75)
            return (solver.gram, try solver.solve(VectorBatch(context: factor.context, vectors: b)).download())
        }
        #expect(solutions[0].0.map(\.bitPattern) == solutions[1].0.map(\.bitPattern))
        #expect(solutions[0].1.flatMap { $0 }.map(\.bitPattern) == solutions[1].1.flatMap { $0 }.map(\.bitPattern))
        // And it solves the system: (F + λI) x = b in float64.
        let residual = referenceImplicitProduct(
            u, rows: rows, dim: dimension, samples: rows, weights: weights, xs: solutions[0].1, damping: 0.75)
        #expect(relativeError(b.flatMap { $0 }, residual.flatMap { $0 }) < 1e-4)
    }

    @Test(arguments: [(rows: 37, dimension: 33, perPiece: 10), (rows: 20, dimension: 129, perPiece: 3)])
    func accumulationsMatchReference(shape: (rows: Int, dimension: Int, perPiece: Int)) throws {
        let (rows, dimension, perPiece) = shape
        let context = try limitedContext(Float.self, rowsPerPiece: perPiece, dimension: dimension)
        let u: [Float] = randomValues(rows * dimension, seed: 41)
        let weights: [Float] = randomValues(rows, seed: 42).map { abs($0) }
        let samples = rows + 3
        let factor = try CurvatureFactor(
            context: context, matrix: u, rows: rows, dimension: dimension, samples: samples, weights: weights)
        #expect(factor.pieces.count > 1)
        let reference = referenceAccumulation(
            u, rows: rows, dim: dimension, weights: weights, alpha: 1 / Double(samples))

        let dense = try DenseCurvature(factor: factor)
        #expect(relativeError(try dense.matrix.download(), reference) < tolerance(for: Float.self))

        let sizes = [dimension / 3, dimension - dimension / 3]
        let blocks = try BlockDiagonalCurvature(factor: factor, blockSizes: sizes)
        let x: [Float] = randomValues(dimension, seed: 43)
        let y = try blocks.apply(VectorBatch(context: context, vectors: [x]), damping: 0)
        var blockReference = [Double](repeating: 0, count: dimension)
        for i in 0..<dimension {
            for j in 0..<dimension where (i < sizes[0]) == (j < sizes[0]) {
                blockReference[i] += reference[i * dimension + j] * Double(x[j])
            }
        }
        #expect(relativeError(try y.download()[0], blockReference) < tolerance(for: Float.self))

        let diagonal = try DiagonalCurvature(factor: factor).diagonal()
        let diagonalReference = (0..<dimension).map { reference[$0 * dimension + $0] }
        #expect(relativeError(try diagonal.download(), diagonalReference) < tolerance(for: Float.self))
    }

    @Test func conjugateGradientSolvesOnPieces() throws {
        let (rows, dimension) = (45, 301)
        let context = try limitedContext(Float.self, rowsPerPiece: 7, dimension: dimension)
        let u: [Float] = randomValues(rows * dimension, seed: 51)
        let g: [Float] = randomValues(dimension, seed: 52)
        let factor = try CurvatureFactor(context: context, matrix: u, rows: rows, dimension: dimension, samples: rows)
        let solution = try NaturalGradientSolver.solve(
            ImplicitCurvature(factor: factor), VectorBatch(context: context, vectors: [g]), damping: 0.5, method: .cg,
            options: ConjugateGradientOptions(tolerance: 1e-5))
        let x = try solution.x.download()
        let product = referenceImplicitProduct(u, rows: rows, dim: dimension, samples: rows, xs: x, damping: 0.5)
        #expect(relativeError(g, product[0]) < 1e-4)
    }

    /// Pieces over the caller's host memory (`CL_MEM_USE_HOST_PTR`) give the copied factor's
    /// product bitwise: the same pieces, the same kernels.
    @Test func hostMemoryPiecesMatchCopiedPieces() throws {
        let (rows, dimension) = (23, 97)
        let context = try limitedContext(Float.self, rowsPerPiece: 6, dimension: dimension)
        final class Storage {
            var values: [Float]
            init(_ values: [Float]) { self.values = values }
        }
        let storage = Storage(randomValues(rows * dimension, seed: 61))
        let mapped = try storage.values.withUnsafeMutableBufferPointer { pointer in
            try CurvatureFactor(
                context: context, usingHostMemory: pointer, owner: storage, rows: rows, dimension: dimension, samples: rows)
        }
        let copied = try CurvatureFactor(
            context: context, matrix: storage.values, rows: rows, dimension: dimension, samples: rows)
        #expect(mapped.pieces.count == 4)
        let x = try VectorBatch<Float>(context: context, vectors: [randomValues(dimension, seed: 62)])
        let outputs = try [mapped, copied].map { try ImplicitCurvature(factor: $0).apply(x, damping: 0.1).download()[0] }
        #expect(outputs[0].map(\.bitPattern) == outputs[1].map(\.bitPattern))
    }

    @Test func aRowLargerThanOneAllocationIsRefused() throws {
        let context = try limitedContext(Float.self, rowsPerPiece: 1, dimension: 16)
        let error = #expect(throws: NaturalGradientError.self) {
            try CurvatureFactor<Float>(
                context: context, matrix: randomValues(3 * 17, seed: 1), rows: 3, dimension: 17, samples: 3)
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("exceeds the device's largest allocation of 64 bytes"))
    }
}
