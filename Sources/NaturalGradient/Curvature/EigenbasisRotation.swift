import OpenCLHost

/// `Y_l = Q_G,l ((Q_G,lᵀ V_l Q_A,l) ⊙ (D_l + λ)) Q_A,lᵀ` per layer, for EKFAC's product and
/// its inverse (the two differ only in D: the corrected eigenvalues S, or 1/(S + λ)).
///
/// Both rotations run on the Kronecker kernels, which compute `G_s V A_sᵀ` per layer for
/// whatever matrices sit in the G and A slots (`Kronecker.cl`: the right stage reads A_s by
/// rows, so a non-symmetric A_s is applied transposed). With λ = 0 the factored damping is
/// 0 (`FactoredDamping.split` scales √λ), so each stage is the bare product:
///   project:     G_s = Q_Gᵀ, A_s = Q_Aᵀ  →  Q_Gᵀ V Q_A
///   reconstruct: G_s = Q_G,  A_s = Q_A   →  Q_G W Q_Aᵀ
/// and the scaling between them is the `diagonal_product` kernel. An instance holds its own
/// copy of the bases, so an inverse keeps the basis it was made with.
final class EigenbasisRotation<Element: DeviceScalar> {
    let dimension: Int
    private let project: KroneckerCurvature<Element>
    private let reconstruct: KroneckerCurvature<Element>
    private let scaling: DiagonalProduct<Element>
    private var scratch: (rotated: VectorBatch<Element>, scaled: VectorBatch<Element>)?

    /// Rotations for layers of `shapes` (identity bases until `upload(bases:)`), the
    /// Kronecker kernels with the device defaults' `defines` replaced (empty: the tuned or
    /// default tunables), so tests run the GPU path on any device.
    init(context: Context, shapes: [(outputs: Int, inputs: Int)], defines: [String: Int] = [:]) throws {
        if defines.isEmpty {
            project = try KroneckerCurvature(context: context, shapes: shapes)
            reconstruct = try KroneckerCurvature(context: context, shapes: shapes)
        } else {
            project = try KroneckerCurvature(context: context, shapes: shapes, defines: defines)
            reconstruct = try KroneckerCurvature(context: context, shapes: shapes, defines: defines)
        }
        scaling = try DiagonalProduct(context: context)
        dimension = project.dimension
        try upload(bases: shapes.map { (identityMatrix($0.inputs), identityMatrix($0.outputs)) })
    }

    /// Sets the bases: per layer Q_A (inputs x inputs) and Q_G (outputs x outputs), float64,
    /// row-major, eigenvectors in the columns.
    func upload(bases: [(a: [Double], g: [Double])]) throws {
        var forward = [Double](repeating: 0, count: project.factors.count)
        var backward = forward
        for (layer, basis) in zip(project.layers, bases) {
            for (q, n, offset) in [(basis.a, layer.inputs, layer.aOffset), (basis.g, layer.outputs, layer.gOffset)] {
                for row in 0..<n {
                    for column in 0..<n {
                        backward[offset + row * n + column] = q[row * n + column]
                        forward[offset + row * n + column] = q[column * n + row]
                    }
                }
            }
        }
        try project.factors.upload(float64: forward)
        try reconstruct.factors.upload(float64: backward)
    }

    /// `y ← Q ((Qᵀ x) ⊙ (scale + λ)) Qᵀ` per layer, `scale` packed like the parameters.
    func apply(
        _ x: VectorBatch<Element>, scale: Buffer<Element>, damping: Element, into y: VectorBatch<Element>
    ) throws {
        let (rotated, scaled) = try buffers(like: x)
        try project.apply(x, damping: 0, into: rotated)
        try scaling.apply(scale, rotated, damping: damping, into: scaled)
        try reconstruct.apply(scaled, damping: 0, into: y)
    }

    private func buffers(like x: VectorBatch<Element>) throws -> (VectorBatch<Element>, VectorBatch<Element>) {
        if let scratch, scratch.rotated.buffer.count >= x.dimension * x.count {
            return (
                try VectorBatch(scratch.rotated.buffer, dimension: x.dimension, count: x.count),
                try VectorBatch(scratch.scaled.buffer, dimension: x.dimension, count: x.count)
            )
        }
        let made = (
            try VectorBatch<Element>(context: x.buffer.context, dimension: x.dimension, count: x.count),
            try VectorBatch<Element>(context: x.buffer.context, dimension: x.dimension, count: x.count)
        )
        scratch = made
        return made
    }
}
