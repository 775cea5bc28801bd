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

// MARK: - The solver baselines on the host CPU (OpenBLAS CBLAS + LAPACKE)

/// Host vectors of one baseline solve, allocated once and reused between runs.
final class HostWorkspace {
    private let storage: UnsafeMutablePointer<Float>
    private let doubles: UnsafeMutablePointer<Double>
    let rows: Int
    let dimension: Int

    /// P-vectors (CG: r, p, q), M-vectors (t, and the Woodbury's z in float), the M x M
    /// Gram matrix in float and its float64 copy.
    let r, p, q, t, z, gram: UnsafeMutablePointer<Float>
    let matrix, zDouble: UnsafeMutablePointer<Double>

    init(rows m: Int, dimension n: Int) {
        rows = m
        dimension = n
        let count = 3 * n + 2 * m + m * m
        storage = .allocate(capacity: count)
        storage.initialize(repeating: 0, count: count)
        doubles = .allocate(capacity: m * m + m)
        doubles.initialize(repeating: 0, count: m * m + m)
        r = storage
        p = storage + n
        q = storage + 2 * n
        t = storage + 3 * n
        z = storage + 3 * n + m
        gram = storage + 3 * n + 2 * m
        matrix = doubles
        zDouble = doubles + m * m
    }

    deinit {
        storage.deallocate()
        doubles.deallocate()
    }
}

/// A LAPACKE call that returned a non-zero `info`.
struct LAPACKError: Error, CustomStringConvertible {
    let routine: String
    let info: Int32
    var description: String { "\(routine) returned info = \(info)" }
}

extension OpenBLAS {
    /// Plain (Hestenes-Stiefel) conjugate gradient for `(alpha UᵀU + damping I) x = b`, from
    /// x0 = 0, for exactly `iterations` iterations (no tolerance): what SciPy's `cg` does
    /// with NumPy arrays over OpenBLAS, written in CBLAS calls. Per iteration the product
    /// `q = alpha Uᵀ(U p) + damping p` is `cblas_sgemv` (t = U p), `cblas_scopy` (q = p) and
    /// `cblas_sgemv` (q = alpha Uᵀ t + damping q), then `cblas_sdot` twice, `cblas_saxpy`
    /// three times and `cblas_sscal` once; the scalars are formed in float64. Returns the
    /// iterations done (fewer only if pᵀq stops being positive).
    @discardableResult
    static func conjugateGradient(
        _ u: UnsafePointer<Float>, alpha: Float, damping: Float, b: UnsafePointer<Float>, iterations: Int,
        workspace w: HostWorkspace, into x: UnsafeMutablePointer<Float>
    ) -> Int {
        conjugateGradient(
            u, alpha: alpha, damping: damping, b: b, iterations: iterations, tolerance: 0, workspace: w, into: x
        ).iterations
    }

    /// What a CBLAS CG run to a tolerance did, counted the way ours is reported.
    struct ConjugateGradientRun {
        /// Iterations (each one product).
        var iterations = 0
        /// Products: the iterations' and the convergence confirmations' (one each).
        var products = 0
        /// Residual replacements (confirmations that missed).
        var replacements = 0
        /// The last confirmation's `‖b − (F + λI)x‖/‖b‖` (float32 product, float64 sums), or
        /// nil when the run ended without one (tolerance 0, a cap or a breakdown).
        var measuredResidual: Double?
        /// Ended because the confirmed residual met the tolerance.
        var converged = false
    }

