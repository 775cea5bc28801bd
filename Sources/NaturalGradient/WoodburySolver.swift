import OpenCLHost

/// The Woodbury (kernel) solve for a factor with fewer rows than parameters (M ≤ P):
/// with `Ũ = diag(√(w/N)) U`,
///
///     (λI + ŨᵀŨ)⁻¹ b = (b − Ũᵀ (λI + ŨŨᵀ)⁻¹ Ũ b) / λ
///
/// The M x M Gram matrix `ŨŨᵀ` is accumulated on the device once per factor; `λI + ŨŨᵀ`
/// is factored on the host in float64 once per λ (`DenseSymmetricFactorization`). Exact up
/// to rounding, so it is the reference the CG path is checked against at large P.
public final class WoodburySolver<Element: DeviceScalar> {
    /// The factor U, weights and sample count.
    public let factor: CurvatureFactor<Element>
    /// `ŨŨᵀ` (M x M, row-major, float64).
    public let gram: [Double]
    /// `√(w_m / N)` per row.
    private let rowScales: [Double]
    private let transposed: Buffer<Element>
    private let rowDots: Kernel
    private let groupSize: Int
    private let vectors: VectorOperations<Element>
    private var factorization: (damping: Element, value: DenseSymmetricFactorization)?

    /// Prepares the Gram matrix of `factor` (one P x M transposed copy of U on the device).
    public init(factor: CurvatureFactor<Element>) throws {
        self.factor = factor
        let context = factor.context
        let (rows, dimension) = (factor.rows, factor.dimension)
        let weights = try factor.weights?.download(0..<rows).map(Double.init) ?? Array(repeating: 1, count: rows)
        let scales = weights.map { ($0 / Double(factor.samples)).squareRoot() }
        rowScales = scales

        // Uᵀ (P x M): its rows are U's columns, so U Uᵀ is the accumulation of Uᵀ's rows.
        transposed = try Buffer<Element>(context: context, count: rows * dimension)
        let transpose = try context.build(KernelConfiguration(.vector, element: Element.self, device: context.device))
            .program.makeKernel(named: "transpose")
        try transpose.setArguments(try uint32(rows, "rows"), try uint32(dimension, "dimension"), factor.matrix, transposed)
        try context.enqueue2D(transpose, columns: dimension, rows: rows)
        let gramBuffer = try Buffer<Element>(context: context, count: rows * rows)
        try FisherAccumulation<Element>(context: context).accumulate(
            [AccumulationBlock(factorOffset: 0, rowStride: rows, rows: dimension, dimension: rows, outputOffset: 0)],
            factors: transposed, into: gramBuffer, alpha: 1, beta: 0)
        let raw = try gramBuffer.download()
        gram = (0..<(rows * rows)).map { Double(raw[$0]) * scales[$0 / rows] * scales[$0 % rows] }

        let built = try context.buildFixedGroupKernels(
            KernelConfiguration(.fisherProducts, element: Element.self, device: context.device), names: ["row_dots"])
        rowDots = built.kernels[0]
        groupSize = built.groupSize
        vectors = try VectorOperations(context: context)
    }

    /// The factorisation of `λI + ŨŨᵀ` used by the last solve (path and condition).
    public var lastFactorization: DenseSymmetricFactorization? { factorization?.value }

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
        let v = try Buffer<Element>(context: context, count: b.dimension)
        let column = try Buffer<Element>(context: context, count: b.dimension)
        for index in 0..<b.count {
            let range = (index * b.dimension)..<((index + 1) * b.dimension)
            try column.copy(from: b.buffer, range: range)
            // t = Ũ b, on the host in float64 from here: z = (λI + ŨŨᵀ)⁻¹ t, c = √(w/N) ∘ z.
            try launchRowDots(factor.matrix, rows: rows, columns: b.dimension, x: column, into: t)
            let projected = try t.download().enumerated().map { Double($1) * rowScales[$0] }
            let z = try kernelMatrix.solve(projected)
            try t.upload(z.enumerated().map { Element($1 * rowScales[$0]) })
            // v = Uᵀ c; x = (b − v)/λ.
            try launchRowDots(transposed, rows: b.dimension, columns: rows, x: t, into: v)
            try vectors.axpby(-1 / damping, v, 1 / damping, column)
            try x.buffer.copy(from: column, range: 0..<b.dimension, to: range.lowerBound)
        }
        return x
    }

    private func currentFactorization(_ damping: Element) throws -> DenseSymmetricFactorization {
        if let factorization, factorization.damping == damping { return factorization.value }
        let value = try DenseSymmetricFactorization(matrix: gram, dimension: factor.rows, damping: Double(damping))
        factorization = (damping, value)
        return value
    }

    private func launchRowDots(_ a: Buffer<Element>, rows: Int, columns: Int, x: Buffer<Element>, into y: Buffer<Element>)
        throws
    {
        try rowDots.setArguments(UInt32(columns), a, x, Element(1), y)
        try factor.context.enqueue(rowDots, globalSize: [rows * groupSize], localSize: [groupSize])
    }
}
