import OpenCLHost

// K-FAC's capabilities beyond apply: its own inverse, accumulation from layer statistics,
// and state export. The inverse inverts the factored-damped operator that `apply` applies,
// `(G + γ_G I) ⊗ (A + γ_A I)`, which is what K-FAC steps with.
extension KroneckerCurvature: LayerAccumulatingCurvature, ExportableCurvature {
    /// K-FAC: inverting the factors costs Σ (in³ + out³), far less than any iteration count
    /// of CG over the layers.
    public func preferredMethod(damping _: Double) -> SolveMethod { .kfac }

    /// Inverted Kronecker factors (`KroneckerSolver`).
    public var inverseMethod: SolveMethod? { .kfac }

    /// A `KroneckerSolver` refreshed for λ from the factors as they are now.
    public func makeInverse(damping: Element) throws -> any CurvatureInverse<Element> {
        try KroneckerSolver(curvature: self, damping: damping)
    }

    /// The packed factors (A_l, G_l per layer).
    public func exportState() throws -> SavedCurvature {
        .kronecker(factors: try factors.downloadFloat64())
    }
}
