import OpenCLHost

/// What one optimizer step did.
public struct OptimizerStepReport<Element: DeviceScalar> {
    /// The update δ (P values); `step` has already added it to the parameters.
    public var update: [Element]
    /// The index of this step (0 for the first).
    public var step: Int
    /// The λ this step solved with (for a cached inverse, the λ it was built for).
    public var damping: Double
    /// The λ for the next step (changed by Levenberg-Marquardt).
    public var nextDamping: Double
    /// The step size α along `−Δ`.
    public var stepSize: Double
    /// `‖δ‖` after clipping.
    public var updateNorm: Double
    /// Whether `maxUpdateNorm` scaled the update down.
    public var clipped: Bool
    /// The solver that produced Δ (never `.automatic`).
    public var method: SolveMethod
    /// For CG and PCG: iterations, residual, φ and status of the solve.
    public var solve: ColumnReport?
    /// Whether this step rebuilt (or averaged into) the curvature.
    public var refreshedCurvature: Bool
    /// Whether this step recomputed the cached inverse.
    public var refreshedInverse: Bool
    /// The predicted loss change `gᵀδ + ½ δᵀFδ` (undamped F), where it was computed (a
    /// quadratic-model step size or Levenberg-Marquardt damping).
    public var predictedChange: Double?
    /// `loss(θ + δ) − loss(θ)`, where the step evaluated it (Levenberg-Marquardt).
    public var actualChange: Double?
    /// `actualChange / predictedChange`, the ρ Levenberg-Marquardt adapts λ with.
    public var reductionRatio: Double?
}

/// A natural-gradient optimizer that a training loop calls once per step.
///
/// Each step takes the parameters θ, the mini-batch gradient g and, on the steps that
/// refresh the curvature (`needsCurvature`), the curvature data the optimizer was
/// configured for; it solves `(F + λI) Δ = g` with the configured representation and
/// solver, picks a step size α (fixed or from the quadratic model), adds momentum, clips,
/// and returns (`update`) or applies (`step`) `δ = −αΔ + μ δ_prev`. Levenberg-Marquardt
/// damping evaluates the loss at θ + δ through a closure and adapts λ from
/// `ρ = (loss(θ + δ) − loss(θ)) / (gᵀδ + ½ δᵀFδ)`.
///
/// The state (step count, λ, momentum, curvature and its moving average, cached inverse)
/// is saved with `state()` and restored with `restore(_:)`; a restored optimizer takes
/// exactly the next step the original would have. An instance serves one thread at a time.
public final class NaturalGradientOptimizer<Element: DeviceScalar> {
    /// The context the curvature lives in.
    public let context: Context
    /// P, the number of parameters.
    public let dimension: Int
    /// The configuration.
    public let options: NaturalGradientOptimizerOptions

    /// Steps taken so far.
    public private(set) var stepCount = 0

    private var fixedDamping: Double
    private var adaptiveDamping: LevenbergMarquardtDamping?
    private var previousUpdate: [Double]?
    private var curvature: Curvature?
    private var inverse: Inverse?
    private var conjugateGradient: ConjugateGradient<Element>?

    private enum Curvature {
        case implicit(ImplicitCurvature<Element>)
        case dense(DenseCurvature<Element>)
        case blockDiagonal(BlockDiagonalCurvature<Element>)
        case diagonal(DiagonalCurvature<Element>)
        case kronecker(KroneckerCurvature<Element>)

        var operator_: any CurvatureOperator<Element> {
            switch self {
            case let .implicit(value): value
            case let .dense(value): value
            case let .blockDiagonal(value): value
            case let .diagonal(value): value
            case let .kronecker(value): value
            }
        }
    }

    private enum Inverse {
        case woodbury(WoodburySolver<Element>, damping: Double)
        case dense(DenseSymmetricFactorization, source: [Double])
        case kronecker(KroneckerSolver<Element>, source: [Double], damping: Double)

        var method: SolveMethod {
            switch self {
            case .woodbury: .woodbury
            case .dense: .cholesky
            case .kronecker: .kfac
            }
        }
    }

