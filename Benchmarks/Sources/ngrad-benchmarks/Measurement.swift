import Foundation
import NaturalGradientTestSupport

// Timing, inputs, error measures and float64 references come from NaturalGradientTestSupport
// (the root package), shared with the tests and `ngrad bench`; what is left here is the
// suite's own.

/// Indices of the upper triangle (diagonal included) of a row-major n x n matrix.
func upperTriangle(_ n: Int) -> some Sequence<Int> {
    (0..<n).lazy.flatMap { row in (row..<n).lazy.map { row * n + $0 } }
}
