import Foundation
import NaturalGradient

#if canImport(Glibc)
    import Glibc
#endif

/// The OpenBLAS peer's kernel family, checked before anything is measured.
///
/// A ratio against an OpenBLAS that did not recognise the CPU and runs its generic kernels
/// is not a result (issue 17: on an AVX-512 Xeon, Debian's 0.3.21 chose `Prescott`, SGEMM ran
/// at 12.5 GFLOP/s instead of 221, and the table said 2.8x where the truth was 0.53x).
/// OpenBLAS reads `OPENBLAS_CORETYPE` once, when it loads, so the fix cannot be applied in
/// process: the suite re-runs itself (execve of /proc/self/exe, same arguments) with the
/// core that fits the CPU. Where that fails, or the new process still runs a generic core,
/// every ratio against OpenBLAS is withheld and the header says why.
struct PeerCore: Encodable {
    /// The kernel family OpenBLAS runs in this process (nil: the BLAS is not OpenBLAS).
    let core: String?
    /// `openblas_get_config()`.
    let configuration: String?
    /// `openblas_get_num_threads()`.
    let threads: Int?
    /// The CPU's widest SIMD level ("AVX-512", "AVX2", ...).
    let cpuLevel: String
    /// `OPENBLAS_CORETYPE` as the suite was started: nil where unset.
    let coreTypeAtLaunch: String?
    /// The OpenBLAS variables (`OPENBLAS_*`, `OMP_NUM_THREADS`, ...) in force in this process.
    let environment: [String: String]
    /// Whether this process is the re-run with a corrected `OPENBLAS_CORETYPE`.
    let reExecuted: Bool
    /// The `OPENBLAS_CORETYPE` the suite set for its re-run; nil where it did not re-run.
    let reExecCoreType: String?
    /// Whether the core fits the CPU (nil where it cannot be judged: not OpenBLAS, a name
    /// outside OpenBLAS's x86-64 list).
    let coreMatchesCPU: Bool?
    /// True where ratios against OpenBLAS are not reported (its core is still generic).
    let ratiosWithheld: Bool
    /// One line: what was found and what the suite did.
    let verdict: String

    /// The environment variable that marks the re-run, holding the launch's
    /// `OPENBLAS_CORETYPE` (or `unset`), so that the re-run records it and never loops.
    static let marker = "NGRAD_BENCHMARKS_REEXEC_FROM"

    /// The check, done once per process on first use (before any measurement): may replace
    /// this process by its re-run, in which case it does not return.
    static let current: PeerCore = check(environment: ProcessInfo.processInfo.environment)

    private static func check(environment: [String: String]) -> PeerCore {
        let blas = HostBLAS.current(environment: environment)
        let reRun = environment[marker]
        let launchCoreType = reRun.map { $0 == "unset" ? nil : $0 } ?? environment["OPENBLAS_CORETYPE"]
        func make(reExecCoreType: String?, withheld: Bool, verdict: String) -> PeerCore {
            let matches: Bool? =
                switch blas.assessment {
                case .matched: true
                case .fallback: false
                case .unknownCore, .notOpenBLAS: nil
                }
            return PeerCore(
                core: blas.openBLASCore, configuration: blas.openBLASConfiguration, threads: blas.openBLASThreads,
                cpuLevel: blas.cpuLevel.description, coreTypeAtLaunch: launchCoreType, environment: blas.environment,
                reExecuted: reRun != nil, reExecCoreType: reExecCoreType, coreMatchesCPU: matches,
                ratiosWithheld: withheld, verdict: verdict)
        }
        let core = blas.openBLASCore ?? "?"
        switch blas.assessment {
        case .matched:
            if reRun != nil {
                return make(
                    reExecCoreType: environment["OPENBLAS_CORETYPE"], withheld: false,
                    verdict: "re-ran with OPENBLAS_CORETYPE=\(core) (the launch's core was generic for this "
                        + "\(blas.cpuLevel) CPU); ratios against OpenBLAS are reported")
            }
            return make(
                reExecCoreType: nil, withheld: false,
                verdict: "core \(core) fits this \(blas.cpuLevel) CPU; ratios against OpenBLAS are reported")
        case .unknownCore(let name):
            return make(
                reExecCoreType: nil, withheld: false,
                verdict: "core \(name) is not in OpenBLAS's x86-64 list: not checked against the CPU")
        case .notOpenBLAS:
            return make(reExecCoreType: nil, withheld: false, verdict: "the host BLAS is not OpenBLAS: core not checked")
        case .fallback(_, _, let cpuLevel, let coreType):
            if reRun != nil {
                return make(
                    reExecCoreType: environment["OPENBLAS_CORETYPE"], withheld: true,
                    verdict: "re-ran with OPENBLAS_CORETYPE=\(environment["OPENBLAS_CORETYPE"] ?? "?") and OpenBLAS "
                        + "still runs its generic \(core) kernels on this \(cpuLevel) CPU: ratios against OpenBLAS "
                        + "are withheld")
            }
            FileHandle.standardError.write(
                Data(
                    ("OpenBLAS runs its generic \(core) kernels on this \(cpuLevel) CPU: re-running the suite with "
                        + "OPENBLAS_CORETYPE=\(coreType)\n").utf8))
            let failure = reExecute(
                setting: ["OPENBLAS_CORETYPE": coreType, marker: environment["OPENBLAS_CORETYPE"] ?? "unset"],
                environment: environment)
            return make(
                reExecCoreType: nil, withheld: true,
                verdict: "OpenBLAS runs its generic \(core) kernels on this \(cpuLevel) CPU and the re-run with "
                    + "OPENBLAS_CORETYPE=\(coreType) failed (\(failure)): ratios against OpenBLAS are withheld; "
                    + "run the suite with OPENBLAS_CORETYPE=\(coreType)")
        }
    }

    /// Replaces this process by itself with `setting` added to `environment`; returns only on
    /// failure, with the reason.
    private static func reExecute(setting: [String: String], environment: [String: String]) -> String {
        #if canImport(Glibc)
            fflush(nil) // every stream: nothing buffered may be lost or printed twice
            let merged = environment.merging(setting) { _, new in new }
            let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
            let variables = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer {
                for pointer in arguments + variables { free(pointer) }
            }
            execve("/proc/self/exe", arguments, variables)
            return String(cString: strerror(errno))
        #else
            return "execve is not available on this platform"
        #endif
    }

    /// The table header's line.
    var header: String {
        let launch = coreTypeAtLaunch.map { "OPENBLAS_CORETYPE=\($0) at launch" } ?? "OPENBLAS_CORETYPE unset at launch"
        let others = environment.filter { $0.key != "OPENBLAS_CORETYPE" }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }
        return "core \(core ?? "?") (CPU \(cpuLevel); \(launch)\(others.isEmpty ? "" : "; " + others.joined(separator: ", ")))"
            + "\n          \(verdict)"
    }
}
