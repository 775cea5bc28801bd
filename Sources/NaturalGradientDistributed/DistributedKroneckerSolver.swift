import NaturalGradient
import OpenCLHost

/// Where K-FAC's preconditioned gradient is computed: KAISA's gradient-worker fraction, its
/// trade between memory and communication (Pauloski et al., 2021).
public enum GradientWorkers: Sendable, Hashable {
    /// Every rank (fraction 1): every rank holds every layer's inverses, gathered once per
    /// refresh (Σ in(in+1)/2 + out(out+1)/2 values); a solve needs no communication.
    case all
    /// The layer's owner only (fraction 1/p): each rank keeps only its own layers' inverses
    /// (memory Σ in² + out² over its layers) and nothing is gathered per refresh; every solve
    /// gathers the layers' preconditioned segments from their owners (P·k values, (p−1)/p of
    /// them received by each rank).
    case owners
}

/// The K-FAC solve spread over the ranks the KAISA way: every rank holds the same
/// (summed) factors; each layer's two inversions are assigned to one rank, balanced by cost,
/// largest first (`balancedAssignment`); then, by `GradientWorkers`, either every rank
/// gathers every inverse and preconditions the whole gradient itself (`.all`), or each
/// owner preconditions its layers and the segments are gathered per solve (`.owners`).
///
/// The inversions use `DenseSymmetricFactorization` in float64, as `KroneckerSolver` does,
/// and only the owner computes them, so every rank's inverses are bitwise the owner's. Both
/// `refresh(damping:)` and `solve(_:)` (for `.owners`) are collectives.
public final class DistributedKroneckerSolver<Element: CommunicableScalar>: CurvatureInverse {
    /// The K-FAC curvature whose factors are inverted (the same on every rank).
    public let curvature: KroneckerCurvature<Element>
    /// The ranks the inversions are spread over.
    public let communicator: Communicator
    /// Where the preconditioned gradient is computed.
    public let gradientWorkers: GradientWorkers
    /// The rank that inverts each layer's factors.
    public let owners: [Int]
    /// The λ of the last refresh, nil before the first.
    public private(set) var refreshedDamping: Element?
    /// The inverses this rank holds: every layer's (`.all`), or its own layers' in a compact
    /// parameter space (`.owners`; nil on a rank that owns no layer).
    private let inverses: KroneckerCurvature<Element>?
    private let ownedLayers: [Int]

    /// The inverse for λ from the factors as they are now.
    public init(
        curvature: KroneckerCurvature<Element>, communicator: Communicator, damping: Element,
        gradientWorkers: GradientWorkers = .all
    ) throws {
        self.curvature = curvature
        self.communicator = communicator
        self.gradientWorkers = gradientWorkers
        let owners = Self.balancedAssignment(costs: curvature.layers.map { Self.inversionCost($0) }, ranks: communicator.size)
        self.owners = owners
        ownedLayers = curvature.layers.indices.filter { owners[$0] == communicator.rank }
        let held = gradientWorkers == .all ? Array(curvature.layers.indices) : ownedLayers
        inverses =
            held.isEmpty
            ? nil
            : try KroneckerCurvature(
                context: curvature.context, shapes: held.map { (curvature.layers[$0].outputs, curvature.layers[$0].inputs) })
        try refresh(damping: damping)
    }

    /// The float64 work of inverting a layer's damped factors: `in³ + out³` (up to a constant).
    static func inversionCost(_ layer: KroneckerCurvature<Element>.Layer) -> Double {
        pow3(layer.inputs) + pow3(layer.outputs)
    }

    private static func pow3(_ n: Int) -> Double { Double(n) * Double(n) * Double(n) }

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

    /// The number of inverse values this rank holds on its device.
    public var heldInverseValues: Int { inverses?.factors.count ?? 0 }

