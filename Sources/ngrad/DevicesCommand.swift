import ArgumentParser
import Foundation
import NaturalGradient
import NaturalGradientTestSupport

/// `ngrad devices`: every OpenCL device with the properties kernels are planned from, and the
/// host BLAS/LAPACK the float64 factorisations run on (with a warning and its fix when
/// OpenBLAS fell back to kernels below the CPU). With no device at all it says how to install
/// one and exits 3 (the device-failure status).
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List OpenCL devices and their properties.",
        version: NaturalGradientVersion.string
    )

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    struct Report: Encodable {
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
        let preferredWorkGroupMultiple: Int?
        let supportsFloat64: Bool
        let isPoCL: Bool
        let isDefault: Bool
        /// The host's BLAS and LAPACK (the same for every device: the host-side factorisations
        /// of any device's solves run there). In each entry so that the JSON stays one array
        /// of devices.
        let hostBLAS: HostBLAS
    }

    func run() throws {
        let devices = try Device.all()
        if devices.isEmpty {
            // No device is a broken installation, not an empty answer: exit 3 with how to fix it.
            let platforms = (try? Platform.all()) ?? []
            let found =
                platforms.isEmpty
                ? "no OpenCL platform is installed"
                : "the OpenCL platform\(platforms.count == 1 ? "" : "s") \(platforms.map { "'\($0.name)'" }.joined(separator: ", ")) list no device"
            throw OpenCLError.noDevices(reason: found)
        }
        let defaultDevice = try? DeviceSelector.automatic.select(from: devices)
        let hostBLAS = HostBLAS.current(environment: ProcessInfo.processInfo.environment)
        // On standard error, so that it shows with --json too and never corrupts the report.
        if let warning = hostBLAS.assessment.warning {
            FileHandle.standardError.write(Data("ngrad: warning: \(warning)\n".utf8))
        }
        let reports = devices.map { device in
            Report(
                index: device.index, name: device.name, vendor: device.vendor, type: device.kind.rawValue,
                platform: device.platform.name, driverVersion: device.driverVersion,
                openCLVersion: device.openCLVersion, openCLCVersion: device.openCLCVersion,
                computeUnits: device.computeUnits, maxClockMHz: device.maxClockMHz,
                globalMemoryBytes: device.globalMemoryBytes, maxAllocationBytes: device.maxAllocationBytes,
                localMemoryBytes: device.localMemoryBytes, maxWorkGroupSize: device.maxWorkGroupSize,
                preferredWorkGroupMultiple: try? device.probePreferredWorkGroupMultiple(),
                supportsFloat64: device.supportsFloat64, isPoCL: device.isPoCL, isDefault: device == defaultDevice,
                hostBLAS: hostBLAS)
        }
        if json {
            try printJSON(reports)
            return
        }
        var table = TextTable([
            "#", "name", "type", "platform", "driver", "OpenCL C", "CUs", "global", "local", "max WG", "WG multiple",
            "fp64",
        ])
        for report in reports {
            table.append([
                "\(report.index)\(report.isDefault ? "*" : "")", report.name, report.type, report.platform,
                report.driverVersion, report.openCLCVersion, "\(report.computeUnits)",
                formatBytes(report.globalMemoryBytes), formatBytes(report.localMemoryBytes),
                "\(report.maxWorkGroupSize)", report.preferredWorkGroupMultiple.map(String.init) ?? "?",
                report.supportsFloat64 ? "yes" : "no",
            ])
        }
        try StandardOutput.print(table.render())
        try StandardOutput.print("* default device (override with --device or NGRAD_DEVICE)")
        try StandardOutput.print("host BLAS: \(hostBLAS.summary)")
        if let coreType = hostBLAS.assessment.recommendedCoreType {
            try StandardOutput.print("host BLAS: generic core for this CPU; run with OPENBLAS_CORETYPE=\(coreType)")
        }
    }
}
