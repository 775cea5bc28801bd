import Foundation
import OpenCLHost

/// Newton-Schulz inverses of several symmetric positive definite matrices on the device at
/// once: `X₀ = αI`, `X ← 2X − X M X` (Hotelling's iteration; the error `I − M X` squares
/// every step), the products by the Kronecker kernels with no kernel of its own: matrix i is
/// "layer" i of an `n_i x n_i` `KroneckerCurvature` whose G and A slots both hold `X_i` and
/// whose parameter vector holds `M_i`, so one product `G V A` is `X_i M_i X_i` for every
/// matrix in two launches (two GEMMs, 4n³ flops per matrix and iteration). The Kronecker
/// kernels' GPU variants are what a GPU runs here.
///
/// `α = 2 / (u + l)` with `u = min(‖M‖₁, ‖M‖_F) ≥ λmax` and the caller's lower bound
/// `l ≤ λmin` (the damping: the factor itself is positive semi-definite), so the initial
/// error is at most `e₀ = (u − l)/(u + l) < 1` and `⌈log₂(ln ε / ln e₀)⌉ + 1` iterations
/// reach the element type's rounding level ε. Then a sampled residual decides (float64 on
/// the host, from the downloaded X), with further single iterations while it still halves.
///
/// Device memory: six values per matrix entry (M, X, X M X, the product's intermediate and
/// the two factor slots).
@_spi(Benchmarks) public final class NewtonSchulzInversion<Element: DeviceScalar> {
    /// The matrices' orders.
    public let orders: [Int]
    private let work: KroneckerCurvature<Element>
    private let matrices: VectorBatch<Element>
    private let iterate: VectorBatch<Element>
    private let product: VectorBatch<Element>
    private let vectors: VectorOperations<Element>
    private let symmetrize: Kernel

    /// Device buffers for matrices of `orders`, the Kronecker kernels built with
    /// `kroneckerTunables` (nil: the tuning cache's or the device defaults).
    public init(context: Context, orders: [Int], kroneckerTunables: KroneckerTunables? = nil) throws {
        try require(!orders.isEmpty && orders.allSatisfy { $0 > 0 }, "orders", "must be positive and not empty, got \(orders)")
        self.orders = orders
        work = try KroneckerCurvature(context: context, shapes: orders.map { ($0, $0) }, tunables: kroneckerTunables)
        matrices = try VectorBatch(context: context, dimension: work.dimension)
        iterate = try VectorBatch(context: context, dimension: work.dimension)
        product = try VectorBatch(context: context, dimension: work.dimension)
        vectors = try VectorOperations(context: context)
        symmetrize = try context.build(KernelConfiguration(.vector, element: Element.self, device: context.device)).program
            .makeKernel(named: "symmetrize")
    }

    /// The outcome for one matrix: the iterations run and the sampled residual (infinity
    /// where the inverse holds a non-finite value).
    public struct Outcome: Equatable, Sendable {
        /// Newton-Schulz iterations run.
        public let iterations: Int
        /// The sampled relative residual.
        public let residual: Double
    }

    /// Inverts `matrices[i]` (row-major, full symmetric, float64, order `orders[i]`) whose
    /// smallest eigenvalue is at least `lowerBounds[i] ≥ 0`, under `policy`'s iteration cap,
    /// tolerance and probes. The inverses stay on the device (`copyInverse`).
    public func invert(_ hostMatrices: [[Double]], lowerBounds: [Double], policy: FactorInversionPolicy) throws -> [Outcome] {
        try require(
            hostMatrices.count == orders.count && lowerBounds.count == orders.count, "matrices",
            "holds \(hostMatrices.count) matrices and \(lowerBounds.count) bounds for \(orders.count) orders")
        var predicted = 1
        var initial = [Element](repeating: 0, count: work.dimension)
        for (index, (matrix, layer)) in zip(hostMatrices, work.layers).enumerated() {
            let n = layer.inputs
            try require(matrix.count == n * n, "matrices[\(index)]", "holds \(matrix.count) values, expected \(n * n)")
            try matrices.buffer.upload(Element.narrowed(matrix), at: layer.parameterOffset)
            let (alpha, needed) = Self.start(matrix, order: n, lowerBound: lowerBounds[index], maximum: policy.maximumIterations)
            for i in 0..<n { initial[layer.parameterOffset + i * n + i] = Element(float64: alpha) }
            predicted = max(predicted, needed)
        }
        try iterate.buffer.upload(initial)
        try copyIterateIntoFactors()

        var iterations = 0
        while iterations < predicted {
            try step()
            iterations += 1
        }
        var residuals = try sampledResiduals(hostMatrices, probes: policy.probes)
        var worstPending = residuals.filter { !($0 <= policy.residualTolerance) }.max() ?? 0
        while worstPending > 0, iterations < policy.maximumIterations {
            try step()
            iterations += 1
            residuals = try sampledResiduals(hostMatrices, probes: policy.probes)
            let pending = residuals.filter { !($0 <= policy.residualTolerance) }.max() ?? 0
            // Stalled (at the rounding floor, or diverging): the residual decides as it is.
            if !(pending < 0.5 * worstPending) { break }
            worstPending = pending
        }
        return residuals.map { Outcome(iterations: iterations, residual: $0) }
    }

