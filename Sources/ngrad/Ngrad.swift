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

/// Exit codes: 0 success, 1 a failure on the device (a kernel that does not build, a
/// driver error), 2 a usage error (bad flag, unknown device, bad value).
enum ExitStatus {
    static let failure: Int32 = 1
    static let usage: Int32 = 2
}

@main
enum NgradMain {
    static func main() {
        let command: ParsableCommand
        do {
            command = try Ngrad.parseAsRoot()
        } catch {
            if Ngrad.exitCode(for: error) == .success { Ngrad.exit(withError: error) }  // --help, --version
            fail(Ngrad.message(for: error) + " (see 'ngrad --help')", status: ExitStatus.usage)
        }
        do {
            var command = command
            try command.run()
        } catch let error as OpenCLError {
            switch error {
            case .buildFailed:
                fail(error.description, status: ExitStatus.failure)
            case .noMatchingDevice, .invalidArgument, .noDevices:
                fail(error.description, status: ExitStatus.usage)
            case .callFailed, .unsupported:
                fail(error.description, status: ExitStatus.failure)
            }
        } catch let error as NaturalGradientError {
            fail(error.description, status: ExitStatus.usage)
        } catch let error as ExitCode {
            exit(error.rawValue)
        } catch {
            if Ngrad.exitCode(for: error) == .success { Ngrad.exit(withError: error) }
            let status = error is ValidationError ? ExitStatus.usage : ExitStatus.failure
            fail(Ngrad.message(for: error), status: status)
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
