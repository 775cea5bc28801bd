import OpenCLHost

/// The curvature C a step's quadratic model `q(δ) = gᵀδ + ½ δᵀCδ` measures with, given
/// only as the Gram matrix `[vᵢᵀ C vⱼ]` of a few directions.
///
/// The model needs C only along the update direction and the momentum term (the step size
/// α, the momentum weight and the predicted change of Levenberg-Marquardt's ρ), so an
/// exact curvature serves without ever being formed: the batch's generalised Gauss-Newton
/// matrix or Fisher through Jacobian-vector products, as KFAC-JAX takes it. Without one
/// (`update`'s `modelCurvature` nil) the optimizer measures with its own curvature
/// operator (for K-FAC, the Kronecker approximation itself: along the K-FAC direction
/// `dᵀ(F̂ + λI)d = −gᵀd`, so α then stays near 1 whatever λ is).
public protocol CurvatureGram {
    /// The symmetric `k x k` matrix `[vᵢᵀ C vⱼ]`, row-major, of the `k` given directions
    /// (each P values, the optimizer's dimension). C must be positive semi-definite.
    func gram(_ directions: [[Double]]) throws -> [Double]
}

/// The optimizer's own curvature operator as a `CurvatureGram`: one batched undamped
/// product on the device, the dots on the host in float64 with the directions rounded to
/// `Element` as the device saw them.
struct OperatorGram<Element: DeviceScalar>: CurvatureGram {
    let context: Context
    let dimension: Int
    let curvature: any CurvatureOperator<Element>

    func gram(_ directions: [[Double]]) throws -> [Double] {
        let k = directions.count
        let rounded = Element.widened(Element.narrowed(directions.flatMap { $0 }))
        let batch = try VectorBatch<Element>(context: context, dimension: dimension, count: k)
        try batch.buffer.upload(Element.narrowed(rounded))
        let products = try VectorBatch<Element>(context: context, dimension: dimension, count: k)
        try curvature.apply(batch, damping: 0, into: products)
        let values = try products.buffer.downloadFloat64(0..<(dimension * k))
        var gram = [Double](repeating: 0, count: k * k)
        for i in 0..<k {
            for j in 0..<k {
                var sum = 0.0
                for p in 0..<dimension { sum += rounded[i * dimension + p] * values[j * dimension + p] }
                gram[i * k + j] = sum
            }
        }
        // Cv is symmetric only up to rounding; the model wants the symmetric part.
        for i in 0..<k {
            for j in 0..<i {
                let mean = 0.5 * (gram[i * k + j] + gram[j * k + i])
                gram[i * k + j] = mean
                gram[j * k + i] = mean
            }
        }
        return gram
    }
}
