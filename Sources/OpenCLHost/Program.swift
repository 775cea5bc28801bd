import COpenCL

/// A program built for one device. Obtain one with `Context.buildProgram`, which caches.
public final class Program: @unchecked Sendable {
    /// The source file it was built from.
    public let source: ProgramSource
    /// The build options it was built with.
    public let options: String
    /// The device it was built for.
    public let device: Device
    let program: cl_program

    init(program: cl_program, source: ProgramSource, options: String, device: Device) {
        self.program = program
        self.source = source
        self.options = options
        self.device = device
    }

    deinit { clReleaseProgram(program) }

    /// The names of the kernels the program defines (`CL_PROGRAM_KERNEL_NAMES`).
    public func kernelNames() throws -> [String] {
        try InfoQuery(function: "clGetProgramInfo", object: source.name) { size, value, returned in
            clGetProgramInfo(self.program, cl_program_info(CL_PROGRAM_KERNEL_NAMES), size, value, returned)
        }.string().split(separator: ";").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }.sorted()
    }

    /// A new kernel object for `name`. Kernels carry their arguments, so each user
    /// (each routine object, each thread) makes its own.
    public func makeKernel(named name: String) throws -> Kernel {
        try Kernel(program: self, name: name)
    }

    /// The compiled binary for the program's device (`CL_PROGRAM_BINARIES`).
    func binary() throws -> [UInt8] {
        let sizes = try InfoQuery(function: "clGetProgramInfo", object: source.name) { size, value, returned in
            clGetProgramInfo(self.program, cl_program_info(CL_PROGRAM_BINARY_SIZES), size, value, returned)
        }.array(of: Int.self)
        guard sizes.count == 1, let size = sizes.first, size > 0 else { return [] }
        var binary = [UInt8](repeating: 0, count: size)
        try binary.withUnsafeMutableBufferPointer { bytes in
            var pointer: UnsafeMutablePointer<UInt8>? = bytes.baseAddress
            try check(
                clGetProgramInfo(
                    program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size,
                    &pointer, nil),
                "clGetProgramInfo(CL_PROGRAM_BINARIES)", source.name)
        }
        return binary
    }
}
