import OpenCLHost

/// The Woodbury (kernel) solve for a factor with fewer rows than parameters (M ≤ P):
/// with `Ũ = diag(√(w/N)) U`,
///
///     (λI + ŨᵀŨ)⁻¹ b = (b − Ũᵀ (λI + ŨŨᵀ)⁻¹ Ũ b) / λ
///
/// The M x M Gram matrix `ŨŨᵀ` is accumulated on the device once per factor (from U in
/// place, no transposed copy); `λI + ŨŨᵀ`
/// is factored on the host in float64 once per λ (`DenseSymmetricFactorization`). Exact up
/// to rounding, so it is the reference the CG path is checked against at large P.
public final class WoodburySolver<Element: DeviceScalar>: CurvatureInverse, ExportableInverse {
    /// The factor U, weights and sample count.
    public let factor: CurvatureFactor<Element>
    /// `ŨŨᵀ` (M x M, row-major, float64).
    public let gram: [Double]
    /// `√(w_m / N)` per row.
    private let rowScales: [Double]
    private let rowDots: Kernel
    private let columnCombination: Kernel
    private let groupSize: Int
    private let vectors: VectorOperations<Element>
    private var factored: (damping: Element, value: DenseSymmetricFactorization)?

    /// Columns of U per Gram chunk: each chunk's M x M partial is summed on the device over
    /// this many terms and the chunks are added on the host in float64, so float32 rounding
    /// grows with the chunk length, not with P (one float32 sum over P = 100,000 terms was
    /// 50x less accurate than OpenBLAS's blocked ssyrk).
    public static var gramChunk: Int { 2048 }

    /// Prepares the Gram matrix `ŨŨᵀ` of `factor`, reading U in place: the accumulation
    /// kernel takes the columns of U as the rows of its factor (column stride M).
    public init(factor: CurvatureFactor<Element>) throws {
        self.factor = factor
        let context = factor.context
        let (rows, dimension) = (factor.rows, factor.dimension)
        let weights = try factor.weights?.downloadFloat64(0..<rows) ?? Array(repeating: 1, count: rows)
        let scales = weights.map { ($0 / Double(factor.samples)).squareRoot() }
        rowScales = scales

        let accumulation = try FisherAccumulation<Element>(context: context)
        let chunkGram = try Buffer<Element>(context: context, count: rows * rows)
        // A factor split into row pieces: each chunk's columns of every piece are gathered into
        // one M x chunk buffer on the device (one more pass over U, against the M²P/2
        // multiply-adds of the Gram), and accumulated from there in the same order as from
        // one buffer, so the Gram is bitwise the unsplit one.
        let staging = factor.pieces.count > 1 ? try Buffer<Element>(context: context, count: rows * Self.gramChunk) : nil
        var sum = [Double](repeating: 0, count: rows * rows)
        for first in stride(from: 0, to: dimension, by: Self.gramChunk) {
            let width = min(Self.gramChunk, dimension - first)
            if let staging {
                for piece in factor.pieces {
                    try staging.copyRectangle(
                        from: piece.matrix, sourceOrigin: (0, first), sourcePitch: dimension,
                        destinationOrigin: (piece.rows.lowerBound, 0), destinationPitch: width, rows: piece.rows.count,
                        columns: width)
                }
            }
            let block = AccumulationBlock(
                factorOffset: staging == nil ? first : 0, rowStride: 1, columnStride: staging == nil ? dimension : width,
                rows: width, dimension: rows, outputOffset: 0)
            try accumulation.accumulate(
                [block], factors: staging ?? factor.pieces[0].matrix, into: chunkGram, alpha: 1, beta: 0)
            let chunk = try chunkGram.downloadFloat64()
            for index in sum.indices { sum[index] += chunk[index] }
        }
        gram = (0..<(rows * rows)).map { sum[$0] * scales[$0 / rows] * scales[$0 % rows] }

        let built = try context.buildFixedGroupKernels(
            CurvatureProductTunables.resolved(for: context.device, element: Element.self), element: Element.self,
            names: ["row_dots", "column_combination"])
        rowDots = built.kernels[0]
        groupSize = built.tunables.groupSize
        columnCombination = built.kernels[1]
        vectors = try VectorOperations(context: context)
    }

    /// `(F + λI)⁻¹` for λ > 0: the Gram matrix, factored now (`ImplicitCurvature.makeInverse`).
    public convenience init(factor: CurvatureFactor<Element>, damping: Element) throws {
        try validateDamping(damping)
        try require(damping > 0, "damping", "the Woodbury identity divides by λ, so it must be positive")
        try self.init(factor: factor)
        _ = try currentFactorization(damping)
    }

