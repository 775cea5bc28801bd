import Foundation
import NaturalGradient
import NaturalGradientTestSupport
import SVGCharts

// Gaussian-process regression model selection, the experiment of Figure 1 in Mallasto, Dela
// Haije and Feragen (2019), "A formalization of the natural gradient method for general
// similarity measures": fit the RBF kernel's hyperparameters by minimising the negative log
// marginal likelihood, with natural gradients from three metrics on θ ↦ N(0, K_θ).
//
// Everything here is float64 on the host: n is small (tens of points), so one factorisation
// of K (the library's DenseSymmetricFactorization) and one eigendecomposition (inside
// CovarianceMetric) per iteration cost well under a millisecond.

/// A 1-D regression data set.
public struct GaussianProcessData: Sendable {
    /// The inputs, sorted.
    public var x: [Double]
    /// The noisy outputs at `x`.
    public var y: [Double]
    /// How many points.
    public var count: Int { x.count }

    /// A data set of these points.
    public init(x: [Double], y: [Double]) {
        self.x = x
        self.y = y
    }

    /// The function the synthetic data samples: smooth, with two length scales.
    public static func truth(_ x: Double) -> Double { sin(x) + 0.4 * sin(2.7 * x) }

    /// The noise standard deviation of the synthetic data.
    public static let noiseStandardDeviation = 0.2

    /// `points` inputs uniform in [-5, 5] (sorted), outputs `truth(x) + noise`, from `seed`.
    public static func synthetic(points: Int, seed: UInt64) -> GaussianProcessData {
        var generator = SplitMix64(seed: seed)
        let x = (0..<points).map { _ in Double.random(in: -5...5, using: &generator) }.sorted()
        let y = x.map { truth($0) + noiseStandardDeviation * generator.normal() }
        return GaussianProcessData(x: x, y: y)
    }
}

/// The RBF kernel's hyperparameters; the optimiser works on θ = their natural logarithms, so
/// every step keeps them positive.
public struct RBFHyperparameters: Equatable, Sendable {
    /// ℓ in `k(x, x') = σf² exp(−(x − x')² / (2ℓ²))`.
    public var lengthScale: Double
    /// σf².
    public var signalVariance: Double
    /// σn², added to the diagonal of K.
    public var noiseVariance: Double

    /// θ = (log ℓ, log σf², log σn²).
    public var logarithms: [Double] { [log(lengthScale), log(signalVariance), log(noiseVariance)] }

    /// The hyperparameters themselves (all positive).
    public init(lengthScale: Double, signalVariance: Double, noiseVariance: Double) {
        self.lengthScale = lengthScale
        self.signalVariance = signalVariance
        self.noiseVariance = noiseVariance
    }

    /// The hyperparameters whose logarithms are θ.
    public init(logarithms theta: [Double]) {
        self.init(lengthScale: exp(theta[0]), signalVariance: exp(theta[1]), noiseVariance: exp(theta[2]))
    }
}

/// The marginal likelihood of a zero-mean GP, `y ~ N(0, K_θ)`, with its derivatives.
public struct GaussianProcessModel: Sendable {
    /// The data the likelihood is of.
    public let data: GaussianProcessData

    /// The model of `data`.
    public init(data: GaussianProcessData) { self.data = data }

    /// Everything one iteration needs at one θ.
    public struct Evaluation: Sendable {
        /// `½ yᵀK⁻¹y + ½ log det K + (n/2) log 2π`.
        public let negativeLogLikelihood: Double
        /// `∂NLL/∂θ_i = ½ tr(K⁻¹ ∂_iK) − ½ αᵀ ∂_iK α`, α = K⁻¹y.
        public let gradient: [Double]
        /// K, row-major n x n.
        public let covariance: [Double]
        /// `∂K/∂θ_i`, each row-major n x n and symmetric.
        public let covarianceDerivatives: [[Double]]
    }

    /// The NLL, its gradient and the covariance with its derivatives at θ; nil when K is not
    /// numerically positive definite there (or a value overflows), which ends a run.
    public func evaluate(_ theta: [Double]) -> Evaluation? {
        let n = data.count
        let h = RBFHyperparameters(logarithms: theta)
        guard [h.lengthScale, h.signalVariance, h.noiseVariance].allSatisfy({ $0.isFinite && $0 > 0 }) else {
            return nil
        }
        var k = [Double](repeating: 0, count: n * n)
        var dLength = k
        var dSignal = k
        var dNoise = k
        for a in 0..<n {
            for b in 0..<n {
                let r2 = (data.x[a] - data.x[b]) * (data.x[a] - data.x[b])
                let rbf = h.signalVariance * exp(-r2 / (2 * h.lengthScale * h.lengthScale))
                k[a * n + b] = rbf
                dSignal[a * n + b] = rbf // ∂K/∂ log σf² = σf² E
                dLength[a * n + b] = rbf * r2 / (h.lengthScale * h.lengthScale) // ∂K/∂ log ℓ
            }
            k[a * n + a] += h.noiseVariance
            dNoise[a * n + a] = h.noiseVariance // ∂K/∂ log σn² = σn² I
        }
        // A K the plain Cholesky cannot take (the library would add jitter or clamp
        // eigenvalues) is not numerically positive definite: the run ends there.
        guard let factorization = try? DenseSymmetricFactorization(matrix: k, dimension: n),
            factorization.path == .cholesky,
            let alpha = try? factorization.solve(data.y),
            let inverse = try? factorization.solve(identity(n), count: n) // K⁻¹, symmetric
        else { return nil }
        let dataFit = zip(data.y, alpha).reduce(0.0) { $0 + $1.0 * $1.1 }
        let nll = 0.5 * dataFit + 0.5 * factorization.logDeterminant + 0.5 * Double(n) * log(2 * Double.pi)
        let derivatives = [dLength, dSignal, dNoise]
        let gradient = derivatives.map { d -> Double in
            var trace = 0.0 // tr(K⁻¹ D) = Σ_ab K⁻¹_ab D_ba, D symmetric.
            var quadratic = 0.0
            for a in 0..<n {
                var row = 0.0
                for b in 0..<n {
                    trace += inverse[a * n + b] * d[a * n + b]
                    row += d[a * n + b] * alpha[b]
                }
                quadratic += alpha[a] * row
            }
            return 0.5 * trace - 0.5 * quadratic
        }
        guard nll.isFinite, gradient.allSatisfy(\.isFinite) else { return nil }
        return Evaluation(
            negativeLogLikelihood: nll, gradient: gradient, covariance: k, covarianceDerivatives: derivatives)
    }
}

