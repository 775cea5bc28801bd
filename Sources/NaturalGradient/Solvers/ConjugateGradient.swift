import Foundation
import OpenCLHost

/// Options of the conjugate-gradient solver.
public struct ConjugateGradientOptions: Sendable {
    /// Preconditioners for CG.
    public enum Preconditioner: Sendable, Equatable {
        /// Plain CG.
        case none
        /// Jacobi: `M⁻¹ = (diag F + λ)^−exponent` (Martens uses 0.75). It helps a badly
        /// scaled F of full rank; on a factor's GGN or empirical Fisher at small λ (M ≪ P,
        /// b in U's row space) it takes several times plain CG's iterations, whatever the
        /// exponent or the damping inside it (measured: Benchmarks/NOTES.md, issue 17), which
        /// is why the automatic method never picks it for a factor.
        case jacobi(exponent: Double)
    }

    /// Stop a column when `‖r‖/‖b‖ ≤ tolerance`.
    public var tolerance: Double = 1e-6
    /// The most iterations per column; nil means P (exact convergence in exact arithmetic).
    public var maxIterations: Int?
    /// The preconditioner.
    public var preconditioner: Preconditioner = .none
    /// Martens' progress rule: stop at i when i > k, φ_{i−k} < 0 and
    /// (φ_i − φ_{i−k})/φ_i < k·5e−4 with k = max(10, ⌈0.1 i⌉). Off by default: it trades
    /// accuracy for speed, which optimisers want and exact solves do not.
    public var progressRule = false

    public init(
        tolerance: Double = 1e-6, maxIterations: Int? = nil, preconditioner: Preconditioner = .none,
        progressRule: Bool = false
    ) {
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        self.preconditioner = preconditioner
        self.progressRule = progressRule
    }
}

/// Pipelined (Chronopoulos-Gear) preconditioned conjugate gradient for `(F + λI) X = B`
/// over any `CurvatureOperator`, all right-hand sides at once.
///
/// Per iteration: one small write of the step scalars, one fused vector-update kernel, the
/// operator's product, one fused dot-product kernel, and one small read-back of group
/// partial sums (added on the host in float64, in a fixed order). Each column stops on its own (converged, iteration cap,
/// progress rule, negative curvature, non-finite, stagnated) and is frozen on the device from then on.
/// "Converged" is confirmed from x: when the recurrence reaches the tolerance, one product
/// recomputes the residual, and a miss replaces r by the true residual and restarts the
/// column's direction (the pipelined recurrences drift in float32). Where every active
/// column is expected to claim convergence in a pass, the update's sums are read before the
/// product and the product is skipped when they all do (so a solve that converges at
/// iteration k does k + 1 products, as classical CG confirming its claim from x does).
/// Keeps its work vectors for the next solve of the same shape, so one instance serves one
/// thread.
public final class ConjugateGradient<Element: DeviceScalar> {
    /// The context everything runs on.
    public let context: Context
    private let updateKernel: Kernel
    private let curvatureKernel: Kernel
    private let groupSize: Int
    private let vectors: VectorOperations<Element>
    /// The last solve's work vectors (all but x, which the caller keeps), reused by the next
    /// solve of the same shape: a solve allocates one vector batch instead of eight buffers.
    private var reusable: State?
    /// Whether a convergence claim of the recurrence is confirmed from x (tests turn it off
    /// to show the drift the confirmation guards against).
    var confirmsConvergence = true
    /// Whether a pass where every active column is expected to claim convergence reads the
    /// update's sums before the product and skips it when they all do (tests turn it off to
    /// show that the skip changes no value, only the product count).
    var skipsProductOnClaims = true

