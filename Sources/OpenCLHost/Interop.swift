import COpenCL

// MARK: - Raw handles, for code that shares data with other OpenCL libraries
//
// A caller that produces data with its own kernels (or hands buffers to CLBlast) works in
// this context and on this queue; the handles stay owned by their Swift objects.

extension Context {
    /// The `cl_context`. Valid while this `Context` is alive; do not release it.
    public var unsafeContextHandle: OpaquePointer { context }
    /// The in-order `cl_command_queue`. Valid while this `Context` is alive; do not release it.
    public var unsafeQueueHandle: OpaquePointer { queue }
}

extension Buffer {
    /// The `cl_mem`. Valid while this `Buffer` is alive; do not release it.
    public var unsafeMemoryHandle: OpaquePointer { memory }

    /// Wraps a `cl_mem` the caller created in `context` (for example with its own kernels'
    /// output), retaining it, so the library reads it without a copy. `count` elements of
    /// `Element` must fit the buffer's size.
    public convenience init(context: Context, retaining memory: OpaquePointer, count: Int) throws {
        var size = 0
        try check(
            clGetMemObjectInfo(memory, cl_mem_info(CL_MEM_SIZE), MemoryLayout<Int>.size, &size, nil),
            "clGetMemObjectInfo", "a caller's cl_mem")
        var owner: cl_context?
        try check(
            clGetMemObjectInfo(memory, cl_mem_info(CL_MEM_CONTEXT), MemoryLayout<cl_context?>.size, &owner, nil),
            "clGetMemObjectInfo", "a caller's cl_mem")
        guard owner == context.context else {
            throw OpenCLError.invalidArgument(name: "memory", reason: "belongs to another OpenCL context")
        }
        guard count > 0, count <= size / MemoryLayout<Element>.stride else {
            throw OpenCLError.invalidArgument(
                name: "count", reason: "\(count) elements do not fit the buffer's \(size) bytes")
        }
        try check(clRetainMemObject(memory), "clRetainMemObject", "a caller's cl_mem")
        self.init(context: context, adopting: memory, count: count)
    }
}
