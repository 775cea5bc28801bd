/// The n x n identity, row-major, in float64: the one host helper for it (the EKFAC bases
/// before the first eigendecomposition, the squared-Euclidean metric's blocks).
func identityMatrix(_ n: Int) -> [Double] {
    diagonalMatrix([Double](repeating: 1, count: n))
}

/// The square matrix with `entries` on its diagonal, row-major, in float64 (the diagonal
/// metrics and their square roots).
func diagonalMatrix(_ entries: [Double]) -> [Double] {
    let n = entries.count
    var matrix = [Double](repeating: 0, count: n * n)
    for i in 0..<n { matrix[i * n + i] = entries[i] }
    return matrix
}
