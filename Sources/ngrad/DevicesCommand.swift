import ArgumentParser
import Foundation
import NaturalGradient
import NaturalGradientTestSupport
import OpenCLHost

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
        let hostBLAS = HostBLAS.current(environment: ProcessInfo.processInfo.environment)
        // On standard error, so that it shows with --json too and never corrupts the report.
        if let warning = hostBLAS.assessment.warning {
            FileHandle.standardError.write(Data("ngrad: warning: \(warning)\n".utf8))
        }
        let reports = DeviceReport.reports(for: devices, hostBLAS: hostBLAS)
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
