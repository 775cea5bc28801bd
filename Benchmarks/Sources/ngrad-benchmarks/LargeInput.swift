import Foundation
import NaturalGradient
import NaturalGradientTestSupport
import NumPyFormat

#if canImport(Glibc)
    import Glibc
#endif

// The large-input measurement (`--only large-input`): how fast a factor `.npy` is read from
// the page cache, and what `ngrad solve` costs in resident memory for it.
//
// Bytes, not FLOPs, are the measure here: reading is one pass over the file's B bytes, so the
// floor is B / memory bandwidth (about 24 GB/s memcpy on this machine kind; a mapped read
// that faults pages in from the page cache runs below that, at the kernel's page-mapping
// rate). The widening read (`NumPyArray.read`, float64 values) writes 2B more for float32.
// `ngrad solve`'s peak resident set is the child's own VmHWM (its JSON's `peakResidentBytes`), against B: 1.0x is the
// floor on a CPU device (the mapped pages are the device buffers), the target ≤ 1.1x there
// and ≤ 2.2x where the device has memory of its own. See NOTES.md, "Large inputs".

/// One large-input run's results.
struct LargeInputResult {
    let rows: Int
    let columns: Int
    let fileBytes: Int
    /// Median seconds to map and scan every element (the finiteness check `ngrad solve` runs).
    let mappedReadSeconds: Double
    /// Median seconds of `NumPyArray.read` (widened to float64); nil when skipped for size.
    let widenedReadSeconds: Double?
    /// `ngrad solve`'s stages ("read", "upload", ...) from its JSON, and its peak RSS.
    let solveStages: [(String, Double)]
    let solvePeakBytes: Int?
    /// The same solve's peak for a 2 x 8 factor: what the process costs without the factor.
    let solveBaselineBytes: Int?

    var table: String {
        var table = TextTable(["measure", "value"])
        let gb = Double(fileBytes) / 1e9
        table.append(["factor", "\(rows) x \(columns) float32, \(formatBytes(UInt64(fileBytes)))"])
        table.append(["mapped read + scan", String(format: "%.3f s, %.2f GB/s", mappedReadSeconds, gb / mappedReadSeconds)])
        if let widenedReadSeconds {
            table.append([
                "NumPyArray.read (float64)", String(format: "%.3f s, %.2f GB/s", widenedReadSeconds, gb / widenedReadSeconds),
            ])
        }
        for (stage, seconds) in solveStages { table.append(["ngrad solve: \(stage)", String(format: "%.3f s", seconds)]) }
        if let solvePeakBytes {
            table.append([
                "ngrad solve: peak RSS",
                "\(formatBytes(UInt64(solvePeakBytes))) = "
                    + String(format: "%.2fx the factor", Double(solvePeakBytes) / Double(fileBytes)),
            ])
            if let solveBaselineBytes {
                table.append(["ngrad solve: peak RSS, 2 x 8 factor", formatBytes(UInt64(solveBaselineBytes))])
                table.append([
                    "ngrad solve: the factor's share",
                    String(
                        format: "%.2fx the factor (target ≤ 1.1x on a CPU device, ≤ 2.2x elsewhere)",
                        Double(solvePeakBytes - solveBaselineBytes) / Double(fileBytes)),
                ])
            }
        }
        return table.render()
    }
}

