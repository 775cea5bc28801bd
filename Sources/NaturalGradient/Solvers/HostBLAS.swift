#if canImport(Glibc)
    import Glibc
#endif

/// The widest SIMD instruction set a host CPU offers, or an OpenBLAS kernel family uses.
///
/// Ordered: a kernel family below the CPU's level leaves vector width (and FMA) unused, as
/// when OpenBLAS does not recognise a new CPU and runs its generic `Prescott` kernels.
public enum HostSIMDLevel: Int, Comparable, Sendable, Codable, CustomStringConvertible {
    /// SSE2/SSE3 only (the x86-64 baseline, and OpenBLAS's generic cores).
    case sse = 0
    /// AVX without AVX2/FMA (Sandy Bridge, Bulldozer-class kernels).
    case avx = 1
    /// AVX2 with FMA (Haswell, Zen kernels).
    case avx2 = 2
    /// AVX-512 F/BW/DQ/VL (SkylakeX, Cooperlake, SapphireRapids kernels).
    case avx512 = 3

    /// Compares by width.
    public static func < (lhs: HostSIMDLevel, rhs: HostSIMDLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    /// "SSE", "AVX", "AVX2" or "AVX-512".
    public var description: String {
        switch self {
        case .sse: "SSE"
        case .avx: "AVX"
        case .avx2: "AVX2"
        case .avx512: "AVX-512"
        }
    }

    /// The level of a CPU with these feature flags (as /proc/cpuinfo's `flags` line spells
    /// them). AVX-512 counts only with BW, DQ and VL beside F, as OpenBLAS's SkylakeX kernels
    /// use them; AVX2 only with FMA.
    public init(cpuFlags flags: Set<String>) {
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) {
            self = .avx512
        } else if flags.contains("avx2") && flags.contains("fma") {
            self = .avx2
        } else if flags.contains("avx") {
            self = .avx
        } else {
            self = .sse
        }
    }

    /// The level of an OpenBLAS kernel family (`openblas_get_corename()`, case-insensitive),
    /// or nil for a name outside OpenBLAS 0.3's x86-64 list (another architecture, a newer
    /// release).
    public init?(openBLASCore core: String) {
        switch core.lowercased() {
        case "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington",
            "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "bobcat":
            self = .sse
        case "sandybridge", "bulldozer", "piledriver", "steamroller":
            self = .avx
        case "haswell", "excavator", "zen":
            self = .avx2
        case "skylakex", "cooperlake", "sapphirerapids":
            self = .avx512
        default:
            return nil
        }
    }

    /// The `OPENBLAS_CORETYPE` that runs this level's kernels (nil below AVX2, where the
    /// generic cores are what OpenBLAS has).
    public var openBLASCoreType: String? {
        switch self {
        case .avx512: "SkylakeX"
        case .avx2: "Haswell"
        case .sse, .avx: nil
        }
    }
}

/// Whether OpenBLAS's kernel family fits the CPU it runs on.
public enum OpenBLASCoreAssessment: Equatable, Sendable {
    /// The core uses the CPU's widest SIMD level (or the CPU has nothing wider than AVX).
    case matched
    /// The core is below a CPU with AVX2 or AVX-512 (OpenBLAS did not recognise the CPU and
    /// fell back): dense factorisations and products run several times slower. Setting
    /// `OPENBLAS_CORETYPE=coreType` before the process starts fixes it.
    case fallback(core: String, coreLevel: HostSIMDLevel, cpuLevel: HostSIMDLevel, coreType: String)
    /// The core's name is not in OpenBLAS's x86-64 list: nothing can be said.
    case unknownCore(String)
    /// The host BLAS is not OpenBLAS (or does not export `openblas_get_corename`).
    case notOpenBLAS

    /// Judges `core` against a CPU of `cpuLevel`: a pure function of its arguments.
    public init(core: String?, cpuLevel: HostSIMDLevel) {
        guard let core else {
            self = .notOpenBLAS
            return
        }
        guard let coreLevel = HostSIMDLevel(openBLASCore: core) else {
            self = .unknownCore(core)
            return
        }
        if coreLevel < cpuLevel, let coreType = cpuLevel.openBLASCoreType {
            self = .fallback(core: core, coreLevel: coreLevel, cpuLevel: cpuLevel, coreType: coreType)
        } else {
            self = .matched
        }
    }

