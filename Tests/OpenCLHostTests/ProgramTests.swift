import Foundation
import Testing
import NaturalGradientTestSupport

@testable import OpenCLHost

@Suite("Programs, build errors and the program caches")
struct ProgramTests {
    static let source = ProgramSource(
        name: "Twice.cl",
        text: """
            __kernel void twice(const uint n, __global const float* x, __global float* y) {
                const size_t i = get_global_id(0);
                if (i < n) y[i] = 2.0f * x[i];
            }
            """)

    @Test func brokenSourceThrowsTheBuildLog() throws {
        let context = try TestDevice.context()
        let broken = ProgramSource(
            name: "Broken.cl", text: "__kernel void broken(__global float* x) { x[0] = undefined_name; }\n")
        let error = #expect(throws: OpenCLError.self) { try context.buildProgram(broken, options: "-DTILE=7") }
        guard case let .buildFailed(file, options, _, status, log)? = error else {
            Issue.record("expected buildFailed, got \(String(describing: error))")
            return
        }
        #expect(file == "Broken.cl")
        #expect(options.contains("-DTILE=7"))
        #expect(status == -11)
        #expect(log.contains("undefined_name"))
        let message = try #require(error?.description)
        #expect(message.contains("CL_BUILD_PROGRAM_FAILURE"))
        #expect(message.contains("Broken.cl") && message.contains("-DTILE=7") && message.contains("undefined_name"))
    }

    @Test func secondBuildIsAMemoryCacheHit() throws {
        let context = try Context(device: TestDevice.context().device, binaryCachePolicy: .disabled)
        let first = try context.buildProgram(Self.source, options: "-DUNUSED=1")
        let second = try context.buildProgram(Self.source, options: "-DUNUSED=1")
        let otherOptions = try context.buildProgram(Self.source, options: "-DUNUSED=2")
        #expect(first.origin == .compiled)
        #expect(second.origin == .memoryCache)
        #expect(second.program === first.program)
        #expect(otherOptions.origin == .compiled)
        #expect(context.programCacheStatistics == ProgramCacheStatistics(memoryHits: 1, diskHits: 0, compiles: 2))
    }

    @Test func binaryCacheHitsAcrossContextsAndRebuildsCorruptEntries() throws {
        let device = try TestDevice.context().device
        let directory = NSTemporaryDirectory() + "ngrad-binary-cache-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let writer = try Context(device: device, binaryCachePolicy: .directory(directory))
        #expect(try writer.buildProgram(Self.source).origin == .compiled)
        let entry = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first)
        let path = directory + "/" + entry

        let reader = try Context(device: device, binaryCachePolicy: .directory(directory))
        let loaded = try reader.buildProgram(Self.source)
        #expect(loaded.origin == .diskCache)
        try checkTwice(loaded.program, on: reader)

        let original = try #require(FileManager.default.contents(atPath: path))
        let damaged: [(String, Data)] = [
            ("garbage", Data("not a program binary".utf8)),
            ("truncated", original.prefix(original.count / 2)),
            ("flipped checksum", original.prefix(original.count - 1) + Data([original.last.map { $0 ^ 0xFF } ?? 0])),
        ]
        for (label, bytes) in damaged {
            try bytes.write(to: URL(fileURLWithPath: path))
            let context = try Context(device: device, binaryCachePolicy: .directory(directory))
            let rebuilt = try context.buildProgram(Self.source)
            #expect(rebuilt.origin == .compiled, "\(label)")
            #expect(context.programCacheStatistics.rejectedDiskEntries == 1, "\(label)")
            try checkTwice(rebuilt.program, on: context)
        }
    }

    @Test func cacheFileFormatRejectsAnotherKey() {
        let binary: [UInt8] = [1, 2, 3, 4, 5]
        let encoded = BinaryCache.encode(binary, key: "key A")
        #expect(BinaryCache.decode(encoded, key: "key A") == binary)
        #expect(BinaryCache.decode(encoded, key: "key B") == nil)
        #expect(BinaryCache.decode(encoded + [0], key: "key A") == nil)
        #expect(BinaryCache.decode([], key: "key A") == nil)
    }

    /// A store only ever replaces a regular file: a FIFO, a directory or a symbolic link at
    /// an entry's name is left as it is (the entry is not stored), a regular file is replaced.
    @Test func storeNeverReplacesANonRegularFile() throws {
        let directory = NSTemporaryDirectory() + "ngrad-binary-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = BinaryCache(directory: directory)
        func type(_ path: String) -> mode_t {
            var info = stat()
            return lstat(path, &info) == 0 ? info.st_mode & S_IFMT : 0
        }
        #expect(mkfifo(cache.path(for: "fifo"), 0o600) == 0)
        try FileManager.default.createDirectory(atPath: cache.path(for: "directory"), withIntermediateDirectories: true)
        try Data("target".utf8).write(to: URL(fileURLWithPath: directory + "/target"))
        try FileManager.default.createSymbolicLink(atPath: cache.path(for: "link"), withDestinationPath: directory + "/target")
        for (key, expected) in [("fifo", S_IFIFO), ("directory", S_IFDIR), ("link", S_IFLNK)] {
            cache.store(key: key, binary: [1, 2, 3])
            #expect(type(cache.path(for: key)) == expected, "\(key)")
            #expect(cache.load(key: key) == nil || key == "link", "\(key)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/target")) == Data("target".utf8))
        // A regular file (here a stale one) is replaced.
        try Data("stale".utf8).write(to: URL(fileURLWithPath: cache.path(for: "regular")))
        cache.store(key: "regular", binary: [1, 2, 3])
        #expect(cache.load(key: "regular") == [1, 2, 3])
    }

    @Test func defaultCacheDirectoryFollowsTheEnvironment() {
        #expect(BinaryCache.defaultDirectory(environment: ["NGRAD_CACHE_DIR": "/x"]) == "/x")
        #expect(
            BinaryCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "/c", "HOME": "/h"]) == "/c/naturalgradient/kernels")
        #expect(BinaryCache.defaultDirectory(environment: ["HOME": "/h"]) == "/h/.cache/naturalgradient/kernels")
    }

    /// Runs the `twice` kernel at an awkward size and checks every element.
    private func checkTwice(_ program: Program, on context: Context) throws {
        let count = 1000
        let input: [Float] = randomValues(count, seed: 3)
        let x = try Buffer(context: context, copying: input)
        let y = try Buffer<Float>(context: context, count: count)
        try y.fill(.nan)
        let kernel = try program.makeKernel(named: "twice")
        try kernel.setArguments(UInt32(count), x, y)
        try context.enqueue(kernel, globalSize: [roundUp(count, toMultipleOf: 64)], localSize: [64])
        #expect(try y.download() == input.map { 2 * $0 })
    }
}

