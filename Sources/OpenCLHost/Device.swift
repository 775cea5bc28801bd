import COpenCL
import Synchronization

/// An OpenCL device and the properties kernels are planned from.
///
/// Values are read once at discovery; a `Device` is a plain value that can be passed
/// between threads. `index` is the device's position across all platforms, the same
/// number `ngrad devices` prints and `--device N` selects. The properties with an
/// internal setter are the ones `presenting(as:name:maxWorkGroupSize:localMemoryBytes:)`
/// and `presenting(nativeVectorWidths:)` change on their copies.
public struct Device: Sendable, Hashable, CustomStringConvertible {
    /// The kind of device, from `CL_DEVICE_TYPE`.
    public enum Kind: String, Sendable, Hashable {
        case gpu = "GPU"
        case cpu = "CPU"
        case accelerator = "accelerator"
        case other = "other"
    }

    /// The device handle.
    public let id: Handle<cl_device_id>
    /// Position across all platforms, in discovery order.
    public let index: Int
    /// The platform the device belongs to.
    public let platform: Platform
    /// `CL_DEVICE_NAME`.
    public internal(set) var name: String
    /// `CL_DEVICE_VENDOR`.
    public let vendor: String
    /// GPU, CPU, accelerator or other.
    public internal(set) var kind: Kind
    /// `CL_DRIVER_VERSION`.
    public let driverVersion: String
    /// `CL_DEVICE_VERSION`, for example "OpenCL 3.0 PoCL ...".
    public let openCLVersion: String
    /// `CL_DEVICE_OPENCL_C_VERSION`, for example "OpenCL C 1.2 PoCL".
    public let openCLCVersion: String
    /// `CL_DEVICE_MAX_COMPUTE_UNITS`.
    public let computeUnits: Int
    /// `CL_DEVICE_MAX_CLOCK_FREQUENCY` in MHz.
    public let maxClockMHz: Int
    /// `CL_DEVICE_GLOBAL_MEM_SIZE` in bytes.
    public let globalMemoryBytes: UInt64
    /// `CL_DEVICE_MAX_MEM_ALLOC_SIZE` in bytes: the largest single buffer.
    public let maxAllocationBytes: UInt64
    /// `CL_DEVICE_LOCAL_MEM_SIZE` in bytes.
    public internal(set) var localMemoryBytes: UInt64
    /// `CL_DEVICE_MAX_WORK_GROUP_SIZE`.
    public internal(set) var maxWorkGroupSize: Int
    /// `CL_DEVICE_MAX_WORK_ITEM_SIZES`, per dimension.
    public internal(set) var maxWorkItemSizes: [Int]
    /// `CL_DEVICE_MEM_BASE_ADDR_ALIGN` in bits.
    public let memoryBaseAlignmentBits: Int
    /// Whether the device computes in double precision (`cl_khr_fp64` or a nonzero
    /// `CL_DEVICE_DOUBLE_FP_CONFIG`).
    public let supportsFloat64: Bool
    /// `CL_DEVICE_EXTENSIONS`, split.
    public let extensions: [String]
    /// `CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT`: floats per native vector register (8 on an
    /// AVX2 CPU, 16 with AVX-512, often 1 on GPUs); CPU register tiles are sized from it.
    public internal(set) var nativeFloatVectorWidth: Int
    /// `CL_DEVICE_NATIVE_VECTOR_WIDTH_DOUBLE`: doubles per native vector register (0 when
    /// the device has no double precision).
    public internal(set) var nativeDoubleVectorWidth: Int

    /// The native vector width for elements of `bytes` bytes (4: float, 8: double), at
    /// least 1.
    public func nativeVectorWidth(elementBytes bytes: Int) -> Int {
        max(1, bytes == 8 ? nativeDoubleVectorWidth : nativeFloatVectorWidth)
    }

    /// Whether this is PoCL, whose CPU devices want large work-groups and whose program
    /// binaries cost an extra compile to read back (DESIGN.md section 8).
    public var isPoCL: Bool {
        platform.name.contains("Portable Computing Language") || openCLVersion.contains("PoCL")
    }

    public var description: String { "[\(index)] \(name) (\(kind.rawValue), \(platform.name))" }

