import OpenCLHost

// The error measures every check against a float64 reference uses: the tests, `ngrad
// bench`, `ngrad tune` and the benchmark suite. One definition, so a tolerance means the
// same thing wherever it is quoted (DESIGN.md section 6).

/// `‖out − ref‖₂ / ‖ref‖₂` in float64 (the absolute error `‖out‖₂` when `ref` is zero). A
/// NaN anywhere in `out` (an unwritten, poisoned element) makes the result NaN, which fails
/// any `<` comparison.
@inlinable public func relativeError<T: DeviceScalar>(_ out: [T], _ reference: [Double]) -> Double {
    precondition(out.count == reference.count, "relativeError: \(out.count) values against \(reference.count)")
    return relativeError(out, reference, over: out.indices)
}

/// ``relativeError(_:_:)`` over the elements `indices` names (the same index into both), for
/// a reference in any element type (a peer's float32 result, say).
@inlinable public func relativeError<T: DeviceScalar, R: DeviceScalar, S: Sequence<Int>>(
    _ out: [T], _ reference: [R], over indices: S
) -> Double {
    var difference = 0.0
    var norm = 0.0
    for index in indices {
        let expected = reference[index].float64
        let delta = out[index].float64 - expected
        difference += delta * delta
        norm += expected * expected
    }
    return norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot()
}

/// `max |out − ref| / max |ref|`: the error relative to the reference's largest entry, for
/// results whose small entries carry no information of their own (finite-difference
/// metrics, closed forms). NaN in `out` gives NaN.
public func maxRelativeError(_ out: [Double], _ reference: [Double]) -> Double {
    precondition(out.count == reference.count, "maxRelativeError: \(out.count) values against \(reference.count)")
    var worst = 0.0
    for (value, expected) in zip(out, reference) {
        let delta = abs(value - expected)
        if delta.isNaN { return .nan }
        worst = max(worst, delta)
    }
    return worst / max(reference.map(abs).max() ?? 0, 1e-300)
}

/// The largest `|F[i][j] − F[j][i]|` of a row-major n x n matrix (0 for a symmetric one,
/// NaN when a NaN sits off the diagonal).
@inlinable public func largestAsymmetry<T: DeviceScalar>(_ matrix: [T], _ n: Int) -> Double {
    var worst = 0.0
    for i in 0..<n {
        for j in (i + 1)..<n {
            let delta = abs(matrix[i * n + j].float64 - matrix[j * n + i].float64)
            if delta.isNaN { return .nan }
            worst = max(worst, delta)
        }
    }
    return worst
}

/// Relative tolerance for a float32 or float64 result of moderate length against a float64
/// reference (DESIGN.md section 6).
public func tolerance<T: DeviceScalar>(for _: T.Type) -> Double {
    T.self == Float.self ? 1e-5 : 1e-12
}
