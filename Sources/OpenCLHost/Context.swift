import COpenCL
import Synchronization

/// A device with its OpenCL context, one in-order profiling queue and a program cache.
///
/// Everything the host layer allocates (buffers, programs, kernels) belongs to a context.
/// OpenCL contexts and queues are thread-safe, so a `Context` may be shared; kernels are
/// not (see `Kernel`).
public final class Context: @unchecked Sendable {
    /// The device this context drives.
    public let device: Device
    /// Where compiled program binaries are kept between processes.
    public let binaryCache: BinaryCache?

    let context: cl_context
    let queue: cl_command_queue
    let programs = Mutex(ProgramCacheState())
    /// A lower largest allocation than the device's (0: none), set by the tests.
    private let allocationLimit = Atomic<UInt64>(0)

    /// Creates a context and an in-order queue with profiling on `device`.
    /// - Parameter binaryCachePolicy: `.automatic` keeps binaries on disk for GPU drivers
    ///   and not for PoCL, whose own cache is faster (DESIGN.md section 8).
    public init(device: Device, binaryCachePolicy: BinaryCachePolicy = .automatic) throws {
        self.device = device
        var deviceID: cl_device_id? = device.id.raw
        var status: cl_int = CL_SUCCESS
        guard let context = clCreateContext(nil, 1, &deviceID, nil, nil, &status), status == CL_SUCCESS else {
            throw OpenCLError.callFailed(function: "clCreateContext", status: status, object: device.description)
        }
        let properties = cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE)
        guard let queue = clCreateCommandQueue(context, device.id.raw, properties, &status), status == CL_SUCCESS
        else {
            clReleaseContext(context)
            throw OpenCLError.callFailed(function: "clCreateCommandQueue", status: status, object: device.description)
        }
        self.context = context
        self.queue = queue
        self.binaryCache = binaryCachePolicy.cache(for: device)
    }

    /// A context on the device `selector` names.
    public convenience init(selector: DeviceSelector, binaryCachePolicy: BinaryCachePolicy = .automatic) throws {
        try self.init(device: selector.select(from: Device.all()), binaryCachePolicy: binaryCachePolicy)
    }

    deinit {
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

    /// The largest buffer the library plans splittable data with (a `CurvatureFactor`'s row
    /// pieces), in bytes: the device's `maxAllocationBytes`, or less where
    /// `limitAllocations(to:)` set a limit. Data larger than this is split into several
    /// buffers; other buffers are checked against the device's own limit.
    public var maxAllocationBytes: UInt64 {
        let limit = allocationLimit.load(ordering: .relaxed)
        return limit == 0 ? device.maxAllocationBytes : min(limit, device.maxAllocationBytes)
    }

    /// Lowers this context's `maxAllocationBytes` to `bytes` (nil: the device's again), so the
    /// tests exercise split factors on a device whose real limit is gigabytes. A per-context
    /// setting, never a global one: tests running in parallel on other contexts keep theirs.
    package func limitAllocations(to bytes: UInt64?) {
        allocationLimit.store(bytes.map { max(1, $0) } ?? 0, ordering: .relaxed)
    }

    /// Blocks until every command enqueued so far has completed.
    public func finish() throws {
        try check(clFinish(queue), "clFinish", device.description)
    }

    /// Submits enqueued commands to the device without waiting.
    public func flush() throws {
        try check(clFlush(queue), "clFlush", device.description)
    }
}
