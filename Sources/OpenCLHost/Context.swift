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

    /// Blocks until every command enqueued so far has completed.
    public func finish() throws {
        try check(clFinish(queue), "clFinish", device.description)
    }

    /// Submits enqueued commands to the device without waiting.
    public func flush() throws {
        try check(clFlush(queue), "clFlush", device.description)
    }
}
