import Foundation
import OpenCLHost

// MARK: - The device the tests run on

/// One context shared by the tests (OpenCL contexts and queues are thread-safe), on the
/// device `NGRAD_DEVICE` names, else the default device. Tests that count cache hits make
/// their own context.
public enum TestDevice {
    private static let shared = Result {
        try Context(selector: DeviceSelector.resolve(explicit: nil, environment: environment()))
    }

    public static func context() throws -> Context { try shared.get() }

    public static func environment() -> [String: String] {
        var values: [String: String] = [:]
        if let value = getenv(DeviceSelector.environmentVariable) {
            values[DeviceSelector.environmentVariable] = String(cString: value)
        }
        return values
    }
}

// MARK: - Reproducible random data

/// SplitMix64: a tiny seeded generator so every test's data is reproducible.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` values uniform in [-1, 1) (never all zeros), reproducible from `seed`.
public func randomValues<T: DeviceScalar>(_ count: Int, seed: UInt64, as _: T.Type = T.self) -> [T] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in T(Double.random(in: -1..<1, using: &generator)) }
}

// MARK: - Comparisons against float64 references

/// `‖out − ref‖₂ / ‖ref‖₂` in float64 (the absolute error when `ref` is zero). A NaN
/// anywhere in `out` (an unwritten, poisoned element) makes the result NaN, which fails
/// any `<` comparison.
public func relativeError<T: DeviceScalar>(_ out: [T], _ reference: [Double]) -> Double {
    precondition(out.count == reference.count, "length mismatch in a test")
    var difference = 0.0
    var norm = 0.0
    for (value, expected) in zip(out, reference) {
        let delta = Double(value) - expected
        difference += delta * delta
        norm += expected * expected
    }
    return norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot()
}

/// Relative tolerance for a float32 or float64 result (DESIGN.md section 6).
public func tolerance<T: DeviceScalar>(for _: T.Type) -> Double {
    T.self == Float.self ? 1e-5 : 1e-12
}

/// The sizes the issue asks every vector kernel to be checked at.
public let awkwardVectorSizes = [1, 7, 33, 1000, 4097, 1_000_003]

/// Whether the test device computes in double precision (so Double tests can run).
public func deviceSupports<T: DeviceScalar>(_: T.Type) -> Bool {
    guard let context = try? TestDevice.context() else { return false }
    return !T.requiresFloat64 || context.device.supportsFloat64
}
