import Foundation

/// Whether compiled program binaries are kept on disk between processes.
public enum BinaryCachePolicy: Sendable, Hashable {
    /// On for GPU and other non-PoCL drivers, in `BinaryCache.defaultDirectory`; off for
    /// PoCL, which caches compiled kernels itself and pays an extra compile to hand a
    /// binary back (DESIGN.md section 8).
    case automatic
    /// Never read or write binaries.
    case disabled
    /// Always use this directory, whatever the driver (tests use this on PoCL).
    case directory(String)

    func cache(for device: Device) -> BinaryCache? {
        switch self {
        case .automatic:
            device.isPoCL ? nil : BinaryCache(directory: BinaryCache.defaultDirectory())
        case .disabled:
            nil
        case let .directory(path):
            BinaryCache(directory: path)
        }
    }
}

/// Program binaries on disk, one file per (source, options, device, driver) key.
///
/// A file stores its full key and a checksum of the binary, so a hash collision, a
/// truncated write or a corrupt file reads as a miss and the program is rebuilt. Writes
/// go to a temporary file that is renamed into place, so readers never see half a file.
/// Failing to write is not an error: the cache only saves time.
public struct BinaryCache: Sendable {
    /// The directory holding `*.clbin` files.
    public let directory: String

    static let magic = Array("NGRADBIN1\n".utf8)

    /// `$NGRAD_CACHE_DIR`, else `$XDG_CACHE_HOME/naturalgradient/kernels`, else
    /// `~/.cache/naturalgradient/kernels`.
    public static func defaultDirectory(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if let explicit = environment["NGRAD_CACHE_DIR"], !explicit.isEmpty { return explicit }
        let base =
            environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSTemporaryDirectory()) + "/.cache"
        return base + "/naturalgradient/kernels"
    }

    /// The file that holds the entry for `key`.
    public func path(for key: String) -> String {
        directory + "/" + fnv1a(key.utf8).hexadecimal + ".clbin"
    }

    func load(key: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path(for: key)) else { return nil }
        return Self.decode([UInt8](data), key: key)
    }

    /// Whether a file exists for `key` that `load` cannot use.
    func hasUnreadableEntry(key: String) -> Bool {
        FileManager.default.fileExists(atPath: path(for: key)) && load(key: key) == nil
    }

    func store(key: String, binary: [UInt8]) {
        let destination = URL(fileURLWithPath: path(for: key))
        // Only ever replace a regular file (or create one): a device, FIFO, directory or
        // symbolic link planted at an entry's name is left alone and the entry not stored.
        var info = stat()
        if lstat(destination.path, &info) == 0, info.st_mode & S_IFMT != S_IFREG { return }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(Self.encode(binary, key: key)).write(to: destination, options: .atomic)
        } catch {
            // A read-only or full disk costs a rebuild next time, nothing more.
        }
    }

    func remove(key: String) {
        try? FileManager.default.removeItem(atPath: path(for: key))
    }

    // MARK: File format: magic, key length (u32 LE), key, binary length (u64 LE), binary, FNV-1a of binary (u64 LE)

    static func encode(_ binary: [UInt8], key: String) -> [UInt8] {
        let keyBytes = Array(key.utf8)
        var bytes = magic
        bytes += withUnsafeBytes(of: UInt32(keyBytes.count).littleEndian, Array.init)
        bytes += keyBytes
        bytes += withUnsafeBytes(of: UInt64(binary.count).littleEndian, Array.init)
        bytes += binary
        bytes += withUnsafeBytes(of: fnv1a(binary).littleEndian, Array.init)
        return bytes
    }

    static func decode(_ bytes: [UInt8], key: String) -> [UInt8]? {
        var cursor = bytes[...]
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, cursor.count >= count else { return nil }
            defer { cursor = cursor.dropFirst(count) }
            return cursor.prefix(count)
        }
        func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard let slice = take(MemoryLayout<T>.size) else { return nil }
            return slice.reversed().reduce(T.zero) { ($0 << 8) | T($1) }
        }
        guard take(magic.count).map(Array.init) == magic,
            let keyLength = integer(UInt32.self),
            let storedKey = take(Int(keyLength)), Array(storedKey) == Array(key.utf8),
            let binaryLength = integer(UInt64.self), binaryLength <= UInt64(Int.max),
            let binary = take(Int(binaryLength)).map(Array.init),
            let checksum = integer(UInt64.self), checksum == fnv1a(binary),
            cursor.isEmpty, !binary.isEmpty
        else { return nil }
        return binary
    }
}
