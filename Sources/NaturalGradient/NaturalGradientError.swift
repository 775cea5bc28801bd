/// Errors about the caller's data, thrown before anything is launched. Device and driver
/// failures are `OpenCLError`s.
public enum NaturalGradientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An argument is unusable: `name` is the argument, `reason` what is wrong with it.
    case invalidArgument(name: String, reason: String)
    /// `name` holds `count` NaN or infinite values (found by an opt-in check).
    case nonFiniteValues(name: String, count: Int)
    /// A representation or solve does not fit (`MemoryPlan.check`): `what` needs
    /// `neededBytes` where `place` (the device, its largest allocation, the host) offers
    /// `availableBytes`; `alternatives` are the representations that would fit.
    case insufficientMemory(what: String, neededBytes: UInt64, place: String, availableBytes: UInt64, alternatives: [String])

    public var description: String {
        switch self {
        case let .invalidArgument(name, reason):
            "invalid argument '\(name)': \(reason)"
        case let .nonFiniteValues(name, count):
            "'\(name)' holds \(count) non-finite value\(count == 1 ? "" : "s") (NaN or infinity)"
        case let .insufficientMemory(what, needed, place, available, alternatives):
            "\(what) needs \(MemoryPlan.formatted(needed)); \(place) \(MemoryPlan.formatted(available)); "
                + (alternatives.isEmpty ? "nothing fits: use fewer rows or a smaller model" : "use \(Self.listed(alternatives))")
        }
    }

    /// `a`, `a or b`, `a, b or c`.
    static func listed(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " or " + (items.last ?? "")
    }
}

/// Throws `invalidArgument(name, reason)` unless `condition` holds.
@inline(__always)
func require(_ condition: Bool, _ name: String, _ reason: @autoclosure () -> String) throws {
    if !condition { throw NaturalGradientError.invalidArgument(name: name, reason: reason()) }
}

/// Throws unless `count` values make an `n` x `n` matrix that LAPACK can take: `n`
/// positive and a 32-bit integer, `n²` without overflow and equal to `count`.
func requireLAPACKSquare(count: Int, dimension n: Int, name: String) throws {
    try require(n > 0, "dimension", "must be positive, got \(n)")
    try require(n <= Int(Int32.max), "dimension", "must be at most \(Int32.max) for LAPACK, got \(n)")
    let (squared, overflow) = n.multipliedReportingOverflow(by: n)
    try require(!overflow, "dimension", "\(n)² overflows")
    try require(count == squared, name, "holds \(count) values, expected dimension² = \(squared)")
}

/// Throws unless `damping` is finite and not negative.
func validateDamping<Element: DeviceScalar>(_ damping: Element) throws {
    try require(damping.isFinite && damping >= 0, "damping", "must be finite and not negative, got \(damping)")
}
