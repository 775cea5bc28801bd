import ArgumentParser
import Foundation
import NaturalGradient
import NaturalGradientTestSupport
import OpenCLHost

/// `ngrad kernels`: compiles every kernel family for the chosen device and reports each
/// kernel's build and resource figures; a build failure prints the log and exits 1.
struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Compile every kernel for a device and report build time, cache use and resources.",
        discussion: "With --source FILE, compiles that OpenCL C file instead of the built-in kernels.",
        version: NaturalGradientVersion.string
    )

    enum Precision: String, ExpressibleByArgument, CaseIterable {
        case float, double, all
    }

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "Element types to build: float, double or all (double only where fp64 is supported).")
    var precision: Precision = .all

    @Option(name: .long, help: "Compile this OpenCL C file instead of the built-in kernels.")
    var source: String?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let device = try deviceOptions.selectDevice()
        let context = try Context(device: device)
        var rows: [KernelReport] = []
        if let source {
            let text: String
            do {
                text = try String(contentsOfFile: source, encoding: .utf8)
            } catch let error as CocoaError {
                throw ValidationError("--source: " + ExitStatus.classify(error).message)
            }
            let name = URL(fileURLWithPath: source).lastPathComponent
            let built = try context.buildProgram(ProgramSource(name: name, text: text))
            rows += try KernelReport.describe(built, element: "-")
        } else {
            rows = try KernelReport.builtIn(context: context, elements: elementTypes(for: device))
        }
        if json {
            try printJSON(rows)
            return
        }
        try StandardOutput.print("Device: \(device)")
        var table = TextTable([
            "file", "type", "kernel", "build", "ms", "max WG", "WG multiple", "local", "private",
        ])
        for row in rows {
            table.append([
                row.file, row.element, row.kernel, row.origin, String(format: "%.1f", row.buildMilliseconds),
                "\(row.maxWorkGroupSize)", "\(row.preferredWorkGroupMultiple)", formatBytes(row.localMemoryBytes),
                formatBytes(row.privateMemoryBytes),
            ])
        }
        try StandardOutput.print(table.render())
        let statistics = context.programCacheStatistics
        try StandardOutput.print(
            "\(rows.count) kernels; programs: \(statistics.compiles) compiled, \(statistics.diskHits) from the disk cache, "
                + "\(statistics.memoryHits) from memory"
                + (context.binaryCache.map { "; binary cache: \($0.directory)" } ?? "; binary cache off (PoCL)"))
    }

    private func elementTypes(for device: Device) -> [String] {
        switch precision {
        case .float: ["float"]
        case .double: ["double"]
        case .all: device.supportsFloat64 ? ["float", "double"] : ["float"]
        }
    }
}
