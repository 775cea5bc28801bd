import ArgumentParser
import FileWriting

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file a command writes its results to, checked before the work and written so that a
/// failure never leaves a half-written or destroyed file (README, "Exit codes and output
/// files"):
///
/// - A regular file (new or existing) is written to a temporary file in the same
///   directory, flushed to disk and renamed over the target, so the target holds either
///   the old contents or the complete new ones. An existing file keeps its permissions.
/// - A symbolic link is followed (to any depth): its final target is replaced as above and
///   the link itself is kept. A dangling link creates the file it names.
/// - A character device or a pipe (`/dev/null`, `/dev/stdout`, a FIFO, `>(gzip > x.gz)`)
///   is written in place: nothing is ever renamed over a file that is not regular.
/// - A directory, a block device or a socket is refused, as is a path that is the same
///   file as one of the command's inputs (the same device and inode, so also through a
///   symlink or a hard link), and an empty path.
///
/// Refusals about the arguments (empty, an input) are usage errors (exit 2); a path that
/// cannot be written is an output failure (exit 1), whether found by the check or later.
struct OutputFile: Sendable {
    /// How the bytes reach the target.
    enum Method: Sendable, Equatable {
        /// A temporary file renamed over the target; `mode` is the existing file's
        /// permission bits, nil for a new file.
        case replace(mode: UInt32?)
        /// Opened and written where it is (a character device or a pipe).
        case inPlace
    }

    /// The option that named the file, for messages (`--output`).
    let option: String
    /// The path as the user gave it.
    let path: String
    /// Where the bytes go: `path` with symbolic links followed.
    let target: String
    let method: Method