    /// The CBLAS CG with the stopping rule of ours (`ConjugateGradient.solve`): when the
    /// recurrence's residual reaches `tolerance`, one product of x (the same two SGEMV)
    /// gives the true residual, summed in float64; if it meets the tolerance the run stops,
    /// else r is replaced by it and the direction restarts from x (p = r), and after 4
    /// replacements the run stops (ours: `stagnated`). `tolerance` 0 runs exactly
    /// `iterations` iterations with no confirmation.
    static func conjugateGradient(
        _ u: UnsafePointer<Float>, alpha: Float, damping: Float, b: UnsafePointer<Float>, iterations: Int,
        tolerance: Double, workspace w: HostWorkspace, into x: UnsafeMutablePointer<Float>
    ) -> ConjugateGradientRun {
        let m = blasint(w.rows)
        let n = blasint(w.dimension)
        var run = ConjugateGradientRun()
        func product(_ v: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, m, n, 1, u, n, v, 1, 0, w.t, 1)
            cblas_scopy(n, v, 1, y, 1)
            cblas_sgemv(CblasRowMajor, CblasTrans, m, n, alpha, u, n, w.t, 1, damping, y, 1)
            run.products += 1
        }
        x.update(repeating: 0, count: w.dimension)
        cblas_scopy(n, b, 1, w.r, 1)
        cblas_scopy(n, b, 1, w.p, 1)
        var rr = Double(cblas_sdot(n, w.r, 1, w.r, 1))
        let bNorm = rr.squareRoot()
        let stop = tolerance * tolerance * rr // ‖r‖/‖b‖ ≤ tolerance, r0 = b
        /// Confirms a claim from x: w.r ← b − (F + λI)x, in float64 rounded to float32.
        func confirm() -> Bool {
            product(x, into: w.q)
            var sum = 0.0
            for i in 0..<w.dimension {
                let value = Double(b[i]) - Double(w.q[i])
                sum += value * value
                w.r[i] = Float(value)
            }
            run.measuredResidual = sum.squareRoot() / bNorm
            run.converged = sum <= stop
            return run.converged
        }
        while run.iterations < iterations {
            if tolerance > 0, rr <= stop {
                if confirm() { return run }
                run.replacements += 1
                if run.replacements > 4 { return run }
                cblas_scopy(n, w.r, 1, w.p, 1)
                rr = Double(cblas_sdot(n, w.r, 1, w.r, 1))
            }
            product(w.p, into: w.q)
            let pq = Double(cblas_sdot(n, w.p, 1, w.q, 1))
            guard pq > 0, rr > 0 else { return run }
            let step = rr / pq
            cblas_saxpy(n, Float(step), w.p, 1, x, 1)
            cblas_saxpy(n, Float(-step), w.q, 1, w.r, 1)
            let next = Double(cblas_sdot(n, w.r, 1, w.r, 1))
            let beta = next / rr
            rr = next
            run.iterations += 1
            if run.iterations < iterations {
                // p = r + beta p
                cblas_sscal(n, Float(beta), w.p, 1)
                cblas_saxpy(n, 1, w.r, 1, w.p, 1)
            }
        }
        // A claim in the last iteration is confirmed like every other.
        if tolerance > 0, rr <= stop { _ = confirm() }
        return run
    }

    /// The Woodbury solve `x = (alpha UᵀU + damping I)⁻¹ b` for M ≤ P:
    ///
    ///     x = (b − alpha Uᵀ (damping I + alpha U Uᵀ)⁻¹ U b) / damping
    ///
    /// as NumPy/SciPy would do it over OpenBLAS: `cblas_ssyrk` for the Gram matrix
    /// `G = alpha U Uᵀ` (upper triangle, float32, M·(M+1)·P flops), `cblas_sgemv` for t = U b,
    /// `damping I + G` converted to float64 and factored by `LAPACKE_dpotrf`, z by
    /// `LAPACKE_dpotrs`, then x = b (`cblas_scopy`) and one `cblas_sgemv` for
    /// x = (−alpha/damping) Uᵀ z + (1/damping) x (the final axpy folded into its beta).
    static func woodbury(
        _ u: UnsafePointer<Float>, alpha: Float, damping: Float, b: UnsafePointer<Float>, workspace w: HostWorkspace,
        into x: UnsafeMutablePointer<Float>
    ) throws {
        let rows = w.rows
        let m = blasint(rows)
        let n = blasint(w.dimension)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, n, alpha, u, n, 0, w.gram, m)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, m, n, 1, u, n, b, 1, 0, w.t, 1)
        // The row-major upper triangle is the column-major lower one: no transposed copy.
        for row in 0..<rows {
            for column in row..<rows { w.matrix[row * rows + column] = Double(w.gram[row * rows + column]) }
            w.matrix[row * rows + row] += Double(damping)
            w.zDouble[row] = Double(w.t[row])
        }
        let lower = CChar(UInt8(ascii: "L"))
        var info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, lower, m, w.matrix, m)
        guard info == 0 else { throw LAPACKError(routine: "LAPACKE_dpotrf", info: info) }
        info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, lower, m, 1, w.matrix, m, w.zDouble, m)
        guard info == 0 else { throw LAPACKError(routine: "LAPACKE_dpotrs", info: info) }
        for row in 0..<rows { w.z[row] = Float(w.zDouble[row]) }
        cblas_scopy(n, b, 1, x, 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, m, n, -alpha / damping, u, n, w.z, 1, 1 / damping, x, 1)
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