    /// The `OPENBLAS_CORETYPE` that fixes a fallback; nil otherwise.
    public var recommendedCoreType: String? {
        if case let .fallback(_, _, _, coreType) = self { coreType } else { nil }
    }

    /// One line saying what is wrong and how to fix it, for a fallback; nil otherwise.
    public var warning: String? {
        guard case let .fallback(core, coreLevel, cpuLevel, coreType) = self else { return nil }
        return "OpenBLAS runs its \(core) kernels (\(coreLevel)) on a CPU with \(cpuLevel) (it did not recognise "
            + "the CPU, or OPENBLAS_CORETYPE names an older core), so host factorisations (Cholesky, Woodbury, "
            + "K-FAC inversions) run several times slower; "
            + "fix: export OPENBLAS_CORETYPE=\(coreType) before starting the process"
    }
}

/// The BLAS and LAPACK the library's host-side float64 factorisations run on (LAPACKE, which
/// Debian backs with OpenBLAS), as found in this process: the library files, OpenBLAS's
/// kernel family, configuration and threads, the CPU's SIMD level and the OpenBLAS variables
/// that were set.
public struct HostBLAS: Sendable, Encodable {
    /// The file that provides LAPACK's `dpotrf_` in this process, or nil where unknown.
    public let lapackLibrary: String?
    /// The file that provides BLAS's `dgemm_`, or nil where unknown.
    public let blasLibrary: String?
    /// `openblas_get_config()`, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX
    /// MAX_THREADS=64"; nil where the BLAS is not OpenBLAS.
    public let openBLASConfiguration: String?
    /// `openblas_get_corename()`, the kernel family in use; nil where not OpenBLAS.
    public let openBLASCore: String?
    /// `openblas_get_num_threads()`; nil where not OpenBLAS.
    public let openBLASThreads: Int?
    /// The CPU's widest SIMD level, from /proc/cpuinfo's flags.
    public let cpuLevel: HostSIMDLevel
    /// The `OPENBLAS_*`, `GOTO_NUM_THREADS` and `OMP_NUM_THREADS` variables in force at
    /// start-up (OpenBLAS reads them once, when it loads).
    public let environment: [String: String]
    /// The core judged against the CPU.
    public let assessment: OpenBLASCoreAssessment

    /// The host BLAS of this process. `environment` is the process's environment (passed in
    /// so that the library never reads it behind a caller's back); `cpuinfo` is the text of
    /// /proc/cpuinfo (nil: read it; unreadable counts as SSE only).
    public static func current(environment: [String: String], cpuinfo: String? = nil) -> HostBLAS {
        let flags = cpuFlags(cpuinfo: cpuinfo ?? readCPUInfo())
        let level = HostSIMDLevel(cpuFlags: flags)
        let core = openBLASString("openblas_get_corename")
        var threads: Int?
        if let symbol = lookUp("openblas_get_num_threads") {
            threads = Int(unsafeBitCast(symbol, to: (@convention(c) () -> Int32).self)())
        }
        let relevant = environment.filter {
            $0.key.hasPrefix("OPENBLAS_") || $0.key == "GOTO_NUM_THREADS" || $0.key == "OMP_NUM_THREADS"
        }
        return HostBLAS(
            lapackLibrary: libraryPath(of: "dpotrf_"), blasLibrary: libraryPath(of: "dgemm_"),
            openBLASConfiguration: openBLASString("openblas_get_config"), openBLASCore: core,
            openBLASThreads: threads, cpuLevel: level, environment: relevant,
            assessment: OpenBLASCoreAssessment(core: core, cpuLevel: level))
    }

