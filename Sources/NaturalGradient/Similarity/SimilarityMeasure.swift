/// A similarity measure D between predictive distributions, whose Hessian at z' = z is the
/// output metric of the formal natural gradient (Mallasto, Dela Haije, Feragen, 2019):
/// `M(z) = ∇²_{z'} D(p_z, p_{z'})|_{z' = z}`, pulled back to the parameters as
/// `G(θ) = (1/N) Σ_i J_iᵀ M(z_i) J_i` (DESIGN.md section 2; `Docs/SimilarityMeasures.md`).
///
/// Which measure goes with which ``PredictiveFamily``:
///
/// | measure | categorical, Bernoulli | Gaussian (diagonal, full) | vector |
/// |---|---|---|---|
/// | ``kullbackLeibler``, ``fDivergence(_:)`` | yes | yes | no |
/// | ``wasserstein2`` | no (no closed form; use ``custom(_:)``) | yes | no |
/// | ``squaredEuclidean`` | yes (on z) | yes (on z) | yes |
/// | ``custom(_:)`` | yes | yes | yes |
///
/// Conventions: the metric is the plain Hessian of D, with no factor ½. So W2² gives
/// *twice* the Riemannian Wasserstein metric (`2I` on (μ, σ) in one dimension), and
/// ``squaredEuclidean`` is `½‖z − z'‖²`, whose Hessian is `I` (Gauss-Newton for a squared
/// loss).
public enum SimilarityMeasure: Sendable, CustomStringConvertible {
    /// `KL(p_z ‖ p_z')`: the Fisher-Rao metric (the Fisher information in z).
    case kullbackLeibler
    /// `Σ p_z' f(p_z / p_z')` for a convex f with f(1) = 0: `f''(1)` times the Fisher metric.
    case fDivergence(FDivergence)
    /// The squared 2-Wasserstein distance between Gaussians:
    /// `‖μ − μ'‖² + tr Σ + tr Σ' − 2 tr((Σ^½ Σ' Σ^½)^½)`.
    case wasserstein2
    /// `½‖z − z'‖²` on the raw outputs: the metric is `I`.
    case squaredEuclidean
    /// A user-supplied D on small outputs, differentiated numerically.
    case custom(CustomSimilarity)

    public var description: String {
        switch self {
        case .kullbackLeibler: "Kullback-Leibler"
        case let .fDivergence(divergence): "f-divergence \(divergence.name) (f''(1) = \(divergence.secondDerivativeAtOne))"
        case .wasserstein2: "squared Wasserstein-2"
        case .squaredEuclidean: "half squared Euclidean"
        case let .custom(measure): "custom measure \(measure.name)"
        }
    }

    /// The factor `f''(1)` by which this measure's metric multiplies the Fisher metric, for
    /// the measures that are f-divergences; nil for the others.
    var fisherMultiple: Double? {
        switch self {
        case .kullbackLeibler: 1
        case let .fDivergence(divergence): divergence.secondDerivativeAtOne
        case .wasserstein2, .squaredEuclidean, .custom: nil
        }
    }

    /// Throws unless this measure has a metric for `family`.
    func validate(for family: PredictiveFamily) throws {
        try family.validate()
        switch (self, family) {
        case (.kullbackLeibler, .vector), (.fDivergence, .vector):
            throw NaturalGradientError.invalidArgument(
                name: "measure",
                reason: "\(self) needs a distribution, and \(family) has none; use squaredEuclidean or a custom measure")
        case (.wasserstein2, .categorical), (.wasserstein2, .bernoulli), (.wasserstein2, .vector):
            throw NaturalGradientError.invalidArgument(
                name: "measure",
                reason: "squared Wasserstein-2 has a closed form only for Gaussian families, not \(family); use a custom measure")
        case let (.custom(measure), family):
            try require(
                family.outputCount <= CustomSimilarity.maximumDimension, "family",
                "a custom measure takes at most \(CustomSimilarity.maximumDimension) outputs, \(family) has \(family.outputCount) (\(measure.name))"
            )
        default:
            break
        }
    }
}

/// An f-divergence `D_f(p ‖ q) = Σ q f(p/q)`, known to the library by `f''(1)`, the only
/// property its metric depends on.
public struct FDivergence: Sendable, Hashable {
    /// A name for messages and the CLI.
    public let name: String
    /// `f''(1)`: the metric is this multiple of the Fisher metric.
    public let secondDerivativeAtOne: Double

    /// A divergence with a given `f''(1)`, which must be finite and positive.
    public init(name: String, secondDerivativeAtOne: Double) throws {
        try require(
            secondDerivativeAtOne.isFinite && secondDerivativeAtOne > 0, "secondDerivativeAtOne",
            "must be finite and positive (f strictly convex at 1), got \(secondDerivativeAtOne)")
        self.name = name
        self.secondDerivativeAtOne = secondDerivativeAtOne
    }

    private init(preset name: String, _ value: Double) {
        self.name = name
        self.secondDerivativeAtOne = value
    }

    /// `KL(p ‖ q)`, f(t) = t log t: f''(1) = 1.
    public static let kullbackLeibler = FDivergence(preset: "KL", 1)
    /// `KL(q ‖ p)`, f(t) = −log t: f''(1) = 1.
    public static let reverseKullbackLeibler = FDivergence(preset: "reverse KL", 1)
    /// `Σ (√p − √q)²` (no ½), f(t) = (√t − 1)²: f''(1) = ½.
    public static let squaredHellinger = FDivergence(preset: "squared Hellinger", 0.5)
    /// Pearson's `Σ (p − q)² / q`, f(t) = (t − 1)²: f''(1) = 2.
    public static let chiSquared = FDivergence(preset: "chi-squared", 2)
    /// `½ KL(p ‖ m) + ½ KL(q ‖ m)` with m = (p + q)/2: f''(1) = ¼.
    public static let jensenShannon = FDivergence(preset: "Jensen-Shannon", 0.25)

    /// The named presets, for listings.
    public static let presets: [FDivergence] = [
        .kullbackLeibler, .reverseKullbackLeibler, .squaredHellinger, .chiSquared, .jensenShannon,
    ]
}
