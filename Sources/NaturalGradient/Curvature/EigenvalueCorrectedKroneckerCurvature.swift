import OpenCLHost

/// EKFAC, eigenvalue-corrected K-FAC (George et al. 2018; curvlinops'
/// `EKFACLinearOperator`): per layer `F_l ≈ (Q_G ⊗ Q_A) diag(vec S) (Q_G ⊗ Q_A)ᵀ`, with
/// Q_A, Q_G the eigenbases of the K-FAC factors A and G and S (outputs x inputs) the
/// second moments of the per-sample gradients in that basis,
///
///     S_kj = (1/N) Σ_n w_n ((Q_Gᵀ g_n a_nᵀ Q_A)_kj)²  =  (1/N) Σ_n w_n (Q_Gᵀ g_n)_k² (Q_Aᵀ a_n)_j².
///
/// That is the diagonal in the Kronecker eigenbasis closest in Frobenius norm to the
/// empirical Fisher `(1/N) Σ w u uᵀ`, `u = vec(g aᵀ)` (K-FAC's diagonal there is
/// `λ_G,k λ_A,j` instead). `(F + λI) v = Q_G ((Q_Gᵀ V Q_A) ⊙ (S + λ)) Q_Aᵀ` is exact
/// `F + λI` (the bases are orthogonal), unlike K-FAC's factored damping; the inverse
/// divides by `S + λ` (`EigenvalueCorrectedKroneckerSolver`).
///
/// Conventions: parameters, layers and the bias as K-FAC's (`KFACLayer`: row-major
/// `outputs x inputs` per layer, the bias as an appended 1 in the activations). Reduction:
/// the mean over samples, A, G and S each with 1/N (α) and the per-sample weights w, so
/// `g_n` is the output gradient of sample n's own loss; for a loss averaged over the batch
/// that is N times what autograd gives (curvlinops' `loss_average="batch"` correction),
/// for a summed loss pass α = 1 (or scale F by N).
///
/// The factors accumulate on the device (`KroneckerCurvature`); the eigendecompositions
/// (LAPACK `dsyevd`) and the eigenvalue estimate (three `dgemm`s, EigenvalueCorrection.swift)
/// run on the host in float64, once per refresh (`O(in³ + out³)` and
/// `O(N (in² + out² + in·out))` per layer); products and solves are two Kronecker launches
/// and a diagonal scaling on the device.
public final class EigenvalueCorrectedKroneckerCurvature<Element: DeviceScalar>: CurvatureOperator {
    /// The K-FAC factors A and G whose eigenbases EKFAC uses (private: accumulating into
    /// them alone would leave S stale).
    private let kronecker: KroneckerCurvature<Element>
    /// The layers in parameter order (shapes and offsets as K-FAC's).
    public var layers: [KroneckerCurvature<Element>.Layer] { kronecker.layers }
    public var dimension: Int { kronecker.dimension }
    public var context: Context { kronecker.context }

    /// Per layer Q_A and Q_G, float64, row-major, eigenvectors in the columns (ascending
    /// eigenvalues).
    private var bases: [(a: [Double], g: [Double])]
    /// S of every layer, float64, packed like the parameters.
    private var corrected: [Double]
    /// S on the device, in the element type.
    private let correctedBuffer: Buffer<Element>
    private let rotation: EigenbasisRotation<Element>

    /// The Kronecker kernels' defines for the rotations (empty: tuned or default tunables).
    let rotationDefines: [String: Int]

    /// Zero factors and eigenvalues and identity bases for layers of `(outputs, inputs)`.
    public convenience init(context: Context, shapes: [(outputs: Int, inputs: Int)]) throws {
        try self.init(context: context, shapes: shapes, defines: [:])
    }

    /// The same with the rotations' Kronecker `defines` replaced (tests cover the GPU path
    /// on any device this way).
    init(context: Context, shapes: [(outputs: Int, inputs: Int)], defines: [String: Int]) throws {
        kronecker = try KroneckerCurvature(context: context, shapes: shapes)
        rotation = try EigenbasisRotation(context: context, shapes: shapes, defines: defines)
        rotationDefines = defines
        bases = shapes.map { (identityMatrix($0.inputs), identityMatrix($0.outputs)) }
        corrected = [Double](repeating: 0, count: kronecker.dimension)
        correctedBuffer = try Buffer(context: context, count: kronecker.dimension)
        try correctedBuffer.fill(0)
    }

    /// EKFAC of one batch, as curvlinops builds it: the K-FAC factors of `layers`, their
    /// eigenbases, then S from the same samples (optional per-sample weights).
    public convenience init(layers: [KFACLayer<Element>], samples: Int, weights: Buffer<Element>? = nil) throws {
        guard let first = layers.first else {
            throw NaturalGradientError.invalidArgument(name: "layers", reason: "is empty")
        }
        try self.init(context: first.activations.context, shapes: layers.map { ($0.outputs, $0.inputs) })
        let statistics = try hostStatistics(layers, samples: samples, weights: weights)
        try kronecker.accumulate(layers, samples: samples, weights: weights, beta: 0)
        try refreshEigenbasis()
        try correct(statistics, alpha: 1 / Double(samples), beta: 0)
    }

