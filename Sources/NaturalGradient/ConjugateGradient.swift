import Foundation
import OpenCLHost

/// Options of the conjugate-gradient solver.
public struct ConjugateGradientOptions: Sendable {
    /// Preconditioners for CG.
    public enum Preconditioner: Sendable, Equatable {
        /// Plain CG.
        case none
        /// Jacobi: `M⁻¹ = (diag F + λ)^−exponent` (Martens uses 0.75).
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
/// progress rule, negative curvature, non-finite) and is frozen on the device from then on.
public final class ConjugateGradient<Element: DeviceScalar> {
    /// The context everything runs on.
    public let context: Context
    private let updateKernel: Kernel
    private let curvatureKernel: Kernel
    private let groupSize: Int
    private let vectors: VectorOperations<Element>

    public init(context: Context) throws {
        self.context = context
        let built = try context.buildFixedGroupKernels(
            KernelConfiguration(.conjugateGradient, element: Element.self, device: context.device),
            names: ["cg_update", "cg_curvature"])
        updateKernel = built.kernels[0]
        curvatureKernel = built.kernels[1]
        groupSize = built.groupSize
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

        let state = try State(context: context, b: b, groups: groups(for: b.dimension))
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
        let bNorms = try (0..<b.count).map { column -> Double in
            let range = (column * b.dimension)..<((column + 1) * b.dimension)
            return try b.buffer.downloadFloat64(range).reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        }

        var columns = (0..<b.count).map { Column(bNorm: bNorms[$0]) }
        for index in columns.indices where !(bNorms[index].isFinite) {
            columns[index].finish(.nonFinite)
        }
        try launchUpdate(state, preconditioner: preconditioner, columns: columns, alpha: 0, beta: 0)
        try curvature.apply(state.u, damping: damping, into: state.w)
        try launchCurvatureDots(state, columns: columns)
        var sums = try state.readPartials()

        // First step sizes; columns already solved (b = 0 or x0 exact) stop here.
        for index in columns.indices where columns[index].active {
            columns[index].observe(sums[index], tolerance: options.tolerance)
            if columns[index].active, cap == 0 { columns[index].finish(.iterationCap) }
            if columns[index].active { columns[index].firstStep(sums[index]) }
        }

        while columns.contains(where: \.active) {
            try launchUpdate(
                state, preconditioner: preconditioner, columns: columns, alpha: columns.map(\.alpha),
                beta: columns.map(\.beta))
            try curvature.apply(state.u, damping: damping, into: state.w)
            try launchCurvatureDots(state, columns: columns)
            sums = try state.readPartials()
            for index in columns.indices where columns[index].active {
                columns[index].iterations += 1
                columns[index].observe(sums[index], tolerance: options.tolerance)
                guard columns[index].active else { continue }
                if options.progressRule, columns[index].progressStalled() {
                    columns[index].finish(.progressStalled)
                } else if columns[index].iterations >= cap {
                    columns[index].finish(.iterationCap)
                } else {
                    columns[index].nextStep(sums[index])
                }
            }
        }

        // Report the true residual of the returned x, not the recurrence's.
        let reports = try measureSolution(
            curvature, b, state.x, damping: damping, scratch: state.w, iterations: columns.map(\.iterations),
            statuses: columns.map { $0.status ?? .iterationCap })
        return (state.x, reports)
    }

    // MARK: - Launches

    private func groups(for dimension: Int) -> Int {
        max(1, min(max(1, min(1024, context.device.computeUnits * 8)), (dimension + groupSize - 1) / groupSize))
    }

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

    private func launchUpdate(_ state: State, preconditioner: Buffer<Element>?, columns: [Column], alpha: Element, beta: Element)
        throws
    {
        try launchUpdate(
            state, preconditioner: preconditioner, columns: columns, alpha: Array(repeating: alpha, count: state.count),
            beta: Array(repeating: beta, count: state.count))
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
        var gamma = 0.0  // r·u
        var alphaValue = 0.0
        var betaValue = 0.0
        var objectives: [Double] = []

        init(bNorm: Double) { self.bNorm = bNorm }

        var active: Bool { status == nil }
        var alpha: Element { active ? Element(alphaValue) : 0 }
        var beta: Element { active ? Element(betaValue) : 0 }

        mutating func finish(_ status: SolveStatus) { self.status = status }

        /// Records φ and stops on convergence or a non-finite value.
        mutating func observe(_ sums: [Double], tolerance: Double) {
            guard sums.allSatisfy(\.isFinite) else { return finish(.nonFinite) }
            // φ(x) = ½xᵀAx − bᵀx = −½(xᵀb + xᵀr), since r = b − Ax.
            objectives.append(-0.5 * (sums[3] + sums[2]))
            let residual = sums[1].squareRoot()
            if bNorm == 0 ? residual == 0 : residual / bNorm <= tolerance { finish(.converged) }
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
