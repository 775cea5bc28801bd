import CLAPACK

/// `A = Q diag(λ) Qᵀ` of a small symmetric float64 matrix, through LAPACK's `dsyevd`.
struct SymmetricEigendecomposition: Sendable {
    /// The order n.
    let dimension: Int
    /// The eigenvalues in ascending order.
    let values: [Double]
    /// The eigenvectors, column-major (column i belongs to `values[i]`).
    let vectors: [Double]

    /// Decomposes the symmetric n x n matrix `matrix` (either layout; only the lower
    /// triangle in column-major order, the upper in row-major, is read).
    init(_ matrix: [Double], dimension n: Int) throws {
        precondition(matrix.count == n * n && n > 0, "internal: a decomposition of an inconsistent matrix")
        var vectors = matrix
        var values = [Double](repeating: 0, count: n)
        let info = vectors.withUnsafeMutableBufferPointer { a in
            values.withUnsafeMutableBufferPointer { w in
                LAPACKE_dsyevd(
                    LAPACK_COL_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "L")),
                    numericCast(n), a.baseAddress, numericCast(n), w.baseAddress)
            }
        }
        if info < 0 { throw DenseSolveError.illegalLAPACKArgument(routine: "dsyevd", argument: Int(-info)) }
        if info > 0 { throw DenseSolveError.lapackFailure(routine: "dsyevd", info: Int(info)) }
        self.dimension = n
        self.values = values
        self.vectors = vectors
    }

    /// `Q diag(f(λ)) Qᵀ`, row-major (it is symmetric, so also column-major).
    func reassembled(applying function: (Double) -> Double) -> [Double] {
        let n = dimension
        let mapped = values.map(function)
        var result = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                var sum = 0.0
                for k in 0..<n { sum += vectors[k * n + i] * mapped[k] * vectors[k * n + j] }
                result[i * n + j] = sum
                result[j * n + i] = sum
            }
        }
        return result
    }
}
