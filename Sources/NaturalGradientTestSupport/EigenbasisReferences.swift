// Float64 references for EKFAC (eigenvalue-corrected K-FAC): the Kronecker eigenbasis
// K = Q_G ⊗ Q_A of one layer (row-major vec: parameter (o, i) is index o·inputs + i, basis
// vector (k, j) is Q_G[:, k] ⊗ Q_A[:, j]), formed explicitly. Plain loops, small layers.

/// K (P x P, P = outputs · inputs, row-major): `K[(o,i), (k,j)] = Q_G[o,k] Q_A[i,j]`, with
/// Q_G (outputs x outputs) and Q_A (inputs x inputs) row-major, eigenvectors in the columns.
public func referenceKroneckerBasis(qG: [Double], qA: [Double], outputs: Int, inputs: Int) -> [Double] {
    let p = outputs * inputs
    var k = [Double](repeating: 0, count: p * p)
    for o in 0..<outputs {
        for i in 0..<inputs {
            for kk in 0..<outputs {
                for j in 0..<inputs { k[(o * inputs + i) * p + kk * inputs + j] = qG[o * outputs + kk] * qA[i * inputs + j] }
            }
        }
    }
    return k
}

/// `diag(Kᵀ F K)`: the diagonal of the dense P x P matrix F in the basis K, which is the
/// diagonal D minimising `‖F − K diag(D) Kᵀ‖_F` for an orthogonal K.
public func referenceDiagonalInBasis(_ f: [Double], basis k: [Double], dimension p: Int) -> [Double] {
    (0..<p).map { column in
        var sum = 0.0
        for r in 0..<p {
            var fk = 0.0
            for c in 0..<p { fk += f[r * p + c] * k[c * p + column] }
            sum += k[r * p + column] * fk
        }
        return sum
    }
}

/// `K diag(d) Kᵀ`, the dense P x P matrix of a diagonal in the basis K.
public func referenceMatrixFromBasis(_ d: [Double], basis k: [Double], dimension p: Int) -> [Double] {
    var f = [Double](repeating: 0, count: p * p)
    for r in 0..<p {
        for c in r..<p {
            var sum = 0.0
            for e in 0..<p { sum += k[r * p + e] * d[e] * k[c * p + e] }
            f[r * p + c] = sum
            f[c * p + r] = sum
        }
    }
    return f
}

/// Per-sample gradients `u_n = vec(g_n a_nᵀ)` (samples x outputs·inputs, row-major) of a
/// dense layer from its activations a (samples x inputs) and output gradients g.
public func referencePerSampleGradients(a: [Double], g: [Double], samples: Int, outputs: Int, inputs: Int) -> [Double] {
    var u: [Double] = []
    u.reserveCapacity(samples * outputs * inputs)
    for n in 0..<samples {
        for o in 0..<outputs {
            for i in 0..<inputs { u.append(g[n * outputs + o] * a[n * inputs + i]) }
        }
    }
    return u
}