    /// The flags of the first `flags` line of a /proc/cpuinfo text (empty where there is none).
    public static func cpuFlags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }

    enum CodingKeys: String, CodingKey {
        case lapackLibrary, blasLibrary, openBLASConfiguration, openBLASCore, openBLASThreads, cpuLevel,
            environment, coreMatchesCPU, recommendedCoreType, warning
    }

    /// The fields, with the assessment as `coreMatchesCPU` (true, false, or null where it
    /// cannot be judged), `recommendedCoreType` and `warning`.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(lapackLibrary, forKey: .lapackLibrary)
        try container.encode(blasLibrary, forKey: .blasLibrary)
        try container.encode(openBLASConfiguration, forKey: .openBLASConfiguration)
        try container.encode(openBLASCore, forKey: .openBLASCore)
        try container.encode(openBLASThreads, forKey: .openBLASThreads)
        try container.encode(cpuLevel.description, forKey: .cpuLevel)
        try container.encode(environment, forKey: .environment)
        let matches: Bool? =
            switch assessment {
            case .matched: true
            case .fallback: false
            case .unknownCore, .notOpenBLAS: nil
            }
        try container.encode(matches, forKey: .coreMatchesCPU)
        try container.encode(assessment.recommendedCoreType, forKey: .recommendedCoreType)
        try container.encode(assessment.warning, forKey: .warning)
    }

    /// One line for a human: library, core, threads and the CPU's level.
    public var summary: String {
        let library = lapackLibrary ?? "unknown LAPACK"
        guard let core = openBLASCore else { return "\(library) (not OpenBLAS; CPU \(cpuLevel))" }
        let version = openBLASConfiguration?.split(separator: " ").prefix(2).joined(separator: " ") ?? "OpenBLAS"
        let forced = environment["OPENBLAS_CORETYPE"].map { ", OPENBLAS_CORETYPE=\($0)" } ?? ""
        return "\(version) via \(library): core \(core)\(forced), \(openBLASThreads.map(String.init) ?? "?") threads, "
            + "CPU \(cpuLevel)"
    }
}

// MARK: - Looking symbols up in this process

/// A symbol from the libraries loaded into this process (LAPACKE pulls in LAPACK and BLAS),
/// or nil: looked up at run time, so that a host BLAS other than OpenBLAS still links.
private func lookUp(_ name: String) -> UnsafeMutableRawPointer? {
    #if canImport(Glibc)
        guard let process = dlopen(nil, RTLD_NOW) else { return nil }
        return dlsym(process, name)
    #else
        return nil
    #endif
}

/// A `char* f(void)` of OpenBLAS's as a Swift string, or nil where it is missing.
private func openBLASString(_ name: String) -> String? {
    guard let symbol = lookUp(name) else { return nil }
    let function = unsafeBitCast(symbol, to: (@convention(c) () -> UnsafePointer<CChar>?).self)
    return function().map { String(cString: $0) }
}

/// The path of the loaded file that defines `symbol`: the /proc/self/maps mapping that holds
/// its address (glibc's `dladdr` needs `_GNU_SOURCE`, which Swift's Glibc module lacks).
private func libraryPath(of symbol: String) -> String? {
    guard let address = lookUp(symbol).map({ UInt(bitPattern: $0) }) else { return nil }
    return mappedFile(containing: address, maps: readText("/proc/self/maps"))
}

/// The file of the /proc/<pid>/maps line whose range holds `address` ("start-end perms
/// offset device inode path"), or nil.
private func mappedFile(containing address: UInt, maps: String) -> String? {
    for line in maps.split(separator: "\n") {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count == 6 else { continue }
        let path = fields[5].drop { $0 == " " }
        guard path.hasPrefix("/") else { continue }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16) else {
            continue
        }
        if start <= address && address < end { return String(path) }
    }
    return nil
}

/// /proc/cpuinfo's text, or "" where it cannot be read (not Linux).
private func readCPUInfo() -> String { readText("/proc/cpuinfo") }

/// A /proc file's text (at most 4 MiB: cpuinfo repeats per core and its first block, with
/// the flags, comes first), or "" where it cannot be read.
private func readText(_ path: String) -> String {
    #if canImport(Glibc)
        guard let file = fopen(path, "r") else { return "" }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count < 4 << 20 {
            let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    #else
        return ""
    #endif
}