    /// - Parameter tunables: the kernels' tunables (default: the tuning cache's for this
    ///   device, else the device defaults); throws when outside the family's valid space.
    public init(context: Context, tunables: ConjugateGradientTunables? = nil) throws {
        self.context = context
        let built = try context.buildFixedGroupKernels(
            tunables ?? .resolved(for: context.device, element: Element.self), element: Element.self,
            names: ["cg_update", "cg_curvature"])
        updateKernel = built.kernels[0]
        curvatureKernel = built.kernels[1]
        groupSize = built.tunables.groupSize
        vectors = try VectorOperations(context: context)
    }

    /// Solves `(F + λI) x = b` for every column of `b`, starting from `initialGuess` (zero
    /// by default). Returns the solutions and one report per column.
    public func solve<Operator: CurvatureOperator<Element>>(
        _ curvature: Operator, _ b: VectorBatch<Element>, damping: Element,
        options: ConjugateGradientOptions = ConjugateGradientOptions(), initialGuess: VectorBatch<Element>? = nil
    ) throws -> (solution: VectorBatch<Element>, reports: [ColumnReport]) {
        try validateDamping(damping)
        try require(b.dimension == curvature.dimension, "b", "has dimension \(b.dimension), the operator \(curvature.dimension)")
        try require(
            options.tolerance.isFinite && options.tolerance >= 0, "tolerance", "must be finite and ≥ 0, got \(options.tolerance)")
        if let cap = options.maxIterations { try require(cap >= 0, "maxIterations", "must be ≥ 0, got \(cap)") }
        if let initialGuess { try b.requireSameShape(initialGuess, "initialGuess") }
        if case let .jacobi(exponent) = options.preconditioner {
            try require(exponent.isFinite, "preconditioner", "the Jacobi exponent must be finite")
        }

        let state = try makeState(b)
        let cap = options.maxIterations ?? b.dimension
        let preconditioner = try makePreconditioner(curvature, damping: damping, options.preconditioner)

        // r0 = b − (F + λI) x0, then u0 = M r0 and the first dots through cg_update with α = β = 0.
        if let initialGuess {
            try state.x.buffer.copy(from: initialGuess.buffer, range: 0..<(b.dimension * b.count))
            try curvature.apply(state.x, damping: damping, into: state.w)
            try state.r.buffer.copy(from: b.buffer, range: 0..<(b.dimension * b.count))
            try vectors.axpy(-1, state.w.buffer, state.r.buffer, count: b.dimension * b.count)
        } else {
            try state.x.buffer.fill(0)
            try state.r.buffer.copy(from: b.buffer, range: 0..<(b.dimension * b.count))
        }
        for buffer in [state.p, state.s, state.u, state.w] { try buffer.buffer.fill(0) }
        let hostB = try b.buffer.downloadFloat64(0..<(b.dimension * b.count))
        let bNorms = (0..<b.count).map { column -> Double in
            hostB[(column * b.dimension)..<((column + 1) * b.dimension)].reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        }

        var columns = (0..<b.count).map { Column(bNorm: bNorms[$0]) }
        for index in columns.indices where !(bNorms[index].isFinite) {
            columns[index].finish(.nonFinite)
        }
        for index in columns.indices where columns[index].active { columns[index].restarting = true }
        // Reports of columns whose convergence was confirmed from x (x frozen since).
        var confirmed = [ColumnReport?](repeating: nil, count: b.count)

        // One pass per iteration; a column that restarts (the first pass, or after a residual
        // replacement) takes α = β = 0 in it, so its direction starts afresh from u = M r.
        // In the last pass before every active column reaches the cap, no later step needs
        // the product, so it is skipped (its dot entry 4 stays stale and unused).
        var firstPass = true
        while columns.contains(where: \.active) {
            let lastPass = columns.allSatisfy { !$0.active || (!$0.restarting && $0.iterations + 1 >= cap) }
            try launchUpdate(
                state, preconditioner: preconditioner, columns: columns,
                alpha: columns.map { $0.restarting ? 0 : $0.alpha }, beta: columns.map { $0.restarting ? 0 : $0.beta })
            var sums: [[Double]]? = nil
            if !lastPass, confirmsConvergence, skipsProductOnClaims,
                columns.allSatisfy({ !$0.active || $0.expectsClaim(tolerance: options.tolerance) })
            {
                // Every active column is expected to claim convergence in this pass: read the
                // update's sums first, and where every active column does stop, skip the
                // product (its w is for a next step that a claim never takes: x is confirmed,
                // or r replaced and the direction restarted). A wrong guess costs one more
                // small read-back, a right one a whole product.
                let early = try state.readPartials()
                if columns.indices.allSatisfy({
                    !columns[$0].active || columns[$0].stops(early[$0], tolerance: options.tolerance)
                }) {
                    sums = early.map { Array($0.prefix(4)) + [0] } // entry 4: no product, unused
                }
            }
            if sums == nil, !lastPass {
                try curvature.apply(state.u, damping: damping, into: state.w)
                try launchCurvatureDots(state, columns: columns)
            }
            let passSums = try sums ?? state.readPartials()
            var claims: [Int] = []
            for index in columns.indices where columns[index].active {
                if columns[index].restarting {
                    // r is b − (F + λI)x here (exactly, up to rounding): first step sizes, or stop.
                    columns[index].restarting = false
                    columns[index].observe(passSums[index], tolerance: options.tolerance, record: firstPass)
                    if columns[index].status == .converged {
                        columns[index].status = nil
                        claims.append(index)
                    } else if columns[index].active, columns[index].iterations >= cap {
                        columns[index].finish(.iterationCap)
                    } else if columns[index].active {
                        columns[index].firstStep(passSums[index])
                    }
                    continue
                }
                columns[index].iterations += 1
                columns[index].observe(passSums[index], tolerance: options.tolerance)
                if columns[index].status == .converged {
                    columns[index].status = nil
                    claims.append(index)
                    continue
                }
                guard columns[index].active else { continue }
                if options.progressRule, columns[index].progressStalled() {
                    columns[index].finish(.progressStalled)
                } else if columns[index].iterations >= cap {
                    columns[index].finish(.iterationCap)
                } else {
                    columns[index].nextStep(passSums[index])
                }
            }
            firstPass = false
            if !confirmsConvergence {
                for index in claims { columns[index].finish(.converged) }
                claims = []
            }
            if !claims.isEmpty {
                try confirmConvergence(
                    claims, curvature, b, hostB, state, damping: damping, tolerance: options.tolerance, cap: cap,
                    columns: &columns, confirmed: &confirmed)
            }
        }

        // Report the true residual of the returned x, not the recurrence's: measured again
        // unless every column's was measured when its convergence was confirmed.
        let statuses = columns.map { $0.status ?? .iterationCap }
        if confirmed.allSatisfy({ $0 != nil }) {
            return (
                state.x,
                confirmed.enumerated().map { index, report in
                    var report = report!
                    report.iterations = columns[index].iterations
                    report.status = statuses[index]
                    return report
                }
            )
        }
        let reports = try measureSolution(
            curvature, b, state.x, damping: damping, scratch: state.w, iterations: columns.map(\.iterations),
            statuses: statuses)
        return (state.x, reports)
    }

