import OpenCLHost

/// The K-FAC solve: per layer `(G + γ_G I)⁻¹ V (A + γ_A I)⁻¹` with the factored damping.
/// The damped factors are inverted by `refresh(damping:)` and kept until the next refresh,
/// so a caller refreshes every few steps and applies every step. Each factor is inverted
/// where `policy` says by its order: on the host in float64 (LAPACK `dpotrf` + `dpotri`), or
/// on the device by Newton-Schulz iterations with a sampled residual check and the host as
/// the fallback (`FactorInversionPolicy`; CPU devices default to the host for every factor).
/// `lastRefresh` says which path each factor took.
public final class KroneckerSolver<Element: DeviceScalar>: CurvatureInverse, ExportableInverse {
    /// The K-FAC curvature whose factors are inverted.
    public let curvature: KroneckerCurvature<Element>
    /// Where each factor is inverted.
    public let policy: FactorInversionPolicy
    /// The λ of the last refresh, nil before the first.
    public private(set) var refreshedDamping: Element?
    /// How each factor was inverted at the last refresh, layer by layer (A, then G).
    public private(set) var lastRefresh: [FactorInversionReport] = []
    private let inverses: KroneckerCurvature<Element>
    /// The packed factors of the last refresh, in float64 (for `exportState`).
    private var source: [Double]?
    /// The device buffers of the Newton-Schulz inversions, kept between refreshes.
    private var deviceInversion: NewtonSchulzInversion<Element>?

    /// A solver with nothing inverted yet: call `refresh(damping:)` before solving. `policy`
    /// nil: `FactorInversionPolicy.defaults(for:element:)` for the curvature's device.
    public init(curvature: KroneckerCurvature<Element>, policy: FactorInversionPolicy? = nil) throws {
        self.curvature = curvature
        self.policy = policy ?? .defaults(for: curvature.context.device, element: Element.self)
        try self.policy.validate()
        inverses = try KroneckerCurvature(
            context: curvature.context, shapes: curvature.layers.map { ($0.outputs, $0.inputs) })
    }

    /// The inverse for λ from the factors as they are now (`KroneckerCurvature.makeInverse`).
    public convenience init(
        curvature: KroneckerCurvature<Element>, damping: Element, policy: FactorInversionPolicy? = nil
    ) throws {
        try self.init(curvature: curvature, policy: policy)
        try refresh(damping: damping)
    }

    /// One damped factor to invert.
    private struct Job {
        let layer: Int, side: FactorInversionReport.Side, order: Int, offset: Int, shift: Double
        let factor: [Double]
    }

    /// Inverts every layer's damped factors for λ from the factors as they are now.
    public func refresh(damping: Element) throws {
        try validateDamping(damping)
        // One read of all factors; the traces behind the dampings come from the same copy.
        let packed = Element.widened(try curvature.downloadFactors())
        let dampings = try curvature.factoredDampings(damping)
        var jobs: [Job] = []
        for (index, layer) in curvature.layers.enumerated() {
            for (side, order, offset, shift) in [
                (FactorInversionReport.Side.a, layer.inputs, layer.aOffset, dampings[index].a),
                (.g, layer.outputs, layer.gOffset, dampings[index].g),
            ] {
                jobs.append(
                    Job(
                        layer: index, side: side, order: order, offset: offset, shift: shift,
                        factor: Array(packed[offset..<(offset + order * order)])))
            }
        }
        var paths = [FactorInversionPath?](repeating: nil, count: jobs.count)
        var hostInverses: [(offset: Int, values: [Double])] = []
        let onDevice = jobs.indices.filter { jobs[$0].order >= policy.deviceMinimumOrder }
        if !onDevice.isEmpty {
            let orders = onDevice.map { jobs[$0].order }
            let inversion: NewtonSchulzInversion<Element>
            if let existing = deviceInversion, existing.orders == orders {
                inversion = existing
            } else {
                deviceInversion = nil // Free the old buffers before allocating new ones.
                inversion = try NewtonSchulzInversion(context: curvature.context, orders: orders)
                deviceInversion = inversion
            }
            let outcomes = try inversion.invert(
                onDevice.map { Self.dampedSymmetric(jobs[$0].factor, n: jobs[$0].order, shift: jobs[$0].shift) },
                lowerBounds: onDevice.map { jobs[$0].shift }, policy: policy)
            for (slot, (index, outcome)) in zip(onDevice, outcomes).enumerated() {
                if outcome.residual <= policy.residualTolerance {
                    try inversion.copyInverse(slot, into: inverses.factors, at: jobs[index].offset)
                    paths[index] = .device(iterations: outcome.iterations, residual: outcome.residual)
                } else {
                    let (inverse, host) = try Self.invertOnHost(jobs[index])
                    hostInverses.append((jobs[index].offset, inverse))
                    paths[index] = .deviceRejected(iterations: outcome.iterations, residual: outcome.residual, host: host)
                }
            }
        }
        for index in jobs.indices where paths[index] == nil {
            let (inverse, host) = try Self.invertOnHost(jobs[index])
            hostInverses.append((jobs[index].offset, inverse))
            paths[index] = .host(host)
        }
        try uploadInverses(hostInverses)
        lastRefresh = zip(jobs, paths).map { job, path in
            FactorInversionReport(layer: job.layer, side: job.side, order: job.order, path: path ?? .host(.cholesky))
        }
        // The factors as inverted, in float64, for `exportState`.
        source = packed
        refreshedDamping = damping
    }

