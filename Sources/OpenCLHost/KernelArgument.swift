import COpenCL

/// A value that can be passed to a kernel parameter, with the OpenCL C type it matches.
///
/// `Kernel.setArgument` compares `openCLTypeName` with the parameter's declared type, so
/// passing a `Buffer<Double>` to a `float*` parameter, or an `Int32` to a `ulong`, throws
/// instead of reading garbage.
public protocol KernelArgument {
    /// The OpenCL C type of the parameter this value fits, without spaces (`"float*"`, `"uint"`).
    var openCLTypeName: String { get }
    /// Calls `body` with the argument's size and bytes as `clSetKernelArg` takes them.
    func withArgumentBytes<R>(_ body: (Int, UnsafeRawPointer?) throws -> R) rethrows -> R
}

extension Buffer: KernelArgument {
    public var openCLTypeName: String { Element.openCLTypeName + "*" }
    public func withArgumentBytes<R>(_ body: (Int, UnsafeRawPointer?) throws -> R) rethrows -> R {
        try withUnsafePointer(to: memory) { try body(MemoryLayout<cl_mem>.size, $0) }
    }
}

/// A `__local` array of `count` elements for a kernel parameter `__local T*`.
public struct LocalMemory<Element: DeviceElement>: KernelArgument {
    /// The number of elements.
    public let count: Int
    public init(count: Int) { self.count = count }
    public var openCLTypeName: String { Element.openCLTypeName + "*" }
    public func withArgumentBytes<R>(_ body: (Int, UnsafeRawPointer?) throws -> R) rethrows -> R {
        try body(count * MemoryLayout<Element>.stride, nil)
    }
}

/// Scalars passed by value.
protocol ScalarKernelArgument: KernelArgument, BitwiseCopyable {}

extension ScalarKernelArgument {
    public func withArgumentBytes<R>(_ body: (Int, UnsafeRawPointer?) throws -> R) rethrows -> R {
        try withUnsafePointer(to: self) { try body(MemoryLayout<Self>.size, $0) }
    }
}

extension Int32: KernelArgument, ScalarKernelArgument { public var openCLTypeName: String { "int" } }
extension Int64: KernelArgument, ScalarKernelArgument { public var openCLTypeName: String { "long" } }
extension UInt32: KernelArgument, ScalarKernelArgument { public var openCLTypeName: String { Self.openCLTypeName } }
extension UInt64: KernelArgument, ScalarKernelArgument { public var openCLTypeName: String { Self.openCLTypeName } }
extension Float: KernelArgument, ScalarKernelArgument { public var openCLTypeName: String { Self.openCLTypeName } }
extension Double: KernelArgument, ScalarKernelArgument { public var openCLTypeName: String { Self.openCLTypeName } }
