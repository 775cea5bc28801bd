import Foundation
import Testing

@testable import NumPyFormat

/// A fresh temporary directory, removed by `cleanUp()`.
private struct TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
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
}
