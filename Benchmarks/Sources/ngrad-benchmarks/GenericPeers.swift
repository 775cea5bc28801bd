import CCLBlast
import COpenBLAS
import NaturalGradient

/// An element type both peers have routines for: OpenBLAS's `s`/`d` CBLAS calls and
/// CLBlast's `S`/`D` ones, all row-major.
protocol PeerScalar: DeviceScalar {
    /// `C ← alpha AᵀA` (upper triangle), A row-major rows x n with leading dimension lda,
    /// C n x n with leading dimension ldc.
    static func hostSyrk(
        _ a: UnsafePointer<Self>, rows: Int, n: Int, lda: Int, alpha: Self, _ c: UnsafeMutablePointer<Self>, ldc: Int)
    /// `y ← alpha op(A) x + beta y`, A rows x columns, row-major.
    static func hostGemv(
        transposed: Bool, rows: Int, columns: Int, alpha: Self, _ a: UnsafePointer<Self>, _ x: UnsafePointer<Self>,
        beta: Self, _ y: UnsafeMutablePointer<Self>)
    /// `y ← alpha A x + beta y`, A symmetric n x n (upper triangle read).
    static func hostSymv(
        n: Int, alpha: Self, _ a: UnsafePointer<Self>, _ x: UnsafePointer<Self>, beta: Self, _ y: UnsafeMutablePointer<Self>)
    /// `C ← A B`, A m x k, B k x n, all row-major and contiguous.
    static func hostGemm(
        m: Int, n: Int, k: Int, _ a: UnsafePointer<Self>, _ b: UnsafePointer<Self>, _ c: UnsafeMutablePointer<Self>)

