/// Which curvature a `NaturalGradientOptimizer` builds, and so which per-step inputs it
/// expects (`CurvatureInput`).
public enum CurvatureSource: Sendable, Equatable, Codable {
    /// The empirical Fisher from per-sample loss gradients at the training labels
    /// (`CurvatureInput.perSampleGradients`, or `.factor`).
    case empiricalFisher
    /// The exact Fisher / generalised Gauss-Newton matrix from per-sample output Jacobians
    /// and an output measure (`CurvatureInput.outputJacobians`, or `.factor`).
    case exactFisher
    /// K-FAC: per layer `G ⊗ A` from the layer inputs and output gradients
    /// (`CurvatureInput.layers`). `layers` are the parameter matrices' shapes in parameter
    /// order (a bias is a column: `inputs` counts it).
    case kfac(layers: [LayerShape])
}

/// The `outputs x inputs` shape of one dense layer's parameter matrix `[W | b]`.
public struct LayerShape: Sendable, Equatable, Hashable, Codable {
    /// Rows of the parameter matrix.
    public var outputs: Int
    /// Columns of the parameter matrix, the bias column included.
    public var inputs: Int

    /// A layer with an `outputs x inputs` parameter matrix.
    public init(outputs: Int, inputs: Int) {
        self.outputs = outputs
        self.inputs = inputs
    }
}

/// How the optimizer holds an empirical or exact Fisher (K-FAC is always Kronecker).
public enum CurvatureRepresentation: Sendable, Equatable, Codable {
    /// The factor U itself (`ImplicitCurvature`): solved by CG, PCG or Woodbury. Keeps no
    /// moving average (a factor cannot be averaged), so `curvatureDecay` must be 0.
    case implicit
    /// The dense P x P matrix (`DenseCurvature`): Cholesky, CG or PCG.
    case dense
    /// Dense blocks per group of parameters (`BlockDiagonalCurvature`): CG or PCG.
    case blockDiagonal(blockSizes: [Int])
    /// The diagonal (`DiagonalCurvature`): CG or PCG (`.automatic` picks PCG, whose
    /// Jacobi preconditioner is the diagonal itself).
    case diagonal
    /// Chosen by the memory plan at the first step, when the factor's rows are known
    /// (`MemoryPlan.automaticRepresentation`): dense F where it fits and P ≤ M, else the
    /// implicit factor (the diagonal where nothing else fits or a moving average is kept
    /// and dense F does not fit). Solved by CG or PCG (or the dense Cholesky under
    /// `.automatic` methods).
    case automatic
}

/// The damping λ of `(F + λI) Δ = g`.
public enum DampingOption: Sendable, Equatable, Codable {
    /// λ fixed for the whole run.
    case fixed(Double)
    /// Levenberg-Marquardt (`LevenbergMarquardtDamping`): λ adapts to the ratio of the
    /// actual to the predicted loss reduction, which needs the loss at the candidate point
    /// (the `lossAt` closure of `step`).
    case levenbergMarquardt(initial: Double, minimum: Double = 1e-8, maximum: Double = 1e8)
    /// KFAC-JAX's Levenberg-Marquardt (`PeriodicLevenbergMarquardtDamping`): λ adapts by
    /// `ω = decay^interval` once every `interval` steps, so the loss at the candidate point
    /// is needed on those steps only.
    case periodicLevenbergMarquardt(
        initial: Double, decay: Double = 0.9, interval: Int = 5, minimum: Double = 1e-8, maximum: Double = 1e8)
}

/// How far the optimizer moves along the natural-gradient direction `Δ = (F + λI)⁻¹ g`.
public enum StepSizeRule: Sendable, Equatable, Codable {
    /// A fixed learning rate η: the update is `−ηΔ` (plus momentum).
    case learningRate(Double)
    /// The α that minimises the local quadratic model
    /// `q(δ) = gᵀδ + ½ δᵀ(F + λI)δ` along `−Δ` (jointly with the momentum term's weight,
    /// see `momentum`), clamped to `[0, maximum]`, as K-FAC chooses it. Costs one batched
    /// curvature product per step.
    case quadraticModel(maximum: Double = 1)
    /// KFAC-JAX's rule: α and the momentum term's weight minimise the quadratic model
    /// `q(αd + c m)` (damped by λ) jointly and without bounds (the weight c may leave
    /// [0, 1] and α may exceed 1; with no momentum term, or one the solve cannot tell from
    /// d, α alone). It trusts the model's curvature, so it is meant for an exact one
    /// (`update`'s `modelCurvature`). Costs the same as `.quadraticModel`.
    case unboundedQuadraticModel
}

