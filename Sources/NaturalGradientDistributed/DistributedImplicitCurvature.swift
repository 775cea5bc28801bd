import NaturalGradient
import OpenCLHost

/// F kept as its factor U with the rows spread over the ranks, never formed: each rank holds
/// its rows U_r and the product sums the ranks' partial products,
/// `(F + λI) X = Σ_r (1/N) U_rᵀ diag(w_r) U_r X + λX`, with one rank-ordered allreduce of
/// P·k values per product (k right-hand sides batched). N is the global sample count.
///
/// Vectors are replicated: every rank passes the same X and receives the same, bitwise
/// identical, Y. CG and PCG run unchanged on it: their dot products are computed
/// redundantly on every rank, on identical vectors, so they need no communication and an
/// iteration costs one collective (the product's). There is no exact inverse (Woodbury
/// would need every rank's rows), so the preferred method is CG.
public final class DistributedImplicitCurvature<Element: CommunicableScalar>: CurvatureOperator {
    /// This rank's rows, with the global sample count N as its `samples`.
    public let factor: CurvatureFactor<Element>
    /// The ranks the rows are spread over.
    public let communicator: Communicator
    private let local: ImplicitCurvature<Element>

    /// F of every rank's `factor`: each carries its own rows, weights and sample count N_r;
    /// F's mean is over `N = Σ_r N_r`. The ranks must agree on P (checked, on every rank).
    public init(factor: CurvatureFactor<Element>, communicator: Communicator) throws {
        let total = try communicator.collectively(
            "DistributedImplicitCurvature", shape: [factor.dimension], samples: factor.samples, {})
        self.factor = try factor.withSamples(total)
        self.communicator = communicator
        local = try ImplicitCurvature(factor: self.factor)
    }

    public var context: Context { factor.context }
    public var dimension: Int { factor.dimension }

    /// Rank 0's partial product carries λX, so the rank-ordered sum adds it exactly once.
    public func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        try local.apply(x, damping: communicator.rank == 0 ? damping : 0, into: y)
        try sumOverRanks(y.buffer, count: x.dimension * x.count)
    }

    /// The sum of the ranks' `(1/N) Σ w u²`: one allreduce of P values.
    public func diagonal() throws -> Buffer<Element> {
        let diagonal = try local.diagonal()
        try sumOverRanks(diagonal, count: dimension)
        return diagonal
    }

    private func sumOverRanks(_ buffer: Buffer<Element>, count: Int) throws {
        guard communicator.size > 1 else { return }
        var values = try buffer.download(0..<count)
        try communicator.sumInRankOrder(&values)
        try buffer.upload(values)
    }
}
