import Foundation

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny seeded generator, so test data, the
/// benchmark inputs and the examples' data sets are the same on every platform for a seed.
/// This is the only copy (the tuner's inputs, the tests, the benchmarks and the examples all
/// draw from it): its constants were once fixed in two of four copies.
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
