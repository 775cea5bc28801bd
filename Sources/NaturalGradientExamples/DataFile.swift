import CZlib
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A data file that could not be read, decompressed or parsed: `path` names it, `reason`
/// says what is wrong with it.
public struct DataFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path as the caller gave it.
    public let path: String
    /// What is wrong, in words.
    public let reason: String

    /// An error about the file at `path`.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

/// Reads whole files, streams included, and decompresses gzip in process with zlib.
///
/// Reading goes through `open(2)` and `read(2)` until end of file, so a pipe, a FIFO or
/// `/dev/stdin` (`--data <(zcat ...)`) reads like a regular file, and a name that starts
/// with `-` is never an option of some other program. Gzip is recognised by its magic
/// bytes (1f 8b), not by the name.
public enum DataFile {
    /// Gzip's first two bytes.
    static let gzipMagic: [UInt8] = [0x1F, 0x8B]

    /// The bytes of `path`, decompressed when they are gzip.
    ///
    /// - Parameter limit: the most bytes read from the file and the most it may
    ///   decompress to (a bound, so a hostile or wrong file cannot exhaust memory).
    /// - Throws: `DataFileError` naming the file for an unreadable file, a directory, one
    ///   larger than `limit`, and truncated or corrupt gzip data.
    public static func read(_ path: String, limit: Int) throws -> [UInt8] {
        let raw = try readAll(path, limit: limit)
        return raw.starts(with: gzipMagic) ? try gunzip(raw, path: path, limit: limit) : raw
    }

    /// Every byte of `path` up to `limit`.
    static func readAll(_ path: String, limit: Int) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DataFileError(path: path, reason: "cannot open it: \(lastError())") }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw DataFileError(path: path, reason: "cannot read it: \(lastError())")
            }
            if count == 0 { return bytes }
            guard bytes.count + count <= limit else {
                throw DataFileError(path: path, reason: "is larger than the limit of \(limit) bytes")
            }
            bytes += chunk[0..<count]
        }
    }

    /// Decompresses one or more concatenated gzip members (as `gzip -dc` does).
    static func gunzip(_ input: [UInt8], path: String, limit: Int) throws -> [UInt8] {
        var stream = z_stream()
        // 16 + MAX_WBITS: a gzip wrapper (not zlib's), with the largest window.
        guard inflateInit2_(&stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataFileError(path: path, reason: "zlib could not start decompressing (out of memory?)")
        }
        defer { inflateEnd(&stream) }
        var input = input
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { target -> (Int32, Int) in
                    stream.next_out = target.baseAddress
                    stream.avail_out = UInt32(target.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    return (status, target.count - Int(stream.avail_out))
                }
                guard output.count + produced <= limit else {
                    throw DataFileError(path: path, reason: "decompresses to more than the limit of \(limit) bytes")
                }
                output += chunk[0..<produced]
                switch status {
                case Z_STREAM_END:
                    // Another member may follow; anything else after the last one is an error.
                    guard stream.avail_in > 0 else { return }
                    guard stream.avail_in >= 2, stream.next_in[0] == gzipMagic[0], stream.next_in[1] == gzipMagic[1]
                    else { throw DataFileError(path: path, reason: "has data after the end of its gzip stream") }
                    inflateReset(&stream)
                case Z_OK, Z_BUF_ERROR:
                    // No input left and room for output that did not come: the stream ends early.
                    if stream.avail_in == 0 && produced < chunk.count {
                        throw DataFileError(
                            path: path, reason: "is a truncated gzip file (it ends before its gzip stream does)")
                    }
                case Z_DATA_ERROR:
                    let detail = stream.msg.map { String(cString: $0) } ?? "invalid data"
                    throw DataFileError(path: path, reason: "is not valid gzip data (\(detail))")
                default:
                    throw DataFileError(path: path, reason: "zlib failed while decompressing it (status \(status))")
                }
            }
        }
        return output
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}
