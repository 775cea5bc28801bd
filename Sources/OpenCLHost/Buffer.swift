import COpenCL

/// A device buffer of `count` elements of `Element`, released when the last reference goes.
///
/// Transfers and fills live in `Buffer+Transfer.swift`. All operations go through the
/// context's in-order queue, so they happen in the order they were enqueued.
public final class Buffer<Element: DeviceElement>: @unchecked Sendable {
    /// The number of elements.
    public let count: Int
    /// The context that owns the memory.
    public let context: Context
    let memory: cl_mem
    /// What owns the host memory of a host-pointer buffer (`init(context:usingHostMemory:owner:)`),
    /// kept alive as long as the buffer.
    private let hostMemoryOwner: AnyObject?

    /// Allocates `count` uninitialised elements.
    public init(context: Context, count: Int) throws {
        guard count > 0 else {
            throw OpenCLError.invalidArgument(name: "count", reason: "a buffer needs at least one element, got \(count)")
        }
        if Element.requiresFloat64, !context.device.supportsFloat64 {
            throw OpenCLError.unsupported(device: context.device.name, feature: "double precision (cl_khr_fp64)")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        guard !overflow, UInt64(bytes) <= context.device.maxAllocationBytes else {
            throw OpenCLError.invalidArgument(
                name: "count",
                reason: "\(count) elements exceed the device's largest allocation of \(context.device.maxAllocationBytes) bytes")
        }
        var status: cl_int = CL_SUCCESS
        guard let memory = clCreateBuffer(context.context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status),
            status == CL_SUCCESS
        else {
            throw OpenCLError.callFailed(function: "clCreateBuffer", status: status, object: "a buffer of \(bytes) bytes")
        }
        self.count = count
        self.context = context
        self.memory = memory
        hostMemoryOwner = nil
    }

    /// A buffer over `count` elements of host memory that the device uses in place
    /// (`CL_MEM_USE_HOST_PTR`): on a CPU device nothing is copied, so a factor read from a
    /// memory-mapped file costs its pages once. `owner` (the mapping, an array's storage) is
    /// kept alive as long as the buffer; the memory must stay valid and must not be changed
    /// by the host while kernels use the buffer. On a device with memory of its own the
    /// driver copies the data at creation (use `upload(from:at:)` into a plain buffer there).
    ///
    /// - Throws: `OpenCLError.invalidArgument` naming `memory` when it is nil, shorter than
    ///   `count` elements or misaligned for `Element`, or naming `count` when it exceeds the
    ///   device's largest allocation; `OpenCLError.callFailed` when the driver refuses.
    public init(context: Context, usingHostMemory memory: UnsafeMutableRawPointer?, count: Int, owner: AnyObject) throws {
        guard count > 0 else {
            throw OpenCLError.invalidArgument(name: "count", reason: "a buffer needs at least one element, got \(count)")
        }
        guard let memory else { throw OpenCLError.invalidArgument(name: "memory", reason: "is nil") }
        guard Int(bitPattern: memory) % MemoryLayout<Element>.alignment == 0 else {
            throw OpenCLError.invalidArgument(
                name: "memory", reason: "is not aligned to \(MemoryLayout<Element>.alignment) bytes for \(Element.openCLTypeName)"
            )
        }
        if Element.requiresFloat64, !context.device.supportsFloat64 {
            throw OpenCLError.unsupported(device: context.device.name, feature: "double precision (cl_khr_fp64)")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        guard !overflow, UInt64(bytes) <= context.device.maxAllocationBytes else {
            throw OpenCLError.invalidArgument(
                name: "count",
                reason: "\(count) elements exceed the device's largest allocation of \(context.device.maxAllocationBytes) bytes")
        }
        var status: cl_int = CL_SUCCESS
        guard
            let handle = clCreateBuffer(
                context.context, cl_mem_flags(CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR), bytes, memory, &status),
            status == CL_SUCCESS
        else {
            throw OpenCLError.callFailed(
                function: "clCreateBuffer", status: status, object: "a host-pointer buffer of \(bytes) bytes")
        }
        self.count = count
        self.context = context
        self.memory = handle
        hostMemoryOwner = owner
    }

    /// Takes ownership of one reference to `memory` (released in `deinit`).
    init(context: Context, adopting memory: cl_mem, count: Int) {
        self.count = count
        self.context = context
        self.memory = memory
        hostMemoryOwner = nil
    }

    /// Allocates a buffer holding a copy of `values`.
    public convenience init(context: Context, copying values: [Element]) throws {
        try self.init(context: context, count: values.count)
        try upload(values)
    }

    deinit { clReleaseMemObject(memory) }

    /// The size in bytes.
    public var byteCount: Int { count * MemoryLayout<Element>.stride }

    var objectDescription: String { "buffer<\(Element.openCLTypeName)>[\(count)]" }

    /// Throws unless `range` lies inside the buffer; `name` is the caller's argument.
    func validate(_ range: Range<Int>, argument name: String) throws {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw OpenCLError.invalidArgument(
                name: name, reason: "range \(range) is outside the buffer's \(count) elements")
        }
    }
}
