import Foundation
import Testing

/// `ngrad devices` and `ngrad kernels` as a user runs them.
@Suite("ngrad devices and kernels")
struct DiagnosticsCommandTests {
    @Test func devicesAsTableAndJSON() throws {
        let table = try runNgrad(["devices"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("* default device"))
        let json = try runNgrad(["devices", "--json"])
        #expect(json.status == 0)
        let devices = try #require(
            try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(!devices.isEmpty)
        #expect(devices.contains { $0["isDefault"] as? Bool == true })
        #expect(devices.allSatisfy { ($0["maxWorkGroupSize"] as? Int ?? 0) > 0 && $0["name"] is String })
    }

    /// Every device entry carries the host BLAS; forcing OpenBLAS's generic core on a CPU
    /// with AVX2 or AVX-512 prints the warning with the fix (the core is what OpenBLAS
    /// reports, so the check holds whichever CPU runs the test).
    @Test func devicesReportTheHostBLASAndWarnOnAGenericCore() throws {
        let json = try runNgrad(["devices", "--json"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(json.status == 0, "\(json.stderr)")
        let devices = try #require(
            try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        let blas = try #require(devices.first?["hostBLAS"] as? [String: Any])
        for key in [
            "lapackLibrary", "blasLibrary", "openBLASCore", "openBLASThreads", "openBLASConfiguration",
            "cpuLevel", "environment", "coreMatchesCPU", "recommendedCoreType", "warning",
        ] {
            #expect(blas.keys.contains(key), "\(key) missing from \(blas)")
        }
        #expect((blas["environment"] as? [String: String])?["OPENBLAS_CORETYPE"] == "Prescott")
        let core = try #require(blas["openBLASCore"] as? String, "the host BLAS is not OpenBLAS")
        #expect(core == "Prescott")
        let cpu = blas["cpuLevel"] as? String
        let table = try runNgrad(["devices"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(table.stdout.contains("host BLAS:") && table.stdout.contains("core Prescott"), "\(table.stdout)")
        if cpu == "AVX2" || cpu == "AVX-512" {
            let fix = "OPENBLAS_CORETYPE=\(cpu == "AVX2" ? "Haswell" : "SkylakeX")"
            #expect(blas["coreMatchesCPU"] as? Bool == false)
            #expect(blas["recommendedCoreType"] as? String == (cpu == "AVX2" ? "Haswell" : "SkylakeX"))
            for output in [json.stderr, table.stderr] {
                #expect(output.contains("warning:") && output.contains("Prescott") && output.contains(fix), "\(output)")
            }
            #expect(table.stdout.contains(fix))
        } else {
            #expect(!json.stderr.contains("warning:"))
        }
        // The core the CPU is recognised as carries no warning (on this project's machines).
        let plain = try runNgrad(["devices"], environment: ["OPENBLAS_CORETYPE": cpu == "AVX-512" ? "SkylakeX" : "Haswell"])
        if cpu == "AVX2" || cpu == "AVX-512" { #expect(!plain.stderr.contains("warning:"), "\(plain.stderr)") }
    }

    @Test func kernelsCompileEveryFamily() throws {
        let result = try runNgrad(["kernels", "--precision", "float", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        let files = Set(rows.compactMap { $0["file"] as? String })
        #expect(
            files == [
                "Vector.cl", "Reduction.cl", "FisherAccumulation.cl", "CurvatureProducts.cl", "Kronecker.cl",
                "SimilarityFactors.cl", "ConjugateGradient.cl",
            ])
        #expect(rows.allSatisfy { ($0["maxWorkGroupSize"] as? Int ?? 0) > 0 })
    }

    @Test func aBrokenKernelPrintsItsLogAndExitsOne() throws {
        let path = NSTemporaryDirectory() + "ngrad-broken-\(UInt32.random(in: 0...UInt32.max)).cl"
        try "__kernel void broken(__global float* x) { x[0] = not_declared; }\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try runNgrad(["kernels", "--source", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("CL_BUILD_PROGRAM_FAILURE"))
        #expect(result.stderr.contains("not_declared"))
        #expect(result.stderr.contains("build log"))
    }

    @Test func usageErrorsExitTwoOnOneLine() throws {
        for arguments in [
            ["kernels", "--device", "no-such-device"], ["devices", "--bogus"], ["frobnicate"],
            ["kernels", "--precision", "half"],
        ] {
            let result = try runNgrad(arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1, "\(result.stderr)")
        }
        for arguments in [["--help"], ["devices", "--help"], ["kernels", "--version"], ["solve", "--version"]] {
            #expect(try runNgrad(arguments).status == 0, "\(arguments)")
        }
    }

    /// No OpenCL platform at all (the ICD loader pointed at an empty vendors directory) is a
    /// device failure, exit 3, saying how to install one, for the table and for --json.
    @Test func noPlatformSaysHowToInstallOne() throws {
        let empty = NSTemporaryDirectory() + "ngrad-no-vendors-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        for arguments in [["devices"], ["devices", "--json"], ["kernels"]] {
            let result = try runNgrad(arguments, environment: ["OCL_ICD_VENDORS": empty])
            #expect(result.status == 3, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("apt-get install pocl-opencl-icd"), "\(result.stderr)")
            #expect(result.stderr.contains("no OpenCL platform") || arguments[0] != "devices", "\(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
    }

    /// A report that cannot be written to standard output is an error, not a silent exit 0.
    @Test func aFullStandardOutputIsAnError() throws {
        for arguments in [["devices"], ["devices", "--json"], ["kernels", "--precision", "float", "--json"]] {
            let result = try runNgrad(arguments, environment: [:], standardOutput: "/dev/full")
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("standard output") && result.stderr.contains("No space left"), "\(result.stderr)")
        }
    }
}
