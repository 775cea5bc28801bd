extension DampingOption {
    /// The policy object for this option, starting at `damping` (the option's own initial
    /// λ when nil; a restored state passes its λ).
    func makePolicy(damping: Double? = nil) throws -> any DampingPolicy {
        switch self {
        case let .fixed(lambda):
            try FixedDamping(damping ?? lambda)
        case let .levenbergMarquardt(initial, minimum, maximum):
            try LevenbergMarquardtDamping(initial: damping ?? initial, minimum: minimum, maximum: maximum)
        case let .periodicLevenbergMarquardt(initial, decay, interval, minimum, maximum):
            try PeriodicLevenbergMarquardtDamping(
                initial: damping ?? initial, decay: decay, interval: interval, minimum: minimum, maximum: maximum)
        }
    }

    /// Whether λ adapts to ρ, so that `update` needs the loss at the candidate point.
    public var adapts: Bool {
        if case .fixed = self { false } else { true }
    }
}

extension NaturalGradientOptimizer {
    /// Whether this step evaluates ρ: where the policy adapts now, or, with a fixed λ,
    /// where a loss closure is given (ρ is then only reported).
    func evaluatesReductionRatio(lossGiven: Bool) -> Bool {
        dampingPolicy.adapts ? dampingPolicy.adapts(atStep: stepCount) : lossGiven
    }

    /// Evaluates the loss at θ + δ where `evaluate` and a closure is given, and lets the
    /// damping policy adapt λ to `ρ = actual / predicted` (a NaN ρ where there is no
    /// prediction).
    func adaptDamping(
        parameters: [Element], update: [Element], loss: Double?, lossAt: (([Element]) throws -> Double)?,
        predicted: Double?, evaluate: Bool
    ) throws -> (actual: Double?, ratio: Double?) {
        guard evaluate, let lossAt else { return (nil, nil) }
        let before = try loss ?? lossAt(parameters)
        let candidate = Element.narrowed(zip(Element.widened(parameters), Element.widened(update)).map { $0 + $1 })
        let actual = try lossAt(candidate) - before
        let ratio = predicted.map { actual / $0 }
        dampingPolicy.update(reductionRatio: ratio ?? .nan)
        return (actual, ratio)
    }
}