    /// Inverts this rank's layers for λ from the factors as they are now; with `.all`, every
    /// rank then gathers every layer's inverses from its owner. A collective: every rank
    /// calls it with the same λ.
    public func refresh(damping: Element) throws {
        try requireArgument(damping.isFinite && damping >= 0, "damping", "must be finite and ≥ 0, got \(damping)")
        let dampings = try curvature.factoredDampings(damping)
        let layers = curvature.layers
        func blocks(_ layer: KroneckerCurvature<Element>.Layer) -> StatisticsLayout {
            .symmetric([
                SymmetricBlock(offset: layer.aOffset, size: layer.inputs),
                SymmetricBlock(offset: layer.gOffset, size: layer.outputs),
            ])
        }
        // This rank's inverses, in the full layout (offsets of `curvature.factors`).
        var full = [Element](repeating: 0, count: curvature.factors.count)
        for index in ownedLayers {
            let layer = layers[index]
            let (a, g) = try curvature.layerFactors(index)
            for (factor, size, offset, shift) in [
                (a, layer.inputs, layer.aOffset, dampings[index].a), (g, layer.outputs, layer.gOffset, dampings[index].g),
            ] {
                let inverse = try DenseSymmetricFactorization(
                    matrix: Element.widened(factor), dimension: size, damping: shift
                ).inverse()
                full.replaceSubrange(offset..<(offset + size * size), with: Element.narrowed(inverse))
            }
        }
        switch gradientWorkers {
        case .all:
            // Each owner's layers' upper triangles, in layer order, gathered by every rank.
            let mine = ownedLayers.flatMap { blocks(layers[$0]).pack(full) }
            let counts = (0..<communicator.size).map { rank in
                layers.indices.filter { owners[$0] == rank }.reduce(0) { $0 + blocks(layers[$1]).packedCount }
            }
            let gathered = try communicator.allgather(mine, counts: counts)
            var cursor = (0..<communicator.size).map { counts[..<$0].reduce(0, +) }
            for (index, layer) in layers.enumerated() {
                let layout = blocks(layer)
                let owner = owners[index]
                layout.unpack(Array(gathered[cursor[owner]..<(cursor[owner] + layout.packedCount)]), into: &full)
                cursor[owner] += layout.packedCount
            }
            try inverses?.factors.upload(full)
        case .owners:
            guard let inverses else { break }
            var compact: [Element] = []
            compact.reserveCapacity(inverses.factors.count)
            for index in ownedLayers {
                let layer = layers[index]
                let end = layer.gOffset + layer.outputs * layer.outputs
                compact += full[layer.aOffset..<end] // A_l then G_l, as the compact layout packs them
            }
            try inverses.factors.upload(compact)
        }
        refreshedDamping = damping
    }

    /// `x = ((G + γ_G I) ⊗ (A + γ_A I))⁻¹ b` with the inverses of the last refresh: local with
    /// `.all`; with `.owners` each rank preconditions its layers and every rank gathers the
    /// segments (a collective).
    public func solve(_ b: VectorBatch<Element>) throws -> VectorBatch<Element> {
        guard refreshedDamping != nil else {
            throw NaturalGradientError.invalidArgument(name: "damping", reason: "refresh(damping:) has not run yet")
        }
        try requireArgument(b.dimension == dimension, "b", "has dimension \(b.dimension), F \(dimension)")
        if gradientWorkers == .all, let inverses { return try inverses.apply(b, damping: 0) }
        let layers = curvature.layers
        let k = b.count
        let values = try b.buffer.download(0..<(dimension * k))
        func segment(_ index: Int) -> Range<Int> {
            layers[index].parameterOffset..<(layers[index].parameterOffset + layers[index].outputs * layers[index].inputs)
        }
        // This rank's layers' segments of every vector, vector by vector.
        var mine: [Element] = []
        if let inverses {
            var compact: [Element] = []
            compact.reserveCapacity(inverses.dimension * k)
            for vector in 0..<k {
                for index in ownedLayers {
                    let range = segment(index)
                    compact += values[(vector * dimension + range.lowerBound)..<(vector * dimension + range.upperBound)]
                }
            }
            let input = try VectorBatch<Element>(context: context, dimension: inverses.dimension, count: k)
            try input.buffer.upload(compact)
            mine = try inverses.apply(input, damping: 0).buffer.download(0..<(inverses.dimension * k))
        }
        let counts = (0..<communicator.size).map { rank in
            k * layers.indices.filter { owners[$0] == rank }.reduce(0) { $0 + segment($1).count }
        }
        let gathered = try communicator.allgather(mine, counts: counts)
        var x = [Element](repeating: 0, count: dimension * k)
        var cursor = 0
        for rank in 0..<communicator.size {
            let owned = layers.indices.filter { owners[$0] == rank }
            for vector in 0..<k {
                for index in owned {
                    let range = segment(index)
                    x.replaceSubrange(
                        (vector * dimension + range.lowerBound)..<(vector * dimension + range.upperBound),
                        with: gathered[cursor..<(cursor + range.count)])
                    cursor += range.count
                }
            }
        }
        let result = try VectorBatch<Element>(context: context, dimension: dimension, count: k)
        try result.buffer.upload(x)
        return result
    }

    // MARK: CurvatureInverse

    public var context: Context { curvature.context }
    public var dimension: Int { curvature.dimension }
    /// `.kfac`.
    public var method: SolveMethod { .kfac }
    /// The λ of the last refresh.
    public var damping: Element? { refreshedDamping }
}
