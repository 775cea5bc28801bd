import Foundation
// The generator lives in the library (the tuner draws its inputs from it); re-exported so that
// `import NaturalGradientTestSupport` alone keeps naming it.
@_exported import struct NaturalGradient.SplitMix64
import NaturalGradient

/// `count` values uniform in [-1, 1) from ``SplitMix64/nextSymmetric()``, as float64: the
/// inputs of `ngrad bench`, `ngrad tune` and the benchmark suite.
@inlinable public func uniformValues(count: Int, seed: UInt64) -> [Double] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in generator.nextSymmetric() }
}

/// `count` values uniform in [-1, 1) from ``SplitMix64/nextSymmetricFloat()``: the same
/// values as ``uniformValues(count:seed:)``, made without a float64 detour.
@inlinable public func uniformFloats(count: Int, seed: UInt64) -> [Float] {
    var generator = SplitMix64(seed: seed)
    return generator.symmetricFloats(count: count)
}

/// `count` values uniform in [-1, 1) (never all zeros) by `Double.random(in:using:)`,
/// reproducible from `seed`, rounded to `T`: the tests' random data.
public func randomValues<T: BinaryFloatingPoint>(_ count: Int, seed: UInt64, as _: T.Type = T.self) -> [T] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in T(Double.random(in: -1..<1, using: &generator)) }
}

/// A spread of upper-triangle entries (row-major indices, sorted, without repeats) of a
/// P x P matrix: the corners, the middle of the diagonal and up to `count` pseudo-random
/// ones, the same for a given P. Checking these keeps a float64 reference cheap at sizes
/// where computing the whole matrix would take longer than the operation's benchmark.
public func sampledUpperEntries(_ p: Int, count: Int = 200) -> [Int] {
    TuningInputs.sampledEntries(p, count: count)
}
