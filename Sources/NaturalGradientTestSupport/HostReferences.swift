import OpenCLHost

// Float64 host references for the curvature kernels: plain loops, written for clarity, the
// one copy the tests, `ngrad bench`, `ngrad tune` and the benchmark suite check against.
// Inputs are the element-rounded values the device saw, widened exactly to float64.
// `@inlinable` so that a client (the benchmark package) specialises them: unspecialised
// generic loops over 10⁸ elements would take minutes.

/// `βF0 + α Σ_m w_m u_m u_mᵀ` for U (rows x dim, row stride `stride`, from `offset`), the
/// whole dim x dim matrix, row-major.
@inlinable public func referenceAccumulation<T: DeviceScalar>(
    _ u: [T], rows: Int, dim: Int, stride: Int? = nil, offset: Int = 0, weights: [T]? = nil, alpha: Double,
    beta: Double = 0, initial: [Double]? = nil
) -> [Double] {
    let stride = stride ?? dim
    var f = [Double](repeating: 0, count: dim * dim)
    for m in 0..<rows {
        let w = weights.map { $0[m].float64 } ?? 1
        let row = (0..<dim).map { u[offset + m * stride + $0].float64 }
        for i in 0..<dim where row[i] != 0 {
            let scaled = w * row[i]
            for j in 0..<dim { f[i * dim + j] += scaled * row[j] }
        }
    }
    return (0..<(dim * dim)).map { alpha * f[$0] + (beta == 0 ? 0 : beta * (initial?[$0] ?? 0)) }
}

/// Entries `entries` (row-major indices into the P x P matrix) of `F = (1/N) Σ_m u_m u_mᵀ`
/// for U (rows x P, row stride `stride`, from column `offset`): a sample of a matrix too
/// large to compute whole on the host.
@inlinable public func referenceAccumulation<T: DeviceScalar>(
    _ u: [T], rows: Int, dim p: Int, stride: Int? = nil, offset: Int = 0, samples: Int, entries: [Int]
) -> [Double] {
    let stride = stride ?? p
    return entries.map { entry in
        let (i, j) = (offset + entry / p, offset + entry % p)
        var sum = 0.0
        for m in 0..<rows { sum += u[m * stride + i].float64 * u[m * stride + j].float64 }
        return sum / Double(samples)
    }
}

/// `(1/N) Uᵀ (w ∘ (U x)) + λx` for each vector of `xs`, U row-major rows x dim.
@inlinable public func referenceImplicitProduct<T: DeviceScalar>(
    _ u: [T], rows: Int, dim: Int, samples: Int, weights: [T]? = nil, xs: [[T]], damping: Double
) -> [[Double]] {
    xs.map { x in
        var y = x.map { damping * $0.float64 }
        for m in 0..<rows {
            var dot = 0.0
            for c in 0..<dim { dot += u[m * dim + c].float64 * x[c].float64 }
            let t = (weights.map { $0[m].float64 } ?? 1) * dot / Double(samples)
            for c in 0..<dim { y[c] += t * u[m * dim + c].float64 }
        }
        return y
    }
}

/// `(F + λI) x` for a dense row-major F.
@inlinable public func referenceDenseProduct(_ f: [Double], dim: Int, x: [Double], damping: Double) -> [Double] {
    (0..<dim).map { i in
        (0..<dim).reduce(damping * x[i]) { $0 + f[i * dim + $1] * x[$1] }
    }
}

/// `(G + γG I) V (A + γA I)` with V (rows x cols) row-major, G rows x rows, A cols x cols.
@inlinable public func referenceKronecker(
    g: [Double], a: [Double], v: [Double], rows: Int, cols: Int, gammaG: Double, gammaA: Double
) -> [Double] {
    var t = [Double](repeating: 0, count: rows * cols)
    for o in 0..<rows {
        for i in 0..<cols {
            var sum = gammaA * v[o * cols + i]
            for c in 0..<cols { sum += v[o * cols + c] * a[c * cols + i] }
            t[o * cols + i] = sum
        }
    }
    var y = [Double](repeating: 0, count: rows * cols)
    for o in 0..<rows {
        for i in 0..<cols {
            var sum = gammaG * t[o * cols + i]
            for c in 0..<rows { sum += g[o * rows + c] * t[c * cols + i] }
            y[o * cols + i] = sum
        }
    }
    return y
}
