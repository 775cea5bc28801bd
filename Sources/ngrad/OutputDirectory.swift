import ArgumentParser

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A directory a command writes a run's files into (`ngrad train --output`, `ngrad example
/// gp --output`), checked before the work and written as a set (README, "Exit codes and
/// output files"):
///
/// - The directory may exist (a directory, or a symbolic link to one) or be missing; a
///   missing one is created at write time, so its nearest existing ancestor must be a
///   directory that can take a new entry. A file, a directory without write permission,
///   a symbolic link to a missing directory and an empty path are refused before any work.
/// - Each file of the run is then an ``OutputFile`` (so a name that is a directory, a
///   socket or a dangling link into a missing directory is refused before the work too).
/// - ``write(_:)`` stages every file beside its target and renames them only when all are
///   written: the directory holds the whole new run or the whole previous one, never new
///   files beside old ones.
struct OutputDirectory {
    /// The option that named the directory (`--output`).
    let option: String
    /// The path as the user gave it.
    let path: String
    /// The files of a run, in the order they are written and reported.
    let names: [String]
    /// The checked files, when the directory already exists (nil: created at write time).
    private let files: [OutputFile]?

    /// Checks `path` as a directory for `names` before any work.
    ///
    /// - Throws: `ValidationError` for an empty path; `OutputFileError` for a directory or a
    ///   file in it that cannot be written.
    init(option: String, path: String, names: [String]) throws {
        guard !path.isEmpty else { throw ValidationError("\(option) must not be empty") }
        self.option = option
        self.path = path
        self.names = names
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw OutputFileError(
                    option: option, path: path, reason: "it is not a directory; name a directory for the run's files")
            }
            guard access(path, W_OK | X_OK) == 0 else {
                throw OutputFileError(option: option, path: path, reason: "cannot create files in it: \(Self.reason(errno))")
            }
            files = try names.map { try OutputFile(option: option, path: Self.join(path, $0)) }
        } else if errno == ENOENT {
            // A dangling symbolic link: mkdir cannot create through it, so say so now.
            var link = stat()
            if lstat(path, &link) == 0 {
                throw OutputFileError(
                    option: option, path: path,
                    reason: "it is a symbolic link to a missing directory; create that directory first")
            }
            try Self.requireCreatable(path, option: option)
            files = nil
        } else {
            throw OutputFileError(option: option, path: path, reason: Self.reason(errno))
        }
    }

    /// The path of one of the run's files, for reports.
    func path(of name: String) -> String { Self.join(path, name) }

    /// Creates the directory if needed and writes every file of the run as one set;
    /// `contents` holds the bytes of each of `names`.
    func write(_ contents: [String: [UInt8]]) throws {
        if files == nil {
            do {
                try Self.makeDirectories(path)
            } catch let failure as MakeDirectoryFailure {
                throw OutputFileError(option: option, path: failure.path, reason: Self.reason(failure.code))
            }
        }
        let checked = try files ?? names.map { try OutputFile(option: option, path: Self.join(path, $0)) }
        try OutputFile.writeAll(checked.enumerated().map { index, file in (file, contents[names[index]] ?? []) })
    }

    // MARK: - Internals

    /// Throws unless every missing component of `path` can be created: the nearest
    /// existing ancestor is a directory that can take a new entry.
    private static func requireCreatable(_ path: String, option: String) throws {
        var ancestor = path
        while true {
            ancestor = parent(of: ancestor)
            var info = stat()
            if stat(ancestor, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else {
                    throw OutputFileError(option: option, path: path, reason: "'\(ancestor)' is not a directory")
                }
                guard access(ancestor, W_OK | X_OK) == 0 else {
                    throw OutputFileError(
                        option: option, path: path, reason: "cannot create it in '\(ancestor)': \(reason(errno))")
                }
                return
            }
            guard errno == ENOENT, ancestor != "/", ancestor != "." else {
                throw OutputFileError(option: option, path: path, reason: "'\(ancestor)': \(reason(errno))")
            }
        }
    }

    /// `mkdir -p`: creates `path` and its missing ancestors.
    private static func makeDirectories(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw MakeDirectoryFailure(path: path, code: ENOTDIR) }
            return
        }
        let up = parent(of: path)
        if up != path { try makeDirectories(up) }
        if mkdir(path, 0o777) != 0, errno != EEXIST {
            throw MakeDirectoryFailure(path: path, code: errno)
        }
    }

    /// The directory above `path` (`.` for a bare name, `/` for the root).
    private static func parent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        let directory = trimmed[..<slash]
        return directory.isEmpty ? "/" : String(directory)
    }

    private static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private static func reason(_ code: Int32) -> String {
        String(cString: strerror(code)).lowercased()
    }
}

/// A directory `makeDirectories` could not create, and the `errno`.
private struct MakeDirectoryFailure: Error {
    let path: String
    let code: Int32
}
