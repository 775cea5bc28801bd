import Foundation

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny seeded generator, so test data, the
/// benchmark inputs and the examples' data sets are the same on every platform for a seed.
/// This is the only copy: its constants were once fixed in two of four copies.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    @usableFromInline var state: UInt64

    /// A generator whose sequence is fixed by `seed`.
    @inlinable public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value uniform in [-1, 1) on a 2⁻²³ grid (the top 24 bits), so it is exact in
    /// float32 as well: `Float(nextSymmetric())` equals ``nextSymmetricFloat()``.
    @inlinable public mutating func nextSymmetric() -> Double { Double(next() >> 40) * 0x1p-23 - 1 }

    /// ``nextSymmetric()`` computed in float32 (fast enough for 10⁸ benchmark inputs).
    @inlinable public mutating func nextSymmetricFloat() -> Float { Float(next() >> 40) * 0x1p-23 - 1 }

    /// The next `count` values of ``nextSymmetricFloat()``, without a per-element array
    /// append (fast enough for 10⁸ benchmark inputs).
    @inlinable public mutating func symmetricFloats(count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = nextSymmetricFloat() }
            initialized = count
        }
    }

    /// A Float uniform in [0, 1) on a 2⁻²⁴ grid.
    @inlinable public mutating func nextUnit() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// A standard normal draw (Box-Muller).
    public mutating func normal() -> Double {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let v = Double.random(in: 0..<1, using: &self)
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}

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
    guard p > 0 else { return [] }
    var entries: Set<Int> = [0, p - 1, (p - 1) * p + p - 1, (p / 2) * p + p / 2]
    var generator = SplitMix64(seed: UInt64(p) &* 31)
    for _ in 0..<count {
        let a = min(p - 1, Int((generator.nextSymmetric() + 1) / 2 * Double(p)))
        let b = min(p - 1, Int((generator.nextSymmetric() + 1) / 2 * Double(p)))
        entries.insert(min(a, b) * p + max(a, b))
    }
    return entries.sorted()
}