    /// Copies matrix `index`'s inverse into `buffer` at `offset` on the device.
    public func copyInverse(_ index: Int, into buffer: Buffer<Element>, at offset: Int) throws {
        let layer = work.layers[index]
        try buffer.copy(
            from: iterate.buffer, range: layer.parameterOffset..<(layer.parameterOffset + layer.inputs * layer.inputs), to: offset
        )
    }

    /// `X ← 2X − X M X` for every matrix: one Kronecker product, one axpby, the symmetrisation,
    /// the slot copies. The Kronecker kernels read a factor's rows as its columns, so the
    /// product is `X M Xᵀ`: symmetric, which leaves X's antisymmetric rounding doubling every
    /// iteration (the residual of a 33 x 33 factor at κ ≈ 6e3 fell to 0.05 in 14 iterations
    /// and then doubled to 2.0) unless X is symmetrised each time.
    private func step() throws {
        try work.apply(matrices, damping: 0, into: product)
        try vectors.axpby(-1, product.buffer, 2, iterate.buffer)
        for layer in work.layers {
            let n = layer.inputs
            try symmetrize.setArguments(UInt64(n), UInt64(layer.parameterOffset), iterate.buffer)
            try work.context.enqueue2D(symmetrize, columns: n, rows: n)
        }
        try copyIterateIntoFactors()
    }

    /// Both factor slots of every "layer" ← its X.
    private func copyIterateIntoFactors() throws {
        for layer in work.layers {
            let range = layer.parameterOffset..<(layer.parameterOffset + layer.inputs * layer.inputs)
            try work.factors.copy(from: iterate.buffer, range: range, to: layer.aOffset)
            try work.factors.copy(from: iterate.buffer, range: range, to: layer.gOffset)
        }
    }

    /// `max_z ‖M X z − z‖ / ‖z‖` per matrix over `probes` fixed random z, in float64.
    private func sampledResiduals(_ hostMatrices: [[Double]], probes: Int) throws -> [Double] {
        let x = try iterate.buffer.download()
        return zip(hostMatrices, work.layers).map { matrix, layer in
            let n = layer.inputs
            var generator = SplitMix64(seed: 0x6e73_696e_7600 ^ UInt64(n))
            var worst = 0.0
            x.withUnsafeBufferPointer { all in
                let inverse = UnsafeBufferPointer(rebasing: all[layer.parameterOffset..<(layer.parameterOffset + n * n)])
                matrix.withUnsafeBufferPointer { m in
                    for _ in 0..<probes {
                        let z = (0..<n).map { _ in generator.nextSymmetric() }
                        var w = [Double](repeating: 0, count: n)
                        for i in 0..<n {
                            var sum = 0.0
                            for j in 0..<n { sum += inverse[i * n + j].float64 * z[j] }
                            w[i] = sum
                        }
                        var residual = 0.0, norm = 0.0
                        for i in 0..<n {
                            var sum = -z[i]
                            for j in 0..<n { sum += m[i * n + j] * w[j] }
                            residual += sum * sum
                            norm += z[i] * z[i]
                        }
                        let relative = (residual / max(norm, .leastNormalMagnitude)).squareRoot()
                        worst = relative.isFinite ? max(worst, relative) : .infinity
                    }
                }
            }
            return worst
        }
    }

    /// The iterations from `X₀ = αI` to the element type's rounding level for `matrix`
    /// (order n, smallest eigenvalue at least `lowerBound`), at most `maximum`.
    public static func predictedIterations(_ matrix: [Double], order n: Int, lowerBound: Double, maximum: Int) -> Int {
        start(matrix, order: n, lowerBound: lowerBound, maximum: maximum).iterations
    }

    /// α of `X₀ = αI` and the predicted iterations: with `u ≥ λmax`, `l ≤ λmin`,
    /// `α = 2/(u + l)` leaves the error `e₀ = (u − l)/(u + l)`, squared every iteration, so
    /// `⌈log₂(ln ε / ln e₀)⌉ + 1` iterations reach ε (`maximum` where e₀ is not below 1).
    private static func start(
        _ matrix: [Double], order n: Int, lowerBound: Double, maximum: Int
    ) -> (alpha: Double, iterations: Int) {
        let epsilon = Element.requiresFloat64 ? Double.ulpOfOne : Double(Float.ulpOfOne)
        let upper = upperEigenvalueBound(matrix, n: n)
        let lower = max(0, min(lowerBound, upper))
        guard upper > 0, upper.isFinite else { return (1, maximum) }
        let e0 = (upper - lower) / (upper + lower)
        let needed: Int
        if e0 <= 0 {
            needed = 1
        } else if e0 >= 1 {
            needed = maximum
        } else {
            needed = Int(log2(log(epsilon) / log(e0)).rounded(.up)) + 1
        }
        return (2 / (upper + lower), min(maximum, max(1, needed)))
    }

    /// `min(‖M‖₁, ‖M‖_F)`: both bound a symmetric matrix's largest eigenvalue from above.
    private static func upperEigenvalueBound(_ matrix: [Double], n: Int) -> Double {
        var frobenius = 0.0, oneNorm = 0.0
        for i in 0..<n {
            var row = 0.0
            for j in 0..<n {
                let value = matrix[i * n + j]
                row += abs(value)
                frobenius += value * value
            }
            oneNorm = max(oneNorm, row)
        }
        return min(oneNorm, frobenius.squareRoot())
    }
}
