import Foundation
import PackagePlugin

/// Turns every `Kernels/*.cl` file at the package root into a Swift string constant, so
/// that built products carry their kernel sources and never read the source checkout.
@main
struct EmbedKernels: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let kernelsDirectory = context.package.directoryURL.appending(path: "Kernels")
        let names = try FileManager.default.contentsOfDirectory(atPath: kernelsDirectory.path())
            .filter { $0.hasSuffix(".cl") }
            .sorted()
        let inputs = names.map { kernelsDirectory.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedKernelSources.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(names.count) OpenCL kernel files",
                executable: try context.tool(named: "KernelEmbedder").url,
                arguments: [output.path()] + inputs.map { $0.path() },
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