    /// An optimizer for a model of `dimension` parameters.
    /// - Throws: `NaturalGradientError.invalidArgument` naming the first unusable option.
    public init(context: Context, dimension: Int, options: NaturalGradientOptimizerOptions) throws {
        try options.validate(dimension: dimension)
        self.context = context
        self.dimension = dimension
        self.options = options
        switch options.damping {
        case let .fixed(lambda):
            fixedDamping = lambda
        case let .levenbergMarquardt(initial, minimum, maximum):
            let policy = try LevenbergMarquardtDamping(initial: initial, minimum: minimum, maximum: maximum)
            adaptiveDamping = policy
            fixedDamping = policy.damping
        }
    }

    /// The λ the next step solves with (before any cached inverse's own λ).
    public var damping: Double { adaptiveDamping?.damping ?? fixedDamping }

    /// Whether the next step rebuilds the curvature, and so needs a `CurvatureInput`.
    public var needsCurvature: Bool { curvature == nil || stepCount % options.curvatureRefreshPeriod == 0 }

    // MARK: - Steps

    /// Computes the update for `parameters` and adds it to them. See `update`.
    @discardableResult
    public func step(
        parameters: inout [Element], gradient: [Element], curvature input: CurvatureInput<Element>? = nil,
        loss: Double? = nil, lossAt: ((_ candidate: [Element]) throws -> Double)? = nil
    ) throws -> OptimizerStepReport<Element> {
        let report = try update(parameters: parameters, gradient: gradient, curvature: input, loss: loss, lossAt: lossAt)
        parameters = Element.narrowed(zip(Element.widened(parameters), Element.widened(report.update)).map { $0 + $1 })
        return report
    }

