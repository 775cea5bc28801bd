import CCLBlast
import COpenBLAS
import NaturalGradient

// MARK: - OpenBLAS on the host CPU

/// The OpenBLAS calls the benchmarks compare against (row-major CBLAS, float32).
enum OpenBLAS {
    /// OpenBLAS's build configuration, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64".
    static var configuration: String {
        guard let text = openblas_get_config() else { return "unknown" }
        return String(cString: text)
    }

    /// The kernel family OpenBLAS picked for this CPU.
    static var coreName: String {
        guard let text = openblas_get_corename() else { return "unknown" }
        return String(cString: text)
    }

    /// The number of threads OpenBLAS uses.
    static var threads: Int { Int(openblas_get_num_threads()) }

    /// `C ← alpha Uᵀ U` (upper triangle of the row-major P x P matrix C), U row-major M x P.
    static func syrk(
        _ u: UnsafePointer<Float>, rows: Int, dimension: Int, alpha: Float, into c: UnsafeMutablePointer<Float>
    ) {
        let p = blasint(dimension)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, p, blasint(rows), alpha, u, p, 0, c, p)
    }

    /// `C ← alpha Uᵀ U`, the whole row-major P x P matrix by SGEMM (2·M·P² flops): the
    /// host's matrix-multiply ceiling, not a contestant.
    static func gemm(
        _ u: UnsafePointer<Float>, rows: Int, dimension: Int, alpha: Float, into c: UnsafeMutablePointer<Float>
    ) {
        let p = blasint(dimension)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, p, blasint(rows), alpha, u, p, u, p, 0, c, p)
    }

    /// One SGEMV over the row-major M x P matrix U: `y ← U x` (`transposed` false, y has M
    /// values) or `y ← Uᵀ x` (true, y has P values). The host's streaming ceiling.
    static func gemv(
        _ u: UnsafePointer<Float>, rows: Int, dimension: Int, transposed: Bool, x: UnsafePointer<Float>,
        into y: UnsafeMutablePointer<Float>
    ) {
        let p = blasint(dimension)
        cblas_sgemv(CblasRowMajor, transposed ? CblasTrans : CblasNoTrans, blasint(rows), p, 1, u, p, x, 1, 0, y, 1)
    }

    /// `y ← alpha Uᵀ (U x) + damping x` as two SGEMV: `t = U x`, then `y = x` and
    /// `y ← alpha Uᵀ t + damping y`. `t` holds M values, `x` and `y` P values.
    static func implicitProduct(
        _ u: UnsafePointer<Float>, rows: Int, dimension: Int, alpha: Float, damping: Float,
        x: UnsafePointer<Float>, scratch t: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>
    ) {
        let m = blasint(rows)
        let p = blasint(dimension)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, m, p, 1, u, p, x, 1, 0, t, 1)
        cblas_scopy(p, x, 1, y, 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, m, p, alpha, u, p, t, 1, damping, y, 1)
    }
}

// MARK: - CLBlast on the same OpenCL device and queue

/// A CLBlast call that did not return `CLBlastSuccess`.
struct CLBlastError: Error, CustomStringConvertible {
    let function: String
    let status: Int32

    var description: String {
        "\(function) returned status \(status) (see CLBlastStatusCode in clblast_c.h; "
            + "-1000...-2000 are CLBlast's own codes, others are OpenCL's)"
    }
}

/// CLBlast routines enqueued on the library context's own in-order queue, reading and
/// writing the library's buffers, so they run on the same device as our kernels.
struct CLBlast {
    let context: Context

    /// `C ← alpha Uᵀ U` (upper triangle of the row-major P x P matrix C), U row-major M x P.
    /// Asynchronous; `context.finish()` waits.
    func syrk(_ u: Buffer<Float>, rows: Int, dimension: Int, alpha: Float, into c: Buffer<Float>) throws {
        var queue: OpaquePointer? = context.unsafeQueueHandle
        let status = CLBlastSsyrk(
            CLBlastLayoutRowMajor, CLBlastTriangleUpper, CLBlastTransposeYes, dimension, rows, alpha,
            u.unsafeMemoryHandle, 0, dimension, 0, c.unsafeMemoryHandle, 0, dimension, &queue, nil)
        try check(status, "CLBlastSsyrk")
    }

    /// `C ← alpha Uᵀ U`, the whole row-major P x P matrix by SGEMM (2·M·P² flops): the
    /// host's matrix-multiply ceiling, not a contestant.
    static func gemm(
        _ u: UnsafePointer<Float>, rows: Int, dimension: Int, alpha: Float, into c: UnsafeMutablePointer<Float>
    ) {
        let p = blasint(dimension)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, p, blasint(rows), alpha, u, p, u, p, 0, c, p)
    }

    /// One SGEMV over the row-major M x P matrix U: `y ← U x` (`transposed` false, y has M
    /// values) or `y ← Uᵀ x` (true, y has P values). The host's streaming ceiling.
    static func gemv(
        _ u: UnsafePointer<Float>, rows: Int, dimension: Int, transposed: Bool, x: UnsafePointer<Float>,
        into y: UnsafeMutablePointer<Float>
    ) {
        let p = blasint(dimension)
        cblas_sgemv(CblasRowMajor, transposed ? CblasTrans : CblasNoTrans, blasint(rows), p, 1, u, p, x, 1, 0, y, 1)
    }

    /// `y ← alpha Uᵀ (U x) + damping x` as two SGEMV: `t = U x`, then `y = x` (a buffer
    /// copy) and `y ← alpha Uᵀ t + damping y`. Asynchronous; `context.finish()` waits.
    func implicitProduct(
        _ u: Buffer<Float>, rows: Int, dimension: Int, alpha: Float, damping: Float, x: Buffer<Float>,
        scratch t: Buffer<Float>, into y: Buffer<Float>
    ) throws {
        var queue: OpaquePointer? = context.unsafeQueueHandle
        var status = CLBlastSgemv(
            CLBlastLayoutRowMajor, CLBlastTransposeNo, rows, dimension, 1, u.unsafeMemoryHandle, 0, dimension,
            x.unsafeMemoryHandle, 0, 1, 0, t.unsafeMemoryHandle, 0, 1, &queue, nil)
        try check(status, "CLBlastSgemv (U x)")
        try y.copy(from: x, range: 0..<dimension)
        status = CLBlastSgemv(
            CLBlastLayoutRowMajor, CLBlastTransposeYes, rows, dimension, alpha, u.unsafeMemoryHandle, 0, dimension,
            t.unsafeMemoryHandle, 0, 1, damping, y.unsafeMemoryHandle, 0, 1, &queue, nil)
        try check(status, "CLBlastSgemv (Uᵀ t)")
    }

    private func check(_ status: CLBlastStatusCode, _ function: String) throws {
        guard status == CLBlastSuccess else { throw CLBlastError(function: function, status: status.rawValue) }
    }
}
