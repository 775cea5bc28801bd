import ArgumentParser
import Foundation
import NaturalGradient

/// The `ngrad` root command.
struct Ngrad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ngrad",
        abstract: "Natural-gradient curvature kernels on any OpenCL device: diagnostics and tools.",
        version: NaturalGradientVersion.string,
        subcommands: [
            DevicesCommand.self, KernelsCommand.self, SolveCommand.self, TrainCommand.self, MetricCommand.self,
            ExampleCommand.self, BenchCommand.self, TuneCommand.self,
        ]
    )
}

@main
enum NgradMain {
    static func main() {
        let command: ParsableCommand
        do {
            command = try Ngrad.parseAsRoot()
        } catch {
            if Ngrad.exitCode(for: error) == .success { Ngrad.exit(withError: error) } // --help, --version
            let arguments = Array(CommandLine.arguments.dropFirst())
            fail(
                ExitStatus.usageLine(Ngrad.message(for: error), arguments: arguments) + " (see 'ngrad --help')",
                status: ExitStatus.usage)
        }
        do {
            var command = command
            try command.run()
            // Reports printed with Swift's `print` are only written here, when the buffer is
            // flushed: a full disk or `> /dev/full` must not pass as success.
            try StandardOutput.finish()
        } catch let error as ExitCode {
            exit(error.rawValue)
        } catch {
            if Ngrad.exitCode(for: error) == .success { Ngrad.exit(withError: error) }
            let (status, message) = ExitStatus.classify(error)
            fail(message, status: status)
        }
    }

    /// Prints `message` to standard error and exits. Usage errors stay on one line.
    static func fail(_ message: String, status: Int32) -> Never {
        let text =
            status == ExitStatus.usage
            ? message.split(whereSeparator: \.isNewline).joined(separator: "; ") : message
        FileHandle.standardError.write(Data("ngrad: error: \(text)\n".utf8))
        exit(status)
    }
}
