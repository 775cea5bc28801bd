import CNaturalGradient
import Foundation
import NaturalGradient

// The boundary's discipline: every exported function runs its body through `boundary`,
// which turns every thrown error into a status code and this thread's last-error message.
// Nothing below traps on a caller's input: pointers, lengths, dtypes and handles are
// checked before they are used, and sizes are multiplied with overflow checks.

/// Errors of the boundary itself (the library's own errors pass through unchanged).
enum BridgeError: Error, CustomStringConvertible {
    /// A NULL where a pointer is required.
    case null(String)
    /// A handle that is 0, released, forged or of another kind.
    case invalidHandle(name: String, reason: String)
    /// An unknown dtype code, or one that differs from the object's.
    case dtype(name: String, reason: String)
    /// A caller's callback reported failure.
    case callback(String)

    var description: String {
        switch self {
        case let .null(name): "invalid argument '\(name)': must not be NULL"
        case let .invalidHandle(name, reason): "invalid handle '\(name)': \(reason)"
        case let .dtype(name, reason): "invalid dtype '\(name)': \(reason)"
        case let .callback(message): message
        }
    }
}

/// Throws `NaturalGradientError.invalidArgument(name, reason)` unless `condition` holds.
func check(_ condition: Bool, _ name: String, _ reason: @autoclosure () -> String) throws {
    if !condition { throw NaturalGradientError.invalidArgument(name: name, reason: reason()) }
}

/// The status code for `error`.
func status(of error: any Error) -> Int32 {
    switch error {
    case let error as BridgeError:
        switch error {
        case .null: Int32(NG_ERROR_NULL_POINTER)
        case .invalidHandle: Int32(NG_ERROR_INVALID_HANDLE)
        case .dtype: Int32(NG_ERROR_INVALID_DTYPE)
        case .callback: Int32(NG_ERROR_CALLBACK)
        }
    case let error as NaturalGradientError:
        switch error {
        case .invalidArgument: Int32(NG_ERROR_INVALID_ARGUMENT)
        case .nonFiniteValues: Int32(NG_ERROR_NON_FINITE)
        case .insufficientMemory: Int32(NG_ERROR_DEVICE)
        }
    case let error as OpenCLError:
        if case .invalidArgument = error { Int32(NG_ERROR_INVALID_ARGUMENT) } else { Int32(NG_ERROR_DEVICE) }
    case is DenseSolveError:
        Int32(NG_ERROR_SOLVER)
    case is DecodingError, is EncodingError:
        Int32(NG_ERROR_INVALID_ARGUMENT)
    default:
        Int32(NG_ERROR_INTERNAL)
    }
}

/// Runs `body`, returning NG_OK, or the error's status after recording its message.
func boundary(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return Int32(NG_OK)
    } catch {
        LastError.set(message(of: error))
        return status(of: error)
    }
}

/// The one-line message of `error` (a build log's lines are joined).
func message(of error: any Error) -> String {
    let text: String
    switch error {
    case let error as DecodingError:
        text = "invalid argument 'bytes': \(decodingDescription(error))"
    default:
        text = String(describing: error)
    }
    return text.split(whereSeparator: \.isNewline).joined(separator: " | ")
}

private func decodingDescription(_ error: DecodingError) -> String {
    switch error {
    case let .dataCorrupted(context), let .keyNotFound(_, context), let .typeMismatch(_, context),
        let .valueNotFound(_, context):
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return "not a saved optimizer state (\(path.isEmpty ? "" : path + ": ")\(context.debugDescription))"
    @unknown default:
        return "not a saved optimizer state"
    }
}

// MARK: - Thread-local last error

/// This thread's last error message, kept as a malloc'd C string in a pthread key so the
/// pointer `ng_last_error` returns stays valid until the next failure on the same thread.
enum LastError {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { free($0) }
        return key
    }()
    /// "" as a C string in the binary's constant data (string literals are NUL-terminated).
    nonisolated(unsafe) static let empty: UnsafePointer<CChar> = UnsafeRawPointer(("" as StaticString).utf8Start)
        .assumingMemoryBound(to: CChar.self)

    static func set(_ message: String) {
        let old = pthread_getspecific(key)
        pthread_setspecific(key, strdup(message))
        free(old)
    }

    static var current: UnsafePointer<CChar> {
        if let value = pthread_getspecific(key) { return UnsafePointer(value.assumingMemoryBound(to: CChar.self)) }
        return empty
    }
}

// MARK: - Element types

/// The dtype codes of the header.
enum DType: Int32, Sendable {
    case float32 = 1
    case float64 = 2

    /// The code's dtype; throws for an unknown code.
    init(code: Int32, name: String = "dtype") throws {
        guard let dtype = DType(rawValue: code) else {
            throw BridgeError.dtype(
                name: name, reason: "\(code) is not a dtype code (NG_FLOAT32 = 1, NG_FLOAT64 = 2)")
        }
        self = dtype
    }

    var name: String { self == .float32 ? "float32" : "float64" }

    /// Throws unless `code` is this dtype (the object's), naming `name`.
    func require(_ code: Int32, _ name: String = "dtype") throws {
        let given = try DType(code: code, name: name)
        guard given == self else {
            throw BridgeError.dtype(name: name, reason: "the data is \(given.name), the object holds \(self.name)")
        }
    }
}

/// The dtype of an element type.
protocol BridgeScalar: DeviceScalar {
    static var dtype: DType { get }
    /// How many of `values` are infinite or NaN. A requirement, not a generic loop over
    /// `isFinite`: called through a generic context, that loop is not specialised and cost
    /// about 15 ns a value (2.4 ms of a 10 ms K-FAC product at P = 165,514).
    static func nonFiniteCount(_ values: UnsafeBufferPointer<Self>) -> Int
}

