/// A type a device buffer can hold: the floating-point element types kernels compute in
/// and the integer types of index and descriptor tables.
public protocol DeviceElement: BitwiseCopyable, Sendable, KernelArgument {
    /// The OpenCL C spelling of the type (`"float"`, `"uint"`).
    static var openCLTypeName: String { get }
    /// Whether kernels in this type need `cl_khr_fp64`.
    static var requiresFloat64: Bool { get }
}

/// An element type kernels compute in: `Float` or `Double`.
public protocol DeviceScalar: DeviceElement, BinaryFloatingPoint {}

extension Float: DeviceScalar {
    public static var openCLTypeName: String { "float" }
    public static var requiresFloat64: Bool { false }
}

extension Double: DeviceScalar {
    public static var openCLTypeName: String { "double" }
    public static var requiresFloat64: Bool { true }
}

extension UInt32: DeviceElement {
    public static var openCLTypeName: String { "uint" }
    public static var requiresFloat64: Bool { false }
}

extension UInt64: DeviceElement {
    public static var openCLTypeName: String { "ulong" }
    public static var requiresFloat64: Bool { false }
}