    static func clSyrk(
        rows: Int, n: Int, alpha: Self, _ a: cl_mem, offset: Int, lda: Int, _ c: cl_mem, cOffset: Int, ldc: Int,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode
    static func clGemv(
        transposed: Bool, rows: Int, columns: Int, alpha: Self, _ a: cl_mem, _ x: cl_mem, beta: Self, _ y: cl_mem,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode
    static func clSymv(
        n: Int, alpha: Self, _ a: cl_mem, _ x: cl_mem, beta: Self, _ y: cl_mem,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode
    /// `C ← A B` with offsets (row-major, contiguous operands).
    static func clGemm(
        m: Int, n: Int, k: Int, _ a: cl_mem, aOffset: Int, _ b: cl_mem, bOffset: Int, _ c: cl_mem, cOffset: Int,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode
}

private func trans(_ transposed: Bool) -> CBLAS_TRANSPOSE { transposed ? CblasTrans : CblasNoTrans }
private func clTrans(_ transposed: Bool) -> CLBlastTranspose { transposed ? CLBlastTransposeYes : CLBlastTransposeNo }

extension Float: PeerScalar {
    static func hostSyrk(
        _ a: UnsafePointer<Float>, rows: Int, n: Int, lda: Int, alpha: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, blasint(n), blasint(rows), alpha, a, blasint(lda), 0, c, blasint(ldc))
    }
    static func hostGemv(
        transposed: Bool, rows: Int, columns: Int, alpha: Float, _ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
        beta: Float, _ y: UnsafeMutablePointer<Float>
    ) {
        cblas_sgemv(
            CblasRowMajor, trans(transposed), blasint(rows), blasint(columns), alpha, a, blasint(columns), x, 1, beta, y, 1)
    }
    static func hostSymv(
        n: Int, alpha: Float, _ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>, beta: Float, _ y: UnsafeMutablePointer<Float>
    ) {
        cblas_ssymv(CblasRowMajor, CblasUpper, blasint(n), alpha, a, blasint(n), x, 1, beta, y, 1)
    }
    static func hostGemm(
        m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(m), blasint(n), blasint(k), 1, a, blasint(k), b, blasint(n), 0, c,
            blasint(n))
    }
    static func clSyrk(
        rows: Int, n: Int, alpha: Float, _ a: cl_mem, offset: Int, lda: Int, _ c: cl_mem, cOffset: Int, ldc: Int,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode {
        CLBlastSsyrk(
            CLBlastLayoutRowMajor, CLBlastTriangleUpper, CLBlastTransposeYes, n, rows, alpha, a, offset, lda, 0, c, cOffset, ldc,
            queue, nil)
    }
    static func clGemv(
        transposed: Bool, rows: Int, columns: Int, alpha: Float, _ a: cl_mem, _ x: cl_mem, beta: Float, _ y: cl_mem,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode {
        CLBlastSgemv(
            CLBlastLayoutRowMajor, clTrans(transposed), rows, columns, alpha, a, 0, columns, x, 0, 1, beta, y, 0, 1, queue, nil)
    }
    static func clSymv(
        n: Int, alpha: Float, _ a: cl_mem, _ x: cl_mem, beta: Float, _ y: cl_mem, _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode {
        CLBlastSsymv(CLBlastLayoutRowMajor, CLBlastTriangleUpper, n, alpha, a, 0, n, x, 0, 1, beta, y, 0, 1, queue, nil)
    }
    static func clGemm(
        m: Int, n: Int, k: Int, _ a: cl_mem, aOffset: Int, _ b: cl_mem, bOffset: Int, _ c: cl_mem, cOffset: Int,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode {
        CLBlastSgemm(
            CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, m, n, k, 1, a, aOffset, k, b, bOffset, n, 0, c,
            cOffset, n, queue, nil)
    }
}

extension Double: PeerScalar {
    static func hostSyrk(
        _ a: UnsafePointer<Double>, rows: Int, n: Int, lda: Int, alpha: Double, _ c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, blasint(n), blasint(rows), alpha, a, blasint(lda), 0, c, blasint(ldc))
    }
    static func hostGemv(
        transposed: Bool, rows: Int, columns: Int, alpha: Double, _ a: UnsafePointer<Double>, _ x: UnsafePointer<Double>,
        beta: Double, _ y: UnsafeMutablePointer<Double>
    ) {
        cblas_dgemv(
            CblasRowMajor, trans(transposed), blasint(rows), blasint(columns), alpha, a, blasint(columns), x, 1, beta, y, 1)
    }
    static func hostSymv(
        n: Int, alpha: Double, _ a: UnsafePointer<Double>, _ x: UnsafePointer<Double>, beta: Double,
        _ y: UnsafeMutablePointer<Double>
    ) {
        cblas_dsymv(CblasRowMajor, CblasUpper, blasint(n), alpha, a, blasint(n), x, 1, beta, y, 1)
    }
    static func hostGemm(
        m: Int, n: Int, k: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ c: UnsafeMutablePointer<Double>
    ) {
        cblas_dgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(m), blasint(n), blasint(k), 1, a, blasint(k), b, blasint(n), 0, c,
            blasint(n))
    }
    static func clSyrk(
        rows: Int, n: Int, alpha: Double, _ a: cl_mem, offset: Int, lda: Int, _ c: cl_mem, cOffset: Int, ldc: Int,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode {
        CLBlastDsyrk(
            CLBlastLayoutRowMajor, CLBlastTriangleUpper, CLBlastTransposeYes, n, rows, alpha, a, offset, lda, 0, c, cOffset, ldc,
            queue, nil)
    }
    static func clGemv(
        transposed: Bool, rows: Int, columns: Int, alpha: Double, _ a: cl_mem, _ x: cl_mem, beta: Double, _ y: cl_mem,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode {
        CLBlastDgemv(
            CLBlastLayoutRowMajor, clTrans(transposed), rows, columns, alpha, a, 0, columns, x, 0, 1, beta, y, 0, 1, queue, nil)
    }
    static func clSymv(
        n: Int, alpha: Double, _ a: cl_mem, _ x: cl_mem, beta: Double, _ y: cl_mem,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode {
        CLBlastDsymv(CLBlastLayoutRowMajor, CLBlastTriangleUpper, n, alpha, a, 0, n, x, 0, 1, beta, y, 0, 1, queue, nil)
    }
    static func clGemm(
        m: Int, n: Int, k: Int, _ a: cl_mem, aOffset: Int, _ b: cl_mem, bOffset: Int, _ c: cl_mem, cOffset: Int,
        _ queue: UnsafeMutablePointer<cl_command_queue?>
    ) -> CLBlastStatusCode {
        CLBlastDgemm(
            CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, m, n, k, 1, a, aOffset, k, b, bOffset, n, 0, c,
            cOffset, n, queue, nil)
    }
}

/// Throws unless a CLBlast call succeeded.
func checkCLBlast(_ status: CLBlastStatusCode, _ function: String) throws {
    guard status == CLBlastSuccess else { throw CLBlastError(function: function, status: status.rawValue) }
}

extension Context {
    /// Calls `body` with a pointer to the queue handle, as CLBlast's routines take it.
    func withQueue<Result>(_ body: (UnsafeMutablePointer<cl_command_queue?>) throws -> Result) rethrows -> Result {
        var queue: cl_command_queue? = unsafeQueueHandle
        return try body(&queue)
    }
}

// MARK: - Device time from profiling events

/// A marker command's profiling timestamps: enqueued before and after an operation on the
/// in-order queue, the first's start and the second's end bracket the device's work.
struct DeviceMarker {
    let event: cl_event

    init(_ context: Context) throws {
        var event: cl_event?
        let status = clEnqueueMarkerWithWaitList(context.unsafeQueueHandle, 0, nil, &event)
        guard status == CL_SUCCESS, let event else { throw CLBlastError(function: "clEnqueueMarkerWithWaitList", status: status) }
        self.event = event
    }

    /// `CL_PROFILING_COMMAND_START` or `_END` in device nanoseconds (the command must be done).
    func time(_ parameter: Int32) -> UInt64? {
        var value: cl_ulong = 0
        let status = clGetEventProfilingInfo(
            event, cl_profiling_info(parameter), MemoryLayout<cl_ulong>.size, &value, nil)
        return status == CL_SUCCESS ? value : nil
    }

    func release() { clReleaseEvent(event) }

    /// Seconds of device time from `start`'s start to `end`'s end (nil if the driver gives none).
    static func span(from start: DeviceMarker, to end: DeviceMarker) -> Double? {
        guard let begin = start.time(CL_PROFILING_COMMAND_START), let finish = end.time(CL_PROFILING_COMMAND_END),
            finish >= begin
        else { return nil }
        return Double(finish - begin) * 1e-9
    }
}