    /// Checks `path` as an output of `option` before any work: it can be written, and it
    /// is not one of `inputs` (option and path of each input file).
    ///
    /// - Throws: `ValidationError` for an empty path or one that is an input;
    ///   `OutputFileError` for a path that cannot be written.
    init(option: String, path: String, inputs: [(option: String, path: String)] = []) throws {
        guard !path.isEmpty else { throw ValidationError("\(option) must not be empty") }
        self.option = option
        self.path = path
        var info = stat()
        if stat(path, &info) == 0 {
            for input in inputs {
                var other = stat()
                if stat(input.path, &other) == 0, other.st_dev == info.st_dev, other.st_ino == info.st_ino {
                    throw ValidationError(
                        "\(option) '\(path)' is the same file as \(input.option) '\(input.path)'; writing it would destroy the input, so choose another path"
                    )
                }
            }
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                guard let resolved = realpath(path, nil) else {
                    throw OutputFileError(option: option, path: path, reason: FileReplacement.reason(errno))
                }
                target = String(cString: resolved)
                free(resolved)
                method = .replace(mode: UInt32(info.st_mode & 0o7777))
                try Self.requireWritableDirectory(of: target, option: option, path: path)
            case S_IFCHR, S_IFIFO:
                target = path
                method = .inPlace
                guard access(path, W_OK) == 0 else {
                    throw OutputFileError(option: option, path: path, reason: FileReplacement.reason(errno))
                }
            case S_IFDIR:
                throw OutputFileError(option: option, path: path, reason: "it is a directory; name a file")
            default:
                throw OutputFileError(
                    option: option, path: path,
                    reason: "it is a block device or a socket; ngrad writes regular files, character devices and pipes only")
            }
        } else if errno == ENOENT {
            target = try Self.failing(option: option, path: path) { try FileReplacement.finalTarget(path) }
            method = .replace(mode: nil)
            try Self.requireWritableDirectory(of: target, option: option, path: path)
        } else {
            throw OutputFileError(option: option, path: path, reason: FileReplacement.reason(errno))
        }
    }

    /// Writes `bytes` to the file (see the type's rules).
    func write(_ bytes: [UInt8]) throws {
        try Self.writeAll([(self, bytes)])
    }

    /// Writes a set of files so that they are all new or, where any fails, the old ones are
    /// untouched: every regular file is first written in full to a temporary file beside
    /// it, and only when all of them are written are they renamed over their targets (a
    /// rename cannot run out of space). In-place targets (pipes, devices) cannot be staged
    /// and are written last. Two entries with the same target are refused.
    static func writeAll(_ items: [(file: OutputFile, bytes: [UInt8])]) throws {
        var seen: [String: OutputFile] = [:]
        for (file, _) in items {
            if let earlier = seen[file.target] {
                throw ValidationError(
                    "\(file.option) '\(file.path)' and \(earlier.option) '\(earlier.path)' are the same file")
            }
            seen[file.target] = file
        }
        var staged: [(file: OutputFile, temporary: String)] = []
        do {
            for (file, bytes) in items {
                guard case let .replace(mode) = file.method else { continue }
                let temporary = try failing(option: file.option, path: file.path) {
                    try FileReplacement.stage(bytes, beside: file.target, mode: mode.map { mode_t($0) })
                }
                staged.append((file, temporary))
            }
        } catch {
            for entry in staged { unlink(entry.temporary) }
            throw error
        }
        // A rename can still fail (an immutable or busy file), and after earlier ones it
        // would leave a mixed set: each existing target is first hard-linked aside, so the
        // renames already done can be undone. A target that cannot be linked (no hard
        // links on that file system, or an immutable file) is renamed last, so that its
        // failure still undoes all the others.
        enum Backup { case newFile, saved(String), unavailable }
        let planned: [(entry: (file: OutputFile, temporary: String), backup: Backup)] = staged.map { entry in
            let backup = FileReplacement.temporaryName(beside: entry.file.target, suffix: "old")
            if link(entry.file.target, backup) == 0 { return (entry, .saved(backup)) }
            return (entry, errno == ENOENT ? .newFile : .unavailable)
        }
        func unavailable(_ backup: Backup) -> Bool { if case .unavailable = backup { true } else { false } }
        let plan = planned.filter { !unavailable($0.backup) } + planned.filter { unavailable($0.backup) }
        for (index, step) in plan.enumerated() where rename(step.entry.temporary, step.entry.file.target) != 0 {
            let code = errno
            for done in plan[..<index] {
                switch done.backup {
                case let .saved(backup): rename(backup, done.entry.file.target) // the previous file back
                case .newFile: unlink(done.entry.file.target) // there was none
                case .unavailable: break // renamed last: only a second such file is left new
                }
            }
            for later in plan[index...] { unlink(later.entry.temporary) }
            for other in plan { if case let .saved(backup) = other.backup { unlink(backup) } }
            throw OutputFileError(
                option: step.entry.file.option, path: step.entry.file.path, reason: FileReplacement.reason(code))
        }
        for step in plan { if case let .saved(backup) = step.backup { unlink(backup) } }
        for (file, bytes) in items where file.method == .inPlace {
            try failing(option: file.option, path: file.path) {
                try FileReplacement.writeInPlace(bytes, to: file.target)
            }
        }
    }

    // MARK: - Internals

    /// `body`'s result, its `FileReplacement.Failure` thrown as the `OutputFileError` of
    /// `option` and `path`.
    private static func failing<T>(option: String, path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as FileReplacement.Failure {
            throw OutputFileError(option: option, path: path, reason: failure.reason)
        }
    }

    /// Throws unless the directory that will hold `target` exists and can take a new file.
    private static func requireWritableDirectory(of target: String, option: String, path: String) throws {
        let directory = split(target).directory
        var info = stat()
        guard stat(directory, &info) == 0 else {
            throw OutputFileError(
                option: option, path: path, reason: "its directory '\(directory)': \(FileReplacement.reason(errno))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw OutputFileError(option: option, path: path, reason: "'\(directory)' is not a directory")
        }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw OutputFileError(
                option: option, path: path,
                reason: "cannot create files in its directory '\(directory)': \(FileReplacement.reason(errno))")
        }
    }

    /// The directory (`.` for a bare name) and the last component of a path.
    private static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }
}

/// An output file that cannot be written (exit status 1).
struct OutputFileError: Error, CustomStringConvertible {
    let option: String
    let path: String
    let reason: String

    var description: String { "cannot write \(option) '\(path)': \(reason)" }
}