    /// Computes the update δ for one step without applying it, and advances the state
    /// (step count, momentum, curvature, inverse, λ).
    ///
    /// - Parameters:
    ///   - parameters: θ (P values); read only for the loss closure.
    ///   - gradient: the mini-batch gradient g (P values, finite).
    ///   - input: the curvature data; required when `needsCurvature`, ignored otherwise.
    ///   - loss: the mini-batch loss at θ, for Levenberg-Marquardt (else `lossAt(θ)` is called).
    ///   - lossAt: the mini-batch loss at a candidate point; required for
    ///     Levenberg-Marquardt damping, optional otherwise (then ρ is only reported).
    /// - Throws: `NaturalGradientError.invalidArgument` naming a missing or mismatched
    ///   argument; errors of the solver and the device.
    public func update(
        parameters: [Element], gradient: [Element], curvature input: CurvatureInput<Element>? = nil,
        loss: Double? = nil, lossAt: ((_ candidate: [Element]) throws -> Double)? = nil
    ) throws -> OptimizerStepReport<Element> {
        try require(parameters.count == dimension, "parameters", "holds \(parameters.count) values, expected \(dimension)")
        try require(gradient.count == dimension, "gradient", "holds \(gradient.count) values, expected \(dimension)")
        let g = Element.widened(gradient)
        try require(g.allSatisfy { $0.isFinite }, "gradient", "holds NaN or infinite values")
        if adaptiveDamping != nil {
            try require(lossAt != nil, "lossAt", "Levenberg-Marquardt damping needs the loss at the candidate point")
        }
        if let loss { try require(loss.isFinite, "loss", "must be finite, got \(loss)") }

        // 1. Curvature.
        var refreshedCurvature = false
        if needsCurvature {
            guard let input else {
                throw NaturalGradientError.invalidArgument(
                    name: "curvature", reason: "step \(stepCount) refreshes the curvature; pass its curvature input")
            }
            try refreshCurvature(input)
            refreshedCurvature = true
        }
        guard let curvature else {
            throw NaturalGradientError.invalidArgument(name: "curvature", reason: "no curvature has been given yet")
        }
        let lambda = damping
        let operator_ = curvature.operator_

        // 2. Δ = (F + λI)⁻¹ g.
        let method = resolveMethod(curvature, damping: lambda)
        var refreshedInverse = false
        if method.hasInverse, inverse?.method != method || stepCount % options.inverseRefreshPeriod == 0 {
            inverse = try makeInverse(curvature, method: method, damping: lambda)
            refreshedInverse = true
        }
        let gBatch = try VectorBatch<Element>(context: context, dimension: dimension)
        try gBatch.buffer.upload(gradient)
        var solveReport: ColumnReport?
        var solvedDamping = lambda
        let direction: [Double]
        switch (method, inverse) {
        case let (.woodbury, .woodbury(solver, inverseDamping)?):
            solvedDamping = inverseDamping
            direction = try solver.solve(gBatch, damping: Element(float64: inverseDamping)).buffer.downloadFloat64(0..<dimension)
        case let (.cholesky, .dense(factorization, _)?):
            solvedDamping = factorization.damping
            direction = try factorization.solve(g)
        case let (.kfac, .kronecker(solver, _, inverseDamping)?):
            solvedDamping = inverseDamping
            direction = try solver.solve(gBatch).buffer.downloadFloat64(0..<dimension)
        default:
            let solver = try conjugateGradient ?? ConjugateGradient<Element>(context: context)
            conjugateGradient = solver
            var cgOptions = options.conjugateGradient
            if method == .pcg, cgOptions.preconditioner == .none { cgOptions.preconditioner = .jacobi(exponent: 0.75) }
            let (x, reports) = try solver.solve(operator_, gBatch, damping: Element(float64: lambda), options: cgOptions)
            solveReport = reports.first
            direction = try x.buffer.downloadFloat64(0..<dimension)
        }
        try require(direction.allSatisfy { $0.isFinite }, "curvature", "the solve gave non-finite values")

        // 3. Step size, momentum and the quadratic model along d = −Δ and m = μ δ_prev.
        let d = direction.map { -$0 }
        let m: [Double]? = options.momentum > 0 ? previousUpdate.map { $0.map { options.momentum * $0 } } : nil
        let needsModel: Bool
        if case .quadraticModel = options.stepSize { needsModel = true } else { needsModel = adaptiveDamping != nil || lossAt != nil }
        var model: Model?
        if needsModel { model = try quadraticModel(operator_, g: g, d: d, m: m) }

        var alpha: Double
        var momentumScale = 1.0  // the factor on m = μ δ_prev (K-FAC's rule may shrink it)
        switch options.stepSize {
        case let .learningRate(rate):
            alpha = rate
        case let .quadraticModel(maximum):
            alpha = 0
            if let model {
                (alpha, momentumScale) = Self.modelStep(model, damping: lambda, maximum: maximum, hasMomentum: m != nil)
            }
        }
        var scale = 1.0
        var delta = d.map { alpha * $0 }
        if let m { for i in delta.indices { delta[i] += momentumScale * m[i] } }
        var norm = delta.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var clipped = false
        if let maxNorm = options.maxUpdateNorm, norm > maxNorm {
            scale = maxNorm / norm
            delta = delta.map { $0 * scale }
            norm = maxNorm
            clipped = true
        }
        try require(delta.allSatisfy { $0.isFinite }, "gradient", "the update is not finite")
        let update = Element.narrowed(delta)
        var predicted: Double?
        if let model {
            // δ = a d + b m with a = scale·α and b = scale·momentumScale.
            let (a, b) = (scale * alpha, scale * momentumScale)
            let linear = a * model.gd + b * model.gm
            let quadratic = a * a * model.dFd + 2 * a * b * model.dFm + b * b * model.mFm
            predicted = linear + 0.5 * quadratic
        }

        // 4. Levenberg-Marquardt (or just the reported ratio).
        var actual: Double?
        var ratio: Double?
        if let lossAt {
            let before = try loss ?? lossAt(parameters)
            let candidate = Element.narrowed(zip(Element.widened(parameters), Element.widened(update)).map { $0 + $1 })
            let after = try lossAt(candidate)
            actual = after - before
            if let predicted, let actual { ratio = actual / predicted }
            adaptiveDamping?.update(reductionRatio: ratio ?? .nan)
        }

        if options.momentum > 0 { previousUpdate = Element.widened(update) }
        let index = stepCount
        stepCount += 1
        return OptimizerStepReport(
            update: update, step: index, damping: solvedDamping, nextDamping: damping, stepSize: scale * alpha,
            updateNorm: norm, clipped: clipped, method: method, solve: solveReport, refreshedCurvature: refreshedCurvature,
            refreshedInverse: refreshedInverse, predictedChange: predicted, actualChange: actual, reductionRatio: ratio)
    }

    // MARK: - Curvature