    /// At most this many residual replacements per column and solve before a column whose
    /// recurrence keeps claiming convergence, but whose x does not meet the tolerance, stops
    /// as `stagnated`.
    static var maxReplacements: Int { 4 }

    /// The recurrence says `claims` reached the tolerance. The pipelined recurrences drift
    /// from the true residual in finite precision (Cools and Vanroose; Greenbaum), so the
    /// residual is recomputed from x with one product: where it meets the tolerance the
    /// column stops as converged; where not, the residual is replaced by the true one
    /// (computed in float64 on the host, like van der Vorst and Ye's replacement) and the
    /// column restarts from its x with a fresh direction.
    private func confirmConvergence<Operator: CurvatureOperator<Element>>(
        _ claims: [Int], _ curvature: Operator, _ b: VectorBatch<Element>, _ hostB: [Double], _ state: State,
        damping: Element, tolerance: Double, cap: Int, columns: inout [Column], confirmed: inout [ColumnReport?]
    ) throws {
        let product = try state.checkScratch(context: context)
        let measured = try measureSolutionValues(
            curvature, b, state.x, damping: damping, scratch: product, hostB: hostB,
            iterations: columns.map(\.iterations), statuses: columns.map { $0.status ?? .converged })
        let n = state.dimension
        for index in claims {
            let report = measured.reports[index]
            let met = columns[index].bNorm == 0 ? report.relativeResidual == 0 : report.relativeResidual <= tolerance
            if met || !report.relativeResidual.isFinite {
                columns[index].finish(report.relativeResidual.isFinite ? .converged : .nonFinite)
                confirmed[index] = report
                continue
            }
            columns[index].replacements += 1
            if columns[index].replacements > Self.maxReplacements {
                columns[index].finish(.stagnated)
                confirmed[index] = measured.reports[index]
                continue
            }
            if columns[index].iterations >= cap {
                columns[index].finish(.iterationCap)
                confirmed[index] = measured.reports[index]
                continue
            }
            // r ← b − (F + λI)x; p, s, u, w ← 0; the next pass restarts the column.
            let range = (index * n)..<((index + 1) * n)
            try state.r.buffer.upload(float64: range.map { hostB[$0] - measured.products[$0] }, at: index * n)
            for vector in [state.p, state.s, state.u, state.w] { try vector.buffer.fill(0, range: range) }
            columns[index].restarting = true
        }
    }

