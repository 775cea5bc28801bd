import Foundation
import Testing

@testable import NumPyFormat

/// A fresh temporary directory, removed by `cleanUp()`.
private struct TemporaryDirectory {
    let path: String

    init() throws {
        path =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("NumPyFormatTests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func cleanUp() { try? FileManager.default.removeItem(atPath: path) }
}

@Suite("Reading and writing files")
struct FileTests {
    @Test func writeThenRead() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let array = try NumPyArray(
            shape: [33, 5], elementType: .float32, values: (0..<165).map { Double($0) / 4 - 20 })
        let path = directory.file("matrix.npy")
        try array.write(to: path)
        #expect(try NumPyArray.read(contentsOf: path) == array)
        #expect(FileManager.default.contents(atPath: path).map { [UInt8]($0) } == array.encoded())

        // Overwriting replaces the file.
        let vector = try NumPyArray(shape: [2], elementType: .float64, values: [-1, 1])
        try vector.write(to: path)
        #expect(try NumPyArray.read(contentsOf: path) == vector)
    }

    @Test func readingNumPyFixtureFromDisk() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = directory.file("arange.npy")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(NumPyFixtures.arange2x3Float64)))
        let array = try NumPyArray.read(contentsOf: path)
        #expect(array.shape == [2, 3])
        #expect(array.values == [0, 1, 2, 3, 4, 5])
    }

    @Test func missingFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = directory.file("absent.npy")
        #expect(throws: NumPyFormatError(file: path, problem: "no such file")) {
            try NumPyArray.read(contentsOf: path)
        }
        #expect(NumPyFormatError(file: path, problem: "no such file").description == "\(path): no such file")
    }

    @Test func directoryIsRejected() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        #expect {
            try NumPyArray.read(contentsOf: directory.path)
        } throws: { error in
            guard let error = error as? NumPyFormatError else { return false }
            return error.file == directory.path && error.problem.contains("directory")
        }
    }

    @Test func corruptFileNamesThePath() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = directory.file("short.npy")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(NumPyFixtures.pairFloat32.dropLast())))
        #expect {
            try NumPyArray.read(contentsOf: path)
        } throws: { error in
            (error as? NumPyFormatError)?.description == "\(path): truncated data: expected 8 bytes, found 7"
        }
    }

    @Test func writeFailures() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let array = try NumPyArray(shape: [1], elementType: .float64, values: [1])
        let unwritable = directory.file("no/such/directory/x.npy")
        #expect {
            try array.write(to: unwritable)
        } throws: { error in
            guard let error = error as? NumPyFormatError else { return false }
            return error.file == unwritable && error.problem.hasPrefix("cannot write the file")
        }

        var inconsistent = array
        inconsistent.values.append(2)
        let path = directory.file("inconsistent.npy")
        #expect {
            try inconsistent.write(to: path)
        } throws: { error in
            (error as? NumPyFormatError)?.problem == "shape (1,) needs 1 values, but there are 2"
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// Nothing is ever renamed over a file that is not regular: a character device and a
    /// FIFO are written in place, a directory is refused, a symbolic link keeps being a link
    /// (its target is replaced, keeping its permissions), and no temporary file is left.
    @Test func writeNeverReplacesANonRegularFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let array = try NumPyArray(shape: [5, 3], elementType: .float64, values: (0..<15).map { Double($0) - 7.5 })
        func type(_ path: String, following: Bool = true) -> mode_t {
            var info = stat()
            return (following ? stat(path, &info) : lstat(path, &info)) == 0 ? info.st_mode & S_IFMT : 0
        }

        // /dev/null stays a device, directly and through a link.
        try FileManager.default.createSymbolicLink(atPath: directory.file("null"), withDestinationPath: "/dev/null")
        for path in ["/dev/null", directory.file("null")] {
            try array.write(to: path)
            #expect(type("/dev/null") == S_IFCHR)
        }
        #expect(type(directory.file("null"), following: false) == S_IFLNK)

        // A directory is refused and stays a directory.
        let subdirectory = directory.file("x.npy")
        try FileManager.default.createDirectory(atPath: subdirectory, withIntermediateDirectories: true)
        #expect {
            try array.write(to: subdirectory)
        } throws: { error in
            (error as? NumPyFormatError)?.problem.contains("directory") == true
        }
        #expect(type(subdirectory) == S_IFDIR)

        // A FIFO gets the whole stream in place.
        let fifo = directory.file("x.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        final class Received: @unchecked Sendable { var data = Data() }
        let received = Received()
        let reader = Thread { received.data = FileHandle(forReadingAtPath: fifo)?.readDataToEndOfFile() ?? Data() }
        reader.start()
        try array.write(to: fifo)
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        #expect(try NumPyArray.decode([UInt8](received.data), name: "fifo") == array)
        #expect(type(fifo) == S_IFIFO)

        // A link to a regular file: the target is replaced with its mode, the link kept;
        // a dangling link creates the file it names.
        let target = directory.file("target.npy")
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        chmod(target, 0o640)
        try FileManager.default.createSymbolicLink(atPath: directory.file("link.npy"), withDestinationPath: "target.npy")
        try array.write(to: directory.file("link.npy"))
        #expect(type(directory.file("link.npy"), following: false) == S_IFLNK)
        #expect(try NumPyArray.read(contentsOf: target) == array)
        #expect((try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int) == 0o640)
        try FileManager.default.createSymbolicLink(atPath: directory.file("dangling.npy"), withDestinationPath: "made.npy")
        try array.write(to: directory.file("dangling.npy"))
        #expect(type(directory.file("dangling.npy"), following: false) == S_IFLNK)
        #expect(try NumPyArray.read(contentsOf: directory.file("made.npy")) == array)

        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).allSatisfy { !$0.hasSuffix(".tmp") })
    }
}
