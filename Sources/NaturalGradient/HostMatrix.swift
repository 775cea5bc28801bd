/// The n x n identity, row-major, in float64: the one host helper for it (the EKFAC bases
/// before the first eigendecomposition, the squared-Euclidean metric's blocks).
func identityMatrix(_ n: Int) -> [Double] {
    var matrix = [Double](repeating: 0, count: n * n)
    for i in 0..<n { matrix[i * n + i] = 1 }
    return matrix
}
