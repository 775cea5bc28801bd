import OpenCLHost
import Testing

@testable import NaturalGradient

/// The memory plan's bytes, its refusal message and the automatic representation, from
/// shapes and given availabilities (nothing is allocated).
@Suite("Memory plan")
struct MemoryPlanTests {
    /// 10.7 GB of device memory, a quarter of it per allocation, 64 GB of host memory.
    static let gpu = MemoryAvailability(deviceBytes: 10_700_000_000, hostBytes: 64_000_000_000, maxAllocationBytes: 2_675_000_000)

    @Test func denseFThatCannotFitNamesBytesAndAlternatives() throws {
        let plan = MemoryPlan.solve(
            rows: 100, dimension: 100_000, vectors: 1, elementBytes: 4, deviceKind: .gpu, available: Self.gpu)
        let dense = try #require(plan.requirement("dense F"))
        // P² float32 values plus the 100 x P factor and three vectors: 40.04 GB.
        #expect(dense.deviceBytes == 100_000 * 100_000 * 4 + 100 * 100_000 * 4 + 3 * 100_000 * 4)
        #expect(dense.hostBytes == 2 * 100_000 * 100_000 * 8)
        #expect(!plan.fits(dense))
        let error = #expect(throws: NaturalGradientError.self) { try plan.check("dense F") }
        #expect(
            error?.description
                == "dense F for P = 100,000 needs 40.0 GB; the device has 10.7 GB; use implicit, woodbury or diagonal")
        // On a device with room for F in total but not in one allocation, the allocation refuses.
        let large = MemoryAvailability(
            deviceBytes: 80_000_000_000, hostBytes: 200_000_000_000, maxAllocationBytes: 20_000_000_000)
        let wholePlan = MemoryPlan.solve(
            rows: 100, dimension: 100_000, vectors: 1, elementBytes: 4, deviceKind: .gpu, available: large)
        let second = #expect(throws: NaturalGradientError.self) { try wholePlan.check("dense F") }
        #expect(
            second?.description
                == "dense F for P = 100,000 needs 40.0 GB; the device's largest allocation is 20.0 GB; use implicit, woodbury or diagonal"
        )
        #expect(throws: Never.self) { try wholePlan.check("implicit") }
    }

    @Test func aFactorLargerThanOneAllocationFitsInPieces() throws {
        // U of 512 x 2.5·10⁶ float32 is 5.1 GB: above one 2.7 GB allocation, within the device.
        let plan = MemoryPlan.solve(
            rows: 512, dimension: 2_500_000, vectors: 1, elementBytes: 4, deviceKind: .gpu, available: Self.gpu)
        let implicit = try #require(plan.requirement("implicit"))
        #expect(implicit.deviceBytes > 512 * 2_500_000 * 4)
        #expect(implicit.largestBufferBytes < Self.gpu.maxAllocationBytes)
        #expect(plan.fits(implicit))
        #expect(plan.fits(try #require(plan.requirement("woodbury"))))
    }

    @Test func hostMemoryRefusesTheHostFactorisation() throws {
        let small = MemoryAvailability(deviceBytes: 1 << 40, hostBytes: 1_000_000_000, maxAllocationBytes: 1 << 40)
        let plan = MemoryPlan.solve(rows: 10, dimension: 20_000, vectors: 2, elementBytes: 8, deviceKind: .cpu, available: small)
        let error = #expect(throws: NaturalGradientError.self) { try plan.check("dense F") }
        #expect(
            error?.description == "dense F for P = 20,000 needs 6.4 GB; the host has 1.0 GB; use implicit, woodbury or diagonal")
    }

    @Test func automaticRepresentationFollowsThePlan() throws {
        let roomy = MemoryAvailability(deviceBytes: 1 << 36, hostBytes: 1 << 36, maxAllocationBytes: 1 << 34)
        let options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        func choice(_ p: Int, rows: Int, _ available: MemoryAvailability, averaging: Bool = false) throws -> String {
            try MemoryPlan.optimizer(
                options, dimension: p, rowsPerStep: rows, elementBytes: 4, deviceKind: .cpu, available: available
            ).automaticRepresentation(rows: rows, averaging: averaging)
        }
        #expect(try choice(300, rows: 512, roomy) == "dense F") // P ≤ M: F no larger than U
        #expect(try choice(17_226, rows: 512, roomy) == "implicit")
        #expect(try choice(17_226, rows: 512, roomy, averaging: true) == "dense F") // a moving average needs F
        let tight = MemoryAvailability(deviceBytes: 200_000_000, hostBytes: 1 << 36, maxAllocationBytes: 100_000_000)
        #expect(try choice(17_226, rows: 512, tight, averaging: true) == "diagonal") // F is 1.2 GB
        let none = MemoryAvailability(deviceBytes: 1000, hostBytes: 1000, maxAllocationBytes: 1000)
        let error = #expect(throws: NaturalGradientError.self) { try choice(17_226, rows: 512, none) }
        #expect(error?.description.hasPrefix("implicit for P = 17,226 needs ") == true)
        #expect(error?.description.hasSuffix("nothing fits: use fewer rows or a smaller model") == true)
    }

    @Test func bytesAreFormattedInDecimalUnits() {
        #expect(MemoryPlan.formatted(40_040_000_000) == "40.0 GB")
        #expect(MemoryPlan.formatted(1_500_000) == "1.5 MB")
        #expect(MemoryPlan.formatted(999) == "999 B")
        #expect(MemoryPlan.grouped(100_000) == "100,000")
        #expect(MemoryPlan.grouped(17) == "17")
    }
}
