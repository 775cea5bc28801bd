import OpenCLHost

extension NaturalGradientOptimizer {
    /// The state to save: step count, λ, momentum, curvature and cached inverse.
    /// - Throws: `invalidArgument("state", …)` where the curvature or the inverse cannot
    ///   export itself (`ExportableCurvature`, `ExportableInverse`).
    public func state() throws -> NaturalGradientOptimizerState {
        NaturalGradientOptimizerState(
            dimension: dimension, step: stepCount, damping: damping, previousUpdate: previousUpdate,
            curvature: try curvature.map(Self.export), inverse: try inverse.map(Self.export))
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
            try require(
                previous.count == dimension, "state", "previousUpdate holds \(previous.count) values, expected \(dimension)")
        }
        let restoredCurvature = try state.curvature.map(builder.restoring)
        var restoredInverse: (any CurvatureInverse<Element>)?
        if let saved = state.inverse {
            try require(saved.damping.isFinite && saved.damping >= 0, "state", "the inverse has damping \(saved.damping)")
            // The inverse is rebuilt from the curvature it was factored from, exactly.
            let source = try builder.restoring(saved.source)
            try require(
                source.inverseMethod != nil, "state",
                "holds an inverse, but \(type(of: source)) has no exact inverse")
            restoredInverse = try source.makeInverse(damping: Element(float64: saved.damping))
        }
        let policy = try options.damping.makePolicy(damping: state.damping)
        dampingPolicy = policy
        stepCount = state.step
        previousUpdate = state.previousUpdate
        curvature = restoredCurvature
        inverse = restoredInverse
    }

    private static func export(_ curvature: any CurvatureOperator<Element>) throws -> SavedCurvature {
        guard let exportable = curvature as? any ExportableCurvature<Element> else {
            throw NaturalGradientError.invalidArgument(
                name: "state", reason: "\(type(of: curvature)) cannot export its contents (ExportableCurvature)")
        }
        return try exportable.exportState()
    }

    private static func export(_ inverse: any CurvatureInverse<Element>) throws -> SavedInverse {
        guard let exportable = inverse as? any ExportableInverse<Element> else {
            throw NaturalGradientError.invalidArgument(
                name: "state", reason: "\(type(of: inverse)) cannot export its source (ExportableInverse)")
        }
        return try exportable.exportState()
    }
}
