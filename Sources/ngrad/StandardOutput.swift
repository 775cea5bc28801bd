#if canImport(Glibc)
    @preconcurrency import Glibc
#elseif canImport(Darwin)
    @preconcurrency import Darwin
#endif

/// Every report a command prints goes to standard output through here, so that a failed
/// write (a full disk, `> /dev/full`, a closed terminal) is an error with exit status 1
/// instead of a silently lost report.
///
/// Swift's `print` writes to the same C `stdout` stream, so commands that still use it
/// are covered by ``finish()``, which `ngrad`'s entry point calls after every command: the
/// stream is buffered, and most write errors only surface when it is flushed.
enum StandardOutput {
    /// Writes `text` and a newline.
    static func print(_ text: String = "") throws {
        let failed = (text + "\n").withCString { fputs($0, stdout) } < 0
        if failed || ferror(stdout) != 0 { throw StandardOutputError(code: errno) }
    }

    /// Flushes standard output and throws if any write to it has failed.
    static func finish() throws {
        let failed = fflush(stdout) != 0
        if failed || ferror(stdout) != 0 { throw StandardOutputError(code: errno) }
    }
}

/// A write to standard output failed.
struct StandardOutputError: Error, CustomStringConvertible {
    /// The `errno` of the failed write (0 when the stream did not say).
    let code: Int32

    var description: String {
        "cannot write the report to standard output: "
            + (code == 0 ? "write error" : String(cString: strerror(code)))
            + " (the report is lost; redirect it to a writable file)"
    }
}