    /// The factorisation of `λI + ŨŨᵀ` used by the last solve (path and condition).
    public var lastFactorization: DenseSymmetricFactorization? { factored?.value }

    /// `x = (F + λI)⁻¹ b` for every vector of `b`; λ must be positive (F has rank ≤ M < P).
    public func solve(_ b: VectorBatch<Element>, damping: Element) throws -> VectorBatch<Element> {
        try validateDamping(damping)
        try require(damping > 0, "damping", "the Woodbury identity divides by λ, so it must be positive")
        try require(b.dimension == factor.dimension, "b", "has dimension \(b.dimension), the factor \(factor.dimension)")
        let rows = factor.rows
        let kernelMatrix = try currentFactorization(damping)
        let context = factor.context
        let x = try VectorBatch<Element>(context: context, dimension: b.dimension, count: b.count)
        let t = try Buffer<Element>(context: context, count: rows)
        // Each row piece's share of the coefficients c (the whole t for one piece).
        let coefficients =
            try factor.pieces.count == 1 ? [t] : factor.pieces.map { try Buffer<Element>(context: context, count: $0.rows.count) }
        let v = try Buffer<Element>(context: context, count: b.dimension)
        let column = try Buffer<Element>(context: context, count: b.dimension)
        for index in 0..<b.count {
            let range = (index * b.dimension)..<((index + 1) * b.dimension)
            try column.copy(from: b.buffer, range: range)
            // t = Ũ b, on the host in float64 from here: z = (λI + ŨŨᵀ)⁻¹ t, c = √(w/N) ∘ z.
            // One launch per row piece, each writing its rows of t (bitwise the unsplit t).
            for piece in factor.pieces {
                try rowDots.setArguments(
                    UInt32(b.dimension), piece.matrix, column, Element(1), t, UInt32(piece.rows.lowerBound))
                try context.enqueue(rowDots, globalSize: [piece.rows.count * groupSize], localSize: [groupSize])
            }
            let projected = try t.downloadFloat64().enumerated().map { $1 * rowScales[$0] }
            let z = try kernelMatrix.solve(projected)
            let c = z.enumerated().map { $1 * rowScales[$0] }
            // v = Uᵀ c, each piece continuing the previous pieces' sums (bitwise the one
            // sequential sum over all rows); x = (b − v)/λ.
            for (piece, pieceCoefficients) in zip(factor.pieces, coefficients) {
                try pieceCoefficients.upload(float64: Array(c[piece.rows]))
                try columnCombination.setArguments(
                    UInt32(piece.rows.count), UInt32(b.dimension), piece.matrix, pieceCoefficients, v,
                    UInt32(piece.rows.lowerBound == 0 ? 0 : 1))
                try context.enqueue1D(columnCombination, items: b.dimension)
            }
            try vectors.axpby(-1 / damping, v, 1 / damping, column)
            try x.buffer.copy(from: column, range: 0..<b.dimension, to: range.lowerBound)
        }
        return x
    }

    // MARK: CurvatureInverse

    public var context: Context { factor.context }
    public var dimension: Int { factor.dimension }
    /// `.woodbury`.
    public var method: SolveMethod { .woodbury }
    /// The λ of the cached factorisation.
    public var damping: Element? { factored?.damping }
    /// The cached factorisation of `λI + ŨŨᵀ`.
    public var factorization: DenseSymmetricFactorization? { lastFactorization }
    /// With M < P rows, `F + λI` has the eigenvalue λ (F's null space) while the factored
    /// M x M matrix may be well conditioned, so the system's estimate is
    /// `min(rcond, λ/‖λI + ŨŨᵀ‖₁)`: the two matrices share their largest eigenvalue.
    public var systemReciprocalCondition: Double? {
        guard let factorization = lastFactorization else { return nil }
        guard factor.rows < factor.dimension, factorization.norm > 0 else { return factorization.reciprocalCondition }
        return min(factorization.reciprocalCondition, factorization.damping / factorization.norm)
    }

    /// `x = (F + λI)⁻¹ b` with the cached factorisation's λ.
    public func solve(_ b: VectorBatch<Element>) throws -> VectorBatch<Element> {
        try solve(b, damping: requireDamping())
    }

    /// The factor (which a Woodbury solver never changes) and λ.
    public func exportState() throws -> SavedInverse {
        SavedInverse(source: try factor.savedState(), damping: try requireDamping().float64)
    }

    private func currentFactorization(_ damping: Element) throws -> DenseSymmetricFactorization {
        if let factored, factored.damping == damping { return factored.value }
        let value = try DenseSymmetricFactorization(matrix: gram, dimension: factor.rows, damping: damping.float64)
        factored = (damping, value)
        return value
    }
}