    // MARK: - Launches

    /// Work vectors for a solve of `b`: the previous solve's where the shape matches, with a
    /// fresh x (the previous solution belongs to its caller).
    private func makeState(_ b: VectorBatch<Element>) throws -> State {
        let groups = groups(for: b.dimension)
        let state: State
        if let previous = reusable, previous.dimension == b.dimension, previous.count == b.count,
            previous.groups == groups
        {
            state = try State(context: context, reusing: previous, b: b)
        } else {
            state = try State(context: context, b: b, groups: groups)
        }
        reusable = state
        return state
    }

    /// Work-groups of the fused kernels: enough for every element, at most `maxGroups`.
    /// Derived from the dimension and the tunables alone (never the device's compute-unit
    /// count), so the partial sums, and with them every bit of a solve, are the same on a
    /// device whatever its thread count.
    private func groups(for dimension: Int) -> Int {
        max(1, min(Self.maxGroups, (dimension + groupSize - 1) / groupSize))
    }

    /// The most work-groups per column of the fused kernels.
    static var maxGroups: Int { 256 }

    private func launchUpdate(
        _ state: State, preconditioner: Buffer<Element>?, columns: [Column], alpha: [Element], beta: [Element]
    ) throws {
        try state.steps.upload(columns.map { $0.active ? 1 : 0 } + alpha + beta)
        try updateKernel.setArguments(
            UInt32(state.dimension), state.steps, preconditioner ?? state.steps,
            UInt32(preconditioner == nil ? 0 : 1), state.p.buffer, state.s.buffer, state.x.buffer, state.r.buffer,
            state.u.buffer, state.w.buffer, state.b.buffer, state.partials)
        try context.enqueue(
            updateKernel, globalSize: [state.groups * groupSize, state.count], localSize: [groupSize, 1])
    }

    private func launchCurvatureDots(_ state: State, columns: [Column]) throws {
        try curvatureKernel.setArguments(
            UInt32(state.dimension), state.steps, state.w.buffer, state.u.buffer, state.partials)
        try context.enqueue(
            curvatureKernel, globalSize: [state.groups * groupSize, state.count], localSize: [groupSize, 1])
    }

