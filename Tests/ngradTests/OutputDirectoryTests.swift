import Foundation
import Testing

@testable import ngrad

/// The run directories of `ngrad train --output` and `ngrad example gp --output`: checked
/// before any work (a file, a path under a file, a name in it that cannot be written, '')
/// and written as a set, so a failure leaves the previous run's files untouched and no new
/// file beside them.
@Suite("output directories")
struct OutputDirectoryTests {
    final class Scratch {
        let directory: String
        init() throws {
            directory = NSTemporaryDirectory() + "ngrad-outdir-\(UInt64.random(in: 0...UInt64.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: directory) }
        func path(_ name: String) -> String { directory + "/" + name }
        func listing(_ name: String) throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: path(name)).sorted()
        }
        /// A previous run's files, with one name blocked by a directory of that name.
        func previousRun(_ name: String, files: [String], blocked: String) throws -> [String: Data] {
            try FileManager.default.createDirectory(atPath: path(name + "/" + blocked), withIntermediateDirectories: true)
            var contents: [String: Data] = [:]
            for file in files where file != blocked {
                contents[file] = Data("previous \(file)".utf8)
                try contents[file]?.write(to: URL(fileURLWithPath: path(name + "/" + file)))
            }
            return contents
        }
    }

    static let train = ["train", "--methods", "sgd", "--steps", "1", "--batch-size", "8", "--train-samples", "16"]
    static let gp = ["example", "gp", "--iterations", "2", "--points", "5"]

    /// (command, files of a run) for both commands that write a run directory.
    static let commands: [([String], [String])] = [
        (train, TrainCommand.outputNames), (gp, GaussianProcessExampleCommand.outputNames),
    ]

    @Test(arguments: commands)
    func aBlockedFileLeavesThePreviousRunUntouched(command: [String], names: [String]) throws {
        let scratch = try Scratch()
        for blocked in names {
            let run = "run-\(blocked)"
            let previous = try scratch.previousRun(run, files: names, blocked: blocked)
            let before = try scratch.listing(run)
            let result = try runNgrad(command + ["--output", scratch.path(run)])
            #expect(result.status == 1, "\(command) \(blocked): \(result.stderr)")
            #expect(result.stderr.contains("--output") && result.stderr.contains(blocked), "\(result.stderr)")
            #expect(result.stdout.isEmpty, "the check runs before the work: \(result.stdout)")
            #expect(try scratch.listing(run) == before, "no new file beside the previous run's")
            for (file, data) in previous {
                #expect(try Data(contentsOf: URL(fileURLWithPath: scratch.path(run + "/" + file))) == data, "\(file)")
            }
        }
    }

    @Test(arguments: commands)
    func unusableDirectoriesFailBeforeTheWork(command: [String], names _: [String]) throws {
        let scratch = try Scratch()
        try Data("a file".utf8).write(to: URL(fileURLWithPath: scratch.path("file")))
        try FileManager.default.createSymbolicLink(atPath: scratch.path("dangling"), withDestinationPath: "missing/dir")
        for (output, status, mention) in [
            (scratch.path("file"), Int32(1), "not a directory"), (scratch.path("file/sub"), 1, "not a directory"),
            (scratch.path("dangling"), 1, "symbolic link to a missing directory"),
            ("", 2, "--output must not be empty"),
        ] {
            let result = try runNgrad(command + ["--output", output])
            #expect(result.status == status, "\(command) '\(output)': \(result.stderr)")
            #expect(result.stderr.contains(mention), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
            #expect(result.stdout.isEmpty, "the check runs before the work")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: scratch.path("file"))) == Data("a file".utf8))
    }

    @Test func aMissingDirectoryIsCreatedAtWriteTimeOnly() throws {
        let scratch = try Scratch()
        let nested = scratch.path("a/b/c")
        let directory = try OutputDirectory(option: "--output", path: nested, names: ["x.csv", "y.svg"])
        #expect(!FileManager.default.fileExists(atPath: scratch.path("a")), "the check creates nothing")
        try directory.write(["x.csv": Array("x".utf8), "y.svg": Array("y".utf8)])
        #expect(try scratch.listing("a/b/c") == ["x.csv", "y.svg"])
        #expect(directory.path(of: "x.csv") == nested + "/x.csv")
        // Written again over the previous run: both replaced, nothing left beside them.
        try directory.write(["x.csv": Array("x2".utf8), "y.svg": Array("y2".utf8)])
        #expect(try Data(contentsOf: URL(fileURLWithPath: nested + "/x.csv")) == Data("x2".utf8))
        #expect(try scratch.listing("a/b/c") == ["x.csv", "y.svg"])
    }
}