extension Float: BridgeScalar {
    static var dtype: DType { .float32 }
    static func nonFiniteCount(_ values: UnsafeBufferPointer<Float>) -> Int {
        // All exponent bits set is infinity or NaN; the branch-free count vectorises.
        let exponent: UInt32 = 0x7F80_0000
        var bad = 0
        for value in values { bad &+= value.bitPattern & exponent == exponent ? 1 : 0 }
        return bad
    }
}

extension Double: BridgeScalar {
    static var dtype: DType { .float64 }
    static func nonFiniteCount(_ values: UnsafeBufferPointer<Double>) -> Int {
        let exponent: UInt64 = 0x7FF0_0000_0000_0000
        var bad = 0
        for value in values { bad &+= value.bitPattern & exponent == exponent ? 1 : 0 }
        return bad
    }
}

extension DType {
    /// `float(Float.self)` or `double(Double.self)`, whichever this dtype is: the one place
    /// a runtime dtype code becomes a static element type (Swift has no generic closures,
    /// so callers pass the same generic call twice).
    func dispatch<R>(_ float: (Float.Type) throws -> R, _ double: (Double.Type) throws -> R) rethrows -> R {
        switch self {
        case .float32: try float(Float.self)
        case .float64: try double(Double.self)
        }
    }
}

// MARK: - Argument checks

/// A non-negative count as Int, or a throw naming it.
func count(_ value: Int64, _ name: String, allowZero: Bool = false) throws -> Int {
    try check(allowZero ? value >= 0 : value > 0, name, "must be \(allowZero ? "≥ 0" : "positive"), got \(value)")
    guard let result = Int(exactly: value) else {
        throw NaturalGradientError.invalidArgument(name: name, reason: "\(value) does not fit this platform")
    }
    return result
}

/// `a * b`, or a throw naming `name` when it overflows.
func product(_ a: Int, _ b: Int, _ name: String) throws -> Int {
    let (result, overflow) = a.multipliedReportingOverflow(by: b)
    try check(!overflow, name, "\(a) x \(b) elements overflow")
    return result
}

/// The pointer, or a throw naming it when NULL.
func nonNull<T>(_ pointer: T?, _ name: String) throws -> T {
    guard let pointer else { throw BridgeError.null(name) }
    return pointer
}

/// `count` elements of `E` at `pointer` (non-null, aligned), as a buffer pointer.
func elements<E: BridgeScalar>(
    _ pointer: UnsafeRawPointer?, count: Int, _ name: String, as _: E.Type = E.self
)
    throws -> UnsafeBufferPointer<E>
{
    let pointer = try nonNull(pointer, name)
    try check(
        Int(bitPattern: pointer) % MemoryLayout<E>.alignment == 0, name,
        "is not aligned to \(MemoryLayout<E>.alignment) bytes for \(E.dtype.name)")
    return UnsafeBufferPointer(start: pointer.assumingMemoryBound(to: E.self), count: count)
}

/// Throws `nonFiniteValues(name)` if `values` holds NaN or infinity.
func requireFinite<E: BridgeScalar>(_ values: UnsafeBufferPointer<E>, _ name: String) throws {
    let bad = E.nonFiniteCount(values)
    if bad > 0 { throw NaturalGradientError.nonFiniteValues(name: name, count: bad) }
}

/// The host array of `count` finite values of `E` at `pointer`.
func hostArray<E: BridgeScalar>(
    _ pointer: UnsafeRawPointer?, count: Int, _ name: String, as _: E.Type = E.self
)
    throws -> [E]
{
    let values = try elements(pointer, count: count, name, as: E.self)
    try requireFinite(values, name)
    return Array(values)
}

/// A writable, aligned destination for `count` elements of `E`.
func destination<E: BridgeScalar>(
    _ pointer: UnsafeMutableRawPointer?, count: Int, _ name: String, as _: E.Type = E.self
)
    throws -> UnsafeMutableBufferPointer<E>
{
    let pointer = try nonNull(pointer, name)
    try check(
        Int(bitPattern: pointer) % MemoryLayout<E>.alignment == 0, name,
        "is not aligned to \(MemoryLayout<E>.alignment) bytes for \(E.dtype.name)")
    return UnsafeMutableBufferPointer(start: pointer.assumingMemoryBound(to: E.self), count: count)
}

/// Writes `value` through `pointer` when the caller asked for it.
@inline(__always)
func store<T>(_ value: T, _ pointer: UnsafeMutablePointer<T>?) {
    pointer?.pointee = value
}

/// A malloc'd copy of `bytes` for the caller to free with `ng_free`.
func mallocCopy(_ bytes: [UInt8], nulTerminated: Bool) throws -> UnsafeMutableRawPointer {
    let size = bytes.count + (nulTerminated ? 1 : 0)
    guard let memory = malloc(max(size, 1)) else {
        throw NaturalGradientError.invalidArgument(name: "json", reason: "cannot allocate \(size) bytes")
    }
    bytes.withUnsafeBytes { source in
        if let base = source.baseAddress { memory.copyMemory(from: base, byteCount: bytes.count) }
    }
    if nulTerminated { memory.storeBytes(of: 0, toByteOffset: bytes.count, as: UInt8.self) }
    return memory
}

/// Encodes `value` as JSON into a malloc'd NUL-terminated string at `out`.
func returnJSON(_ value: some Encodable, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) throws {
    let out = try nonNull(out, "json")
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data = try encoder.encode(value)
    out.pointee = try mallocCopy([UInt8](data), nulTerminated: true).assumingMemoryBound(to: CChar.self)
}
