import CNaturalGradient
import Foundation
import NaturalGradient

/// A context behind a handle.
final class ContextObject: HandledObject, @unchecked Sendable {
    let context: Context

    init(_ context: Context) {
        self.context = context
        super.init(kind: .context)
    }

    static func lookup(_ handle: UInt64, _ name: String = "context") throws -> ContextObject {
        try Registry.shared.lookup(handle, ContextObject.self, .context, name)
    }
}

/// One device as `ngrad devices --json` describes it.
struct DeviceReport: Encodable {
    let index: Int
    let name: String
    let vendor: String
    let type: String
    let platform: String
    let driverVersion: String
    let openCLVersion: String
    let openCLCVersion: String
    let computeUnits: Int
    let maxClockMHz: Int
    let globalMemoryBytes: UInt64
    let maxAllocationBytes: UInt64
    let localMemoryBytes: UInt64
    let maxWorkGroupSize: Int
    let supportsFloat64: Bool
    let isPoCL: Bool
    let isDefault: Bool

    init(_ device: Device, isDefault: Bool) {
        index = device.index
        name = device.name
        vendor = device.vendor
        type = device.kind.rawValue
        platform = device.platform.name
        driverVersion = device.driverVersion
        openCLVersion = device.openCLVersion
        openCLCVersion = device.openCLCVersion
        computeUnits = device.computeUnits
        maxClockMHz = device.maxClockMHz
        globalMemoryBytes = device.globalMemoryBytes
        maxAllocationBytes = device.maxAllocationBytes
        localMemoryBytes = device.localMemoryBytes
        maxWorkGroupSize = device.maxWorkGroupSize
        supportsFloat64 = device.supportsFloat64
        isPoCL = device.isPoCL
        self.isDefault = isDefault
    }
}

/// One compiled kernel as `ngrad kernels --json` describes it.
struct KernelReport: Encodable {
    let file: String
    let element: String
    let buildOptions: String
    let kernel: String
    let origin: String
    let buildMilliseconds: Double
    let maxWorkGroupSize: Int
    let preferredWorkGroupMultiple: Int
    let localMemoryBytes: UInt64
    let privateMemoryBytes: UInt64
}

@_cdecl("ng_last_error")
public func ngLastError() -> UnsafePointer<CChar> {
    LastError.current
}

/// The version as a C string for the life of the process (allocated once).
nonisolated(unsafe) private let versionString: UnsafeMutablePointer<CChar>? = strdup(NaturalGradientVersion.string)

@_cdecl("ng_version")
public func ngVersion() -> UnsafePointer<CChar> {
    versionString.map { UnsafePointer($0) } ?? LastError.empty
}

@_cdecl("ng_abi_version")
public func ngABIVersion() -> Int32 {
    NG_ABI_VERSION
}

@_cdecl("ng_free")
public func ngFree(_ pointer: UnsafeMutableRawPointer?) {
    free(pointer)
}

@_cdecl("ng_release")
public func ngRelease(_ handle: UInt64) -> Int32 {
    boundary { try Registry.shared.release(handle) }
}

@_cdecl("ng_devices_json")
public func ngDevicesJSON(_ json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    boundary {
        let devices = try Device.all()
        let defaultDevice = try? DeviceSelector.automatic.select(from: devices)
        try returnJSON(devices.map { DeviceReport($0, isDefault: $0 == defaultDevice) }, json)
    }
}

@_cdecl("ng_context_create")
public func ngContextCreate(_ selector: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    boundary {
        let out = try nonNull(out, "context")
        let text = selector.map { String(cString: $0) }
        let resolved = try DeviceSelector.resolve(
            explicit: text?.isEmpty == false ? text : nil, environment: ProcessInfo.processInfo.environment)
        let context = try Context(selector: resolved)
        out.pointee = try Registry.shared.insert(ContextObject(context))
    }
}

@_cdecl("ng_context_device_json")
public func ngContextDeviceJSON(_ handle: UInt64, _ json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
    -> Int32
{
    boundary {
        let device = try ContextObject.lookup(handle).context.device
        let defaultDevice = try? DeviceSelector.automatic.select(from: Device.all())
        try returnJSON(DeviceReport(device, isDefault: device == defaultDevice), json)
    }
}

@_cdecl("ng_kernels_json")
public func ngKernelsJSON(_ handle: UInt64, _ json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    boundary {
        let object = try ContextObject.lookup(handle)
        let context = object.context
        let device = context.device
        var rows: [KernelReport] = []
        try object.serialized {
            for element in device.supportsFloat64 ? ["float", "double"] : ["float"] {
                for family in KernelFamily.allCases {
                    let configuration =
                        element == "double"
                        ? KernelConfiguration(family, element: Double.self, device: device)
                        : KernelConfiguration(family, element: Float.self, device: device)
                    let built = try context.build(configuration)
                    let components = built.duration.components
                    let milliseconds = Double(components.seconds) * 1e3 + Double(components.attoseconds) / 1e15
                    for name in try built.program.kernelNames() {
                        let info = try built.program.makeKernel(named: name).info
                        rows.append(
                            KernelReport(
                                file: built.program.source.name, element: element, buildOptions: built.program.options,
                                kernel: name, origin: built.origin.rawValue, buildMilliseconds: milliseconds,
                                maxWorkGroupSize: info.maxWorkGroupSize,
                                preferredWorkGroupMultiple: info.preferredWorkGroupMultiple,
                                localMemoryBytes: info.localMemoryBytes, privateMemoryBytes: info.privateMemoryBytes))
                    }
                }
            }
        }
        try returnJSON(rows, json)
    }
}