    private func refreshCurvature(_ input: CurvatureInput<Element>) throws {
        let beta = options.curvatureDecay
        let first = curvature == nil
        if case let .kfac(shapes) = options.curvature {
            guard case let .layers(statistics, samples) = input else {
                throw NaturalGradientError.invalidArgument(
                    name: "curvature", reason: "K-FAC needs per-layer statistics (CurvatureInput.layers)")
            }
            try require(samples > 0, "samples", "must be positive, got \(samples)")
            try require(
                statistics.count == shapes.count, "layers", "holds \(statistics.count) layers, expected \(shapes.count)")
            var layers: [KFACLayer<Element>] = []
            for (index, (layer, shape)) in zip(statistics, shapes).enumerated() {
                try require(
                    layer.activations.count == samples * shape.inputs, "layers[\(index)].activations",
                    "holds \(layer.activations.count) values, expected \(samples) x \(shape.inputs)")
                try require(
                    layer.outputGradients.count == samples * shape.outputs, "layers[\(index)].outputGradients",
                    "holds \(layer.outputGradients.count) values, expected \(samples) x \(shape.outputs)")
                layers.append(
                    KFACLayer(
                        activations: try Buffer(context: context, copying: layer.activations),
                        outputGradients: try Buffer(context: context, copying: layer.outputGradients),
                        inputs: shape.inputs, outputs: shape.outputs))
            }
            let kronecker: KroneckerCurvature<Element>
            if case let .kronecker(existing)? = curvature {
                kronecker = existing
            } else {
                kronecker = try KroneckerCurvature(context: context, shapes: shapes.map { ($0.outputs, $0.inputs) })
            }
            try kronecker.accumulate(
                layers, samples: samples, alpha: Element(float64: (first ? 1 : 1 - beta) / Double(samples)),
                beta: Element(float64: first ? 0 : beta))
            curvature = .kronecker(kronecker)
            return
        }

        let factor = try makeFactor(input)
        let alpha: Element? = first ? nil : Element(float64: (1 - beta) / Double(factor.samples))
        let betaElement = Element(float64: first ? 0 : beta)
        switch (options.representation, curvature) {
        case (.implicit, _):
            curvature = .implicit(try ImplicitCurvature(factor: factor))
        case let (.dense, .dense(existing)?):
            try existing.accumulate(factor, alpha: alpha, beta: betaElement)
        case (.dense, _):
            curvature = .dense(try DenseCurvature(factor: factor))
        case let (.blockDiagonal, .blockDiagonal(existing)?):
            try existing.accumulate(factor, alpha: alpha, beta: betaElement)
        case let (.blockDiagonal(sizes), _):
            curvature = .blockDiagonal(try BlockDiagonalCurvature(factor: factor, blockSizes: sizes))
        case let (.diagonal, .diagonal(existing)?) where beta > 0:
            let fresh = try DiagonalCurvature(factor: factor).values.downloadFloat64(0..<dimension)
            let old = try existing.values.downloadFloat64(0..<dimension)
            try existing.values.upload(float64: zip(old, fresh).map { beta * $0 + (1 - beta) * $1 })
        case (.diagonal, _):
            curvature = .diagonal(try DiagonalCurvature(factor: factor))
        }
    }

    private func makeFactor(_ input: CurvatureInput<Element>) throws -> CurvatureFactor<Element> {
        let factor: CurvatureFactor<Element>
        switch input {
        case let .perSampleGradients(values, samples):
            try require(
                options.curvature == .empiricalFisher, "curvature",
                "per-sample gradients give the empirical Fisher; the optimizer is configured for \(options.curvature)")
            try require(samples > 0, "samples", "must be positive, got \(samples)")
            try require(
                values.count == samples * dimension, "perSampleGradients",
                "holds \(values.count) values, expected \(samples) x \(dimension)")
            factor = try CurvatureFactor(
                context: context, matrix: values, rows: samples, dimension: dimension, samples: samples)
        case let .outputJacobians(values, samples, outputs, measure):
            try require(
                options.curvature == .exactFisher, "curvature",
                "output Jacobians give the exact Fisher; the optimizer is configured for \(options.curvature)")
            try require(samples > 0, "samples", "must be positive, got \(samples)")
            try require(outputs > 0, "outputs", "must be positive, got \(outputs)")
            try require(
                values.count == samples * outputs * dimension, "outputJacobians",
                "holds \(values.count) values, expected \(samples) x \(outputs) x \(dimension)")
            let jacobians = try Buffer(context: context, copying: values)
            switch measure {
            case let .metric(metric):
                factor = try CurvatureFactor.exactFisher(
                    outputJacobians: jacobians, samples: samples, outputs: outputs, dimension: dimension, metric: metric)
            case let .similarity(family, similarity, modelOutputs):
                try require(
                    family.outputCount == outputs, "outputs",
                    "is \(outputs) per sample, but \(family) has \(family.outputCount) outputs")
                try require(
                    modelOutputs.count == samples * outputs, "measure",
                    "holds \(modelOutputs.count) model outputs, expected \(samples) x \(outputs)")
                factor = try CurvatureFactor.formalMetric(
                    outputJacobians: jacobians, outputs: Buffer(context: context, copying: modelOutputs), samples: samples,
                    dimension: dimension, family: family, measure: similarity)
            case let .custom(build):
                factor = try build(jacobians, samples, outputs, dimension)
            }
        case let .factor(given):
            try require(
                options.curvature == .empiricalFisher || options.curvature == .exactFisher, "curvature",
                "a factor gives an empirical or exact Fisher; the optimizer is configured for \(options.curvature)")
            factor = given
        case .layers:
            throw NaturalGradientError.invalidArgument(
                name: "curvature", reason: "per-layer statistics are K-FAC's input; the optimizer is configured for \(options.curvature)")
        }
        try require(factor.dimension == dimension, "curvature", "the factor has dimension \(factor.dimension), the model \(dimension)")
        try require(factor.context === context, "curvature", "the factor belongs to another context")
        return factor
    }