/// Everything a `NaturalGradientOptimizer` is configured with. Defaults: implicit
/// representation, automatic solver, λ = 1e-3 fixed, learning rate 1, no momentum, no
/// moving average, curvature and inverses refreshed every step, no clip.
public struct NaturalGradientOptimizerOptions: Sendable {
    /// The curvature and so the per-step inputs.
    public var curvature: CurvatureSource
    /// How an empirical / exact Fisher is held (ignored for K-FAC).
    public var representation: CurvatureRepresentation = .implicit
    /// The solver: `.automatic` asks the representation (`preferredMethod(damping:)`, the
    /// policy `NaturalGradientSolver` uses too): Woodbury (implicit, M ≤ P, λ > 0), Cholesky
    /// (dense, P ≤ `NaturalGradientSolver.denseLimit`), K-FAC (Kronecker), PCG (diagonal),
    /// else CG.
    public var method: SolveMethod = .automatic
    /// Tolerance, iteration cap, preconditioner and progress rule of CG and PCG.
    public var conjugateGradient = ConjugateGradientOptions(tolerance: 1e-4, maxIterations: 50, progressRule: true)
    /// Fixed or Levenberg-Marquardt damping.
    public var damping: DampingOption = .fixed(1e-3)
    /// Learning rate or quadratic-model step size.
    public var stepSize: StepSizeRule = .learningRate(1)
    /// Heavy-ball momentum μ in [0, 1): the update is `δ_t = −αΔ_t + μ δ_{t−1}`. With
    /// `.quadraticModel`, α and the momentum term's weight `c·μ` (c in [0, 1]) are chosen
    /// together to minimise the quadratic model, as K-FAC does.
    public var momentum: Double = 0
    /// Exponential moving average of the curvature, β in [0, 1): at each refresh
    /// `F ← βF + (1 − β)F_batch` (the first refresh takes `F_batch`). Dense, block-diagonal,
    /// diagonal and K-FAC only.
    public var curvatureDecay: Double = 0
    /// Whether the moving average of `curvatureDecay` is normalised by its total weight
    /// (KFAC-JAX's bias correction): after k refreshes the curvature is
    /// `Σ_j β^{k−j}(1 − β) F_j / (1 − β^k)`, a weighted mean of the batch estimates, instead
    /// of the plain average that keeps the first estimate at weight β^{k−1}. Off by default
    /// (the plain average); no effect when `curvatureDecay` is 0.
    public var curvatureBiasCorrection: Bool = false
    /// Rebuild (or average in) the curvature every this many steps (≥ 1); between refreshes
    /// `step` needs no curvature input.
    public var curvatureRefreshPeriod: Int = 1
    /// Re-invert (K-FAC factors, dense Cholesky, Woodbury Gram factorisation) every this
    /// many steps (≥ 1); in between the last inverse is reused, with the λ it was built for.
    /// CG has no inverse and always solves against the current curvature and λ.
    public var inverseRefreshPeriod: Int = 1
    /// If set, the update is scaled down to at most this Euclidean norm (> 0).
    public var maxUpdateNorm: Double?

    /// Options for `curvature`, everything else at its default.
    public init(curvature: CurvatureSource) {
        self.curvature = curvature
    }

    /// Options with every field given.
    public init(
        curvature: CurvatureSource, representation: CurvatureRepresentation = .implicit,
        method: SolveMethod = .automatic,
        conjugateGradient: ConjugateGradientOptions = ConjugateGradientOptions(
            tolerance: 1e-4, maxIterations: 50, progressRule: true),
        damping: DampingOption = .fixed(1e-3), stepSize: StepSizeRule = .learningRate(1), momentum: Double = 0,
        curvatureDecay: Double = 0, curvatureRefreshPeriod: Int = 1, inverseRefreshPeriod: Int = 1,
        maxUpdateNorm: Double? = nil, curvatureBiasCorrection: Bool = false
    ) {
        self.curvature = curvature
        self.representation = representation
        self.method = method
        self.conjugateGradient = conjugateGradient
        self.damping = damping
        self.stepSize = stepSize
        self.momentum = momentum
        self.curvatureDecay = curvatureDecay
        self.curvatureRefreshPeriod = curvatureRefreshPeriod
        self.inverseRefreshPeriod = inverseRefreshPeriod
        self.maxUpdateNorm = maxUpdateNorm
        self.curvatureBiasCorrection = curvatureBiasCorrection
    }

