import Foundation

/// Wall times of the repeated runs of one operation by one contestant.
struct Timing {
    /// Seconds per timed run, in the order they ran (warm-up runs excluded).
    var seconds: [Double]

    var median: Double {
        let sorted = seconds.sorted()
        guard !sorted.isEmpty else { return .nan }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
    var min: Double { seconds.min() ?? .nan }
    var max: Double { seconds.max() ?? .nan }
}

/// Runs `body` `warmup` times untimed, then `repetitions` times timed, and returns the
/// wall times. `body` gets the run's index (warm-up runs first, counting from 0), so it can
/// rotate between input copies. Device work must end with `context.finish()` inside
/// `body`, so each timed run covers the whole operation.
func measure(warmup: Int, repetitions: Int, _ body: (Int) throws -> Void) throws -> Timing {
    for run in 0..<warmup { try body(run) }
    let clock = ContinuousClock()
    var seconds: [Double] = []
    seconds.reserveCapacity(repetitions)
    for run in 0..<repetitions {
        let elapsed = try clock.measure { try body(warmup + run) }
        let (whole, attoseconds) = elapsed.components
        seconds.append(Double(whole) + Double(attoseconds) * 1e-18)
    }
    return Timing(seconds: seconds)
}

/// Deterministic pseudo-random inputs (SplitMix64), fast enough for 10^8 values.
struct InputGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` values uniform in [-1, 1).
    mutating func uniform(count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                // The top 24 bits give every float in [0, 1) on a 2^-24 grid.
                let unit = Float(next() >> 40) * 0x1p-24
                buffer[index] = 2 * unit - 1
            }
            initialized = count
        }
    }
}

/// `‖a − b‖₂ / ‖b‖₂` over the elements `indices` yields (accumulated in Double); infinite
/// when `b` is zero there and `a` is not, NaN when either holds a NaN.
func relativeDifference<S: Sequence<Int>>(_ a: [Float], _ b: [Float], over indices: S) -> Double {
    var difference = 0.0
    var reference = 0.0
    for index in indices {
        let delta = Double(a[index]) - Double(b[index])
        difference += delta * delta
        reference += Double(b[index]) * Double(b[index])
    }
    if difference == 0 { return 0 }
    return (difference / reference).squareRoot()
}

/// Indices of the upper triangle (diagonal included) of a row-major n x n matrix.
func upperTriangle(_ n: Int) -> some Sequence<Int> {
    (0..<n).lazy.flatMap { row in (row..<n).lazy.map { row * n + $0 } }
}

/// The largest `|F[i][j] − F[j][i]|` of a row-major n x n matrix (0 for a symmetric one).
func asymmetry(_ matrix: [Float], _ n: Int) -> Float {
    var worst: Float = 0
    for row in 0..<n {
        for column in (row + 1)..<n {
            let delta = abs(matrix[row * n + column] - matrix[column * n + row])
            if delta.isNaN { return .nan }
            worst = max(worst, delta)
        }
    }
    return worst
}
