import Foundation
import OpenCLHost

/// One OpenCL device with the properties kernels are planned from, as `ngrad devices --json`
/// and the C ABI's `ng_devices_json` describe it (one definition, so both print the same).
public struct DeviceReport: Encodable, Sendable {
    public let index: Int
    public let name: String
    public let vendor: String
    public let type: String
    public let platform: String
    public let driverVersion: String
    public let openCLVersion: String
    public let openCLCVersion: String
    public let computeUnits: Int
    public let maxClockMHz: Int
    public let globalMemoryBytes: UInt64
    public let maxAllocationBytes: UInt64
    public let localMemoryBytes: UInt64
    public let maxWorkGroupSize: Int
    /// Probed by building a small kernel; nil where that failed.
    public let preferredWorkGroupMultiple: Int?
    public let supportsFloat64: Bool
    public let isPoCL: Bool
    /// Whether the automatic device selection picks this device.
    public let isDefault: Bool
    /// The host's BLAS and LAPACK (the same for every device: the host-side factorisations
    /// of any device's solves run there). In each entry so that the JSON stays one array of
    /// devices.
    public let hostBLAS: HostBLAS

    /// The report of `device`.
    public init(_ device: Device, isDefault: Bool, hostBLAS: HostBLAS) {
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
        preferredWorkGroupMultiple = try? device.probePreferredWorkGroupMultiple()
        supportsFloat64 = device.supportsFloat64
        isPoCL = device.isPoCL
        self.isDefault = isDefault
        self.hostBLAS = hostBLAS
    }

    /// The reports of `devices`, marking the one automatic selection picks.
    public static func reports(
        for devices: [Device], hostBLAS: HostBLAS = .current(environment: ProcessInfo.processInfo.environment)
    ) -> [DeviceReport] {
        let defaultDevice = try? DeviceSelector.automatic.select(from: devices)
        return devices.map { DeviceReport($0, isDefault: $0 == defaultDevice, hostBLAS: hostBLAS) }
    }
}

/// One compiled kernel as `ngrad kernels --json` and the C ABI's `ng_kernels_json` describe it.
public struct KernelReport: Encodable, Sendable {
    public let file: String
    /// `float`, `double`, or `-` for a caller's own source.
    public let element: String
    public let buildOptions: String
    public let kernel: String
    /// Where the program came from (compiled, disk cache, memory).
    public let origin: String
    public let buildMilliseconds: Double
    public let maxWorkGroupSize: Int
    public let preferredWorkGroupMultiple: Int
    public let localMemoryBytes: UInt64
    public let privateMemoryBytes: UInt64

    /// One report per kernel of `built`.
    package static func describe(_ built: BuiltProgram, element: String) throws -> [KernelReport] {
        let components = built.duration.components
        let milliseconds = Double(components.seconds) * 1e3 + Double(components.attoseconds) / 1e15
        return try built.program.kernelNames().map { name in
            let info = try built.program.makeKernel(named: name).info
            return KernelReport(
                file: built.program.source.name, element: element, buildOptions: built.program.options, kernel: name,
                origin: built.origin.rawValue, buildMilliseconds: milliseconds, maxWorkGroupSize: info.maxWorkGroupSize,
                preferredWorkGroupMultiple: info.preferredWorkGroupMultiple, localMemoryBytes: info.localMemoryBytes,
                privateMemoryBytes: info.privateMemoryBytes)
        }
    }

    /// Builds every built-in kernel family for each of `elements` (`"float"`, `"double"`) with
    /// its configuration for the context's device, and reports each kernel.
    public static func builtIn(context: Context, elements: [String]) throws -> [KernelReport] {
        var reports: [KernelReport] = []
        for element in elements {
            for family in KernelFamily.allCases {
                let configuration =
                    element == "double"
                    ? KernelConfiguration(family, element: Double.self, device: context.device)
                    : KernelConfiguration(family, element: Float.self, device: context.device)
                reports += try describe(context.build(configuration), element: element)
            }
        }
        return reports
    }
}