    /// `A, G ← βA, βG + α Σ w (a aᵀ, g gᵀ)` (K-FAC's accumulation) and `S ← βS + α Σ w
    /// (Q_Gᵀ g aᵀ Q_A)²` in the current eigenbasis, α = 1/samples when nil. The basis
    /// moves only in `refreshEigenbasis()`, so S stays an estimate in one fixed basis (the
    /// EKFAC paper's cheap frequent update between rare eigendecompositions).
    public func accumulate(
        _ inputs: [KFACLayer<Element>], samples: Int, weights: Buffer<Element>? = nil, alpha: Element? = nil,
        beta: Element = 1
    ) throws {
        try validateScales(alpha, beta)
        let statistics = try hostStatistics(inputs, samples: samples, weights: weights)
        try kronecker.accumulate(inputs, samples: samples, weights: weights, alpha: alpha, beta: beta)
        try correct(statistics, alpha: alpha?.float64 ?? 1 / Double(samples), beta: beta.float64)
    }

    /// `S ← βS + α Σ w (Q_Gᵀ g aᵀ Q_A)²` only (the factors and the basis stay), α =
    /// 1/samples when nil: the eigenvalue correction from a batch other than the one the
    /// factors came from.
    public func correctEigenvalues(
        _ inputs: [KFACLayer<Element>], samples: Int, weights: Buffer<Element>? = nil, alpha: Element? = nil,
        beta: Element = 0
    ) throws {
        try validateScales(alpha, beta)
        let statistics = try hostStatistics(inputs, samples: samples, weights: weights)
        try correct(statistics, alpha: alpha?.float64 ?? 1 / Double(samples), beta: beta.float64)
    }

    /// Decomposes the current factors `A = Q_A Λ_A Q_Aᵀ`, `G = Q_G Λ_G Q_Gᵀ` (float64 LAPACK)
    /// and resets S to K-FAC's eigenvalues `λ_G,k λ_A,j`, so that until the next correction
    /// the operator is K-FAC's `G ⊗ A` (undamped) in the new basis.
    public func refreshEigenbasis() throws {
        var refreshed: [(a: [Double], g: [Double])] = []
        var values = [Double](repeating: 0, count: dimension)
        for (index, layer) in layers.enumerated() {
            let (a, g) = try kronecker.layerFactors(index)
            let decompositionA = try SymmetricEigendecomposition(Element.widened(a), dimension: layer.inputs)
            let decompositionG = try SymmetricEigendecomposition(Element.widened(g), dimension: layer.outputs)
            // `vectors` is column-major (column k is eigenvector k), so it is Qᵀ row-major.
            refreshed.append(
                (transposed(decompositionA.vectors, layer.inputs), transposed(decompositionG.vectors, layer.outputs)))
            for k in 0..<layer.outputs {
                for j in 0..<layer.inputs {
                    values[layer.parameterOffset + k * layer.inputs + j] =
                        decompositionG.values[k] * decompositionA.values[j]
                }
            }
        }
        try rotation.upload(bases: refreshed)
        bases = refreshed
        try setCorrected(values)
    }

    /// Layer `index`'s K-FAC factors A (inputs x inputs) and G (outputs x outputs).
    public func layerFactors(_ index: Int) throws -> (a: [Element], g: [Element]) {
        try kronecker.layerFactors(index)
    }

    /// Layer `index`'s eigenbases Q_A (inputs x inputs) and Q_G (outputs x outputs), float64,
    /// row-major, eigenvectors in the columns in ascending order of the factor's eigenvalues.
    public func eigenbasis(_ index: Int) throws -> (a: [Double], g: [Double]) {
        try require(layers.indices.contains(index), "index", "\(index) is not one of \(layers.count) layers")
        return bases[index]
    }

    /// Layer `index`'s corrected eigenvalues S (outputs x inputs, row-major, float64): entry
    /// (k, j) belongs to the basis vector `Q_G[:, k] ⊗ Q_A[:, j]`.
    public func eigenvalues(_ index: Int) throws -> [Double] {
        try require(layers.indices.contains(index), "index", "\(index) is not one of \(layers.count) layers")
        let layer = layers[index]
        return Array(corrected[layer.parameterOffset..<(layer.parameterOffset + layer.outputs * layer.inputs)])
    }

    /// All layers' S packed like the parameters, float64 (what the inverse divides by).
    var packedEigenvalues: [Double] { corrected }
    /// All layers' bases (what the inverse rotates with).
    var packedBases: [(a: [Double], g: [Double])] { bases }