    private func resolveMethod(_ curvature: Curvature, damping: Double) -> SolveMethod {
        guard options.method == .automatic else { return options.method }
        switch curvature {
        case let .implicit(implicit):
            return implicit.factor.rows <= dimension && damping > 0 ? .woodbury : .cg
        case .dense:
            return dimension <= NaturalGradientSolver.denseLimit ? .cholesky : .cg
        case .kronecker:
            return .kfac
        case .blockDiagonal:
            return .cg
        case .diagonal:
            return .pcg
        }
    }

    private func makeInverse(_ curvature: Curvature, method: SolveMethod, damping: Double) throws -> Inverse {
        switch (method, curvature) {
        case let (.woodbury, .implicit(implicit)):
            try require(damping > 0, "damping", "the Woodbury solve needs λ > 0")
            return .woodbury(try WoodburySolver(factor: implicit.factor), damping: damping)
        case let (.cholesky, .dense(dense)):
            let matrix = try dense.matrix.downloadFloat64(0..<(dimension * dimension))
            return .dense(try DenseSymmetricFactorization(matrix: matrix, dimension: dimension, damping: damping), source: matrix)
        case let (.kfac, .kronecker(kronecker)):
            let source = try kronecker.factors.downloadFloat64()
            let solver: KroneckerSolver<Element>
            if case let .kronecker(existing, _, _)? = inverse, existing.curvature === kronecker {
                solver = existing  // the same factors object: re-invert in place, keep the kernels
            } else {
                solver = try KroneckerSolver(curvature: kronecker)
            }
            try solver.refresh(damping: Element(float64: damping))
            return .kronecker(solver, source: source, damping: damping)
        default:
            throw NaturalGradientError.invalidArgument(
                name: "method", reason: "\(method.rawValue) does not fit the \(options.representation) representation")
        }
    }

    // MARK: - The quadratic model

    /// The step size α along d and the factor c ∈ [0, 1] on m = μ δ_prev that minimise
    /// `q(αd + cm) = gᵀδ + ½ δᵀ(F + λI)δ`: jointly (K-FAC's rule) when there is a momentum
    /// term and the joint minimiser is in range, else α alone with c = 1 (or c = 0 when
    /// that is lower). α is clamped to [0, maximum].
    static func modelStep(_ model: Model, damping lambda: Double, maximum: Double, hasMomentum: Bool) -> (Double, Double) {
        let dd = model.dFd + lambda * model.dd
        let gd = model.gd
        func alone(_ c: Double) -> (alpha: Double, q: Double) {
            guard dd > 0 else { return (0, c * model.gm + 0.5 * c * c * (model.mFm + lambda * model.mm)) }
            let slope = gd + c * (model.dFm + lambda * model.dm)
            let alpha = min(max(-slope / dd, 0), maximum)
            let q = alpha * gd + c * model.gm + 0.5 * (alpha * alpha * dd + 2 * alpha * c * (model.dFm + lambda * model.dm)
                + c * c * (model.mFm + lambda * model.mm))
            return (alpha.isFinite ? alpha : 0, q)
        }
        guard hasMomentum else { return (alone(0).alpha, 1) }
        let dm = model.dFm + lambda * model.dm
        let mm = model.mFm + lambda * model.mm
        let determinant = dd * mm - dm * dm
        if determinant > 1e-12 * max(dd * mm, .leastNormalMagnitude) {
            let alpha = (-gd * mm + model.gm * dm) / determinant
            let c = (-model.gm * dd + gd * dm) / determinant
            if alpha >= 0, alpha <= maximum, c >= 0, c <= 1, alpha.isFinite, c.isFinite { return (alpha, c) }
        }
        let (with, without) = (alone(1), alone(0))
        return with.q <= without.q ? (with.alpha, 1) : (without.alpha, 0)
    }

