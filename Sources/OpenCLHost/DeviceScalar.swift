/// A type a device buffer can hold: the floating-point element types kernels compute in
/// and the integer types of index and descriptor tables.
public protocol DeviceElement: BitwiseCopyable, Sendable, KernelArgument {
    /// The OpenCL C spelling of the type (`"float"`, `"uint"`).
    static var openCLTypeName: String { get }
    /// Whether kernels in this type need `cl_khr_fp64`.
    static var requiresFloat64: Bool { get }
}

/// An element type kernels compute in: `Float` or `Double`.
public protocol DeviceScalar: DeviceElement, BinaryFloatingPoint {
    /// The value widened to float64. A concrete conversion: in generic code that is not
    /// specialised (across modules), `Double(value)` runs `BinaryFloatingPoint`'s generic
    /// algorithm, measured at about 0.2 µs a value, seconds for a host loop over a matrix.
    var float64: Double { get }
    /// `value` rounded to this type (the concrete counterpart of `Self(value)`).
    init(float64 value: Double)
    /// `values` widened to float64 in one concrete loop (fast where the caller is generic).
    static func widened(_ values: [Self]) -> [Double]
    /// `values` rounded to this type in one concrete loop.
    static func narrowed(_ values: [Double]) -> [Self]
}

extension Float: DeviceScalar {
    public static var openCLTypeName: String { "float" }
    public static var requiresFloat64: Bool { false }
    public var float64: Double { Double(self) }
    public init(float64 value: Double) { self = Float(value) }
    public static func widened(_ values: [Float]) -> [Double] { values.map { Double($0) } }
    public static func narrowed(_ values: [Double]) -> [Float] { values.map { Float($0) } }
}

extension Double: DeviceScalar {
    public static var openCLTypeName: String { "double" }
    public static var requiresFloat64: Bool { true }
    public var float64: Double { self }
    public init(float64 value: Double) { self = value }
    public static func widened(_ values: [Double]) -> [Double] { values }
    public static func narrowed(_ values: [Double]) -> [Double] { values }
}

extension UInt32: DeviceElement {
    public static var openCLTypeName: String { "uint" }
    public static var requiresFloat64: Bool { false }
}

extension UInt64: DeviceElement {
    public static var openCLTypeName: String { "ulong" }
    public static var requiresFloat64: Bool { false }
}