    /// `(diag F + λ)^−exponent` on the device, or nil for plain CG. Non-positive entries
    /// (a zero diagonal with λ = 0) get 1, so the preconditioner stays positive definite.
    private func makePreconditioner<Operator: CurvatureOperator<Element>>(
        _ curvature: Operator, damping: Element, _ preconditioner: ConjugateGradientOptions.Preconditioner
    ) throws -> Buffer<Element>? {
        guard case let .jacobi(exponent) = preconditioner else { return nil }
        let diagonal = try curvature.diagonal().downloadFloat64(0..<curvature.dimension)
        let inverse = diagonal.map { value -> Double in
            let shifted = value + damping.float64
            let scale = shifted > 0 && shifted.isFinite ? pow(shifted, -exponent) : 1
            return scale.isFinite && scale > 0 && Element(float64: scale).isFinite ? scale : 1
        }
        let buffer = try Buffer<Element>(context: context, count: inverse.count)
        try buffer.upload(float64: inverse)
        return buffer
    }
}

// MARK: - Iteration state

extension ConjugateGradient {
    /// Device vectors of one solve and the partial-sum buffer.
    private final class State {
        let dimension: Int
        let count: Int
        let groups: Int
        let b: VectorBatch<Element>
        let x, r, u, w, p, s: VectorBatch<Element>
        let partials: Buffer<Element>
        /// Per column: active flag (1 or 0), α, β, written once per iteration.
        let steps: Buffer<Element>
        /// (F + λI)x when convergence is checked from x; allocated on first use.
        private var check: VectorBatch<Element>?

        init(context: Context, b: VectorBatch<Element>, groups: Int) throws {
            dimension = b.dimension
            count = b.count
            self.groups = groups
            self.b = b
            func batch() throws -> VectorBatch<Element> {
                try VectorBatch(context: context, dimension: b.dimension, count: b.count)
            }
            (x, r, u, w, p, s) = (try batch(), try batch(), try batch(), try batch(), try batch(), try batch())
            partials = try Buffer(context: context, count: b.count * groups * 5)
            steps = try Buffer(context: context, count: 3 * b.count)
        }

        /// `previous`'s work vectors for a new right-hand side of the same shape, and a fresh x.
        init(context: Context, reusing previous: State, b: VectorBatch<Element>) throws {
            (dimension, count, groups, self.b) = (previous.dimension, previous.count, previous.groups, b)
            x = try VectorBatch(context: context, dimension: b.dimension, count: b.count)
            (r, u, w, p, s) = (previous.r, previous.u, previous.w, previous.p, previous.s)
            (partials, steps, check) = (previous.partials, previous.steps, previous.check)
        }

        func checkScratch(context: Context) throws -> VectorBatch<Element> {
            if let check { return check }
            let batch = try VectorBatch<Element>(context: context, dimension: dimension, count: count)
            check = batch
            return batch
        }

        /// Per column: (r·u, r·r, x·r, x·b, w·u), each summed over groups in order in float64.
        func readPartials() throws -> [[Double]] {
            let values = try partials.downloadFloat64()
            return (0..<count).map { column in
                var sums = [Double](repeating: 0, count: 5)
                for group in 0..<groups {
                    for entry in 0..<5 { sums[entry] += values[(column * groups + group) * 5 + entry] }
                }
                return sums
            }
        }
    }

    /// The scalar recurrences of one column.
    private struct Column {
        let bNorm: Double
        var iterations = 0
        var status: SolveStatus?
        var gamma = 0.0 // r·u
        var alphaValue = 0.0
        var betaValue = 0.0
        var objectives: [Double] = []
        /// The next pass starts a direction afresh (α = β = 0): the first pass, and the pass
        /// after a residual replacement.
        var restarting = false
        /// Residual replacements so far.
        var replacements = 0
        /// The recurrence's last two relative residuals (‖r‖/‖b‖), for `expectsClaim`.
        var residuals: (previous: Double?, last: Double?) = (nil, nil)