    struct Model {
        var gd = 0.0, gm = 0.0, dd = 0.0, dm = 0.0, mm = 0.0, dFd = 0.0, dFm = 0.0, mFm = 0.0
    }

    /// The inner products of the model `gᵀδ + ½ δᵀFδ` for δ in the span of d and m, with
    /// one batched (undamped) curvature product.
    private func quadraticModel(_ operator_: any CurvatureOperator<Element>, g: [Double], d: [Double], m: [Double]?)
        throws -> Model
    {
        let vectors = [d] + (m.map { [$0] } ?? [])
        let batch = try VectorBatch<Element>(context: context, dimension: dimension, count: vectors.count)
        try batch.buffer.upload(Element.narrowed(vectors.flatMap { $0 }))
        let products = try VectorBatch<Element>(context: context, dimension: dimension, count: vectors.count)
        try operator_.apply(batch, damping: 0, into: products)
        let values = try products.buffer.downloadFloat64(0..<(dimension * vectors.count))
        // Use the vectors as the device saw them (rounded to Element) for consistent dots.
        let rounded = Element.widened(Element.narrowed(vectors.flatMap { $0 }))
        var model = Model()
        for i in 0..<dimension {
            let di = rounded[i]
            model.gd += g[i] * di
            model.dd += di * di
            model.dFd += di * values[i]
            if m != nil {
                let mi = rounded[dimension + i]
                model.gm += g[i] * mi
                model.dm += di * mi
                model.mm += mi * mi
                model.dFm += di * values[dimension + i]
                model.mFm += mi * values[dimension + i]
            }
        }
        return model
    }

    // MARK: - State

    /// The state to save: step count, λ, momentum, curvature and cached inverse.
    public func state() throws -> NaturalGradientOptimizerState {
        NaturalGradientOptimizerState(
            dimension: dimension, step: stepCount, damping: damping, previousUpdate: previousUpdate,
            curvature: try curvature.map(save), inverse: try inverse.map(save))
    }

    /// Restores a saved state; the optimizer must have the options the state was saved with.
    /// - Throws: `NaturalGradientError.invalidArgument("state", …)` for a state that does
    ///   not fit (version, dimension, representation, sizes).
    public func restore(_ state: NaturalGradientOptimizerState) throws {
        try require(state.version == 1, "state", "has format version \(state.version); this library reads 1")
        try require(state.dimension == dimension, "state", "is for \(state.dimension) parameters, the optimizer has \(dimension)")
        try require(state.step >= 0, "state", "has a negative step count \(state.step)")
        try require(state.damping.isFinite && state.damping >= 0, "state", "has damping \(state.damping)")
        if let previous = state.previousUpdate {
            try require(previous.count == dimension, "state", "previousUpdate holds \(previous.count) values, expected \(dimension)")
        }
        let restoredCurvature = try state.curvature.map(load)
        var restoredInverse: Inverse?
        if let saved = state.inverse {
            try require(saved.damping.isFinite && saved.damping >= 0, "state", "the inverse has damping \(saved.damping)")
            switch try load(saved.source) {
            case let .implicit(implicit):
                restoredInverse = .woodbury(try WoodburySolver(factor: implicit.factor), damping: saved.damping)
            case .dense:
                guard case let .dense(matrix) = saved.source else { throw stateMismatch("inverse") }
                restoredInverse = .dense(
                    try DenseSymmetricFactorization(matrix: matrix, dimension: dimension, damping: saved.damping),
                    source: matrix)
            case let .kronecker(kronecker):
                guard case let .kronecker(factors) = saved.source else { throw stateMismatch("inverse") }
                let solver = try KroneckerSolver(curvature: kronecker)
                try solver.refresh(damping: Element(float64: saved.damping))
                restoredInverse = .kronecker(solver, source: factors, damping: saved.damping)
            case .blockDiagonal, .diagonal:
                throw stateMismatch("inverse")
            }
        }
        if case let .levenbergMarquardt(_, minimum, maximum) = options.damping {
            adaptiveDamping = try LevenbergMarquardtDamping(initial: state.damping, minimum: minimum, maximum: maximum)
        } else {
            fixedDamping = state.damping
        }
        stepCount = state.step
        previousUpdate = state.previousUpdate
        curvature = restoredCurvature
        inverse = restoredInverse
    }

