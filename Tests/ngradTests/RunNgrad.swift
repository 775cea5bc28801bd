import Foundation
import Testing

/// Runs the built `ngrad` binary (it sits in the build directory beside the test runner,
/// which depends on it) and returns its exit status, standard output and standard error.
/// `input` is written to its standard input (from another thread, so a large input cannot
/// block); `directory` is its working directory; `environment` is added to this process's;
/// with `standardOutput`, standard output goes to that file (for example `/dev/full`) and
/// the returned `stdout` is empty.
func runNgrad(
    _ arguments: [String], input: Data? = nil, directory workingDirectory: String? = nil,
    environment: [String: String] = [:], standardOutput path: String? = nil
) throws -> (status: Int32, stdout: String, stderr: String) {
    let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = runner.deletingLastPathComponent()
    while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("ngrad").path),
        directory.path != "/"
    {
        directory = directory.deletingLastPathComponent()
    }
    let process = Process()
    process.executableURL = directory.appendingPathComponent("ngrad")
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    }
    let output = Pipe()
    let errors = Pipe()
    let redirected = try path.map { try #require(FileHandle(forWritingAtPath: $0)) }
    process.standardOutput = redirected ?? output
    process.standardError = errors
    if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    try process.run()
    if let input {
        signal(SIGPIPE, SIG_IGN) // a child that stops reading early must not kill the runner
        let writer = stdin.fileHandleForWriting
        Thread.detachNewThread {
            try? writer.write(contentsOf: input) // the process may exit before reading it all
            try? writer.close()
        }
    }
    // Read both pipes before waiting, so a large output cannot fill a pipe and block.
    let outputData = redirected == nil ? output.fileHandleForReading.readDataToEndOfFile() : Data()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try redirected?.close()
    return (
        process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self)
    )
}
