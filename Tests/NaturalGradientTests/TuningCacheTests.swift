import Foundation
import Synchronization
import Testing
import NaturalGradientTestSupport

@_spi(Benchmarks) @testable import NaturalGradient

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
        cache = try cache.storing(["WGS": 64, "GROUPS": 3], for: device, family: .curvatureProducts, element: "float")
        cache = try cache.storing(["RM": 8, "VW": 16], for: device, family: .fisherAccumulation, element: "float")
        let reread = TuningCache(location: file)
        #expect(reread.state == .loaded)
        #expect(reread.entries.count == 2)
        #expect(reread.defines(for: device, family: .fisherAccumulation, element: "float") == ["RM": 8, "VW": 16])
        #expect(reread.defines(for: device, family: .curvatureProducts, element: "float") == ["WGS": 64, "GROUPS": 3])
        #expect(reread.defines(for: device, family: .fisherAccumulation, element: "double").isEmpty)

        // Applied by KernelConfiguration, minus host-only parameters, under explicit overrides.
        let tuned = KernelConfiguration(.fisherAccumulation, element: Float.self, device: device, tuningCache: reread)
        #expect(tuned.defines["RM"] == 8 && tuned.defines["VW"] == 16)
        let overridden = KernelConfiguration(
            .fisherAccumulation, element: Float.self, device: device, defines: ["RM": 2], tuningCache: reread)
        #expect(overridden.defines["RM"] == 2 && overridden.defines["VW"] == 16)
        let products = KernelConfiguration(.curvatureProducts, element: Float.self, device: device, tuningCache: reread)
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

    /// Entries written before `FisherProducts.cl` became `CurvatureProducts.cl` (and
    /// `OutputMetrics.cl` `SimilarityFactors.cl`) still apply, and a store replaces them.
    @Test func entriesUnderARenamedKernelFileStillApply() throws {
        let device = try TestDevice.context().device
        let file = temporaryFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        try write(
            [
                TuningCache.Entry(
                    device: device.name, driverVersion: device.driverVersion, family: "FisherProducts.cl",
                    element: "float", defines: ["WGS": 64, "GROUPS": 3])
            ], to: file)
        let cache = TuningCache(location: file)
        #expect(cache.state == .loaded)
        #expect(cache.defines(for: device, family: .curvatureProducts, element: "float") == ["WGS": 64, "GROUPS": 3])
        let stored = try cache.storing(["WGS": 32, "GROUPS": 2], for: device, family: .curvatureProducts, element: "float")
        #expect(stored.entries.map(\.family) == ["CurvatureProducts.cl"])
        #expect(stored.defines(for: device, family: .curvatureProducts, element: "float") == ["WGS": 32, "GROUPS": 2])
        #expect(TuningCache.renamedFamilies.values.allSatisfy { KernelFamily(rawValue: $0) != nil })
    }

    @Test func corruptForeignAndInvalidFilesAreIgnored() throws {
        let device = try TestDevice.context().device
        let file = temporaryFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let defaults = KernelConfiguration.deviceDefaults(.fisherAccumulation, element: Float.self, device: device)

        for text in [
            "{\"format\": \"naturalgradient-tun", "\u{0}\u{1}binary", "[1, 2, 3]",
            "{\"format\": \"something-else\", \"version\": 1, \"entries\": []}",
            "{\"format\": \"naturalgradient-tuning\", \"version\": 99, \"entries\": []}",
        ] {
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

        // Values outside the kernel's space (a micro-tile too tall, a k-block that is not a
        // power of two, odd work-groups, unknown keys).
        let invalid: [(String, [String: Int])] = [
            ("FisherAccumulation.cl", ["RM": 17, "VW": 16]), ("FisherAccumulation.cl", ["RM": 16, "KC": 3]),
            ("CurvatureProducts.cl", ["WGS": 100]), ("CurvatureProducts.cl", ["WGS": 1 << 20]),
            ("CurvatureProducts.cl", ["KB": 4]), ("CurvatureProducts.cl", ["GROUPS": 0]),
        ]
        for (family, defines) in invalid {
            try write(
                [
                    TuningCache.Entry(
                        device: device.name, driverVersion: device.driverVersion, family: family, element: "float",
                        defines: defines)
                ], to: file)
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
            FisherAccumulationTunables(rows: 2, columns: 4), FisherAccumulationTunables(rows: 4, columns: 8),
            FisherAccumulationTunables(rows: 16, columns: 16),
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

    /// Two writers storing different keys into one file at once (as two `ngrad tune` runs,
    /// float and double): the lock and the merge keep every entry of both.
    @Test func concurrentWritersKeepEveryEntry() throws {
        let device = try TestDevice.context().device
        let file = temporaryFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        let rounds = 12
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { writer in
            let element = writer == 0 ? "float" : "double"
            for round in 0..<rounds {
                // Each store starts from its own stale snapshot, as a separate process would.
                let stale = TuningCache(location: file)
                let family: KernelFamily = round % 2 == 0 ? .fisherAccumulation : .reduction
                let defines = family == .reduction ? ["WGS": 1 << (round % 4 + 3)] : ["RM": 2, "VW": 4]
                let note = "writer \(writer) round \(round)"
                do {
                    try stale.storing(defines, for: device, family: family, element: element, note: note)
                } catch {
                    failures.withLock { $0.append("\(note): \(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let merged = TuningCache(location: file)
        #expect(merged.state == .loaded)
        // Both writers' keys: 2 families x 2 element types, each its writer's last round.
        #expect(merged.entries.count == 4, "\(merged.entries.map(\.note))")
        for element in ["float", "double"] {
            for family in [KernelFamily.fisherAccumulation, .reduction] {
                #expect(!merged.defines(for: device, family: family, element: element).isEmpty, "\(family) \(element)")
            }
        }
        // The lock file stays beside the cache; no temporary file is left behind.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: file.deletingLastPathComponent().path)
        #expect(Set(leftovers) == ["tuning.json", "tuning.json.lock"], "\(leftovers)")
    }

    /// A store never renames over anything but a regular file: through a symbolic link it
    /// writes the link's target (the link stays), and a FIFO or a directory at the path is
    /// refused and left as it was.
    @Test func storeWritesThroughSymlinksAndRefusesNonRegularFiles() throws {
        let device = try TestDevice.context().device
        let directory = temporaryFile().deletingLastPathComponent()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        let target = directory.appendingPathComponent("real.json")
        let link = directory.appendingPathComponent("link.json")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        let cache = try TuningCache(location: link)
            .storing(["RM": 4, "VW": 8], for: device, family: .fisherAccumulation, element: "float")
        #expect(cache.entries.count == 1)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == target.path)
        #expect(TuningCache(location: target).entries.count == 1)

        let fifo = directory.appendingPathComponent("fifo.json")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let folder = directory.appendingPathComponent("folder.json")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let linkToFifo = directory.appendingPathComponent("fifo-link.json")
        try FileManager.default.createSymbolicLink(at: linkToFifo, withDestinationURL: fifo)
        for path in [fifo, folder, linkToFifo] {
            #expect(throws: NaturalGradientError.self, "\(path.lastPathComponent)") {
                try TuningCache(location: path)
                    .storing(["RM": 4, "VW": 8], for: device, family: .fisherAccumulation, element: "float")
            }
        }
        var status = stat()
        #expect(lstat(fifo.path, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO)
        #expect(lstat(folder.path, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR)
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