    init(id: cl_device_id, index: Int, platform: Platform) throws {
        func query(_ parameter: Int32) -> InfoQuery {
            InfoQuery(function: "clGetDeviceInfo", object: "device \(index)") { size, value, returned in
                clGetDeviceInfo(id, cl_device_info(parameter), size, value, returned)
            }
        }
        self.id = Handle(id)
        self.index = index
        self.platform = platform
        name = try query(CL_DEVICE_NAME).string()
        vendor = try query(CL_DEVICE_VENDOR).string()
        let type = try query(CL_DEVICE_TYPE).value(cl_device_type.self)
        if type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 {
            kind = .gpu
        } else if type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 {
            kind = .cpu
        } else if type & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 {
            kind = .accelerator
        } else {
            kind = .other
        }
        driverVersion = try query(CL_DRIVER_VERSION).string()
        openCLVersion = try query(CL_DEVICE_VERSION).string()
        openCLCVersion = try query(CL_DEVICE_OPENCL_C_VERSION).string()
        computeUnits = Int(try query(CL_DEVICE_MAX_COMPUTE_UNITS).value(cl_uint.self))
        maxClockMHz = Int(try query(CL_DEVICE_MAX_CLOCK_FREQUENCY).value(cl_uint.self))
        globalMemoryBytes = try query(CL_DEVICE_GLOBAL_MEM_SIZE).value(cl_ulong.self)
        maxAllocationBytes = try query(CL_DEVICE_MAX_MEM_ALLOC_SIZE).value(cl_ulong.self)
        localMemoryBytes = try query(CL_DEVICE_LOCAL_MEM_SIZE).value(cl_ulong.self)
        maxWorkGroupSize = try query(CL_DEVICE_MAX_WORK_GROUP_SIZE).value(Int.self)
        maxWorkItemSizes = try query(CL_DEVICE_MAX_WORK_ITEM_SIZES).array(of: Int.self)
        memoryBaseAlignmentBits = Int(try query(CL_DEVICE_MEM_BASE_ADDR_ALIGN).value(cl_uint.self))
        extensions = try query(CL_DEVICE_EXTENSIONS).string().split(separator: " ").map(String.init)
        nativeFloatVectorWidth = Int(try query(CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT).value(cl_uint.self))
        nativeDoubleVectorWidth = Int(try query(CL_DEVICE_NATIVE_VECTOR_WIDTH_DOUBLE).value(cl_uint.self))
        // CL_DEVICE_DOUBLE_FP_CONFIG is optional before OpenCL 1.2: a failed query means none.
        let doubleConfig = (try? query(CL_DEVICE_DOUBLE_FP_CONFIG).value(cl_device_fp_config.self)) ?? 0
        supportsFloat64 = doubleConfig != 0 || extensions.contains("cl_khr_fp64")
    }

    /// Every device of every platform, numbered in discovery order.
    /// A platform whose device query fails (a broken driver) is skipped, not fatal.
    ///
    /// Discovery runs once per process under a lock: ICD loaders initialise lazily on the
    /// first `clGetPlatformIDs`, and concurrent first calls have been seen to report no
    /// platform at all. An empty result is not kept, so a later call looks again.
    public static func all() throws -> [Device] {
        try discovered.withLock { cache in
            if let cache { return cache }
            let devices = try discover()
            if !devices.isEmpty { cache = devices }
            return devices
        }
    }

    private static let discovered = Mutex<[Device]?>(nil)

    private static func discover() throws -> [Device] {
        var devices: [Device] = []
        for platform in try Platform.all() {
            var count: cl_uint = 0
            let platformID = platform.id.raw
            let status = clGetDeviceIDs(platformID, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &count)
            guard status == CL_SUCCESS, count > 0 else { continue }
            var ids = [cl_device_id?](repeating: nil, count: Int(count))
            try check(
                clGetDeviceIDs(platformID, cl_device_type(CL_DEVICE_TYPE_ALL), count, &ids, nil),
                "clGetDeviceIDs", "platform '\(platform.name)'")
            for id in ids.compactMap({ $0 }) {
                devices.append(try Device(id: id, index: devices.count, platform: platform))
            }
        }
        return devices
    }

    public static func == (lhs: Device, rhs: Device) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

// MARK: - Probing

extension Device {
    /// `CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE` of a trivial kernel: the device's
    /// SIMD width as its compiler sees it (OpenCL 1.2 has no device-level query for it).
    /// Compiles a one-line program in a throwaway context.
    public func probePreferredWorkGroupMultiple() throws -> Int {
        let context = try Context(device: self, binaryCachePolicy: .disabled)
        let source = ProgramSource(
            name: "probe.cl", text: "__kernel void probe(__global float* x) { x[get_global_id(0)] = 0.0f; }\n")
        return try context.buildProgram(source).program.makeKernel(named: "probe").info.preferredWorkGroupMultiple
    }
}