        init(bNorm: Double) { self.bNorm = bNorm }

        var active: Bool { status == nil }
        var alpha: Element { active ? Element(alphaValue) : 0 }
        var beta: Element { active ? Element(betaValue) : 0 }

        mutating func finish(_ status: SolveStatus) { self.status = status }

        /// Records φ (unless `record` is false: a restart at an x already recorded) and stops
        /// on convergence (of the recurrence's residual; the caller confirms it from x) or
        /// a non-finite value.
        mutating func observe(_ sums: [Double], tolerance: Double, record: Bool = true) {
            guard sums.allSatisfy(\.isFinite) else { return finish(.nonFinite) }
            // φ(x) = ½xᵀAx − bᵀx = −½(xᵀb + xᵀr), since r = b − Ax.
            if record { objectives.append(-0.5 * (sums[3] + sums[2])) }
            let residual = sums[1].squareRoot()
            if bNorm > 0 { residuals = (residuals.last, residual / bNorm) }
            if bNorm == 0 ? residual == 0 : residual / bNorm <= tolerance { finish(.converged) }
        }

        /// Whether `observe` would stop the column on the update's sums (entries 0...3; the
        /// product's entry 4 is not needed to claim convergence or to see a non-finite value).
        func stops(_ sums: [Double], tolerance: Double) -> Bool {
            guard sums.prefix(4).allSatisfy(\.isFinite) else { return true }
            let residual = sums[1].squareRoot()
            return bNorm == 0 ? residual == 0 : residual / bNorm <= tolerance
        }

        /// Whether the next pass's recurrence residual is likely to meet the tolerance: the
        /// last one times the last reduction factor (CG's residual falls roughly
        /// geometrically), within a factor 4. Never for a restarting column (its pass does not
        /// move x, so it cannot claim more than its last measurement did).
        func expectsClaim(tolerance: Double) -> Bool {
            guard !restarting, tolerance > 0, let previous = residuals.previous, let last = residuals.last,
                previous > 0
            else { return false }
            return last * min(1, last / previous) <= 4 * tolerance
        }

        /// α₀ = γ₀/δ₀, β₀ = 0.
        mutating func firstStep(_ sums: [Double]) {
            gamma = sums[0]
            let delta = sums[4]
            guard delta > 0 else { return finish(delta.isFinite ? .negativeCurvature : .nonFinite) }
            alphaValue = gamma / delta
            betaValue = 0
            if !alphaValue.isFinite { finish(.nonFinite) }
        }

        /// β = γ_new/γ, α = γ_new/(δ − βγ_new/α): the Chronopoulos-Gear recurrences, where
        /// δ − βγ_new/α equals pᵀAp of the next direction.
        mutating func nextStep(_ sums: [Double]) {
            let newGamma = sums[0]
            let delta = sums[4]
            let beta = newGamma / gamma
            let curvature = delta - beta * newGamma / alphaValue
            guard beta.isFinite, curvature.isFinite else { return finish(.nonFinite) }
            guard curvature > 0 else { return finish(.negativeCurvature) }
            gamma = newGamma
            betaValue = beta
            alphaValue = newGamma / curvature
        }

        func progressStalled() -> Bool { martensProgressStalled(objectives) }
    }
}

/// Martens' progress rule (Martens 2010, section 4.4) on the quadratic-model values
/// `objectives[i] = φ_i` of iterations 0...i: stop when i > k, φ_{i−k} < 0 and
/// `(φ_i − φ_{i−k}) / φ_i < k · 5e−4`, with `k = max(10, ⌈0.1 i⌉)`.
func martensProgressStalled(_ objectives: [Double]) -> Bool {
    let i = objectives.count - 1
    let k = max(10, Int((0.1 * Double(i)).rounded(.up)))
    guard i > k else { return false }
    let current = objectives[i]
    let previous = objectives[i - k]
    return previous < 0 && (current - previous) / current < Double(k) * 5e-4
}