    /// Throws `NaturalGradientError.invalidArgument` naming the first unusable option, for
    /// a model of `dimension` parameters.
    public func validate(dimension: Int) throws {
        try require(dimension > 0, "dimension", "must be positive, got \(dimension)")
        switch curvature {
        case let .kfac(layers):
            try require(!layers.isEmpty, "curvature", "K-FAC needs at least one layer")
            for (index, layer) in layers.enumerated() {
                try require(
                    layer.outputs > 0 && layer.inputs > 0, "curvature",
                    "K-FAC layer \(index) is \(layer.outputs) x \(layer.inputs)")
            }
            let total = layers.reduce(0) { $0 + $1.outputs * $1.inputs }
            try require(
                total == dimension, "curvature", "the K-FAC layers hold \(total) parameters, the model \(dimension)")
            try require(
                [.automatic, .kfac, .cg, .pcg].contains(method), "method",
                "K-FAC solves with kfac, cg or pcg, not \(method.rawValue)")
        case .empiricalFisher, .exactFisher:
            switch representation {
            case .implicit:
                try require(
                    [.automatic, .cg, .pcg, .woodbury].contains(method), "method",
                    "an implicit curvature solves with cg, pcg or woodbury, not \(method.rawValue)")
                try require(
                    curvatureDecay == 0, "curvatureDecay",
                    "an implicit (factor) curvature keeps no moving average; use 0 or a dense, block-diagonal or diagonal representation"
                )
            case .dense:
                try require(
                    [.automatic, .cg, .pcg, .cholesky].contains(method), "method",
                    "a dense curvature solves with cholesky, cg or pcg, not \(method.rawValue)")
            case let .blockDiagonal(sizes):
                try require(!sizes.isEmpty && sizes.allSatisfy { $0 > 0 }, "representation", "block sizes must be positive")
                try require(
                    sizes.reduce(0, +) == dimension, "representation",
                    "the blocks cover \(sizes.reduce(0, +)) parameters, the model \(dimension)")
                try require(
                    [.automatic, .cg, .pcg].contains(method), "method",
                    "a block-diagonal curvature solves with cg or pcg, not \(method.rawValue)")
            case .diagonal:
                try require(
                    [.automatic, .cg, .pcg].contains(method), "method",
                    "a diagonal curvature solves with cg or pcg, not \(method.rawValue)")
            case .automatic:
                try require(
                    [.automatic, .cg, .pcg].contains(method), "method",
                    "an automatic representation solves with the automatic method, cg or pcg, not \(method.rawValue)")
            }
        }
        switch damping {
        case let .fixed(lambda):
            try require(lambda.isFinite && lambda >= 0, "damping", "must be finite and ≥ 0, got \(lambda)")
        case let .levenbergMarquardt(initial, minimum, maximum):
            _ = try LevenbergMarquardtDamping(initial: initial, minimum: minimum, maximum: maximum)
        case let .periodicLevenbergMarquardt(initial, decay, interval, minimum, maximum):
            _ = try PeriodicLevenbergMarquardtDamping(
                initial: initial, decay: decay, interval: interval, minimum: minimum, maximum: maximum)
        }
        switch stepSize {
        case let .learningRate(rate):
            try require(rate.isFinite && rate > 0, "learningRate", "must be finite and positive, got \(rate)")
        case let .quadraticModel(maximum):
            try require(maximum.isFinite && maximum > 0, "stepSize", "the maximum must be finite and positive, got \(maximum)")
        case .unboundedQuadraticModel:
            break
        }
        try require(momentum.isFinite && momentum >= 0 && momentum < 1, "momentum", "must be in [0, 1), got \(momentum)")
        try require(
            curvatureDecay.isFinite && curvatureDecay >= 0 && curvatureDecay < 1, "curvatureDecay",
            "must be in [0, 1), got \(curvatureDecay)")
        try require(curvatureRefreshPeriod >= 1, "curvatureRefreshPeriod", "must be ≥ 1, got \(curvatureRefreshPeriod)")
        try require(inverseRefreshPeriod >= 1, "inverseRefreshPeriod", "must be ≥ 1, got \(inverseRefreshPeriod)")
        if let maxUpdateNorm {
            try require(
                maxUpdateNorm.isFinite && maxUpdateNorm > 0, "maxUpdateNorm", "must be finite and positive, got \(maxUpdateNorm)")
        }
        try require(
            conjugateGradient.tolerance.isFinite && conjugateGradient.tolerance >= 0, "conjugateGradient",
            "the tolerance must be finite and ≥ 0, got \(conjugateGradient.tolerance)")
    }
}
