import NaturalGradient
import OpenCLHost
import NaturalGradientTestSupport

/// The same global batch on every rank (generated from a seed), and this rank's share of its
/// rows: rows `r·N/p ..< (r+1)·N/p`, so the shares are uneven when p does not divide N.
struct GlobalData<T: DeviceScalar> {
    let rows: Int
    let dimension: Int
    let matrix: [T]
    let weights: [T]
    let share: Range<Int>

    init(rows: Int, dimension: Int, seed: UInt64, rank: Int, size: Int) {
        self.rows = rows
        self.dimension = dimension
        matrix = randomValues(rows * dimension, seed: seed)
        // Weights in [0.25, 1.25): positive, uneven.
        weights = (randomValues(rows, seed: seed + 1) as [T]).map { $0 / 2 + 0.75 }
        share = (rank * rows / size)..<((rank + 1) * rows / size)
    }

    /// The rows of this rank's share.
    func localRows(_ values: [T], width: Int) -> [T] {
        Array(values[(share.lowerBound * width)..<(share.upperBound * width)])
    }

    /// The whole batch as one factor (the single-process reference).
    func globalFactor(_ context: Context, weighted: Bool) throws -> CurvatureFactor<T> {
        try CurvatureFactor(
            context: context, matrix: matrix, rows: rows, dimension: dimension, samples: rows,
            weights: weighted ? weights : nil)
    }

    /// This rank's rows as a factor with this rank's own sample count.
    func localFactor(_ context: Context, weighted: Bool) throws -> CurvatureFactor<T> {
        try CurvatureFactor(
            context: context, matrix: localRows(matrix, width: dimension), rows: share.count, dimension: dimension,
            samples: share.count, weights: weighted ? Array(weights[share]) : nil)
    }
}
