import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient
@testable import OpenCLHost

/// The CPU defaults are sized from the device's native vector width, so each register tile
/// fits the vector registers of the CPU it runs on: accumulators + operands ≤ 16 registers
/// with 128- and 256-bit vectors (SSE, AVX2), ≤ 32 with 512-bit ones (AVX-512), and the
/// accumulation leaves one tile-row vector for the compiler. The widths
/// are presented on the test device (`Device.presenting(nativeVectorWidths:)`).
@Suite("CPU register budget")
struct CPURegisterBudgetTests {
    /// Floats and doubles per register, and the registers: SSE / NEON-like, AVX2, AVX-512.
    static let machines: [(float: Int, double: Int, registers: Int)] = [(4, 2, 16), (8, 4, 16), (16, 8, 32)]

    static func cpu(float: Int, double: Int) throws -> Device {
        let device = try TestDevice.context().device
        try #require(device.kind == .cpu, "the test device is a CPU (PoCL)")
        return try device.presenting(nativeVectorWidths: (float, double))
    }

    @Test(arguments: machines)
    func defaultsFitTheRegisters(machine: (float: Int, double: Int, registers: Int)) throws {
        let device = try Self.cpu(float: machine.float, double: machine.double)
        try check(Float.self, device: device, lanes: machine.float, registers: machine.registers)
        try check(Double.self, device: device, lanes: machine.double, registers: machine.registers)
    }

    private func check<T: DeviceScalar>(_: T.Type, device: Device, lanes: Int, registers: Int) throws {
        let name = "\(T.self), \(lanes) lanes"
        let vectors = { (width: Int) in (width + lanes - 1) / lanes }

        // Accumulation: RM rows of VW-wide accumulators, the strip's vector, one broadcast,
        // and one VW-vector left for what the compiler keeps live across the k loop.
        let accumulation = FisherAccumulationTunables.defaults(for: device, element: T.self)
        let perRow = vectors(accumulation.columns)
        #expect(accumulation.rows * perRow + 2 * perRow + 1 <= registers, "\(name): \(accumulation)")
        // The largest tile that fits: one more row would not.
        #expect(accumulation.rows == 16 || (accumulation.rows + 1) * perRow + 2 * perRow + 1 > registers, "\(name)")
        #expect(accumulation.violation(on: device, element: T.self) == nil, "\(name)")
        #expect(accumulation.depth > 0 && accumulation.itemTiles * accumulation.rows >= 32, "\(name): cache blocking")

        // Kronecker: RM x RN vector accumulators along k, RN vectors of R and one of S, and
        // room left for the compiler.
        let kronecker = KroneckerTunables.defaults(for: device, element: T.self)
        #expect(kronecker.vectorWidth == max(2, lanes), "\(name)")
        let kroneckerVectors = vectors(kronecker.vectorWidth)
        let live = (kronecker.tileRows * kronecker.tileColumns + 2 * kronecker.tileColumns + 1) * kroneckerVectors
        #expect(live <= registers, "\(name): \(kronecker)")
        #expect(kronecker.violation(on: device, element: T.self) == nil, "\(name)")

        // The streaming kernels take two native vectors (more loads in flight), at most 16 lanes.
        let streaming = min(16, 2 * max(2, lanes))
        #expect(CurvatureProductTunables.defaults(for: device, element: T.self).vectorWidth == streaming, "\(name)")
        #expect(ConjugateGradientTunables.defaults(for: device, element: T.self).vectorWidth == streaming, "\(name)")
    }

    /// The tiles the rule gives on the two x86 machines this project runs on.
    @Test func knownTiles() throws {
        let avx2 = try Self.cpu(float: 8, double: 4)
        let avx512 = try Self.cpu(float: 16, double: 8)
        func tile<T: DeviceScalar>(_ device: Device, _: T.Type) -> [Int] {
            let tunables = FisherAccumulationTunables.defaults(for: device, element: T.self)
            return [tunables.rows, tunables.columns]
        }
        // BLIS's AVX2 sgemm tile, 6 x 16 (12 + 2 + 1 of 16 ymm), spilled an accumulator here.
        #expect(tile(avx2, Float.self) == [5, 16]) // 10 + 2 + 1 + 2 spare of 16 ymm
        #expect(tile(avx2, Double.self) == [5, 8])
        #expect(tile(avx512, Float.self) == [16, 16]) // 16 + 1 + 1 + 1 spare of 32 zmm, as tuned there
        #expect(tile(avx512, Double.self) == [13, 16]) // 26 + 2 + 1 + 2 spare of 32 zmm
        #expect(KroneckerTunables.defaults(for: avx2, element: Float.self).tileColumns == 2) // 4 x 3 spilled
        #expect(KroneckerTunables.defaults(for: avx512, element: Float.self).tileColumns == 4)
    }

    /// The GPU defaults do not depend on the vector width.
    @Test func gpuDefaultsIgnoreTheWidth() throws {
        let device = try TestDevice.context().device
        let gpu = try device.presenting(as: .gpu, name: "GPU", maxWorkGroupSize: 256, localMemoryBytes: 32 << 10)
        let narrow = try gpu.presenting(nativeVectorWidths: (1, 1))
        let wide = try gpu.presenting(nativeVectorWidths: (16, 8))
        #expect(
            FisherAccumulationTunables.defaults(for: narrow, element: Float.self)
                == FisherAccumulationTunables.defaults(for: wide, element: Float.self))
        #expect(
            KroneckerTunables.defaults(for: narrow, element: Float.self)
                == KroneckerTunables.defaults(for: wide, element: Float.self))
        #expect(
            FisherAccumulationTunables.defaults(for: wide, element: Float.self) == FisherAccumulationTunables(rows: 4, columns: 4)
        )
    }

    @Test func rejectsWidthsOutsideTheRange() throws {
        let device = try TestDevice.context().device
        #expect(throws: OpenCLError.self) { try device.presenting(nativeVectorWidths: (0, 4)) }
        #expect(throws: OpenCLError.self) { try device.presenting(nativeVectorWidths: (8, 32)) }
    }
}
