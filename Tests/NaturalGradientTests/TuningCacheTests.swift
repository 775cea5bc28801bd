import Foundation
import Testing
import TestSupport

@testable import NaturalGradient

/// The tuning cache: where it lives, a round trip through its file, files it must ignore,
/// and that `KernelConfiguration` applies what it holds.
@Suite("Tuning cache")
struct TuningCacheTests {
    private func temporaryFile() -> URL {
        URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("ngrad-tuning-\(UInt32.random(in: 0...UInt32.max))/tuning.json")
    }

    @Test func locationFollowsTheEnvironment() {
        #expect(TuningCache.location(environment: ["NGRAD_TUNING_CACHE": "/x/t.json"])?.path == "/x/t.json")
        for off in ["off", "OFF", "none", "0", "disabled"] {
            #expect(TuningCache.location(environment: ["NGRAD_TUNING_CACHE": off]) == nil)
            #expect(TuningCache(environment: ["NGRAD_TUNING_CACHE": off]).state == .disabled)
        }
        #expect(
            TuningCache.location(environment: ["XDG_CACHE_HOME": "/c", "HOME": "/h"])?.path
                == "/c/naturalgradient/tuning.json")
        #expect(
            TuningCache.location(environment: ["HOME": "/h"])?.path == "/h/.cache/naturalgradient/tuning.json")
        #expect(
            TuningCache.location(environment: ["NGRAD_TUNING_CACHE": "/e.json", "XDG_CACHE_HOME": "/c"])?.path
                == "/e.json")
    }

    @Test func roundTripKeepsOtherEntriesAndReplacesItsOwn() throws {
        let device = try TestDevice.context().device
        let file = temporaryFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        let empty = TuningCache(location: file)
        #expect(empty.state == .missing)
        #expect(empty.defines(for: device, family: .fisherAccumulation, element: "float").isEmpty)

        var cache = try empty.storing(["RM": 4, "VW": 8], for: device, family: .fisherAccumulation, element: "float")
        cache = try cache.storing(["WGS": 64, "GROUPS": 3], for: device, family: .fisherProducts, element: "float")
        cache = try cache.storing(["RM": 8, "VW": 16], for: device, family: .fisherAccumulation, element: "float")
        let reread = TuningCache(location: file)
        #expect(reread.state == .loaded)
        #expect(reread.entries.count == 2)
        #expect(reread.defines(for: device, family: .fisherAccumulation, element: "float") == ["RM": 8, "VW": 16])
        #expect(reread.defines(for: device, family: .fisherProducts, element: "float") == ["WGS": 64, "GROUPS": 3])
        #expect(reread.defines(for: device, family: .fisherAccumulation, element: "double").isEmpty)

        // Applied by KernelConfiguration, minus host-only parameters, under explicit overrides.
        let tuned = KernelConfiguration(.fisherAccumulation, element: Float.self, device: device, tuningCache: reread)
        #expect(tuned.defines["RM"] == 8 && tuned.defines["VW"] == 16)
        let overridden = KernelConfiguration(
            .fisherAccumulation, element: Float.self, device: device, defines: ["RM": 2], tuningCache: reread)
        #expect(overridden.defines["RM"] == 2 && overridden.defines["VW"] == 16)
        let products = KernelConfiguration(.fisherProducts, element: Float.self, device: device, tuningCache: reread)
        #expect(products.defines["WGS"] == 64)
        #expect(products.defines["GROUPS"] == nil)
        let untuned = KernelConfiguration(
            .fisherAccumulation, element: Float.self, device: device, tuningCache: TuningCache(location: nil))
        #expect(untuned.defines == KernelConfiguration.deviceDefaults(.fisherAccumulation, element: Float.self, device: device))
    }

    @Test func entriesForAnotherDeviceOrDriverDoNotApply() throws {
        let device = try TestDevice.context().device
        let file = temporaryFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        let entries = [
            TuningCache.Entry(
                device: device.name, driverVersion: device.driverVersion + "-old", family: "FisherAccumulation.cl",
                element: "float", defines: ["RM": 2, "VW": 4]),
            TuningCache.Entry(
                device: "another device", driverVersion: device.driverVersion, family: "FisherAccumulation.cl",
                element: "float", defines: ["RM": 2, "VW": 4]),
        ]
        try write(entries, to: file)
        let cache = TuningCache(location: file)
        #expect(cache.state == .loaded)
        #expect(cache.defines(for: device, family: .fisherAccumulation, element: "float").isEmpty)
    }

    @Test func corruptForeignAndInvalidFilesAreIgnored() throws {
        let device = try TestDevice.context().device
        let file = temporaryFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let defaults = KernelConfiguration.deviceDefaults(.fisherAccumulation, element: Float.self, device: device)

        for text in ["{\"format\": \"naturalgradient-tun", "\u{0}\u{1}binary", "[1, 2, 3]",
                     "{\"format\": \"something-else\", \"version\": 1, \"entries\": []}",
                     "{\"format\": \"naturalgradient-tuning\", \"version\": 99, \"entries\": []}"] {
            try Data(text.utf8).write(to: file)
            let cache = TuningCache(location: file)
            guard case .ignored = cache.state else {
                Issue.record("\(text) was not ignored: \(cache.state)")
                continue
            }
            #expect(cache.entries.isEmpty)
            let configuration = KernelConfiguration(
                .fisherAccumulation, element: Float.self, device: device, tuningCache: cache)
            #expect(configuration.defines == defaults)
            // Storing replaces the ignored file with a valid one.
            let stored = try cache.storing(["RM": 4, "VW": 4], for: device, family: .fisherAccumulation, element: "float")
            #expect(stored.state == .loaded && stored.entries.count == 1)
        }

        // Values outside the kernel's space (RM not dividing VW, odd work-groups, unknown keys).
        let invalid: [(String, [String: Int])] = [
            ("FisherAccumulation.cl", ["RM": 3, "VW": 16]), ("FisherAccumulation.cl", ["RM": 16, "VW": 8]),
            ("FisherProducts.cl", ["WGS": 100]), ("FisherProducts.cl", ["WGS": 1 << 20]),
            ("FisherProducts.cl", ["KB": 4]), ("FisherProducts.cl", ["GROUPS": 0]),
        ]
        for (family, defines) in invalid {
            try write(
                [TuningCache.Entry(
                    device: device.name, driverVersion: device.driverVersion, family: family, element: "float",
                    defines: defines)], to: file)
            let cache = TuningCache(location: file)
            let kernelFamily = try #require(KernelFamily(rawValue: family))
            #expect(cache.defines(for: device, family: kernelFamily, element: "float").isEmpty, "\(defines)")
            #expect(throws: NaturalGradientError.self) {
                try cache.storing(defines, for: device, family: kernelFamily, element: "float")
            }
        }
    }

    @Test func tunedParametersStillComputeTheRightAccumulation() throws {
        let context = try TestDevice.context()
        let (m, p) = (7, 33)
        let u: [Float] = randomValues(m * p, seed: 77)
        let factor = try CurvatureFactor(matrix: Buffer(context: context, copying: u), rows: m, dimension: p, samples: m)
        for tuning in [
            AccumulationTunables(rows: 2, columns: 4), AccumulationTunables(rows: 4, columns: 8),
            AccumulationTunables(rows: 16, columns: 16),
        ] {
            let output = try Buffer<Float>(context: context, count: p * p)
            try output.fill(.nan)
            try FisherAccumulation<Float>(context: context, tunables: tuning).accumulate(factor, into: output)
            let values = try output.download()
            var worst = 0.0
            for i in 0..<p {
                for j in 0..<p {
                    var sum = 0.0
                    for r in 0..<m { sum += Double(u[r * p + i]) * Double(u[r * p + j]) }
                    worst = max(worst, abs(Double(values[i * p + j]) - sum / Double(m)))
                }
            }
            #expect(worst < 1e-5, "\(tuning)")
        }
    }

    private func write(_ entries: [TuningCache.Entry], to file: URL) throws {
        struct File: Encodable {
            let format = TuningCache.formatName
            let version = TuningCache.formatVersion
            let entries: [TuningCache.Entry]
        }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONEncoder().encode(File(entries: entries)).write(to: file)
    }
}
