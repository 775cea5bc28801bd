import CBLAS

// EKFAC's host float64 work as BLAS level-3 calls (OpenBLAS's cblas_dgemm): the eigenvalue
// correction and the diagonal. Plain loops here cost 3.4 s for the MLP 784-1024-...-10 at
// N = 512 (Benchmarks/NOTES.md); per layer the correction is three GEMMs of
// N (in² + out² + in·out) multiply-adds, which OpenBLAS runs at tens of GFLOP/s.

/// `Σ_n w_n (Q_Gᵀ g_n)² (Q_Aᵀ a_n)²ᵀ` (outputs x inputs, row-major) for `samples` rows
/// `a` (samples x inputs) and `g` (samples x outputs), bases row-major with the
/// eigenvectors in the columns, optional per-sample weights. Squares are element-wise.
func eigenvalueCorrectionSums(
    activations a: [Double], outputGradients g: [Double], bases: (a: [Double], g: [Double]), inputs: Int, outputs: Int,
    samples: Int, weights: [Double]?
) throws -> [Double] {
    let (m, n, k) = (try blasInt(samples, "samples"), try blasInt(inputs, "inputs"), try blasInt(outputs, "outputs"))
    try require(a.count == samples * inputs && g.count == samples * outputs, "layers", "rows do not match the shape")
    // Ã = a Q_A (row n of Ã is Q_Aᵀ a_n), G̃ = g Q_G, then squared (G̃² rows weighted).
    var projectedA = [Double](repeating: 0, count: samples * inputs)
    var projectedG = [Double](repeating: 0, count: samples * outputs)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1, a, n, bases.a, n, 0, &projectedA, n)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, k, 1, g, k, bases.g, k, 0, &projectedG, k)
    for e in projectedA.indices { projectedA[e] *= projectedA[e] }
    for sample in 0..<samples {
        let w = weights?[sample] ?? 1
        for e in (sample * outputs)..<((sample + 1) * outputs) { projectedG[e] *= projectedG[e] * w }
    }
    // (G̃²)ᵀ Ã²: outputs x inputs.
    var sums = [Double](repeating: 0, count: outputs * inputs)
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, n, m, 1, projectedG, k, projectedA, n, 0, &sums, n)
    return sums
}

/// `diag(F)_(o,i) = Σ_kj Q_G[o,k]² S_kj Q_A[i,j]²` (outputs x inputs, row-major): the
/// diagonal of `(Q_G ⊗ Q_A) diag(vec S) (Q_G ⊗ Q_A)ᵀ`, as `(Q_G∘Q_G) S (Q_A∘Q_A)ᵀ`.
func eigenbasisDiagonal(
    eigenvalues s: ArraySlice<Double>, bases: (a: [Double], g: [Double]), inputs: Int, outputs: Int
) throws -> [Double] {
    let (n, k) = (try blasInt(inputs, "inputs"), try blasInt(outputs, "outputs"))
    let squaredA = bases.a.map { $0 * $0 }
    let squaredG = bases.g.map { $0 * $0 }
    let values = Array(s)
    var t = [Double](repeating: 0, count: outputs * inputs)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, n, n, 1, values, n, squaredA, n, 0, &t, n)
    var diagonal = [Double](repeating: 0, count: outputs * inputs)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, n, k, 1, squaredG, k, t, n, 0, &diagonal, n)
    return diagonal
}

/// `value` as BLAS's 32-bit dimension, or `invalidArgument(name)` when it does not fit.
private func blasInt(_ value: Int, _ name: String) throws -> Int32 {
    guard let converted = Int32(exactly: value), converted > 0 else {
        throw NaturalGradientError.invalidArgument(name: name, reason: "\(value) is not a BLAS dimension (1...\(Int32.max))")
    }
    return converted
}
