import Foundation
import NaturalGradientTestSupport
import Testing

/// The shared helpers themselves: every test, `ngrad bench`/`tune` and the benchmark suite
/// trust them, so their known answers and edge cases are pinned here.
@Suite struct TestSupportTests {
    @Test func splitMix64MatchesThePublishedSequence() {
        // Seed 0 of Steele, Lea and Flood's reference implementation (also Vigna's
        // splitmix64.c): the constants are right only if these come out.
        var generator = SplitMix64(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
        #expect(generator.next() == 0x06C4_5D18_8009_454F)
    }

    @Test(arguments: [1, 7, 33, 257])
    func floatAndDoubleInputsAreTheSameValues(count: Int) {
        let doubles = uniformValues(count: count, seed: UInt64(count))
        let floats = uniformFloats(count: count, seed: UInt64(count))
        #expect(floats == doubles.map { Float($0) })
        // Exact in float32, in [-1, 1), and not all equal.
        #expect(doubles.allSatisfy { Double(Float($0)) == $0 && $0 >= -1 && $0 < 1 })
        #expect(count == 1 || Set(doubles).count > 1)
        var generator = SplitMix64(seed: UInt64(count))
        #expect(generator.symmetricFloats(count: count) == floats)
    }

    @Test func relativeErrorMeasuresTheTwoNorm() {
        #expect(relativeError([3.0, 4.0], [3.0, 4.0]) == 0)
        // ‖(0, 1)‖ / ‖(3, 4)‖ = 1/5.
        #expect(abs(relativeError([3.0, 5.0], [3.0, 4.0]) - 0.2) < 1e-15)
        #expect(abs(relativeError([Float(3), 5], [3.0, 4.0]) - 0.2) < 1e-15)
        // A poisoned (NaN) element fails every comparison.
        #expect(relativeError([Double.nan, 4], [3.0, 4.0]).isNaN)
        // A zero reference gives the absolute error.
        #expect(relativeError([0.0, 2.0], [0.0, 0.0]) == 2)
        // Over chosen indices only, against any element type.
        #expect(relativeError([Float(1), 99, 2], [Float(1), 0, 2], over: [0, 2]) == 0)
        #expect(abs(maxRelativeError([1, 2.5], [1, 2]) - 0.25) < 1e-15)
        #expect(maxRelativeError([.nan, 2], [1, 2]).isNaN)
        #expect(largestAsymmetry([1.0, 2, 2.5, 1], 2) == 0.5)
    }

    @Test func referencesAgreeWithEachOther() {
        // The implicit product equals the dense product with the accumulated matrix.
        let (rows, dim) = (7, 33)
        let u = uniformValues(count: rows * dim, seed: 5)
        let x = uniformValues(count: dim, seed: 6)
        let f = referenceAccumulation(u, rows: rows, dim: dim, alpha: 1 / Double(rows))
        let dense = referenceDenseProduct(f, dim: dim, x: x, damping: 0.3)
        let implicit = referenceImplicitProduct(u, rows: rows, dim: dim, samples: rows, xs: [x], damping: 0.3)[0]
        #expect(relativeError(implicit, dense) < 1e-14)
        // The sampled entries are entries of the same matrix.
        let entries = sampledUpperEntries(dim)
        let sampled = referenceAccumulation(u, rows: rows, dim: dim, samples: rows, entries: entries)
        #expect(relativeError(sampled, entries.map { f[$0] }) < 1e-14)
        #expect(entries.allSatisfy { $0 / dim <= $0 % dim } && entries == entries.sorted())
        // G ⊗ A with identity factors and no damping is the identity.
        let identity3: [Double] = [1, 0, 0, 0, 1, 0, 0, 0, 1]
        let v = uniformValues(count: 6, seed: 7)
        #expect(referenceKronecker(g: [1, 0, 0, 1], a: identity3, v: v, rows: 2, cols: 3, gammaG: 0, gammaA: 0) == v)
    }

    @Test func textTablePadsEveryColumnButTheLast() {
        var table = TextTable(["a", "long header", "z"])
        table.append(["wide cell", "1", "last"])
        table.append(["b"])
        #expect(
            table.render() == """
                a          long header  z
                ---------  -----------  ----
                wide cell  1            last
                b
                """)
        #expect(formatBytes(512) == "512 B")
        #expect(formatBytes(3 << 29) == "1.5 GiB")
    }

    @Test func measureTimesEveryRepetitionAfterTheWarmUps() throws {
        var calls: [Int] = []
        let timing = try measure(warmup: 2, repetitions: 3) { calls.append($0) }
        #expect(calls == [0, 1, 2, 3, 4])
        #expect(timing.seconds.count == 3 && timing.min <= timing.median && timing.median <= timing.max)
        let interleaved = try measureInterleaved(
            warmup: 1, repetitions: 2, [(times: 1, body: { _ in }), (times: 2, body: { _ in })])
        #expect(interleaved.map(\.seconds.count) == [2, 4])
        #expect(Timing(seconds: [], interference: nil).median.isNaN)
        #expect(Timing(seconds: [4, 1, 3, 2], interference: nil).median == 2.5)
    }
}