@Suite("Kernel arguments and launches")
struct KernelTests {
    private func twice() throws -> (Context, Kernel) {
        let context = try TestDevice.context()
        let program = try context.buildProgram(ProgramTests.source).program
        #expect(try program.kernelNames() == ["twice"])
        return (context, try program.makeKernel(named: "twice"))
    }

    @Test func reportsParameterTypesAndInfo() throws {
        let (_, kernel) = try twice()
        #expect(kernel.parameterCount == 3)
        if let types = kernel.parameterTypes {
            #expect(types == ["uint", "float*", "float*"])
        }
        #expect(kernel.info.maxWorkGroupSize > 0)
        #expect(kernel.info.preferredWorkGroupMultiple > 0)
    }

    @Test func rejectsMistypedArguments() throws {
        let (context, kernel) = try twice()
        try #require(kernel.parameterTypes != nil, "the driver keeps no argument information")
        let floats = try Buffer<Float>(context: context, count: 4)
        #expect(throws: OpenCLError.self) { try kernel.setArgument(0, Int32(4)) }
        #expect(throws: OpenCLError.self) { try kernel.setArgument(0, UInt64(4)) }
        #expect(throws: OpenCLError.self) { try kernel.setArgument(1, Float(1)) }
        if context.device.supportsFloat64 {
            let doubles = try Buffer<Double>(context: context, count: 4)
            let error = #expect(throws: OpenCLError.self) { try kernel.setArgument(2, doubles) }
            #expect(error?.description.contains("declares float*") == true)
        }
        #expect(throws: OpenCLError.self) { try kernel.setArgument(3, floats) }
        #expect(throws: OpenCLError.self) { try kernel.setArguments(UInt32(4), floats) }
    }

    @Test func rejectsBadLaunches() throws {
        let (context, kernel) = try twice()
        let buffer = try Buffer<Float>(context: context, count: 8)
        try kernel.setArgument(0, UInt32(8))
        // Parameters 1 and 2 are unset.
        #expect(throws: OpenCLError.self) { try context.enqueue(kernel, globalSize: [8], localSize: [8]) }
        try kernel.setArguments(UInt32(8), buffer, buffer)
        #expect(throws: OpenCLError.self) { try context.enqueue(kernel, globalSize: [10], localSize: [8]) }
        #expect(throws: OpenCLError.self) { try context.enqueue(kernel, globalSize: [0]) }
        #expect(throws: OpenCLError.self) { try context.enqueue(kernel, globalSize: [8], localSize: [8, 1]) }
        let tooLarge = kernel.info.maxWorkGroupSize * 2
        #expect(throws: OpenCLError.self) { try context.enqueue(kernel, globalSize: [tooLarge], localSize: [tooLarge]) }
    }

    @Test func eventsCarryProfilingTimes() throws {
        let (context, kernel) = try twice()
        let buffer = try Buffer<Float>(context: context, copying: randomValues(4097, seed: 1))
        try kernel.setArguments(UInt32(4097), buffer, buffer)
        let event = try context.enqueue(kernel, globalSize: [roundUp(4097, toMultipleOf: 128)], localSize: [128])
        let times = try event.profilingTimes()
        #expect(times.queued <= times.start)
        #expect(times.start <= times.end)
    }

    @Test func statusCodesHaveSymbolicNames() {
        #expect(OpenCLStatus.name(of: -5) == "CL_OUT_OF_RESOURCES")
        #expect(OpenCLStatus.name(of: -11) == "CL_BUILD_PROGRAM_FAILURE")
        #expect(OpenCLStatus.name(of: -54) == "CL_INVALID_WORK_GROUP_SIZE")
        #expect(OpenCLStatus.name(of: 12345) == "CL_UNKNOWN_ERROR")
        let error = OpenCLError.callFailed(function: "clEnqueueNDRangeKernel", status: -5, object: "kernel 'axpy'")
        #expect(error.description == "clEnqueueNDRangeKernel failed with CL_OUT_OF_RESOURCES (-5) on kernel 'axpy'")
    }
}
