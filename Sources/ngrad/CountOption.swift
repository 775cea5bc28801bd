import ArgumentParser

/// The bounds of the count options (repetitions, warm-ups, steps, samples, ...) of `ngrad
/// bench`, `train` and `example`: each is checked before any work, so a huge value is a
/// usage error naming the option, never an allocation of that many elements.
enum CountOption {
    /// Throws a usage error ("--repetitions 9223372036854775807: must be between 1 and
    /// 10000") unless `value` lies in `range`.
    static func check(_ value: Int, _ option: String, in range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw ValidationError("\(option) \(value): must be between \(range.lowerBound) and \(range.upperBound)")
        }
    }
}

extension ClosedRange<Int> {
    /// "1-10000", for help texts.
    var text: String { "\(lowerBound)-\(upperBound)" }
}
