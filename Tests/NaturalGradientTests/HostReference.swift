// Float64 host references for the curvature kernels: plain loops, written for clarity.

/// `βF0 + α Σ_m w_m u_m u_mᵀ` for U (rows x dim, row stride `stride`, from `offset`).
func referenceAccumulation<T: DeviceScalarLike>(
    _ u: [T], rows: Int, dim: Int, stride: Int? = nil, offset: Int = 0, weights: [T]? = nil, alpha: Double,
    beta: Double = 0, initial: [Double]? = nil
) -> [Double] {
    let stride = stride ?? dim
    var f = [Double](repeating: 0, count: dim * dim)
    for m in 0..<rows {
        let w = weights.map { Double($0[m]) } ?? 1
        let row = (0..<dim).map { Double(u[offset + m * stride + $0]) }
        for i in 0..<dim where row[i] != 0 {
            let scaled = w * row[i]
            for j in 0..<dim { f[i * dim + j] += scaled * row[j] }
        }
    }
    return (0..<(dim * dim)).map { alpha * f[$0] + (beta == 0 ? 0 : beta * (initial?[$0] ?? 0)) }
}

/// `(1/N) Uᵀ (w ∘ (U x)) + λx` for each vector of `xs`.
func referenceImplicitProduct<T: DeviceScalarLike>(
    _ u: [T], rows: Int, dim: Int, samples: Int, weights: [T]? = nil, xs: [[T]], damping: Double
) -> [[Double]] {
    xs.map { x in
        var y = x.map { damping * Double($0) }
        for m in 0..<rows {
            var dot = 0.0
            for c in 0..<dim { dot += Double(u[m * dim + c]) * Double(x[c]) }
            let t = (weights.map { Double($0[m]) } ?? 1) * dot / Double(samples)
            for c in 0..<dim { y[c] += t * Double(u[m * dim + c]) }
        }
        return y
    }
}

/// `(F + λI) x` for a dense row-major F.
func referenceDenseProduct(_ f: [Double], dim: Int, x: [Double], damping: Double) -> [Double] {
    (0..<dim).map { i in
        (0..<dim).reduce(damping * x[i]) { $0 + f[i * dim + $1] * x[$1] }
    }
}

/// `(G + γG I) V (A + γA I)` with V (rows x cols) row-major.
func referenceKronecker(
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

/// Element types the references read (Float and Double).
protocol DeviceScalarLike: BinaryFloatingPoint {}
extension Float: DeviceScalarLike {}
extension Double: DeviceScalarLike {}
