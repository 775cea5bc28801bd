import Foundation
import OpenCLHost

/// The typed tunables of one kernel family (metal-flash-attention's descriptors, CLBlast's
/// per-kernel tuner declarations): one `Hashable, Codable` struct per `.cl` file whose
/// coding keys are the file's `#ifndef` define names, so the same value is the program
/// cache key, the tuning-cache entry (`"defines": {"WGS": 64}`), a tuner candidate and the
/// `-D` build options.
///
/// A conforming type declares, in one place: its defaults for a device (from the device's
/// kind and limits), the values each tunable admits (`admittedValues`) and any rule across
/// tunables (`crossRuleViolation`). Every configuration the rule admits is one the kernels
/// compute correctly for every size; `KernelTunablesSpaceTests` runs each family over it.
public protocol KernelTunables: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The kernel file these tunables belong to.
    static var family: KernelFamily { get }
    /// The defaults for `element` on `device`, chosen from the device's kind and limits.
    static func defaults<Element: DeviceScalar>(for device: Device, element: Element.Type) -> Self
    /// The values each tunable admits on `device` (define name, values in ascending order);
    /// a tunable left out of a configuration takes its default.
    static func admittedValues<Element: DeviceScalar>(on device: Device, element: Element.Type) -> [TunableValues]
    /// The candidates `ngrad tune` times, defaults first (empty: not tuned).
    static func searchSpace<Element: DeviceScalar>(for device: Device, element: Element.Type) -> [Self]
    /// Why these values break a rule across tunables (one dividing another, local memory),
    /// or nil; each value is already known to be admitted.
    func crossRuleViolation<Element: DeviceScalar>(on device: Device, element: Element.Type) -> String?
    /// Tunables that are launch parameters of the host, not `-D` defines (e.g. `GROUPS`).
    static var hostParameters: Set<String> { get }
}

/// The values one tunable admits.
public struct TunableValues: Sendable, Equatable {
    /// The define name, e.g. `WGS`.
    public let name: String
    /// The admitted values, ascending.
    public let values: [Int]

    public init(_ name: String, _ values: [Int]) {
        self.name = name
        self.values = values
    }

    /// A spread of at most `limit` admitted values for exhaustive tests: every value where
    /// there are few, else both ends, the second and the one before last, and values
    /// between them (odd ones included where admitted).
    func representatives(limit: Int = 12) -> [Int] {
        guard values.count > limit else { return values }
        let step = Double(values.count - 1) / Double(limit - 1)
        return Array(Set((0..<limit).map { values[Int((Double($0) * step).rounded())] } + [values[1], values[values.count - 2]]))
            .sorted()
    }
}

extension KernelTunables {
    public static var hostParameters: Set<String> { [] }

    public func crossRuleViolation<Element: DeviceScalar>(on _: Device, element _: Element.Type) -> String? { nil }

    public static func searchSpace<Element: DeviceScalar>(for _: Device, element _: Element.Type) -> [Self] { [] }

    /// Why these values are outside the family's valid space on `device` (nil: valid): a
    /// value a tunable does not admit, or a broken rule across tunables.
    public func violation<Element: DeviceScalar>(on device: Device, element: Element.Type) -> String? {
        let values = encodedValues
        for admitted in Self.admittedValues(on: device, element: element) {
            if let value = values[admitted.name], !admitted.values.contains(value) {
                return "\(admitted.name)=\(value) is not one of \(Self.describe(admitted.values)) on \(device.name)"
            }
        }
        return crossRuleViolation(on: device, element: element)
    }

    /// These values with `assignments` (`"WGS=64 GROUPS=4"`; separated by spaces, commas or
    /// colons) replacing some of them. Throws for an unknown name or a value that is not
    /// an integer; the result is not yet checked against the device (see `violation`).
    public func overriding(_ assignments: String) throws -> Self {
        var values: [String: Int] = [:]
        for pair in assignments.split(whereSeparator: { " ,:".contains($0) }) {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Int(parts[1]) else {
                throw NaturalGradientError.invalidArgument(
                    name: "tunables", reason: "'\(pair)' is not NAME=INTEGER (\(Self.family.rawValue))")
            }
            values[String(parts[0])] = value
        }
        return try overriding(values)
    }

    public var description: String {
        let values = encodedValues
        return values.keys.sorted().map { "\($0)=\(values[$0] ?? 0)" }.joined(separator: " ")
    }

    // MARK: - The define encoding (internal)

    /// The values by define name, host parameters included (absent optionals left out).
    var encodedValues: [String: Int] {
        // Encoding a struct of integers to JSON cannot fail; an empty result would only
        // drop the overrides, never build a wrong kernel.
        guard let data = try? JSONEncoder().encode(self),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return object.compactMapValues { ($0 as? NSNumber)?.intValue }
    }

    /// The `-D` defines: the values without the host's launch parameters.
    var defines: [String: Int] { encodedValues.filter { !Self.hostParameters.contains($0.key) } }

    /// These values with `values` replacing some of them; throws for a name the family does
    /// not have.
    func overriding(_ values: [String: Int]) throws -> Self {
        guard !values.isEmpty else { return self }
        let merged = encodedValues.merging(values) { _, new in new }
        let decoded: Self
        do {
            decoded = try JSONDecoder().decode(Self.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch {
            throw NaturalGradientError.invalidArgument(
                name: "tunables", reason: "\(merged) does not describe \(Self.family.rawValue)'s tunables: \(error)")
        }
        // The decoder skips names it does not know: a name missing after the round trip is one.
        let known = decoded.encodedValues
        if let unknown = values.keys.sorted().first(where: { known[$0] == nil }) {
            throw NaturalGradientError.invalidArgument(
                name: "tunables",
                reason:
                    "\(Self.family.rawValue) has no tunable '\(unknown)' (it has \(known.keys.sorted().joined(separator: ", ")))")
        }
        return decoded
    }

    static func describe(_ values: [Int]) -> String {
        guard values.count > 6, let first = values.first, let last = values.last else {
            return "{" + values.map(String.init).joined(separator: ", ") + "}"
        }
        if values == Array(first...last) { return "\(first)...\(last)" }
        return "{" + values.map(String.init).joined(separator: ", ") + "}"
    }
}

/// A power of two no larger than `value` (1 for values below 2).
func largestPowerOfTwo(atMost value: Int) -> Int {
    var power = 1
    while power * 2 <= value { power *= 2 }
    return power
}

/// The powers of two in `range`.
func powersOfTwo(_ range: ClosedRange<Int>) -> [Int] {
    var values: [Int] = []
    var power = 1
    while power <= range.upperBound {
        if power >= range.lowerBound { values.append(power) }
        power *= 2
    }
    return values
}
