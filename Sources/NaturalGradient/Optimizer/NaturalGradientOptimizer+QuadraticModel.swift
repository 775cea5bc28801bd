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

    /// The model's inner products with one batched (undamped) curvature product.
    func quadraticModel(
        _ curvature: any CurvatureOperator<Element>, g: [Double], d: [Double], m: [Double]?
    )
        throws -> QuadraticModel
    {
        let vectors = [d] + (m.map { [$0] } ?? [])
        let batch = try VectorBatch<Element>(context: context, dimension: dimension, count: vectors.count)
        try batch.buffer.upload(Element.narrowed(vectors.flatMap { $0 }))
        let products = try VectorBatch<Element>(context: context, dimension: dimension, count: vectors.count)
        try curvature.apply(batch, damping: 0, into: products)
        let values = try products.buffer.downloadFloat64(0..<(dimension * vectors.count))
        // Use the vectors as the device saw them (rounded to Element) for consistent dots.
        let rounded = Element.widened(Element.narrowed(vectors.flatMap { $0 }))
        var model = QuadraticModel()
        for i in 0..<dimension {
            let di = rounded[i]
            model.gd += g[i] * di
            model.dd += di * di
            model.dFd += di * values[i]
            if m != nil {
                let mi = rounded[dimension + i]
                model.gm += g[i] * mi
                model.dm += di * mi
                model.mm += mi * mi
                model.dFm += di * values[dimension + i]
                model.mFm += mi * values[dimension + i]
            }
        }
        return model
    }
}
