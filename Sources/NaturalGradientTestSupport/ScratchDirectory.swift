import Foundation

/// A fresh directory under the system's temporary directory for one test's files, removed
/// with everything in it when the object is released.
public final class ScratchDirectory {
    /// The directory's path.
    public let path: String

    /// Creates `<tmp>/<prefix>-<random>`; `prefix` says which tests left it, should one stay.
    public init(prefix: String) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to the file `name` in the directory and returns its path.
    public func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let file = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }
}
