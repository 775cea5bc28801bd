import OpenCLHost

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
/// The optimizer knows representations only through their protocols: a `CurvatureBuilder`
/// makes the curvature (the built-in one from the options, or the caller's own),
/// `FactorAccumulatingCurvature` / `LayerAccumulatingCurvature` average new data into it,
/// `preferredMethod` and `makeInverse` solve, and `ExportableCurvature` /
/// `ExportableInverse` save the state. Concerns live in extensions: `+Curvature`,
/// `+QuadraticModel`, `+Damping`, `+State`.
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
    public internal(set) var stepCount = 0

    /// Fixed or Levenberg-Marquardt (`options.damping`).
    var dampingPolicy: any DampingPolicy
    /// Makes and restores the curvature.
    let builder: CurvatureBuilder<Element>
    var previousUpdate: [Double]?
    var curvature: (any CurvatureOperator<Element>)?
    var inverse: (any CurvatureInverse<Element>)?
    var conjugateGradient: ConjugateGradient<Element>?

    /// An optimizer for a model of `dimension` parameters, in the representation the
    /// options name.
    /// - Throws: `NaturalGradientError.invalidArgument` naming the first unusable option.
    public init(context: Context, dimension: Int, options: NaturalGradientOptimizerOptions) throws {
        try options.validate(dimension: dimension)
        self.context = context
        self.dimension = dimension
        self.options = options
        dampingPolicy = try options.damping.makePolicy()
        builder = CurvatureBuilder(options: options, context: context, dimension: dimension)
    }

    /// An optimizer that holds its curvature in the caller's representation: `curvature`
    /// builds it from each refresh's factor (an empirical or exact Fisher), or from K-FAC's
    /// layer statistics for `.kfac(layers:)` (`CurvatureBuilder(buildFromLayers:restore:)`),
    /// and rebuilds it from a saved state. `options.representation` is not used;
    /// `options.method` must fit the representation (checked at the first solve).
    /// - Throws: `NaturalGradientError.invalidArgument` naming the first unusable option.
    public init(
        context: Context, dimension: Int, options: NaturalGradientOptimizerOptions, curvature: CurvatureBuilder<Element>
    ) throws {
        var checked = options
        checked.representation = .dense
        checked.method = .automatic
        try checked.validate(dimension: dimension)
        let takesLayers: Bool = if case .kfac = options.curvature { true } else { false }
        if takesLayers != (curvature.fromLayers != nil) {
            throw NaturalGradientError.invalidArgument(
                name: "curvature",
                reason: takesLayers
                    ? "K-FAC needs a builder from layer statistics, CurvatureBuilder(buildFromLayers:restore:)"
                    : "a builder from layer statistics needs the K-FAC curvature (.kfac(layers:))")
        }
        self.context = context
        self.dimension = dimension
        self.options = options
        dampingPolicy = try options.damping.makePolicy()
        builder = curvature
    }

    /// The λ the next step solves with (before any cached inverse's own λ).
    public var damping: Double { dampingPolicy.damping }

    /// Whether the next step rebuilds the curvature, and so needs a `CurvatureInput`.
    public var needsCurvature: Bool { curvature == nil || stepCount % options.curvatureRefreshPeriod == 0 }

    // MARK: - Steps

    /// Computes the update for `parameters` and adds it to them. See `update`.
    @discardableResult
    public func step(
        parameters: inout [Element], gradient: [Element], curvature input: CurvatureInput<Element>? = nil,
        loss: Double? = nil, lossAt: ((_ candidate: [Element]) throws -> Double)? = nil,
        modelCurvature: (any CurvatureGram)? = nil
    ) throws -> OptimizerStepReport<Element> {
        let report = try update(
            parameters: parameters, gradient: gradient, curvature: input, loss: loss, lossAt: lossAt,
            modelCurvature: modelCurvature)
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
    ///   - modelCurvature: the curvature the quadratic model measures with (α, the
    ///     momentum weight and ρ's predicted change), for example the batch's exact GGN
    ///     through Jacobian-vector products; nil: the optimizer's own curvature operator.
    /// - Throws: `NaturalGradientError.invalidArgument` naming a missing or mismatched
    ///   argument; errors of the solver and the device.
    public func update(
        parameters: [Element], gradient: [Element], curvature input: CurvatureInput<Element>? = nil,
        loss: Double? = nil, lossAt: ((_ candidate: [Element]) throws -> Double)? = nil,
        modelCurvature: (any CurvatureGram)? = nil
    ) throws -> OptimizerStepReport<Element> {
        try require(parameters.count == dimension, "parameters", "holds \(parameters.count) values, expected \(dimension)")
        try require(gradient.count == dimension, "gradient", "holds \(gradient.count) values, expected \(dimension)")
        let g = Element.widened(gradient)
        try require(g.allSatisfy { $0.isFinite }, "gradient", "holds NaN or infinite values")
        if dampingPolicy.adapts {
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

        // 2. Δ = (F + λI)⁻¹ g.
        let (direction, method, solvedDamping, solveReport, refreshedInverse) = try solve(
            curvature, gradient: gradient, damping: lambda)

        // 3. Step size, momentum and the quadratic model along d = −Δ and m = μ δ_prev.
        let d = direction.map { -$0 }
        let m: [Double]? = options.momentum > 0 ? previousUpdate.map { $0.map { options.momentum * $0 } } : nil
        let evaluatesRatio = evaluatesReductionRatio(lossGiven: lossAt != nil)
        let needsModel: Bool
        if case .learningRate = options.stepSize {
            needsModel = evaluatesRatio
        } else {
            needsModel = true
        }
        var model: QuadraticModel?
        if needsModel {
            let gram = modelCurvature ?? OperatorGram(context: context, dimension: dimension, curvature: curvature)
            model = try quadraticModel(gram, g: g, d: d, m: m)
        }

        var alpha: Double
        var momentumScale = 1.0 // the factor on m = μ δ_prev (K-FAC's rule may shrink it)
        switch options.stepSize {
        case let .learningRate(rate):
            alpha = rate
        case let .quadraticModel(maximum):
            alpha = 0
            if let model {
                (alpha, momentumScale) = Self.modelStep(model, damping: lambda, maximum: maximum, hasMomentum: m != nil)
            }
        case .unboundedQuadraticModel:
            alpha = 0
            if let model { (alpha, momentumScale) = Self.unboundedModelStep(model, damping: lambda, hasMomentum: m != nil) }
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
        // δ = a d + b m with a = scale·α and b = scale·momentumScale.
        let predicted = model?.change(alongDirection: scale * alpha, momentum: scale * momentumScale)

        // 4. Levenberg-Marquardt (or just the reported ratio).
        let (actual, ratio) = try adaptDamping(
            parameters: parameters, update: update, loss: loss, lossAt: lossAt, predicted: predicted,
            evaluate: evaluatesRatio)

        if options.momentum > 0 { previousUpdate = Element.widened(update) }
        let index = stepCount
        stepCount += 1
        return OptimizerStepReport(
            update: update, step: index, damping: solvedDamping, nextDamping: damping, stepSize: scale * alpha,
            updateNorm: norm, clipped: clipped, method: method, solve: solveReport, refreshedCurvature: refreshedCurvature,
            refreshedInverse: refreshedInverse, predictedChange: predicted, actualChange: actual, reductionRatio: ratio)
    }

    /// `Δ = (F + λI)⁻¹ g` by the configured method: the cached inverse (refreshed when the
    /// method changed or every `inverseRefreshPeriod` steps), or CG / PCG.
    private func solve(
        _ curvature: any CurvatureOperator<Element>, gradient: [Element], damping lambda: Double
    ) throws
        -> (direction: [Double], method: SolveMethod, damping: Double, report: ColumnReport?, refreshedInverse: Bool)
    {
        let method = NaturalGradientSolver.resolve(options.method, for: curvature, damping: lambda)
        let gBatch = try VectorBatch<Element>(context: context, dimension: dimension)
        try gBatch.buffer.upload(gradient)
        let direction: [Double]
        var solvedDamping = lambda
        var report: ColumnReport?
        var refreshedInverse = false
        if method.isDirect {
            let current: any CurvatureInverse<Element>
            if let inverse, inverse.method == method, stepCount % options.inverseRefreshPeriod != 0 {
                current = inverse
            } else {
                try NaturalGradientSolver.requireInverse(method, of: curvature)
                if let inverse, inverse.method == method, try inverse.refresh(from: curvature, damping: Element(float64: lambda))
                {
                    current = inverse
                } else {
                    current = try curvature.makeInverse(damping: Element(float64: lambda))
                }
                inverse = current
                refreshedInverse = true
            }
            solvedDamping = try current.requireDamping().float64
            direction = try current.solve(gBatch).buffer.downloadFloat64(0..<dimension)
        } else {
            let solver = try conjugateGradient ?? ConjugateGradient<Element>(context: context)
            conjugateGradient = solver
            let (x, reports) = try solver.solve(
                curvature, gBatch, damping: Element(float64: lambda),
                options: options.conjugateGradient.forMethod(method))
            report = reports.first
            direction = try x.buffer.downloadFloat64(0..<dimension)
        }
        try require(direction.allSatisfy { $0.isFinite }, "curvature", "the solve gave non-finite values")
        return (direction, method, solvedDamping, report, refreshedInverse)
    }
}
