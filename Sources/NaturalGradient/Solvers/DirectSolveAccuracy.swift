import Foundation
import OpenCLHost

/// What a direct solve (Cholesky, Woodbury) needs to have its answer checked honestly and
/// refined once: the factorisation it used, the reciprocal condition of the system it
/// solved, and a way to solve again with the same factorisation.
struct DirectSolveCheck<Element: DeviceScalar> {
    /// The factorisation behind the solve: its path says whether the system was perturbed,
    /// its norm scales the backward error.
    let factorization: DenseSymmetricFactorization
    /// A reciprocal condition estimate of `F + λI` (not only of the factored matrix).
    let systemReciprocalCondition: Double
    /// `(F + λI)⁻¹ r` with the same factorisation.
    let resolve: (VectorBatch<Element>) throws -> VectorBatch<Element>
}

extension DirectSolveCheck {
    /// The check of a solve by `inverse`, nil where it has no factorisation to check against
    /// (K-FAC inverts an approximation by design, so its answer is only measured).
    init?(_ inverse: any CurvatureInverse<Element>) {
        guard let factorization = inverse.factorization, let condition = inverse.systemReciprocalCondition else {
            return nil
        }
        self.init(factorization: factorization, systemReciprocalCondition: condition, resolve: { try inverse.solve($0) })
    }
}

/// The accuracy rules of direct solves (`SolveStatus.perturbed`, `.inaccurate`,
/// `.illConditioned`).
public enum DirectSolveAccuracy {
    /// The largest normwise backward error `η = ‖b − Ax‖ / (‖A‖₁‖x‖ + ‖b‖)` that the
    /// working precision explains for a system of order n: `8·log₂(2n)·ε`, ε its machine
    /// epsilon (a pairwise-summed product's rounding grows with log n). Backward-stable
    /// solves, whose x is rounded to the working precision and whose check product is
    /// itself computed in it, stay far below it (measured on a 1500-parameter float32
    /// problem: Cholesky η ≈ 0.01·ε, Woodbury ≈ ε before refinement and 0.1·ε after). A
    /// large condition number does not raise η, so an accurate solve of an ill-conditioned
    /// system still passes; `SolveStatus.illConditioned` covers systems the precision
    /// cannot resolve at all.
    public static func backwardErrorBound(dimension n: Int, epsilon: Double) -> Double {
        8 * log2(2 * Double(max(n, 1))) * epsilon
    }

    /// A direct solve is refined once when a column's η is above `ε/8`: below that, x is
    /// as good as rounding it to the working precision allows (a float32 Cholesky from the
    /// float64 factorisation), above it a second pass pays (Woodbury's `(b − Ũᵀc)/λ`
    /// cancels at small λ: one pass cut its residual 8- to 27-fold in the measurement).
    static func refinementThreshold(epsilon: Double) -> Double { epsilon / 8 }

    /// The working precision's machine epsilon.
    static func epsilon<Element: DeviceScalar>(_: Element.Type) -> Double {
        Element.self == Double.self ? Double.ulpOfOne : Double(Float.ulpOfOne)
    }
}

/// Measures a direct solve's `x`, refines it once where its backward error is above the
/// bound (`x += (F + λI)⁻¹ (b − (F + λI) x)` with the residual formed in float64 on the
/// host from the device's product, and the same factorisation), and gives every column a
/// status that says what x is worth: `.perturbed` when the factorisation perturbed the
/// system, `.inaccurate` when the backward error stays above the bound, `.illConditioned`
/// when the system's condition is beyond the working precision, else `.converged`.
/// Without a `check` (K-FAC, which inverts an approximation by design) x is only measured.
func checkedDirectSolution<Operator: CurvatureOperator>(
    _ curvature: Operator, _ b: VectorBatch<Operator.Element>, _ x: VectorBatch<Operator.Element>,
    damping: Operator.Element, check: DirectSolveCheck<Operator.Element>?
) throws -> (x: VectorBatch<Operator.Element>, reports: [ColumnReport]) {
    typealias Element = Operator.Element
    let (k, n) = (b.count, b.dimension)
    let zeros = Array(repeating: 0, count: k)
    let converged = Array(repeating: SolveStatus.converged, count: k)
    guard let check else {
        return (x, try measureSolution(curvature, b, x, damping: damping, iterations: zeros, statuses: converged))
    }
    let epsilon = DirectSolveAccuracy.epsilon(Element.self)
    let bound = DirectSolveAccuracy.backwardErrorBound(dimension: n, epsilon: epsilon)
    let hostB = try b.buffer.downloadFloat64(0..<(n * k))
    let scratch = try VectorBatch<Element>(context: curvature.context, dimension: n, count: k)

    func measure(_ x: VectorBatch<Element>) throws -> (reports: [ColumnReport], x: [Double], errors: [Double], residual: [Double])
    {
        let (reports, products) = try measureSolutionValues(
            curvature, b, x, damping: damping, scratch: scratch, hostB: hostB, iterations: zeros, statuses: converged)
        let xValues = try x.buffer.downloadFloat64(0..<(n * k))
        var residual = [Double](repeating: 0, count: n * k)
        var errors = [Double](repeating: 0, count: k)
        for column in 0..<k {
            var (r2, x2, b2) = (0.0, 0.0, 0.0)
            for i in (column * n)..<((column + 1) * n) {
                residual[i] = hostB[i] - products[i]
                r2 += residual[i] * residual[i]
                x2 += xValues[i] * xValues[i]
                b2 += hostB[i] * hostB[i]
            }
            let scale = check.factorization.norm * x2.squareRoot() + b2.squareRoot()
            errors[column] = scale > 0 ? r2.squareRoot() / scale : (r2 == 0 ? 0 : .infinity)
            if !errors[column].isFinite { errors[column] = .infinity }
        }
        return (reports, xValues, errors, residual)
    }

    var best = try measure(x)
    var bestX = x
    if best.errors.contains(where: { !($0 <= DirectSolveAccuracy.refinementThreshold(epsilon: epsilon)) }),
        best.residual.allSatisfy(\.isFinite)
    {
        // One refinement step; a column keeps whichever x has the smaller backward error.
        let residual = try VectorBatch<Element>(context: curvature.context, dimension: n, count: k)
        try residual.buffer.upload(float64: best.residual)
        let correction = try check.resolve(residual)
        let delta = try correction.buffer.downloadFloat64(0..<(n * k))
        let refinedValues = zip(best.x, delta).map { $0 + $1 }
        if refinedValues.allSatisfy(\.isFinite) {
            let refined = try VectorBatch<Element>(context: curvature.context, dimension: n, count: k)
            try refined.buffer.upload(float64: refinedValues)
            let trial = try measure(refined)
            var mixed = refinedValues
            var anyKept = false
            for column in 0..<k where !(trial.errors[column] < best.errors[column]) {
                anyKept = true
                for i in (column * n)..<((column + 1) * n) { mixed[i] = best.x[i] }
            }
            if anyKept {
                try refined.buffer.upload(float64: mixed)
                best = try measure(refined)
            } else {
                best = trial
            }
            bestX = refined
        }
    }
    let perturbed = check.factorization.path.isPerturbed
    let reports = best.reports.enumerated().map { column, report -> ColumnReport in
        var report = report
        guard report.status != .nonFinite else { return report }
        if perturbed {
            report.status = .perturbed
        } else if !(best.errors[column] <= bound) {
            report.status = .inaccurate
        } else if !(check.systemReciprocalCondition >= epsilon) {
            report.status = .illConditioned
        }
        return report
    }
    return (bestX, reports)
}
