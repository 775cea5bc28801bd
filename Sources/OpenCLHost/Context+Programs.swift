import COpenCL

/// Where a program returned by `Context.buildProgram` came from.
public enum ProgramOrigin: String, Sendable {
    /// Found in this context's in-process cache.
    case memoryCache = "memory cache"
    /// Loaded from the on-disk binary cache and linked.
    case diskCache = "disk cache"
    /// Compiled from source.
    case compiled = "compiled"
}

/// A program with how it was obtained and how long that took.
public struct BuiltProgram: Sendable {
    /// The program.
    public let program: Program
    /// Cache hit (memory or disk) or compile.
    public let origin: ProgramOrigin
    /// Wall time of the lookup and any build.
    public let duration: Duration
}

/// Counters of the in-process program cache, for diagnostics and tests.
public struct ProgramCacheStatistics: Sendable, Equatable {
    /// Lookups answered from memory.
    public var memoryHits = 0
    /// Lookups answered from the on-disk binary cache.
    public var diskHits = 0
    /// Lookups that compiled from source.
    public var compiles = 0
    /// Disk entries found unusable (corrupt, truncated, rejected by the driver) and rebuilt.
    public var rejectedDiskEntries = 0
}

struct ProgramKey: Hashable {
    let sourceName: String
    let sourceHash: UInt64
    let options: String
}

struct ProgramCacheState {
    var programs: [ProgramKey: Program] = [:]
    var statistics = ProgramCacheStatistics()
}

// MARK: - Building programs

extension Context {
    /// Options every build gets: argument info, so `Kernel` can check argument types.
    static let baseBuildOptions = "-cl-kernel-arg-info"

    /// The program for `source` built with `options`, from the in-process cache, the
    /// on-disk binary cache, or the compiler, in that order. A failed compile throws
    /// `OpenCLError.buildFailed` with the file name, options and the whole build log.
    public func buildProgram(_ source: ProgramSource, options: String = "") throws -> BuiltProgram {
        let clock = ContinuousClock()
        let start = clock.now
        let fullOptions = [Self.baseBuildOptions, options].filter { !$0.isEmpty }.joined(separator: " ")
        let key = ProgramKey(sourceName: source.name, sourceHash: source.hash, options: fullOptions)
        let cached = programs.withLock { state -> Program? in
            guard let program = state.programs[key] else { return nil }
            state.statistics.memoryHits += 1
            return program
        }
        if let cached {
            return BuiltProgram(program: cached, origin: .memoryCache, duration: clock.now - start)
        }

        let diskKey = binaryCacheKey(source: source, options: fullOptions)
        var origin = ProgramOrigin.compiled
        var program: Program?
        if let binaryCache, let binary = binaryCache.load(key: diskKey) {
            program = try? linkBinary(binary, source: source, options: fullOptions)
            if program == nil {
                binaryCache.remove(key: diskKey)
                programs.withLock { $0.statistics.rejectedDiskEntries += 1 }
            } else {
                origin = .diskCache
            }
        } else if let binaryCache, binaryCache.hasUnreadableEntry(key: diskKey) {
            binaryCache.remove(key: diskKey)
            programs.withLock { $0.statistics.rejectedDiskEntries += 1 }
        }
        let built = try program ?? compile(source, options: fullOptions)
        if origin == .compiled, let binaryCache, let binary = try? built.binary(), !binary.isEmpty {
            binaryCache.store(key: diskKey, binary: binary)
        }
        let winner = programs.withLock { state -> Program in
            if origin == .compiled { state.statistics.compiles += 1 } else { state.statistics.diskHits += 1 }
            if let existing = state.programs[key] { return existing }
            state.programs[key] = built
            return built
        }
        return BuiltProgram(program: winner, origin: origin, duration: clock.now - start)
    }

    /// The program cache's counters so far.
    public var programCacheStatistics: ProgramCacheStatistics {
        programs.withLock { $0.statistics }
    }

    /// The disk cache key: everything that changes the binary (DESIGN.md section 8).
    func binaryCacheKey(source: ProgramSource, options: String) -> String {
        [
            "source=\(source.name)#\(source.hash.hexadecimal)#\(source.text.utf8.count)",
            "options=\(options)",
            "platform=\(device.platform.name) \(device.platform.version)",
            "device=\(device.name)",
            "driver=\(device.driverVersion)",
        ].joined(separator: "\n")
    }

    private func compile(_ source: ProgramSource, options: String) throws -> Program {
        var status: cl_int = CL_SUCCESS
        let handle: cl_program? = source.text.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            return clCreateProgramWithSource(context, 1, &pointer, nil, &status)
        }
        guard let handle, status == CL_SUCCESS else {
            throw OpenCLError.callFailed(function: "clCreateProgramWithSource", status: status, object: source.name)
        }
        let program = Program(program: handle, source: source, options: options, device: device)
        try build(program)
        return program
    }

    private func linkBinary(_ binary: [UInt8], source: ProgramSource, options: String) throws -> Program {
        var status: cl_int = CL_SUCCESS
        var binaryStatus: cl_int = CL_SUCCESS
        var deviceID: cl_device_id? = device.id.raw
        let handle: cl_program? = binary.withUnsafeBufferPointer { bytes in
            var length = bytes.count
            var pointer: UnsafePointer<UInt8>? = bytes.baseAddress
            return clCreateProgramWithBinary(context, 1, &deviceID, &length, &pointer, &binaryStatus, &status)
        }
        guard let handle, status == CL_SUCCESS, binaryStatus == CL_SUCCESS else {
            if let handle { clReleaseProgram(handle) }
            throw OpenCLError.callFailed(
                function: "clCreateProgramWithBinary", status: status != CL_SUCCESS ? status : binaryStatus,
                object: source.name)
        }
        let program = Program(program: handle, source: source, options: options, device: device)
        try build(program)
        return program
    }

    private func build(_ program: Program) throws {
        var deviceID: cl_device_id? = device.id.raw
        let status = clBuildProgram(program.program, 1, &deviceID, program.options, nil, nil)
        guard status == CL_SUCCESS else {
            let log = (try? buildLog(of: program)) ?? "(the driver returned no build log)"
            throw OpenCLError.buildFailed(
                file: program.source.name, options: program.options, device: device.name, status: status, log: log)
        }
    }

    private func buildLog(of program: Program) throws -> String {
        try InfoQuery(function: "clGetProgramBuildInfo", object: program.source.name) { size, value, returned in
            clGetProgramBuildInfo(
                program.program, self.device.id.raw, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, value, returned)
        }.string()
    }
}