    /// The job's damped factor inverted in float64 on the host.
    private static func invertOnHost(_ job: Job) throws -> (inverse: [Double], path: DenseSolvePath) {
        let factorization = try DenseSymmetricFactorization(matrix: job.factor, dimension: job.order, damping: job.shift)
        return (try factorization.inverse(), factorization.path)
    }

    /// The host's inverses written into `inverses.factors`, one upload per run of adjacent
    /// factors (all of them in one where every factor was inverted on the host: an upload per
    /// factor cost about 0.06 ms each on PoCL). Factors the device inverted stay as copied.
    private func uploadInverses(_ host: [(offset: Int, values: [Double])]) throws {
        var run: (offset: Int, values: [Double])?
        for inverse in host.sorted(by: { $0.offset < $1.offset }) {
            if let current = run, current.offset + current.values.count == inverse.offset {
                run = (current.offset, current.values + inverse.values)
            } else {
                if let current = run { try inverses.factors.upload(Element.narrowed(current.values), at: current.offset) }
                run = inverse
            }
        }
        if let current = run { try inverses.factors.upload(Element.narrowed(current.values), at: current.offset) }
    }

    /// `factor + shift·I` with its upper triangle mirrored into the lower one (the host
    /// factorisation trusts only the upper triangle; so does the device path).
    private static func dampedSymmetric(_ factor: [Double], n: Int, shift: Double) -> [Double] {
        var matrix = factor
        for i in 0..<n {
            matrix[i * n + i] += shift
            for j in (i + 1)..<n { matrix[j * n + i] = matrix[i * n + j] }
        }
        return matrix
    }

    /// `refresh(damping:)` when `curvature` is this solver's own: the inverses' buffers and
    /// launch plans are kept (making them again cost most of an every-step refresh).
    public func refresh(from curvature: any CurvatureOperator<Element>, damping: Element) throws -> Bool {
        guard let kronecker = curvature as? KroneckerCurvature<Element>, kronecker === self.curvature else { return false }
        try refresh(damping: damping)
        return true
    }

    /// `x = ((G + γ_G I) ⊗ (A + γ_A I))⁻¹ b` with the inverses of the last refresh.
    public func solve(_ b: VectorBatch<Element>) throws -> VectorBatch<Element> {
        guard refreshedDamping != nil else {
            throw NaturalGradientError.invalidArgument(
                name: "damping", reason: "call refresh(damping:) before the first K-FAC solve")
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

    /// The factors as they were at the last refresh, and its λ.
    public func exportState() throws -> SavedInverse {
        guard let source, let refreshedDamping else {
            throw NaturalGradientError.invalidArgument(name: "damping", reason: "nothing refreshed yet")
        }
        return SavedInverse(source: .kronecker(factors: source), damping: refreshedDamping.float64)
    }
}
