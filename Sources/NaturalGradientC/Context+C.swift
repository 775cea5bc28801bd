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
        try returnJSON(DeviceReport.reports(for: try Device.all()), json)
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
public func ngContextDeviceJSON(
    _ handle: UInt64, _ json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
)
    -> Int32
{
    boundary {
        let device = try ContextObject.lookup(handle).context.device
        let defaultDevice = try? DeviceSelector.automatic.select(from: Device.all())
        try returnJSON(
            DeviceReport(
                device, isDefault: device == defaultDevice,
                hostBLAS: .current(environment: ProcessInfo.processInfo.environment)), json)
    }
}

@_cdecl("ng_kernels_json")
public func ngKernelsJSON(_ handle: UInt64, _ json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    boundary {
        let object = try ContextObject.lookup(handle)
        let context = object.context
        var rows: [KernelReport] = []
        try object.serialized {
            rows = try KernelReport.builtIn(
                context: context, elements: context.device.supportsFloat64 ? ["float", "double"] : ["float"])
        }
        try returnJSON(rows, json)
    }
}
