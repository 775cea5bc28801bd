/// An element type kernels compute in: `Float` or `Double`.
public protocol DeviceScalar: BinaryFloatingPoint, BitwiseCopyable, Sendable, KernelArgument {
    /// The OpenCL C spelling of the type (`"float"`, `"double"`).
    static var openCLTypeName: String { get }
    /// Whether kernels in this type need `cl_khr_fp64`.
    static var requiresFloat64: Bool { get }
}

extension Float: DeviceScalar {
    public static var openCLTypeName: String { "float" }
    public static var requiresFloat64: Bool { false }
}

extension Double: DeviceScalar {
    public static var openCLTypeName: String { "double" }
    public static var requiresFloat64: Bool { true }
}