/// The metric on θ that a natural-gradient step preconditions with.
public enum ParameterMetric: String, CaseIterable, Sendable {
    /// ½ tr(K⁻¹∂_iK K⁻¹∂_jK), the Fisher information of N(0, K_θ).
    case fisherRao = "fisher-rao"
    /// The Hessian of the squared Wasserstein-2 distance between N(0, K_θ) and N(0, K_θ').
    case wasserstein2 = "wasserstein-2"
    /// The identity: plain gradient descent on θ.
    case euclidean

    /// The name in tables and legends.
    public var label: String {
        switch self {
        case .fisherRao: "Fisher-Rao"
        case .wasserstein2: "Wasserstein-2"
        case .euclidean: "Euclidean"
        }
    }

    /// G(θ): the metric of N(0, K_θ) pulled back to θ (Fisher-Rao ½ tr(K⁻¹∂_iK K⁻¹∂_jK);
    /// the Hessian of W2², tr(L_i ∂_jK) with K L_i + L_i K = ∂_iK), or the identity.
    public func matrix(at evaluation: GaussianProcessModel.Evaluation, dimension n: Int) throws -> [Double] {
        let k = evaluation.covarianceDerivatives.count
        switch self {
        case .fisherRao:
            return try CovarianceMetric.fisherRao(
                covariance: evaluation.covariance, dimension: n, directions: evaluation.covarianceDerivatives)
        case .wasserstein2:
            return try CovarianceMetric.wasserstein2(
                covariance: evaluation.covariance, dimension: n, directions: evaluation.covarianceDerivatives)
        case .euclidean:
            return identity(k)
        }
    }
}

/// One optimisation run: θ ← θ − η (G + λI)⁻¹ ∇NLL with a constant η.
public struct GaussianProcessRun: Sendable {
    /// The metric the steps precondition with.
    public let metric: ParameterMetric
    /// The constant η.
    public let stepSize: Double
    /// NLL at iterations 0 (the start), 1, …; shorter than `iterations + 1` when the run
    /// stopped early because K stopped being positive definite or a value overflowed.
    public var negativeLogLikelihoods: [Double] = []
    /// The hyperparameters at the last finite iterate.
    public var final: RBFHyperparameters
    /// Whether the run stopped early.
    public var diverged = false

    /// The damping relative to the metric's mean eigenvalue: `λ = relativeDamping · tr(G)/3`,
    /// small enough not to change a well-conditioned step, large enough to keep a singular
    /// G (a hyperparameter with no effect on K) solvable.
    public static let relativeDamping = 1e-8

    /// Runs `iterations` steps from `start`.
    public static func run(
        model: GaussianProcessModel, metric: ParameterMetric, stepSize: Double, iterations: Int,
        start: RBFHyperparameters
    ) -> GaussianProcessRun {
        var theta = start.logarithms
        var run = GaussianProcessRun(metric: metric, stepSize: stepSize, final: start)
        for iteration in 0...iterations {
            guard let evaluation = model.evaluate(theta) else {
                run.diverged = true
                break
            }
            run.negativeLogLikelihoods.append(evaluation.negativeLogLikelihood)
            run.final = RBFHyperparameters(logarithms: theta)
            if iteration == iterations { break }
            guard let direction = try? naturalGradient(evaluation, metric: metric, n: model.data.count) else {
                run.diverged = true
                break
            }
            theta = zip(theta, direction).map { $0 - stepSize * $1 }
        }
        return run
    }

    /// `(G + λI)⁻¹ ∇NLL`.
    public static func naturalGradient(
        _ evaluation: GaussianProcessModel.Evaluation, metric: ParameterMetric, n: Int
    ) throws
        -> [Double]
    {
        let g = try metric.matrix(at: evaluation, dimension: n)
        let k = evaluation.gradient.count
        let meanEigenvalue = (0..<k).reduce(0.0) { $0 + g[$1 * k + $1] } / Double(k)
        let factorization = try DenseSymmetricFactorization(
            matrix: g, dimension: k, damping: relativeDamping * meanEigenvalue)
        return try factorization.solve(evaluation.gradient)
    }

    /// The first iteration from which the NLL stays within `tolerance` of `target` to the end
    /// of the run; nil if it never does or the run diverged.
    public func iterationsToReach(_ target: Double, tolerance: Double) -> Int? {
        guard !diverged, let last = negativeLogLikelihoods.last, last <= target + tolerance else { return nil }
        var first = negativeLogLikelihoods.count - 1
        while first > 0, negativeLogLikelihoods[first - 1] <= target + tolerance { first -= 1 }
        return first
    }
}

/// The n x n identity, row-major.
private func identity(_ n: Int) -> [Double] {
    (0..<(n * n)).map { $0 % (n + 1) == 0 ? 1 : 0 }
}
