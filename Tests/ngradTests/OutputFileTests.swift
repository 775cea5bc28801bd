import Foundation
import NumPyFormat
import Testing
import NaturalGradientTestSupport

@testable import ngrad

/// `OutputFile`'s rules through `ngrad solve --output`: non-regular targets written in
/// place, outputs that are inputs refused, symlinks followed and kept, and a set of files
/// written all new or not at all.
@Suite("output files")
struct OutputFileTests {
    final class Files {
        let directory: String
        init() throws {
            directory = NSTemporaryDirectory() + "ngrad-output-\(UInt64.random(in: 0...UInt64.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try NumPyArray(shape: [7, 33], elementType: .float64, values: randomValues(7 * 33, seed: 1))
                .write(to: path("U.npy"))
            try NumPyArray(shape: [33], elementType: .float64, values: randomValues(33, seed: 2)).write(to: path("g.npy"))
            try NumPyArray(shape: [7], elementType: .float64, values: randomValues(7, seed: 3).map { abs($0) })
                .write(to: path("w.npy"))
        }
        deinit { try? FileManager.default.removeItem(atPath: directory) }
        func path(_ name: String) -> String { directory + "/" + name }
        func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path(name))) }

        func solve(output: String) throws -> (status: Int32, stdout: String, stderr: String) {
            try runNgrad([
                "solve", "--factor", path("U.npy"), "--gradient", path("g.npy"), "--weights", path("w.npy"),
                "--damping", "0.3", "--output", output,
            ])
        }
    }

    private func isSymlink(_ path: String) throws -> Bool {
        try FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType == .typeSymbolicLink
    }

    private func fileType(_ path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & S_IFMT : 0
    }

    @Test func anOutputThatIsAnInputIsRefusedAndTheInputKept() throws {
        let files = try Files()
        try FileManager.default.createSymbolicLink(atPath: files.path("link-to-g.npy"), withDestinationPath: files.path("g.npy"))
        try FileManager.default.linkItem(atPath: files.path("w.npy"), toPath: files.path("hard-w.npy"))
        let before = try ["U.npy", "g.npy", "w.npy"].map(files.bytes)
        let aliases: [(String, String)] = [
            (files.path("U.npy"), "--factor"),
            (files.directory + "/./U.npy", "--factor"), // another spelling of the same path
            (files.path("link-to-g.npy"), "--gradient"), // a symlink to an input
            (files.path("hard-w.npy"), "--weights"), // a hard link to an input
        ]
        for (output, option) in aliases {
            let result = try files.solve(output: output)
            #expect(result.status == 2, "\(output): \(result.stderr)")
            #expect(result.stderr.contains("same file as \(option)"), "\(result.stderr)")
        }
        #expect(try ["U.npy", "g.npy", "w.npy"].map(files.bytes) == before)
        #expect(try isSymlink(files.path("link-to-g.npy")))
    }

    @Test func aSymlinkedOutputReplacesItsTargetAndKeepsTheLink() throws {
        let files = try Files()
        try Data("old".utf8).write(to: URL(fileURLWithPath: files.path("target.npy")))
        chmod(files.path("target.npy"), 0o640)
        try FileManager.default.createSymbolicLink(atPath: files.path("link.npy"), withDestinationPath: "target.npy")
        let result = try files.solve(output: files.path("link.npy"))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try isSymlink(files.path("link.npy")))
        let x = try NumPyArray.read(contentsOf: files.path("target.npy"))
        #expect(x.shape == [33] && x.nonFiniteCount == 0)
        let mode = try FileManager.default.attributesOfItem(atPath: files.path("target.npy"))[.posixPermissions] as? Int
        #expect(mode == 0o640, "an existing file keeps its permissions")

        // A dangling link creates the file it names; the link stays.
        try FileManager.default.createSymbolicLink(atPath: files.path("dangling.npy"), withDestinationPath: "created.npy")
        let dangling = try files.solve(output: files.path("dangling.npy"))
        #expect(dangling.status == 0, "\(dangling.stderr)")
        #expect(try isSymlink(files.path("dangling.npy")))
        #expect(try NumPyArray.read(contentsOf: files.path("created.npy")).shape == [33])
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: files.directory).allSatisfy { !$0.hasSuffix(".tmp") })
    }

    @Test func nonRegularOutputsAreWrittenInPlace() throws {
        let files = try Files()
        // /dev/null itself, and through a symlink: the device node stays a device node.
        for output in ["/dev/null", files.path("null-link")] {
            if output != "/dev/null" {
                try FileManager.default.createSymbolicLink(atPath: output, withDestinationPath: "/dev/null")
            }
            let result = try files.solve(output: output)
            #expect(result.status == 0, "\(output): \(result.stderr)")
            #expect(fileType("/dev/null") == S_IFCHR)
        }
        #expect(try isSymlink(files.path("null-link")))

        // A FIFO receives the whole .npy stream (a reader on the other end).
        let fifo = files.path("x.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        final class Received: @unchecked Sendable { var data = Data() } // written before isFinished
        let received = Received()
        let reader = Thread {
            if let handle = FileHandle(forReadingAtPath: fifo) { received.data = handle.readDataToEndOfFile() }
        }
        reader.start()
        let result = try files.solve(output: fifo)
        #expect(result.status == 0, "\(result.stderr)")
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        let decoded = try NumPyArray.decode([UInt8](received.data), name: "fifo")
        #expect(decoded.shape == [33] && decoded.nonFiniteCount == 0)
        #expect(fileType(fifo) == S_IFIFO)
    }

    @Test func unwritableOutputsFailBeforeTheWork() throws {
        let files = try Files()
        for (output, mention) in [
            (files.directory, "is a directory"), (files.path("missing-dir/x.npy"), "missing-dir"),
            (files.path("U.npy") + "/x.npy", "not a directory"),
        ] {
            let result = try files.solve(output: output)
            #expect(result.status == 1, "\(output): \(result.stderr)")
            #expect(result.stderr.contains("--output") && result.stderr.contains(mention), "\(result.stderr)")
            #expect(result.stdout.isEmpty, "the check runs before the solve")
        }
    }

    /// A set: when one file cannot be staged, none is replaced and no temporary is left.
    @Test func aSetIsWrittenAllNewOrNotAtAll() throws {
        let files = try Files()
        let second = files.path("second")
        try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: true)
        try Data("old a".utf8).write(to: URL(fileURLWithPath: files.path("a.txt")))
        try Data("old b".utf8).write(to: URL(fileURLWithPath: second + "/b.txt"))
        let a = try OutputFile(option: "--output", path: files.path("a.txt"))
        let b = try OutputFile(option: "--output", path: second + "/b.txt")
        // b's directory disappears between the check and the write.
        try FileManager.default.removeItem(atPath: second)
        #expect(throws: OutputFileError.self) {
            try OutputFile.writeAll([(a, Array("new a".utf8)), (b, Array("new b".utf8))])
        }
        #expect(try files.bytes("a.txt") == Data("old a".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: files.directory).allSatisfy { !$0.hasSuffix(".tmp") })

        // Both writable: both new.
        try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: true)
        try OutputFile.writeAll([(a, Array("new a".utf8)), (b, Array("new b".utf8))])
        #expect(try files.bytes("a.txt") == Data("new a".utf8))
        #expect(try files.bytes("second/b.txt") == Data("new b".utf8))
        // The same file twice in one set is refused.
        let alias = try OutputFile(option: "--summary", path: files.directory + "/./a.txt")
        #expect(throws: (any Error).self) { try OutputFile.writeAll([(a, [1]), (alias, [2])]) }
    }

    /// A rename that fails after others (here: an immutable file, which the check cannot
    /// see) undoes the ones done: the set stays the old one, nothing is left beside it.
    /// Needs `chattr` and the right to set the immutable flag (root on ext4, tmpfs ≥ 6.0);
    /// elsewhere it records why it could not run.
    @Test func aLateRenameFailureRestoresTheFilesAlreadyReplaced() throws {
        let files = try Files()
        let names = ["a.txt", "b.txt", "c.txt"]
        for name in names { try Data("old \(name)".utf8).write(to: URL(fileURLWithPath: files.path(name))) }
        let outputs = try names.map { try OutputFile(option: "--\($0)", path: files.path($0)) }
        let chattr = Process()
        chattr.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
        chattr.arguments = ["+i", files.path("b.txt")]
        chattr.standardError = FileHandle.nullDevice
        guard (try? chattr.run()) != nil,
            ({
                chattr.waitUntilExit()
                return chattr.terminationStatus == 0
            })()
        else {
            print("note: cannot make a file immutable here (no chattr or no permission); the late-rename case is not exercised")
            return
        }
        defer {
            let undo = Process()
            undo.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
            undo.arguments = ["-i", files.path("b.txt")]
            try? undo.run()
            undo.waitUntilExit()
        }
        let fresh = try OutputFile(option: "--new", path: files.path("new.txt"))
        #expect(throws: OutputFileError.self) {
            try OutputFile.writeAll(zip(outputs + [fresh], names + ["new.txt"]).map { ($0, Array("new \($1)".utf8)) })
        }
        for name in names { #expect(try files.bytes(name) == Data("old \(name)".utf8), "\(name)") }
        #expect(!FileManager.default.fileExists(atPath: files.path("new.txt")), "a file that was new is removed again")
        let left = try FileManager.default.contentsOfDirectory(atPath: files.directory)
        #expect(left.allSatisfy { !$0.hasSuffix(".tmp") && !$0.hasSuffix(".old") }, "\(left)")
    }
}
