import COpenCL

/// What the driver says about a compiled kernel on its device.
public struct KernelInfo: Sendable, Hashable {
    /// `CL_KERNEL_WORK_GROUP_SIZE`: the largest work-group this kernel can launch with.
    public let maxWorkGroupSize: Int
    /// `CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE`: the SIMD width to round to.
    public let preferredWorkGroupMultiple: Int
    /// `CL_KERNEL_LOCAL_MEM_SIZE` in bytes (static `__local` arrays).
    public let localMemoryBytes: UInt64
    /// `CL_KERNEL_PRIVATE_MEM_SIZE` in bytes per work-item.
    public let privateMemoryBytes: UInt64
}

/// One kernel of a built program, with type-checked argument setting.
///
/// A kernel object holds its arguments between `setArgument` and the launch, so it must not
/// be shared between threads; make one per user with `Program.makeKernel(named:)`.
public final class Kernel {
    /// The kernel function's name.
    public let name: String
    /// The program it belongs to.
    public let program: Program
    /// The declared parameter types without spaces (`"float*"`, `"ulong"`), or nil where
    /// the driver keeps no argument information (then types are not checked).
    public let parameterTypes: [String]?
    /// The number of parameters.
    public let parameterCount: Int
    /// Kernel limits and resource use on the program's device.
    public let info: KernelInfo

    let kernel: cl_kernel
    private var isSet: [Bool]

    init(program: Program, name: String) throws {
        var status: cl_int = CL_SUCCESS
        guard let kernel = clCreateKernel(program.program, name, &status), status == CL_SUCCESS else {
            throw OpenCLError.callFailed(
                function: "clCreateKernel", status: status, object: "kernel '\(name)' in \(program.source.name)")
        }
        self.kernel = kernel
        self.name = name
        self.program = program
        let object = "kernel '\(name)'"
        do {
            let count = try InfoQuery(function: "clGetKernelInfo", object: object) { size, value, returned in
                clGetKernelInfo(kernel, cl_kernel_info(CL_KERNEL_NUM_ARGS), size, value, returned)
            }.value(cl_uint.self)
            parameterCount = Int(count)
            parameterTypes = try? (0..<count).map { index in
                try InfoQuery(function: "clGetKernelArgInfo", object: object) { size, value, returned in
                    clGetKernelArgInfo(kernel, index, cl_kernel_arg_info(CL_KERNEL_ARG_TYPE_NAME), size, value, returned)
                }.string().filter { !$0.isWhitespace }
            }
            let device = program.device.id.raw
            func query(_ parameter: Int32) -> InfoQuery {
                InfoQuery(function: "clGetKernelWorkGroupInfo", object: object) { size, value, returned in
                    clGetKernelWorkGroupInfo(kernel, device, cl_kernel_work_group_info(parameter), size, value, returned)
                }
            }
            info = KernelInfo(
                maxWorkGroupSize: try query(CL_KERNEL_WORK_GROUP_SIZE).value(Int.self),
                preferredWorkGroupMultiple: try query(CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE).value(Int.self),
                localMemoryBytes: try query(CL_KERNEL_LOCAL_MEM_SIZE).value(cl_ulong.self),
                privateMemoryBytes: try query(CL_KERNEL_PRIVATE_MEM_SIZE).value(cl_ulong.self))
        } catch {
            clReleaseKernel(kernel)
            throw error
        }
        isSet = Array(repeating: false, count: parameterCount)
    }

    deinit { clReleaseKernel(kernel) }

    /// Sets parameter `index`, checking its declared type first.
    public func setArgument(_ index: Int, _ argument: some KernelArgument) throws {
        guard (0..<parameterCount).contains(index) else {
            throw OpenCLError.invalidArgument(
                name: "index", reason: "kernel '\(name)' has \(parameterCount) parameters, not an index \(index)")
        }
        if let declared = parameterTypes?[index], declared != argument.openCLTypeName {
            throw OpenCLError.invalidArgument(
                name: "argument \(index) of '\(name)'",
                reason: "the kernel declares \(declared), the value passed is \(argument.openCLTypeName)")
        }
        try argument.withArgumentBytes { size, bytes in
            try check(clSetKernelArg(kernel, cl_uint(index), size, bytes), "clSetKernelArg(\(index))", "kernel '\(name)'")
        }
        isSet[index] = true
    }

    /// Sets every parameter in order; the count must match.
    public func setArguments(_ arguments: any KernelArgument...) throws {
        guard arguments.count == parameterCount else {
            throw OpenCLError.invalidArgument(
                name: "arguments", reason: "kernel '\(name)' takes \(parameterCount) arguments, got \(arguments.count)")
        }
        for (index, argument) in arguments.enumerated() {
            try setArgument(index, argument)
        }
    }

    /// The indices of parameters not yet set.
    var unsetParameters: [Int] { isSet.indices.filter { !isSet[$0] } }
}

// MARK: - Launching

extension Context {
    /// Enqueues `kernel` over `globalSize` work-items in work-groups of `localSize`
    /// (nil lets the driver choose). Each global size must be a multiple of its local size,
    /// as OpenCL 1.2 requires; use `roundUp(_:toMultipleOf:)`.
    @discardableResult
    public func enqueue(_ kernel: Kernel, globalSize: [Int], localSize: [Int]? = nil) throws -> Event {
        let object = "kernel '\(kernel.name)'"
        guard (1...3).contains(globalSize.count), globalSize.allSatisfy({ $0 > 0 }) else {
            throw OpenCLError.invalidArgument(
                name: "globalSize", reason: "\(globalSize) must have 1 to 3 positive entries for \(object)")
        }
        if let localSize {
            guard localSize.count == globalSize.count, localSize.allSatisfy({ $0 > 0 }) else {
                throw OpenCLError.invalidArgument(
                    name: "localSize", reason: "\(localSize) must have \(globalSize.count) positive entries")
            }
            guard zip(globalSize, localSize).allSatisfy({ $0 % $1 == 0 }) else {
                throw OpenCLError.invalidArgument(
                    name: "globalSize", reason: "\(globalSize) is not a multiple of the local size \(localSize)")
            }
            let groupSize = localSize.reduce(1, *)
            guard groupSize <= kernel.info.maxWorkGroupSize else {
                throw OpenCLError.invalidArgument(
                    name: "localSize",
                    reason: "\(groupSize) work-items exceed \(object)'s limit of \(kernel.info.maxWorkGroupSize)")
            }
        }
        let unset = kernel.unsetParameters
        guard unset.isEmpty else {
            throw OpenCLError.invalidArgument(name: "kernel", reason: "\(object) has unset parameters \(unset)")
        }
        var event: cl_event?
        let status = globalSize.withUnsafeBufferPointer { global in
            if let localSize {
                return localSize.withUnsafeBufferPointer { local in
                    clEnqueueNDRangeKernel(
                        queue, kernel.kernel, cl_uint(globalSize.count), nil, global.baseAddress, local.baseAddress,
                        0, nil, &event)
                }
            }
            return clEnqueueNDRangeKernel(
                queue, kernel.kernel, cl_uint(globalSize.count), nil, global.baseAddress, nil, 0, nil, &event)
        }
        try check(status, "clEnqueueNDRangeKernel", object)
        return try Event(taking: event, from: "kernel '\(kernel.name)'")
    }
}

/// The smallest multiple of `multiple` that is at least `value`.
public func roundUp(_ value: Int, toMultipleOf multiple: Int) -> Int {
    let multiple = max(multiple, 1)
    return (value + multiple - 1) / multiple * multiple
}
