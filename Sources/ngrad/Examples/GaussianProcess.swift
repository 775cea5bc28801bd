import Foundation
import NaturalGradient

// Gaussian-process regression model selection, the experiment of Figure 1 in Mallasto, Dela
// Haije and Feragen (2019), "A formalization of the natural gradient method for general
// similarity measures": fit the RBF kernel's hyperparameters by minimising the negative log
// marginal likelihood, with natural gradients from three metrics on θ ↦ N(0, K_θ).
//
// Everything here is float64 on the host: n is small (tens of points), so one Cholesky of K
// and one eigendecomposition (inside CovarianceMetric) per iteration cost well under a
// millisecond.

/// A 1-D regression data set.
struct GaussianProcessData {
    var x: [Double]
    var y: [Double]
    var count: Int { x.count }

    /// The function the synthetic data samples: smooth, with two length scales.
    static func truth(_ x: Double) -> Double { sin(x) + 0.4 * sin(2.7 * x) }

    /// The noise standard deviation of the synthetic data.
    static let noiseStandardDeviation = 0.2

    /// `points` inputs uniform in [-5, 5] (sorted), outputs `truth(x) + noise`, from `seed`.
    static func synthetic(points: Int, seed: UInt64) -> GaussianProcessData {
        var generator = SplitMix64(seed: seed)
        let x = (0..<points).map { _ in Double.random(in: -5...5, using: &generator) }.sorted()
        let y = x.map { truth($0) + noiseStandardDeviation * generator.normal() }
        return GaussianProcessData(x: x, y: y)
    }
}

/// The RBF kernel's hyperparameters; the optimiser works on θ = their natural logarithms, so
/// every step keeps them positive.
struct RBFHyperparameters: Equatable {
    /// ℓ in `k(x, x') = σf² exp(−(x − x')² / (2ℓ²))`.
    var lengthScale: Double
    /// σf².
    var signalVariance: Double
    /// σn², added to the diagonal of K.
    var noiseVariance: Double

    /// θ = (log ℓ, log σf², log σn²).
    var logarithms: [Double] { [log(lengthScale), log(signalVariance), log(noiseVariance)] }

    init(lengthScale: Double, signalVariance: Double, noiseVariance: Double) {
        self.lengthScale = lengthScale
        self.signalVariance = signalVariance
        self.noiseVariance = noiseVariance
    }

    init(logarithms theta: [Double]) {
        self.init(lengthScale: exp(theta[0]), signalVariance: exp(theta[1]), noiseVariance: exp(theta[2]))
    }
}

/// The marginal likelihood of a zero-mean GP, `y ~ N(0, K_θ)`, with its derivatives.
struct GaussianProcessModel {
    let data: GaussianProcessData

    /// Everything one iteration needs at one θ.
    struct Evaluation {
        /// `½ yᵀK⁻¹y + ½ log det K + (n/2) log 2π`.
        let negativeLogLikelihood: Double
        /// `∂NLL/∂θ_i = ½ tr(K⁻¹ ∂_iK) − ½ αᵀ ∂_iK α`, α = K⁻¹y.
        let gradient: [Double]
        /// K, row-major n x n.
        let covariance: [Double]
        /// `∂K/∂θ_i`, each row-major n x n and symmetric.
        let covarianceDerivatives: [[Double]]
    }