enum LargeInput {
    /// Measures the read and `ngrad solve` for a `rows` x `columns` float32 factor written to
    /// a scratch directory under `directory`, after checking that the disk and the memory
    /// have room (the file twice over on disk, 2.5x in memory); returns nil with a note when
    /// they do not. `ngrad` is the binary to run (nil: the solve is skipped).
    static func measure(
        rows: Int, columns: Int, directory: String, ngrad: String?, repetitions: Int
    ) throws -> LargeInputResult? {
        let fileBytes = rows * columns * 4
        if let free = freeDiskBytes(directory), free < 2 * fileBytes + (1 << 30) {
            progress(
                "large-input skipped: \(formatBytes(UInt64(fileBytes))) needs twice that free on \(directory), \(formatBytes(UInt64(free))) free"
            )
            return nil
        }
        if let available = availableMemoryBytes(), Double(available) < 2.5 * Double(fileBytes) {
            progress(
                "large-input skipped: \(formatBytes(UInt64(fileBytes))) needs 2.5x that in memory, \(formatBytes(UInt64(available))) available"
            )
            return nil
        }
        let scratch = directory + "/ngrad-large-input-\(getpid())"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let factorPath = scratch + "/U.npy"
        try writeFactor(factorPath, rows: rows, columns: columns)
        try NumPyArray(shape: [columns], elementType: .float32, values: uniformValues(count: columns, seed: 2))
            .write(to: scratch + "/g.npy")

        // Warm the page cache once, then time reads from it.
        _ = try NumPyMappedArray(contentsOf: factorPath).nonFiniteCount
        let clock = ContinuousClock()
        func seconds(_ body: () throws -> Void) rethrows -> Double {
            let start = clock.now
            try body()
            let elapsed = (clock.now - start).components
            return Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
        }
        var mapped: [Double] = []
        for _ in 0..<repetitions {
            mapped.append(
                try seconds {
                    if try NumPyMappedArray(contentsOf: factorPath).nonFiniteCount != 0 { throw LargeInputError.corrupt }
                })
        }
        var widened: [Double] = []
        // The widened read holds 2x the file in float64: only where memory has 4x room.
        if let available = availableMemoryBytes(), available > 4 * fileBytes {
            for _ in 0..<min(repetitions, 3) {
                widened.append(try seconds { _ = try NumPyArray.read(contentsOf: factorPath) })
            }
        }
        var stages: [(String, Double)] = []
        var peak: Int?
        var baseline: Int?
        if let ngrad {
            // The fixed cost (the binary, the OpenCL runtime, its compiler): the same solve
            // of a 2 x 8 factor.
            try NumPyArray(shape: [2, 8], elementType: .float32, values: uniformValues(count: 16, seed: 3))
                .write(to: scratch + "/u0.npy")
            try NumPyArray(shape: [8], elementType: .float32, values: uniformValues(count: 8, seed: 4))
                .write(to: scratch + "/g0.npy")
            (_, baseline) = try runSolve(
                ngrad,
                arguments: [
                    "solve", "--factor", scratch + "/u0.npy", "--gradient", scratch + "/g0.npy", "--damping", "1",
                    "--method", "cg", "--max-iterations", "3", "--output", scratch + "/x0.npy", "--json",
                ])
            (stages, peak) = try runSolve(
                ngrad,
                arguments: [
                    "solve", "--factor", factorPath, "--gradient", scratch + "/g.npy", "--damping", "1", "--method", "cg",
                    "--max-iterations", "3", "--output", scratch + "/x.npy", "--json",
                ])
        }
        return LargeInputResult(
            rows: rows, columns: columns, fileBytes: fileBytes, mappedReadSeconds: median(mapped),
            widenedReadSeconds: widened.isEmpty ? nil : median(widened), solveStages: stages, solvePeakBytes: peak,
            solveBaselineBytes: baseline)
    }

    /// Writes a `.npy` version 1.0 float32 file (NumPy's header, data 64-byte aligned) in
    /// 16 MiB chunks, so a 5 GB factor never exists in memory.
    private static func writeFactor(_ path: String, rows: Int, columns: Int) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        let length = UInt16(header.utf8.count)
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8)] + Array(header.utf8)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw LargeInputError.cannotWrite(path) }
        defer { try? handle.close() }
        try handle.seekToEnd()
        var generator = SplitMix64(seed: 1)
        let count = rows * columns
        let chunk = 4 << 20
        for start in stride(from: 0, to: count, by: chunk) {
            let values = generator.symmetricFloats(count: min(chunk, count - start))
            try handle.write(contentsOf: values.withUnsafeBytes { Data($0) })
        }
    }

    /// Runs `ngrad solve --json`; its stages and its peak resident set (`peakResidentBytes`,
    /// the child's own VmHWM: `getrusage(RUSAGE_CHILDREN)` would count this process's
    /// memory too, as Foundation spawns children with vfork semantics).
    private static func runSolve(_ ngrad: String, arguments: [String]) throws -> ([(String, Double)], Int?) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ngrad)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw LargeInputError.solveFailed(process.terminationStatus) }
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let stages = (json?["stages"] as? [[String: Any]] ?? []).compactMap { stage -> (String, Double)? in
            guard let name = stage["name"] as? String, let seconds = stage["seconds"] as? Double else { return nil }
            return (name, seconds)
        }
        return (stages, json?["peakResidentBytes"] as? Int)
    }

    private static func freeDiskBytes(_ path: String) -> Int? {
        var status = statvfs()
        guard statvfs(path, &status) == 0 else { return nil }
        return Int(status.f_bavail) * Int(status.f_frsize)
    }

    static func availableMemoryBytes() -> Int? {
        MemoryAvailability.hostAvailableBytes().map { Int(clamping: $0) }
    }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
    }
}

enum LargeInputError: Error, CustomStringConvertible {
    case cannotWrite(String)
    case corrupt
    case solveFailed(Int32)

    var description: String {
        switch self {
        case let .cannotWrite(path): "large-input: cannot write \(path)"
        case .corrupt: "large-input: the written factor reads back with non-finite values"
        case let .solveFailed(status): "large-input: ngrad solve exited with status \(status)"
        }
    }
}
