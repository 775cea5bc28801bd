import Foundation

/// How the damping λ of `(F + λI) x = g` evolves from step to step. Policies are values:
/// `NaturalGradientOptimizer` keeps one (from `DampingOption`) and calls `update` with each
/// step's reduction ratio.
public protocol DampingPolicy: Sendable {
    /// The λ to use now.
    var damping: Double { get }
    /// Whether λ depends on the reduction ratio, so that the optimizer needs the loss at
    /// the candidate point (its `lossAt` closure). True unless a policy says otherwise.
    var adapts: Bool { get }
    /// Whether λ adapts after step `step` (0-based), so that the optimizer evaluates the
    /// loss at the candidate point and calls `update` then (and only then). `adapts` by
    /// default: every step.
    func adapts(atStep step: Int) -> Bool
    /// Adapts λ to `ρ = actual reduction / predicted reduction` of the last step.
    mutating func update(reductionRatio: Double)
}

extension DampingPolicy {
    /// True: a policy that adapts needs ρ, and asking for the loss is the safe default.
    public var adapts: Bool { true }
    /// `adapts`: a policy adapts every step unless it says otherwise.
    public func adapts(atStep _: Int) -> Bool { adapts }
}

/// Fixed Tikhonov damping: λ never changes.
public struct FixedDamping: DampingPolicy {
    public let damping: Double
    /// False: λ never changes.
    public var adapts: Bool { false }

    public init(_ damping: Double) throws {
        try require(damping.isFinite && damping >= 0, "damping", "must be finite and ≥ 0, got \(damping)")
        self.damping = damping
    }

    public mutating func update(reductionRatio _: Double) {}
}

/// Levenberg-Marquardt adaptation (DESIGN.md section 5): λ ×3/2 when ρ < ¼ (a NaN ρ counts
/// as < ¼: the step was not trustworthy), λ ×2/3 when ρ > ¾, clamped to [minimum, maximum].
public struct LevenbergMarquardtDamping: DampingPolicy {
    public private(set) var damping: Double
    /// The smallest λ the policy returns.
    public let minimum: Double
    /// The largest λ the policy returns.
    public let maximum: Double
    /// Factor applied when ρ < ¼.
    public static let increase = 3.0 / 2.0
    /// Factor applied when ρ > ¾.
    public static let decrease = 2.0 / 3.0

    public init(initial: Double, minimum: Double = 1e-8, maximum: Double = 1e8) throws {
        try require(minimum.isFinite && minimum >= 0, "minimum", "must be finite and ≥ 0, got \(minimum)")
        try require(maximum.isFinite && maximum >= minimum, "maximum", "must be finite and ≥ minimum, got \(maximum)")
        try require(initial.isFinite && initial >= 0, "initial", "must be finite and ≥ 0, got \(initial)")
        self.minimum = minimum
        self.maximum = maximum
        damping = Swift.min(Swift.max(initial, minimum), maximum)
    }

    public mutating func update(reductionRatio rho: Double) {
        if !(rho >= 0.25) {
            damping *= Self.increase
        } else if rho > 0.75 {
            damping *= Self.decrease
        }
        damping = Swift.min(Swift.max(damping, minimum), maximum)
    }
}

/// KFAC-JAX's Levenberg-Marquardt rule (Martens and Grosse 2015, section 6.5): every
/// `interval` steps (after steps k with (k + 1) mod interval = 0) λ ← ω λ when ρ > ¾ and
/// λ ← λ / ω when ρ < ¼ (a NaN ρ counts as < ¼), with `ω = decay^interval`, clamped to
/// [minimum, maximum]; in between λ stays and no ρ is needed (so the loss at θ + δ is
/// evaluated on one step in `interval`). KFAC-JAX's defaults: decay 0.9, interval 5.
public struct PeriodicLevenbergMarquardtDamping: DampingPolicy {
    public private(set) var damping: Double
    /// ω, the factor per adaptation.
    public let factor: Double
    /// Steps between adaptations.
    public let interval: Int
    /// The smallest λ the policy returns.
    public let minimum: Double
    /// The largest λ the policy returns.
    public let maximum: Double

    /// - Throws: `NaturalGradientError.invalidArgument` naming a decay outside (0, 1), an
    ///   interval below 1 or a range that is not `0 ≤ minimum ≤ maximum`, all finite.
    public init(initial: Double, decay: Double = 0.9, interval: Int = 5, minimum: Double = 1e-8, maximum: Double = 1e8) throws {
        try require(decay.isFinite && decay > 0 && decay < 1, "decay", "must be in (0, 1), got \(decay)")
        try require(interval >= 1, "interval", "must be ≥ 1, got \(interval)")
        try require(minimum.isFinite && minimum >= 0, "minimum", "must be finite and ≥ 0, got \(minimum)")
        try require(maximum.isFinite && maximum >= minimum, "maximum", "must be finite and ≥ minimum, got \(maximum)")
        try require(initial.isFinite && initial >= 0, "initial", "must be finite and ≥ 0, got \(initial)")
        factor = Foundation.pow(decay, Double(interval))
        self.interval = interval
        self.minimum = minimum
        self.maximum = maximum
        damping = Swift.min(Swift.max(initial, minimum), maximum)
    }

    /// After every `interval`-th step.
    public func adapts(atStep step: Int) -> Bool { (step + 1) % interval == 0 }

    public mutating func update(reductionRatio rho: Double) {
        if !(rho >= 0.25) {
            damping /= factor
        } else if rho > 0.75 {
            damping *= factor
        }
        damping = Swift.min(Swift.max(damping, minimum), maximum)
    }
}

/// K-FAC's factored damping (DESIGN.md section 5): λ is split between the two Kronecker
/// factors as `(A + π√λ I) ⊗ (G + √λ/π I)` with `π = √((tr A/dim A)/(tr G/dim G))`, so
/// that each factor is damped in proportion to its own scale. π = 1 where a trace is 0.
public enum FactoredDamping {
    /// The damping added to A and to G for λ.
    public static func split(
        damping: Double, traceA: Double, dimensionA: Int, traceG: Double, dimensionG: Int
    ) -> (a: Double, g: Double) {
        let root = damping.squareRoot()
        let meanA = traceA / Double(dimensionA)
        let meanG = traceG / Double(dimensionG)
        let pi = meanA > 0 && meanG > 0 && meanA.isFinite && meanG.isFinite ? (meanA / meanG).squareRoot() : 1
        return (root * pi, root / pi)
    }
}