    /// The NLL, its gradient and the covariance with its derivatives at θ; nil when K is not
    /// numerically positive definite there (or a value overflows), which ends a run.
    func evaluate(_ theta: [Double]) -> Evaluation? {
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
                dSignal[a * n + b] = rbf  // ∂K/∂ log σf² = σf² E
                dLength[a * n + b] = rbf * r2 / (h.lengthScale * h.lengthScale)  // ∂K/∂ log ℓ
            }
            k[a * n + a] += h.noiseVariance
            dNoise[a * n + a] = h.noiseVariance  // ∂K/∂ log σn² = σn² I
        }
        guard let cholesky = Cholesky(k, n: n) else { return nil }
        let alpha = cholesky.solve(data.y)
        let inverse = cholesky.inverse()
        let dataFit = zip(data.y, alpha).reduce(0.0) { $0 + $1.0 * $1.1 }
        let nll = 0.5 * dataFit + 0.5 * cholesky.logDeterminant + 0.5 * Double(n) * log(2 * Double.pi)
        let derivatives = [dLength, dSignal, dNoise]
        let gradient = derivatives.map { d -> Double in
            var trace = 0.0  // tr(K⁻¹ D) = Σ_ab K⁻¹_ab D_ba, D symmetric.
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
enum ParameterMetric: String, CaseIterable {
    case fisherRao = "fisher-rao"
    case wasserstein2 = "wasserstein-2"
    case euclidean

    /// The name in tables and legends.
    var label: String {
        switch self {
        case .fisherRao: "Fisher-Rao"
        case .wasserstein2: "Wasserstein-2"
        case .euclidean: "Euclidean"
        }
    }

    /// G(θ): the metric of N(0, K_θ) pulled back to θ (Fisher-Rao ½ tr(K⁻¹∂_iK K⁻¹∂_jK);
    /// the Hessian of W2², tr(L_i ∂_jK) with K L_i + L_i K = ∂_iK), or the identity.
    func matrix(at evaluation: GaussianProcessModel.Evaluation, dimension n: Int) throws -> [Double] {
        let k = evaluation.covarianceDerivatives.count
        switch self {
        case .fisherRao:
            return try CovarianceMetric.fisherRao(
                covariance: evaluation.covariance, dimension: n, directions: evaluation.covarianceDerivatives)
        case .wasserstein2:
            return try CovarianceMetric.wasserstein2(
                covariance: evaluation.covariance, dimension: n, directions: evaluation.covarianceDerivatives)
        case .euclidean:
            return (0..<(k * k)).map { $0 % (k + 1) == 0 ? 1 : 0 }
        }
    }
}

/// One optimisation run: θ ← θ − η (G + λI)⁻¹ ∇NLL with a constant η.
struct GaussianProcessRun {
    let metric: ParameterMetric
    let stepSize: Double
    /// NLL at iterations 0 (the start), 1, …; shorter than `iterations + 1` when the run
    /// stopped early because K stopped being positive definite or a value overflowed.
    var negativeLogLikelihoods: [Double] = []
    /// The hyperparameters at the last finite iterate.
    var final: RBFHyperparameters
    /// Whether the run stopped early.
    var diverged = false

    /// The damping relative to the metric's mean eigenvalue: `λ = relativeDamping · tr(G)/3`,
    /// small enough not to change a well-conditioned step, large enough to keep a singular
    /// G (a hyperparameter with no effect on K) solvable.
    static let relativeDamping = 1e-8

    /// Runs `iterations` steps from `start`.
    static func run(
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
    static func naturalGradient(_ evaluation: GaussianProcessModel.Evaluation, metric: ParameterMetric, n: Int) throws
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
    func iterationsToReach(_ target: Double, tolerance: Double) -> Int? {
        guard !diverged, let last = negativeLogLikelihoods.last, last <= target + tolerance else { return nil }
        var first = negativeLogLikelihoods.count - 1
        while first > 0, negativeLogLikelihoods[first - 1] <= target + tolerance { first -= 1 }
        return first
    }
}

// MARK: - Small numerical helpers

/// A Cholesky factorisation `K = L Lᵀ` (L lower, row-major), float64.
struct Cholesky {
    let n: Int
    private var l: [Double]

    /// Nil when `matrix` is not numerically positive definite.
    init?(_ matrix: [Double], n: Int) {
        self.n = n
        var l = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            var diagonal = matrix[j * n + j]
            for m in 0..<j { diagonal -= l[j * n + m] * l[j * n + m] }
            guard diagonal > 0, diagonal.isFinite else { return nil }
            let pivot = diagonal.squareRoot()
            l[j * n + j] = pivot
            for i in (j + 1)..<n {
                var value = matrix[i * n + j]
                for m in 0..<j { value -= l[i * n + m] * l[j * n + m] }
                l[i * n + j] = value / pivot
            }
        }
        self.l = l
    }

    /// `log det K = 2 Σ log L_ii`.
    var logDeterminant: Double { (0..<n).reduce(0.0) { $0 + 2 * log(l[$1 * n + $1]) } }

    /// `K⁻¹ b`.
    func solve(_ b: [Double]) -> [Double] {
        var z = b
        for i in 0..<n {  // L z = b
            for m in 0..<i { z[i] -= l[i * n + m] * z[m] }
            z[i] /= l[i * n + i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {  // Lᵀ x = z
            for m in (i + 1)..<n { z[i] -= l[m * n + i] * z[m] }
            z[i] /= l[i * n + i]
        }
        return z
    }

    /// `K⁻¹ = L⁻ᵀ L⁻¹`, row-major.
    func inverse() -> [Double] {
        // W = L⁻¹ (lower triangular), by forward substitution on the identity's columns.
        var w = [Double](repeating: 0, count: n * n)
        for column in 0..<n {
            for i in column..<n {
                var value = i == column ? 1.0 : 0.0
                for m in column..<i { value -= l[i * n + m] * w[m * n + column] }
                w[i * n + column] = value / l[i * n + i]
            }
        }
        // K⁻¹_ab = Σ_m W_ma W_mb over m ≥ max(a, b).
        var out = [Double](repeating: 0, count: n * n)
        for a in 0..<n {
            for b in a..<n {
                var sum = 0.0
                for m in b..<n { sum += w[m * n + a] * w[m * n + b] }
                out[a * n + b] = sum
                out[b * n + a] = sum
            }
        }
        return out
    }
}

/// SplitMix64, so the synthetic data set is the same on every platform for a given seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A standard normal draw (Box-Muller).
    mutating func normal() -> Double {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let v = Double.random(in: 0..<1, using: &self)
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}
