import OpenCLHost

/// What one optimizer step did.
public struct OptimizerStepReport<Element: DeviceScalar> {
    /// The update δ (P values); `step` has already added it to the parameters.
    public var update: [Element]
    /// The index of this step (0 for the first).
    public var step: Int
    /// The λ this step solved with (for a cached inverse, the λ it was built for).
    public var damping: Double
    /// The λ for the next step (changed by Levenberg-Marquardt).
    public var nextDamping: Double
    /// The step size α along `−Δ`.
    public var stepSize: Double
    /// `‖δ‖` after clipping.
    public var updateNorm: Double
    /// Whether `maxUpdateNorm` scaled the update down.
    public var clipped: Bool
    /// The solver that produced Δ (never `.automatic`).
    public var method: SolveMethod
    /// For CG and PCG: iterations, residual, φ and status of the solve.
    public var solve: ColumnReport?
    /// Whether this step rebuilt (or averaged into) the curvature.
    public var refreshedCurvature: Bool
    /// Whether this step recomputed the cached inverse.
    public var refreshedInverse: Bool
    /// The predicted loss change `gᵀδ + ½ δᵀFδ` (undamped F), where it was computed (a
    /// quadratic-model step size or Levenberg-Marquardt damping).
    public var predictedChange: Double?
    /// `loss(θ + δ) − loss(θ)`, where the step evaluated it (Levenberg-Marquardt).
    public var actualChange: Double?
    /// `actualChange / predictedChange`, the ρ Levenberg-Marquardt adapts λ with.
    public var reductionRatio: Double?
}
