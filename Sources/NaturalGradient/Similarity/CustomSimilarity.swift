import Foundation

/// A user-supplied similarity measure `D(z, z')` on small outputs (at most
/// ``maximumDimension`` values), whose metric is its Hessian in z' at z' = z, estimated by
/// central finite differences in float64.
///
/// D should be smooth near z' = z and have its minimum there (D(z, z) = 0 for a
/// divergence); then the Hessian is positive semi-definite, and the library checks that it
/// is, within the estimate's error.
public struct CustomSimilarity: Sendable {
    /// The largest output dimension: the estimate costs about `4O² + 28·O` evaluations of D.
    public static let maximumDimension = 64

    /// A name for messages.
    public let name: String
    /// Typical magnitudes of the output coordinates, which set the finite-difference steps;
    /// nil means `max(|z_j|, 1)`.
    public let typicalScale: [Double]?
    /// `D(z, z')`.
    public let divergence: @Sendable (_ z: [Double], _ zPrime: [Double]) -> Double

    /// A custom measure.
    ///
    /// - Parameters:
    ///   - name: used in messages.
    ///   - typicalScale: per coordinate, a positive magnitude over which D changes; set it
    ///     for coordinates far below 1 in size (a standard deviation of 1e-3, say), whose
    ///     default step would be too coarse.
    ///   - divergence: `D(z, z')`, called with arrays of the family's output count.
    public init(
        name: String = "custom", typicalScale: [Double]? = nil,
        _ divergence: @escaping @Sendable (_ z: [Double], _ zPrime: [Double]) -> Double
    ) throws {
        if let typicalScale, let index = typicalScale.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw NaturalGradientError.invalidArgument(
                name: "typicalScale", reason: "value \(index) is \(typicalScale[index]); scales must be finite and positive")
        }
        self.name = name
        self.typicalScale = typicalScale
        self.divergence = divergence
    }

    /// The Hessian of `D(z, ·)` at z, with an estimate of its error.
    ///
    /// Steps: for each coordinate j, the step walks down the ladder
    /// `h = ε^{1/6}·s_j·4^{−k}`, k = 0…6 (s_j the typical scale), skipping steps where D is
    /// not finite (a standard deviation stepped below zero) and going on while the diagonal
    /// entry's change between h and 2h keeps falling at least 4-fold per rung, as truncation
    /// error does; where it stops falling, rounding dominates. This adapts the step to
    /// coordinates much smaller than their scale (a standard deviation of 1e-3). The Hessian is then computed with steps h and 2h and
    /// extrapolated (Richardson), which cancels the h² term; the error estimate is the
    /// largest `|H(h) − H(2h)|/3` over the entries, which bounds the un-extrapolated error and
    /// so overstates the returned one.
    ///
    /// - Returns: the symmetric O x O metric (row-major) and the error estimate.
    /// - Throws: `NaturalGradientError.invalidArgument` naming `z` (too long, non-finite, or
    ///   D not finite near it at every step; or a typical scale of the wrong length) or
    ///   `measure` (the metric is not positive semi-definite within the error).
    public func metricEstimate(at z: [Double]) throws -> (metric: [Double], errorEstimate: Double) {
        let o = z.count
        try require(
            o >= 1 && o <= Self.maximumDimension, "z", "a custom measure takes 1 to \(Self.maximumDimension) outputs, got \(o)")
        if let index = z.firstIndex(where: { !$0.isFinite }) {
            throw NaturalGradientError.invalidArgument(name: "z", reason: "value \(index) is \(z[index]), not finite")
        }
        if let typicalScale {
            try require(typicalScale.count == o, "typicalScale", "has \(typicalScale.count) values for \(o) outputs")
        }
        let center = divergence(z, z)
        try require(center.isFinite, "z", "the custom measure \(name) gives D(z, z) = \(center)")

        var steps = [Double]()
        for j in 0..<o {
            let base = Self.relativeStep * (typicalScale?[j] ?? max(abs(z[j]), 1))
            // Walk down while the h-to-2h change still falls like h² (by 4x per rung or
            // more): below that, rounding has taken over.
            var best: (step: Double, change: Double)?
            for k in 0...Self.ladderRungs {
                let h = base * pow(4, -Double(k))
                let fine = secondDifference(at: z, center: center, j, h)
                let coarse = secondDifference(at: z, center: center, j, 2 * h)
                guard fine.isFinite, coarse.isFinite else {
                    if best == nil { continue } else { break }
                }
                let change = abs(fine - coarse)
                guard let current = best else {
                    best = (h, change)
                    continue
                }
                if change < current.change / 4 { best = (h, change) } else { break }
            }
            guard let best else {
                throw NaturalGradientError.invalidArgument(
                    name: "z", reason: "the custom measure \(name) is not finite near coordinate \(j) of z at any step")
            }
            steps.append(best.step)
        }
        let fine = hessian(at: z, center: center, steps: steps)
        let coarse = hessian(at: z, center: center, steps: steps.map { 2 * $0 })
        var metric = [Double](repeating: 0, count: o * o)
        var error = 0.0
        for index in 0..<(o * o) {
            metric[index] = (4 * fine[index] - coarse[index]) / 3
            error = max(error, abs(fine[index] - coarse[index]) / 3)
        }
        guard metric.allSatisfy(\.isFinite) else {
            throw NaturalGradientError.invalidArgument(
                name: "z", reason: "the custom measure \(name) is not finite at some pair of steps near z")
        }
        try checkSemidefinite(metric, dimension: o, error: error)
        return (metric, error)
    }

    // MARK: Finite differences

    /// ε^{1/6}: balances the O(h⁴) truncation of the extrapolated difference against its
    /// O(ε/h²) rounding for a coordinate of size s.
    static let relativeStep = pow(Double.ulpOfOne, 1.0 / 6)
    /// The ladder's length: steps down to 4⁻⁶ of the first.
    static let ladderRungs = 6

    /// `(D(z + h e_j) − 2 D(z) + D(z − h e_j)) / h²`, with h made exact at z.
    private func secondDifference(at z: [Double], center: Double, _ j: Int, _ step: Double) -> Double {
        let h = (z[j] + step) - z[j]
        var trial = z
        trial[j] = z[j] + h
        let plus = divergence(z, trial)
        trial[j] = z[j] - h
        let minus = divergence(z, trial)
        return (plus - 2 * center + minus) / (h * h)
    }

    /// The central-difference Hessian with the given steps (row-major, symmetric).
    private func hessian(at z: [Double], center: Double, steps: [Double]) -> [Double] {
        let o = z.count
        // Steps exactly representable at z, so that z ± h differ from z by exactly h.
        let h = (0..<o).map { j in (z[j] + steps[j]) - z[j] }
        var trial = z
        func d(_ moves: [(Int, Double)]) -> Double {
            for (j, sign) in moves { trial[j] = z[j] + sign * h[j] }
            let value = divergence(z, trial)
            for (j, _) in moves { trial[j] = z[j] }
            return value
        }
        var hessian = [Double](repeating: 0, count: o * o)
        for j in 0..<o {
            hessian[j * o + j] = (d([(j, 1)]) - 2 * center + d([(j, -1)])) / (h[j] * h[j])
            for k in 0..<j {
                let corners = d([(j, 1), (k, 1)]) - d([(j, 1), (k, -1)]) - d([(j, -1), (k, 1)]) + d([(j, -1), (k, -1)])
                let entry = corners / (4 * h[j] * h[k])
                hessian[j * o + k] = entry
                hessian[k * o + j] = entry
            }
        }
        return hessian
    }

    /// Throws unless every eigenvalue is at least `−tolerance`, where the tolerance covers
    /// the finite-difference error and rounding relative to the largest eigenvalue.
    private func checkSemidefinite(_ metric: [Double], dimension o: Int, error: Double) throws {
        let values = try SymmetricEigendecomposition(metric, dimension: o).values
        let largest = values.map(abs).max() ?? 0
        let tolerance = 10 * error + 1e-9 * largest
        guard values[0] >= -tolerance else {
            throw NaturalGradientError.invalidArgument(
                name: "measure",
                reason: "the custom measure \(name) has a Hessian that is not positive semi-definite: eigenvalue \(values[0]) "
                    + "(largest \(largest), finite-difference error about \(error)); is z' = z its minimum?")
        }
    }
}
