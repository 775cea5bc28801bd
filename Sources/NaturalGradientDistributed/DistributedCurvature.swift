import NaturalGradient
import OpenCLHost

/// A curvature summed over the ranks of a communicator, in any `SummableCurvature`
/// representation (dense, block-diagonal, diagonal, K-FAC), replicated on every rank.
///
/// Each rank accumulates only its own rows (its share of the global batch); the statistics
/// are then summed with one rank-ordered allreduce of their packed upper triangles, so
/// every rank holds bitwise-identical statistics, equal to what one process accumulating
/// all rows would hold (to rounding). Everything else (apply, diagonal, trace, preferred
/// method, exact inverse) is the base representation's, so CG, PCG, the direct solvers,
/// `NaturalGradientSolver` and `NaturalGradientOptimizer` (through a `CurvatureBuilder`) work
/// unchanged; the inverse comes from `SummableCurvature.makeInverse(damping:communicator:gradientWorkers:)`
/// (K-FAC spreads its layers over the ranks).
///
/// Each rank's factor (or K-FAC statistics) carries that rank's own sample count; the mean
/// is over the global count `Σ_r N_r`, gathered with the arguments' check in one small
/// allgather before the local accumulation. Every rank needs at least one row.
public final class DistributedCurvature<Base: SummableCurvature>: CurvatureOperator {
    public typealias Element = Base.Element

    /// The replicated representation (after an accumulation, the global statistics).
    public let base: Base
    /// The ranks the statistics are summed over.
    public let communicator: Communicator
    /// Where an inverse that is spread over the ranks (K-FAC's) preconditions the gradient.
    public let gradientWorkers: GradientWorkers
    /// The global sample count of the last accumulation (`Σ_r N_r`), 0 before the first.
    public private(set) var globalSamples = 0

    /// Wraps `base`, which must hold the same statistics on every rank (zero, for instance,
    /// as the representations' `init(context:…)` make them). `gradientWorkers` is KAISA's
    /// memory/communication trade-off for K-FAC; other representations ignore it.
    public init(_ base: Base, communicator: Communicator, gradientWorkers: GradientWorkers = .all) {
        self.base = base
        self.communicator = communicator
        self.gradientWorkers = gradientWorkers
    }

    public var context: Context { base.context }
    public var dimension: Int { base.dimension }

    public func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        try base.apply(x, damping: damping, into: y)
    }

    public func diagonal() throws -> Buffer<Element> { try base.diagonal() }
    public func trace() throws -> Double { try base.trace() }
    public func preferredMethod(damping: Double) -> SolveMethod { base.preferredMethod(damping: damping) }
    public var inverseMethod: SolveMethod? { base.inverseMethod }

    /// The base's inverse for the ranks (`SummableCurvature.makeInverse(damping:communicator:gradientWorkers:)`).
    public func makeInverse(damping: Element) throws -> any CurvatureInverse<Element> {
        try base.makeInverse(damping: damping, communicator: communicator, gradientWorkers: gradientWorkers)
    }

    /// The local step of a distributed accumulation: checks the arguments on every rank at
    /// once, then runs `accumulate` with β (rank 0) or 0 (the others, whose old statistics,
    /// identical to rank 0's, would otherwise be counted p times) and α rescaled from this
    /// rank's mean to the global one, then sums the statistics over the ranks.
    func accumulateAcrossRanks(
        name: String, samples: Int, alpha: Element?, beta: Element, validate: () throws -> Void,
        accumulate: (_ alpha: Element, _ beta: Element) throws -> Void
    ) throws {
        let layout = base.statisticsLayout
        let total = try communicator.collectively(
            name, shape: [dimension, layout.packedCount, layout.extent], samples: samples, validate)
        // α = c / N_r (the caller's mean over its rows) becomes c / N.
        let local = alpha.map { $0.float64 * Double(samples) } ?? 1
        try accumulate(Element(float64: local / Double(total)), communicator.rank == 0 ? beta : 0)
        try base.sumStatistics(over: communicator)
        globalSamples = total
    }
}

extension DistributedCurvature: FactorAccumulatingCurvature where Base: FactorAccumulatingCurvature {
    /// `F ← βF + α Σ_r U_rᵀ diag(w_r) U_r` over every rank's factor U_r; α = 1/N (N the
    /// global sample count) by default, and a given α is the caller's weight per local
    /// sample mean (α·N_r/N is applied), which is what the optimizer's moving average passes.
    public func accumulate(_ factor: CurvatureFactor<Element>, alpha: Element? = nil, beta: Element = 1) throws {
        try accumulateAcrossRanks(
            name: "factor", samples: factor.samples, alpha: alpha, beta: beta,
            validate: {
                try requireArgument(
                    factor.dimension == dimension, "factor",
                    "has dimension \(factor.dimension), the curvature \(dimension)")
            },
            accumulate: { try base.accumulate(factor, alpha: $0, beta: $1) })
    }
}

extension DistributedCurvature: LayerAccumulatingCurvature where Base: LayerAccumulatingCurvature {
    /// Every layer's K-FAC factors `← β · old + α Σ_r Σ w (outer products)` over every rank's
    /// statistics, α = 1/N (N the global sample count) by default.
    public func accumulate(
        _ layers: [KFACLayer<Element>], samples: Int, weights: Buffer<Element>? = nil, alpha: Element? = nil,
        beta: Element = 1
    ) throws {
        try accumulateAcrossRanks(
            name: "layers", samples: samples, alpha: alpha, beta: beta,
            validate: { try requireArgument(samples > 0, "samples", "must be positive, got \(samples)") },
            accumulate: { try base.accumulate(layers, samples: samples, weights: weights, alpha: $0, beta: $1) })
    }
}

extension DistributedCurvature: ExportableCurvature where Base: ExportableCurvature {
    /// The base's state (the same on every rank).
    public func exportState() throws -> SavedCurvature { try base.exportState() }
}

/// Throws `NaturalGradientError.invalidArgument(name, reason)` unless `condition` holds.
func requireArgument(_ condition: Bool, _ name: String, _ reason: @autoclosure () -> String) throws {
    guard condition else { throw NaturalGradientError.invalidArgument(name: name, reason: reason()) }
}
