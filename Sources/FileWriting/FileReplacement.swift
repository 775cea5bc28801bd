import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How the package puts bytes at a path, by the rule every writer in it keeps (README,
/// "Exit codes and output files"): nothing is ever renamed over a file that is not
/// regular. `write(_:to:)` is the whole rule (`NumPyArray.write(to:)`); the steps are
/// shared with `ngrad`'s `OutputFile` (checked before the work, several files replaced
/// together) and the tuning cache (which refuses anything but a regular file).
///
/// - A regular file or a missing path: a temporary file beside it, flushed to disk and
///   renamed over it, so it holds the old contents or all the new ones; an existing file
///   keeps its permission bits.
/// - A symbolic link is followed to its final target, which is written as above; the link
///   stays a link (a dangling one creates the file it names).
/// - A character device or a FIFO (`/dev/null`, a named pipe) is written in place.
/// - A directory, a block device or a socket is refused.
package enum FileReplacement {
    /// A write that failed, with the reason in words.
    package struct Failure: Error {
        package let reason: String

        package init(reason: String) {
            self.reason = reason
        }
    }

    /// Writes `bytes` to `path` by the type's rules.
    package static func write(_ bytes: [UInt8], to path: String) throws {
        let target = try finalTarget(path)
        var info = stat()
        var mode: mode_t? = nil
        if stat(target, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                mode = info.st_mode & 0o7777
            case S_IFCHR, S_IFIFO:
                try writeInPlace(bytes, to: target)
                return
            case S_IFDIR:
                throw Failure(reason: "it is a directory")
            default:
                throw Failure(reason: "it is not a regular file (a block device or a socket); nothing is renamed over it")
            }
        } else if errno != ENOENT {
            throw Failure(reason: reason(errno))
        }
        let temporary = try stage(bytes, beside: target, mode: mode)
        if rename(temporary, target) != 0 {
            let code = errno
            unlink(temporary)
            throw Failure(reason: reason(code))
        }
    }

    /// `path` with every symbolic link followed (a dangling chain ends at the path it names).
    package static func finalTarget(_ path: String) throws -> String {
        var current = path
        for _ in 0..<40 {
            var info = stat()
            guard lstat(current, &info) == 0, info.st_mode & S_IFMT == S_IFLNK else { return current }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let length = readlink(current, &buffer, buffer.count - 1)
            guard length >= 0 else { throw Failure(reason: reason(errno)) }
            let destination = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            current =
                destination.hasPrefix("/")
                ? destination : ((current as NSString).deletingLastPathComponent as NSString).appendingPathComponent(destination)
        }
        throw Failure(reason: "too many levels of symbolic links")
    }

    /// Writes `bytes` to a new temporary file beside `target` (given the permission bits
    /// `mode`, else the defaults of a new file), flushed to disk, and returns its path; the
    /// caller renames it over `target` or unlinks it.
    package static func stage(_ bytes: [UInt8], beside target: String, mode: mode_t?) throws -> String {
        var temporary = ""
        var descriptor: Int32 = -1
        for _ in 0..<16 {
            temporary = temporaryName(beside: target, suffix: "tmp")
            descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if descriptor >= 0 || errno != EEXIST { break }
        }
        guard descriptor >= 0 else { throw Failure(reason: reason(errno)) }
        var failure: Int32 = 0
        if let mode, fchmod(descriptor, mode) != 0 { failure = errno }
        if failure == 0 { failure = writeFully(descriptor, bytes) }
        // The data must be on disk before the rename makes it the file's contents.
        if failure == 0, fsync(descriptor) != 0 { failure = errno }
        if close(descriptor) != 0, failure == 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw Failure(reason: reason(failure))
        }
        return temporary
    }

    /// A fresh hidden name beside `target` (`.name.pid.random.suffix`).
    package static func temporaryName(beside target: String, suffix: String) -> String {
        let directory = (target as NSString).deletingLastPathComponent
        let name = (target as NSString).lastPathComponent
        return (directory.isEmpty ? "." : directory) + "/.\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).\(suffix)"
    }

    /// Opens the existing `path` (a character device or a pipe) and writes `bytes` to it.
    package static func writeInPlace(_ bytes: [UInt8], to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(reason: reason(errno)) }
        let written = writeFully(descriptor, bytes)
        let closed = close(descriptor) == 0 ? 0 : errno
        if written != 0 || closed != 0 { throw Failure(reason: reason(written != 0 ? written : closed)) }
    }

    /// `strerror(code)` in lower case, for messages.
    package static func reason(_ code: Int32) -> String {
        String(cString: strerror(code)).lowercased()
    }

    /// Writes every byte, retrying short writes and interruptions; 0 or the `errno`.
    private static func writeFully(_ descriptor: Int32, _ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                guard let base = buffer.baseAddress else { return 0 }
                let count = posixWrite(descriptor, base + offset, buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += count
            }
            return 0
        }
    }
}

#if canImport(Glibc)
    private let posixWrite = Glibc.write
#elseif canImport(Darwin)
    private let posixWrite = Darwin.write
#endif