    /// `y ← Q_G ((Q_Gᵀ X Q_A) ⊙ (S + λ)) Q_Aᵀ` per layer, which is `(F + λI) x`.
    public func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        try validate(x, y)
        try validateDamping(damping)
        try require(x.buffer !== y.buffer, "y", "must not share x's buffer")
        try rotation.apply(x, scale: correctedBuffer, damping: damping, into: y)
    }

    /// `diag F` on the host in float64: `diag(F)_(o,i) = Σ_kj Q_G[o,k]² S_kj Q_A[i,j]²`.
    public func diagonal() throws -> Buffer<Element> {
        var diagonal = [Double](repeating: 0, count: dimension)
        for (index, layer) in layers.enumerated() {
            let (inputs, outputs, offset) = (layer.inputs, layer.outputs, layer.parameterOffset)
            let block = try eigenbasisDiagonal(
                eigenvalues: corrected[offset..<(offset + outputs * inputs)], bases: bases[index], inputs: inputs,
                outputs: outputs)
            diagonal.replaceSubrange(offset..<(offset + outputs * inputs), with: block)
        }
        let buffer = try Buffer<Element>(context: context, count: dimension)
        try buffer.upload(float64: diagonal)
        return buffer
    }

    /// `Σ S` (the bases are orthogonal), in float64.
    public func trace() throws -> Double { corrected.reduce(0, +) }

    // MARK: Internals

    /// Per layer the float64 activations and output gradients of `samples` samples, and the
    /// weights, all checked (shapes, counts, finiteness) before anything is changed.
    private func hostStatistics(
        _ inputs: [KFACLayer<Element>], samples: Int, weights: Buffer<Element>?
    ) throws -> HostStatistics {
        try require(inputs.count == layers.count, "layers", "has \(inputs.count) layers, expected \(layers.count)")
        try require(samples > 0, "samples", "must be positive (an empty batch), got \(samples)")
        var result: [(a: [Double], g: [Double])] = []
        for (index, (input, layer)) in zip(inputs, layers).enumerated() {
            try input.requireFits(outputs: layer.outputs, inputs: layer.inputs, samples: samples, index: index)
            try require(
                input.activations.context === context && input.outputGradients.context === context, "layers[\(index)]",
                "belongs to another context")
            let a = try input.activations.downloadFloat64(0..<(samples * layer.inputs))
            let g = try input.outputGradients.downloadFloat64(0..<(samples * layer.outputs))
            try requireFinite(a, "layers[\(index)].activations")
            try requireFinite(g, "layers[\(index)].outputGradients")
            result.append((a, g))
        }
        var w: [Double]?
        if let weights {
            try require(weights.context === context, "weights", "belongs to another context")
            try require(weights.count >= samples, "weights", "holds \(weights.count) values for \(samples) samples")
            try CurvatureFactor<Element>.validateWeights(weights.download(0..<samples))
            w = try weights.downloadFloat64(0..<samples)
        }
        return (result, w)
    }

    /// `S ← βS + α Σ_n w_n (Q_Gᵀ g_n)² ⊗ (Q_Aᵀ a_n)²` per layer, in float64.
    private func correct(_ statistics: HostStatistics, alpha: Double, beta: Double) throws {
        var values = corrected
        for (index, layer) in layers.enumerated() {
            let (a, g) = statistics.layers[index]
            let (inputs, outputs, offset) = (layer.inputs, layer.outputs, layer.parameterOffset)
            let sums = try eigenvalueCorrectionSums(
                activations: a, outputGradients: g, bases: bases[index], inputs: inputs, outputs: outputs,
                samples: a.count / inputs, weights: statistics.weights)
            for e in 0..<(outputs * inputs) {
                values[offset + e] = (beta == 0 ? 0 : beta * values[offset + e]) + alpha * sums[e]
            }
        }
        try setCorrected(values)
    }

    private func setCorrected(_ values: [Double]) throws {
        try correctedBuffer.upload(float64: values)
        corrected = values
    }
}

/// Per layer the float64 activations and output gradients of a batch, and its weights.
private typealias HostStatistics = (layers: [(a: [Double], g: [Double])], weights: [Double]?)

/// Throws unless α (when given) and β are finite and ≥ 0.
private func validateScales<Element: DeviceScalar>(_ alpha: Element?, _ beta: Element) throws {
    if let alpha { try require(alpha.isFinite && alpha >= 0, "alpha", "must be finite and ≥ 0, got \(alpha)") }
    try require(beta.isFinite && beta >= 0, "beta", "must be finite and ≥ 0, got \(beta)")
}

/// The transpose of an n x n row-major matrix.
private func transposed(_ m: [Double], _ n: Int) -> [Double] {
    var result = m
    for row in 0..<n {
        for column in 0..<n { result[column * n + row] = m[row * n + column] }
    }
    return result
}

/// Throws `nonFiniteValues(name, count)` when `values` hold NaN or infinities.
private func requireFinite(_ values: [Double], _ name: String) throws {
    let count = values.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
    if count > 0 { throw NaturalGradientError.nonFiniteValues(name: name, count: count) }
}
