import OpenCLHost

// EKFAC's capabilities beyond apply: accumulation from layer statistics and its own
// inverse, which is exact for `F + λI` (the bases are orthogonal), so there is no factored
// damping to split.
extension EigenvalueCorrectedKroneckerCurvature: LayerAccumulatingCurvature {
    /// The eigenbasis inverse: one division per parameter between two Kronecker rotations,
    /// far less than any iteration count of CG.
    public func preferredMethod(damping _: Double) -> SolveMethod { .kfac }

    /// `.kfac`: a Kronecker-factored direct inverse (`EigenvalueCorrectedKroneckerSolver`).
    public var inverseMethod: SolveMethod? { .kfac }

    /// An `EigenvalueCorrectedKroneckerSolver` for λ from the bases and eigenvalues as they
    /// are now.
    public func makeInverse(damping: Element) throws -> any CurvatureInverse<Element> {
        try EigenvalueCorrectedKroneckerSolver(curvature: self, damping: damping)
    }
}
