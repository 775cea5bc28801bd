import Foundation
import NaturalGradient
import Testing

/// The host BLAS check: OpenBLAS's kernel family judged against the CPU's SIMD level.
@Suite("Host BLAS core check")
struct HostBLASTests {
    static let skylakeFlags: Set<String> = ["sse2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"]

    @Test(
        arguments: [
            // (flags, expected level)
            (Set<String>(), HostSIMDLevel.sse),
            (["sse2", "sse3", "ssse3"], .sse),
            (["sse2", "avx"], .avx),
            (["avx", "avx2"], .avx), // AVX2 without FMA: OpenBLAS's Haswell kernels need both
            (["avx", "avx2", "fma"], .avx2),
            (["avx", "avx2", "fma", "avx512f"], .avx2), // F alone (Knights Landing): no SkylakeX kernels
            (skylakeFlags, .avx512),
        ] as [(Set<String>, HostSIMDLevel)])
    func cpuLevelFromFlags(flags: Set<String>, level: HostSIMDLevel) {
        #expect(HostSIMDLevel(cpuFlags: flags) == level)
    }

    @Test(
        arguments: [
            // (core, CPU level, expected recommended core type; nil: no fallback)
            ("Prescott", HostSIMDLevel.avx512, "SkylakeX" as String?),
            ("Core2", .avx512, "SkylakeX"),
            ("Nehalem", .avx512, "SkylakeX"),
            ("Sandybridge", .avx512, "SkylakeX"),
            ("Haswell", .avx512, "SkylakeX"), // AVX2 kernels on an AVX-512 CPU leave half the width idle
            ("Zen", .avx512, "SkylakeX"),
            ("Prescott", .avx2, "Haswell"),
            ("Nehalem", .avx2, "Haswell"),
            ("Piledriver", .avx2, "Haswell"),
            ("Haswell", .avx2, nil),
            ("Zen", .avx2, nil),
            ("SkylakeX", .avx512, nil),
            ("Cooperlake", .avx512, nil),
            ("sapphirerapids", .avx512, nil), // case-insensitive
            ("Prescott", .avx, nil), // nothing better to run on an AVX-only CPU
            ("Prescott", .sse, nil),
            ("SkylakeX", .avx2, nil), // forced above the CPU: not the fallback this check is about
        ] as [(String, HostSIMDLevel, String?)])
    func coreAgainstCPU(core: String, cpu: HostSIMDLevel, coreType: String?) {
        let assessment = OpenBLASCoreAssessment(core: core, cpuLevel: cpu)
        #expect(assessment.recommendedCoreType == coreType)
        if let coreType {
            let warning = try? #require(assessment.warning)
            #expect(warning?.contains("OPENBLAS_CORETYPE=\(coreType)") == true)
            #expect(warning?.contains(core) == true)
        } else {
            #expect(assessment.warning == nil)
        }
    }

    @Test func unknownAndMissingCores() {
        #expect(OpenBLASCoreAssessment(core: "ARMV8", cpuLevel: .avx512) == .unknownCore("ARMV8"))
        #expect(OpenBLASCoreAssessment(core: nil, cpuLevel: .avx512) == .notOpenBLAS)
        #expect(OpenBLASCoreAssessment(core: "ARMV8", cpuLevel: .avx512).warning == nil)
    }

    @Test func flagsFromCPUInfoText() {
        let text = """
            processor\t: 0
            model name\t: Some CPU
            flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512dq avx512vl
            processor\t: 1
            flags\t\t: fpu sse2
            """
        #expect(
            HostBLAS.cpuFlags(cpuinfo: text) == [
                "fpu", "sse2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl",
            ])
        #expect(HostBLAS.cpuFlags(cpuinfo: "") == [])
        #expect(HostBLAS.cpuFlags(cpuinfo: "flags without colon\n") == [])
    }

    /// This process links LAPACKE (OpenBLAS on the project's Debian set-up): the look-ups find
    /// the library files, and the CPU text given decides the level.
    @Test func thisProcess() throws {
        let blas = HostBLAS.current(
            environment: ["OPENBLAS_CORETYPE": "x", "HOME": "/"], cpuinfo: "flags\t: sse2 avx avx2 fma\n")
        #expect(blas.cpuLevel == .avx2)
        #expect(blas.environment == ["OPENBLAS_CORETYPE": "x"])
        #expect(blas.lapackLibrary != nil)
        if let core = blas.openBLASCore {
            #expect(blas.assessment == OpenBLASCoreAssessment(core: core, cpuLevel: .avx2))
            #expect((blas.openBLASThreads ?? 0) >= 1)
            #expect(blas.summary.contains(core))
        }
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(blas)) as? [String: Any]
        for key in ["lapackLibrary", "openBLASCore", "openBLASThreads", "openBLASConfiguration", "coreMatchesCPU", "warning"] {
            #expect(json?.keys.contains(key) == true, "\(key)")
        }
    }
}
