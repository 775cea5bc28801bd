import OpenCLHost

/// The inner products of the local model `q(δ) = gᵀδ + ½ δᵀFδ` (undamped F) for δ in the
/// span of the direction d and the momentum term m.
struct QuadraticModel {
    var gd = 0.0, gm = 0.0, dd = 0.0, dm = 0.0, mm = 0.0, dFd = 0.0, dFm = 0.0, mFm = 0.0

    /// The predicted loss change `q(a d + b m)`.
    func change(alongDirection a: Double, momentum b: Double) -> Double {
        let linear = a * gd + b * gm
        let quadratic = a * a * dFd + 2 * a * b * dFm + b * b * mFm
        return linear + 0.5 * quadratic
    }
}

extension NaturalGradientOptimizer {
    /// The step size α along d and the factor c ∈ [0, 1] on m = μ δ_prev that minimise
    /// `q(αd + cm) = gᵀδ + ½ δᵀ(F + λI)δ`: jointly (K-FAC's rule) when there is a momentum
    /// term and the joint minimiser is in range, else α alone with c = 1 (or c = 0 when
    /// that is lower). α is clamped to [0, maximum].
    static func modelStep(
        _ model: QuadraticModel, damping lambda: Double, maximum: Double, hasMomentum: Bool
    )
        -> (Double, Double)
    {
        let dd = model.dFd + lambda * model.dd
        let gd = model.gd
        func alone(_ c: Double) -> (alpha: Double, q: Double) {
            guard dd > 0 else { return (0, c * model.gm + 0.5 * c * c * (model.mFm + lambda * model.mm)) }
            let slope = gd + c * (model.dFm + lambda * model.dm)
            let alpha = min(max(-slope / dd, 0), maximum)
            let q =
                alpha * gd + c * model.gm + 0.5
                * (alpha * alpha * dd + 2 * alpha * c * (model.dFm + lambda * model.dm)
                    + c * c * (model.mFm + lambda * model.mm))
            return (alpha.isFinite ? alpha : 0, q)
        }
        guard hasMomentum else { return (alone(0).alpha, 1) }
        let dm = model.dFm + lambda * model.dm
        let mm = model.mFm + lambda * model.mm
        let determinant = dd * mm - dm * dm
        if determinant > 1e-12 * max(dd * mm, .leastNormalMagnitude) {
            let alpha = (-gd * mm + model.gm * dm) / determinant
            let c = (-model.gm * dd + gd * dm) / determinant
            if alpha >= 0, alpha <= maximum, c >= 0, c <= 1, alpha.isFinite, c.isFinite { return (alpha, c) }
        }
        let (with, without) = (alone(1), alone(0))
        return with.q <= without.q ? (with.alpha, 1) : (without.alpha, 0)
    }

    /// KFAC-JAX's `_solve_quad_model`: `(α, c) = −A⁻¹b` for the damped 2 x 2 model
    /// `A = [dᵀ(C + λI)d, dᵀ(C + λI)m; ·, mᵀ(C + λI)m]`, `b = [gᵀd, gᵀm]`, without bounds;
    /// α alone (c = 0) without momentum or where A is singular to rounding (the first
    /// step's m = 0). (0, 0) where even α has no positive curvature to divide by.
    static func unboundedModelStep(_ model: QuadraticModel, damping lambda: Double, hasMomentum: Bool) -> (Double, Double) {
        let dd = model.dFd + lambda * model.dd
        let alone = dd > 0 ? -model.gd / dd : 0
        guard hasMomentum else { return (alone.isFinite ? alone : 0, 1) }
        let dm = model.dFm + lambda * model.dm
        let mm = model.mFm + lambda * model.mm
        let determinant = dd * mm - dm * dm
        if dd > 0, mm > 0, determinant > 1e-12 * dd * mm {
            let alpha = (-model.gd * mm + model.gm * dm) / determinant
            let c = (-model.gm * dd + model.gd * dm) / determinant
            if alpha.isFinite, c.isFinite { return (alpha, c) }
        }
        return (alone.isFinite ? alone : 0, 0)
    }

    /// The model's inner products: the curvature terms from `gram` (the caller's exact
    /// curvature, or the optimizer's own operator), the rest on the host, with d and m
    /// rounded to `Element` as the update will be.
    /// - Throws: `NaturalGradientError.invalidArgument` naming `modelCurvature` when the
    ///   Gram is not k x k, not finite, or has a negative diagonal.
    func quadraticModel(_ gram: any CurvatureGram, g: [Double], d: [Double], m: [Double]?) throws -> QuadraticModel {
        let vectors = [d] + (m.map { [$0] } ?? [])
        let rounded = vectors.map { Element.widened(Element.narrowed($0)) }
        let k = rounded.count
        let c = try gram.gram(rounded)
        try require(c.count == k * k, "modelCurvature", "returned \(c.count) Gram entries for \(k) directions, expected \(k * k)")
        try require(c.allSatisfy { $0.isFinite }, "modelCurvature", "returned a Gram with NaN or infinite entries")
        try require(
            (0..<k).allSatisfy { c[$0 * k + $0] >= 0 }, "modelCurvature",
            "returned a negative vᵀCv; the curvature must be positive semi-definite")
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        var model = QuadraticModel()
        let r = rounded[0]
        model.gd = dot(g, r)
        model.dd = dot(r, r)
        model.dFd = c[0]
        if k == 2 {
            let s = rounded[1]
            model.gm = dot(g, s)
            model.dm = dot(r, s)
            model.mm = dot(s, s)
            model.dFm = c[1]
            model.mFm = c[3]
        }
        return model
    }
}
