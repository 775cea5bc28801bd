import NaturalGradient
import OpenCLHost

/// The K-FAC solve spread over the ranks the KAISA way (Pauloski et al., 2021): every rank
/// holds the same (allreduced) factors; each layer's two inversions are assigned to one
/// rank, balanced by cost, largest first; the inverses are gathered by every rank in one
/// allgather of their packed upper triangles; each rank then preconditions the whole
/// gradient itself, `(G + γ_G I)⁻¹ V (A + γ_A I)⁻¹` per layer.
///
/// This is KAISA with a gradient-worker fraction of 1 (every rank holds every inverse: the
/// most memory, and the inverses' Σ (in² + out²)/2 values communicated per refresh, nothing
/// per step). The inversions use `DenseSymmetricFactorization` in float64, as
/// `KroneckerSolver` does, so every rank's inverses are bitwise identical to the owner's.
public final class DistributedKroneckerSolver<Element: CommunicableScalar>: CurvatureInverse {
    /// The K-FAC curvature whose factors are inverted (the same on every rank).
    public let curvature: KroneckerCurvature<Element>
    /// The ranks the inversions are spread over.
    public let communicator: Communicator
    /// The rank that inverts each layer's factors (`balancedAssignment`).
    public let owners: [Int]
    /// The λ of the last refresh, nil before the first.
    public private(set) var refreshedDamping: Element?
    private let inverses: KroneckerCurvature<Element>

    /// The inverse for λ from the factors as they are now.
    public init(curvature: KroneckerCurvature<Element>, communicator: Communicator, damping: Element) throws {
        self.curvature = curvature
        self.communicator = communicator
        owners = Self.balancedAssignment(
            costs: curvature.layers.map { Self.inversionCost($0) }, ranks: communicator.size)
        inverses = try KroneckerCurvature(
            context: curvature.context, shapes: curvature.layers.map { ($0.outputs, $0.inputs) })
        try refresh(damping: damping)
    }

    /// The float64 work of inverting a layer's damped factors: `in³ + out³` (up to a constant).
    static func inversionCost(_ layer: KroneckerCurvature<Element>.Layer) -> Double {
        Double(layer.inputs) * Double(layer.inputs * layer.inputs) + Double(layer.outputs) * Double(layer.outputs * layer.outputs)
    }

    /// Layers to ranks, largest cost first, each to the rank with the least work so far (the
    /// lower rank on a tie): the longest-processing-time rule, within 4/3 of the best
    /// balance, and the same on every rank because it depends only on the shapes.
    public static func balancedAssignment(costs: [Double], ranks: Int) -> [Int] {
        var load = [Double](repeating: 0, count: max(ranks, 1))
        var owners = [Int](repeating: 0, count: costs.count)
        let order = costs.indices.sorted { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }
        for layer in order {
            let rank = load.indices.min { load[$0] != load[$1] ? load[$0] < load[$1] : $0 < $1 } ?? 0
            owners[layer] = rank
            load[rank] += costs[layer]
        }
        return owners
    }

    /// Inverts this rank's layers for λ from the factors as they are now, then gathers every
    /// layer's inverses from its owner. A collective: every rank calls it with the same λ.
    public func refresh(damping: Element) throws {
        try requireArgument(
            damping.isFinite && damping >= 0, "damping", "must be finite and ≥ 0, got \(damping)")
        let dampings = try curvature.factoredDampings(damping)
        let layers = curvature.layers
        // Each layer's two inverses, as packed upper triangles, in layer order per owner.
        func blocks(_ layer: KroneckerCurvature<Element>.Layer) -> [SymmetricBlock] {
            [SymmetricBlock(offset: layer.aOffset, size: layer.inputs), SymmetricBlock(offset: layer.gOffset, size: layer.outputs)]
        }
        var full = [Element](repeating: 0, count: inverses.factors.count)
        var mine: [Element] = []
        for (index, layer) in layers.enumerated() where owners[index] == communicator.rank {
            let (a, g) = try curvature.layerFactors(index)
            for (factor, size, offset, shift) in [
                (a, layer.inputs, layer.aOffset, dampings[index].a), (g, layer.outputs, layer.gOffset, dampings[index].g),
            ] {
                let identity = (0..<(size * size)).map { $0 / size == $0 % size ? 1.0 : 0.0 }
                let inverse = try DenseSymmetricFactorization(
                    matrix: Element.widened(factor), dimension: size, damping: shift
                ).solve(identity, count: size)
                full.replaceSubrange(offset..<(offset + size * size), with: Element.narrowed(inverse))
            }
            mine += StatisticsLayout.symmetric(blocks(layer)).pack(full)
        }
        let counts = (0..<communicator.size).map { rank in
            layers.indices.filter { owners[$0] == rank }.reduce(0) {
                $0 + StatisticsLayout.symmetric(blocks(layers[$1])).packedCount
            }
        }
        let gathered = try communicator.allgather(mine, counts: counts)
        // Unpack each owner's layers in the order it packed them.
        var cursor = (0..<communicator.size).map { rank in counts[..<rank].reduce(0, +) }
        for (index, layer) in layers.enumerated() {
            let layout = StatisticsLayout.symmetric(blocks(layer))
            let owner = owners[index]
            layout.unpack(Array(gathered[cursor[owner]..<(cursor[owner] + layout.packedCount)]), into: &full)
            cursor[owner] += layout.packedCount
        }
        try inverses.factors.upload(full)
        refreshedDamping = damping
    }

    /// `x = ((G + γ_G I) ⊗ (A + γ_A I))⁻¹ b` with the inverses of the last refresh (local:
    /// every rank holds every inverse).
    public func solve(_ b: VectorBatch<Element>) throws -> VectorBatch<Element> {
        guard refreshedDamping != nil else {
            throw NaturalGradientError.invalidArgument(name: "damping", reason: "refresh(damping:) has not run yet")
        }
        return try inverses.apply(b, damping: 0)
    }

    // MARK: CurvatureInverse

    public var context: Context { curvature.context }
    public var dimension: Int { curvature.dimension }
    /// `.kfac`.
    public var method: SolveMethod { .kfac }
    /// The λ of the last refresh.
    public var damping: Element? { refreshedDamping }
}
