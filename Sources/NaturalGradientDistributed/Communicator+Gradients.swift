extension Communicator {
    /// The global mean gradient from every rank's mean over its own `samples`:
    /// `g = Σ_r N_r g_r / Σ_r N_r`, with one rank-ordered allreduce (the counts travel as
    /// one more element), so every rank returns bitwise-identical values. The one call per
    /// step a data-parallel training loop makes before `NaturalGradientOptimizer.step`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func averageGradient<T: CommunicableScalar>(_ gradient: [T], samples: Int) throws -> [T] {
        guard samples > 0 else {
            throw MPIError.invalidArgument(name: "samples", reason: "must be positive, got \(samples)")
        }
        let weight = Double(samples)
        var values = gradient.map { T(float64: $0.float64 * weight) }
        values.append(T(float64: weight))
        try sumInRankOrder(&values)
        let total = values.removeLast().float64
        return values.map { T(float64: $0.float64 / total) }
    }
}