    private func stateMismatch(_ part: String) -> NaturalGradientError {
        .invalidArgument(name: "state", reason: "its \(part) does not fit the \(options.curvature) curvature in the \(options.representation) representation")
    }

    private func save(_ curvature: Curvature) throws -> SavedCurvature {
        switch curvature {
        case let .implicit(implicit):
            let factor = implicit.factor
            return .factor(
                matrix: try factor.matrix.downloadFloat64(0..<(factor.rows * factor.dimension)), rows: factor.rows,
                samples: factor.samples, weights: try factor.weights?.downloadFloat64(0..<factor.rows))
        case let .dense(dense):
            return .dense(matrix: try dense.matrix.downloadFloat64(0..<(dimension * dimension)))
        case let .blockDiagonal(blocks):
            return .blockDiagonal(matrices: try blocks.matrices.downloadFloat64())
        case let .diagonal(diagonal):
            return .diagonal(values: try diagonal.values.downloadFloat64(0..<dimension))
        case let .kronecker(kronecker):
            return .kronecker(factors: try kronecker.factors.downloadFloat64())
        }
    }

    private func save(_ inverse: Inverse) throws -> SavedInverse {
        switch inverse {
        case let .woodbury(solver, damping):
            return SavedInverse(source: try save(.implicit(ImplicitCurvature(factor: solver.factor))), damping: damping)
        case let .dense(factorization, source):
            return SavedInverse(source: .dense(matrix: source), damping: factorization.damping)
        case let .kronecker(_, source, damping):
            return SavedInverse(source: .kronecker(factors: source), damping: damping)
        }
    }

    private func load(_ saved: SavedCurvature) throws -> Curvature {
        switch (saved, options.curvature, options.representation) {
        case let (.kronecker(factors), .kfac(shapes), _):
            let kronecker = try KroneckerCurvature<Element>(context: context, shapes: shapes.map { ($0.outputs, $0.inputs) })
            try require(factors.count == kronecker.factors.count, "state", "holds \(factors.count) K-FAC factor values, expected \(kronecker.factors.count)")
            try kronecker.factors.upload(float64: factors)
            return .kronecker(kronecker)
        case (_, .kfac, _):
            throw stateMismatch("curvature")
        case let (.factor(matrix, rows, samples, weights), _, _):
            try require(rows > 0 && matrix.count == rows * dimension, "state", "the factor holds \(matrix.count) values for \(rows) rows")
            let factor = try CurvatureFactor<Element>(
                context: context, matrix: Element.narrowed(matrix), rows: rows, dimension: dimension, samples: samples,
                weights: weights.map { Element.narrowed($0) })
            return .implicit(try ImplicitCurvature(factor: factor))
        case let (.dense(matrix), _, .dense):
            try require(matrix.count == dimension * dimension, "state", "the dense matrix holds \(matrix.count) values")
            let dense = try DenseCurvature<Element>(context: context, dimension: dimension)
            try dense.matrix.upload(float64: matrix)
            return .dense(dense)
        case let (.blockDiagonal(matrices), _, .blockDiagonal(sizes)):
            let blocks = try BlockDiagonalCurvature<Element>(context: context, blockSizes: sizes)
            try require(matrices.count == blocks.matrices.count, "state", "the blocks hold \(matrices.count) values, expected \(blocks.matrices.count)")
            try blocks.matrices.upload(float64: matrices)
            return .blockDiagonal(blocks)
        case let (.diagonal(values), _, .diagonal):
            try require(values.count == dimension, "state", "the diagonal holds \(values.count) values")
            return .diagonal(try DiagonalCurvature(values: Buffer(context: context, copying: Element.narrowed(values)), dimension: dimension))
        default:
            throw stateMismatch("curvature")
        }
    }
}

extension SolveMethod {
    /// Whether the method keeps an inverse between steps.
    fileprivate var hasInverse: Bool { self == .woodbury || self == .cholesky || self == .kfac }
}
