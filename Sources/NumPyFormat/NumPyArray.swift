import Foundation
import FileWriting

// MARK: - Public types

/// The element types of `.npy` arrays this module reads and writes.
///
/// Only little-endian IEEE 754 floating-point data is supported: NumPy's `'<f4'` and `'<f8'`
/// (and the native-order spellings `'=f4'` and `'=f8'`, which are little-endian on every
/// platform this package runs on).
public enum NumPyElementType: Sendable, Equatable {
    /// IEEE 754 binary32 (`np.float32`), stored as `'<f4'`.
    case float32
    /// IEEE 754 binary64 (`np.float64`), stored as `'<f8'`.
    case float64

    /// The size of one stored element in bytes: 4 for `float32`, 8 for `float64`.
    public var byteCount: Int {
        switch self {
        case .float32: return 4
        case .float64: return 8
        }
    }

    /// The NumPy dtype string that `NumPyArray.encoded()` writes for this type: `<f4` or `<f8`.
    public var descr: String {
        switch self {
        case .float32: return "<f4"
        case .float64: return "<f8"
        }
    }
}

/// An error reading, decoding, validating or writing a `.npy` file.
///
/// `description` is a single line of the form `"<file>: <problem>"`.
public struct NumPyFormatError: Error, Equatable, CustomStringConvertible {
    /// The file the problem concerns: a path, the `name` passed to `NumPyArray.decode(_:name:)`,
    /// or `<NumPyArray>` for an array built in memory.
    public let file: String
    /// What is wrong, in one line, e.g. `truncated data: expected 48 bytes, found 40`.
    public let problem: String

    /// Creates an error about `file`; newlines in either string are replaced with spaces so that
    /// the description stays on one line.
    public init(file: String, problem: String) {
        self.file = oneLine(file)
        self.problem = oneLine(problem)
    }

    /// `"<file>: <problem>"`.
    public var description: String { "\(file): \(problem)" }
}

/// A 1-D or 2-D floating-point array as stored in a NumPy `.npy` file (format versions 1.0, 2.0
/// and 3.0).
///
/// Values are held as `Double` in C (row-major) order whatever the stored element type;
/// `float32` data is widened exactly when read and rounded to the nearest `float32` when written.
///
/// Equality compares `shape`, `elementType` and the *bit patterns* of `values`, so an array
/// containing NaN equals itself, and `0.0` and `-0.0` are different values.
public struct NumPyArray: Sendable, Equatable {
    /// The dimensions: `[n]` for a 1-D array or `[rows, columns]` for a 2-D array.
    public var shape: [Int]
    /// The element type stored in (or to be written to) the file.
    public var elementType: NumPyElementType
    /// The elements in C (row-major) order, `shape.reduce(1, *)` of them.
    public var values: [Double]

    /// The name used in errors about arrays that did not come from a file.
    static let inMemoryName = "<NumPyArray>"

    /// Creates an array, checking that `shape` is 1-D or 2-D with non-negative dimensions and that
    /// `values.count` equals the product of the dimensions.
    ///
    /// - Throws: `NumPyFormatError` (with file `<NumPyArray>`) when the shape is invalid or does
    ///   not match the number of values.
    public init(shape: [Int], elementType: NumPyElementType, values: [Double]) throws {
        do {
            try checkConsistency(shape: shape, elementType: elementType, count: values.count)
        } catch {
            throw NumPyFormatError(file: Self.inMemoryName, problem: error.text)
        }
        self.shape = shape
        self.elementType = elementType
        self.values = values
    }

    /// Creates an array without validation (for values the decoder has already checked).
    init(validatedShape shape: [Int], elementType: NumPyElementType, values: [Double]) {
        self.shape = shape
        self.elementType = elementType
        self.values = values
    }

    /// The number of values that are NaN or infinite.
    public var nonFiniteCount: Int {
        var count = 0
        for value in values where !value.isFinite { count += 1 }
        return count
    }

    /// Compares shapes, element types and the bit patterns of the values.
    public static func == (lhs: NumPyArray, rhs: NumPyArray) -> Bool {
        guard lhs.shape == rhs.shape, lhs.elementType == rhs.elementType,
            lhs.values.count == rhs.values.count
        else { return false }
        for (a, b) in zip(lhs.values, rhs.values) where a.bitPattern != b.bitPattern {
            return false
        }
        return true
    }

    // MARK: Reading

    /// Reads and decodes the `.npy` file at `path`.
    ///
    /// - Throws: `NumPyFormatError` naming `path` when the file does not exist ("no such file"),
    ///   is a directory, cannot be read, or is not a valid `.npy` file this module supports
    ///   (see `decode(_:name:)`).
    public static func read(contentsOf path: String) throws -> NumPyArray {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw NumPyFormatError(file: path, problem: "no such file")
        }
        if isDirectory.boolValue {
            throw NumPyFormatError(file: path, problem: "is a directory, not a .npy file")
        }
        // A regular file is mapped and widened in one pass (no copy of the file's bytes);
        // anything else (a pipe, a device) is read whole.
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            attributes[.type] as? FileAttributeType == .typeRegular
        {
            return try NumPyMappedArray(contentsOf: path).array()
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NumPyFormatError(
                file: path, problem: "cannot read the file (permission denied or I/O error)")
        }
        return try decode([UInt8](data), name: path)
    }

    /// Decodes the bytes of a `.npy` file.
    ///
    /// Accepts format versions 1.0, 2.0 and 3.0 whose header is a dict literal with exactly the
    /// keys `'descr'` (`'<f4'`, `'<f8'`, `'=f4'` or `'=f8'`), `'fortran_order'` (`False`) and
    /// `'shape'` (a tuple of one or two non-negative integers), followed by exactly the number of
    /// data bytes the shape requires. Non-finite values are accepted (see `nonFiniteCount`).
    ///
    /// This function never traps and never reads out of bounds: every malformed input, of any
    /// length, is rejected with an error.
    ///
    /// - Parameters:
    ///   - bytes: The complete file contents.
    ///   - name: The file name used in errors.
    /// - Throws: `NumPyFormatError` whose `file` is `name` and whose `problem` describes the
    ///   first thing found wrong.
    public static func decode(_ bytes: [UInt8], name: String = "<bytes>") throws -> NumPyArray {
        do {
            return try NPYDecoder.decode(bytes)
        } catch {
            throw NumPyFormatError(file: name, problem: error.text)
        }
    }

    // MARK: Writing

    /// The `.npy` encoding of the array, byte-for-byte what NumPy's `np.save` writes for the same
    /// array: a version 1.0 header (`'<f4'` or `'<f8'`, `'fortran_order': False`) padded with
    /// spaces and a final `'\n'` so that the data starts at a multiple of 64 bytes, then the values
    /// little-endian in C order. `float32` arrays are rounded to the nearest `float32`.
    ///
    /// Should the header not fit version 1.0's 16-bit length (impossible for a 1-D or 2-D shape)
    /// version 2.0 is written instead, as NumPy does. If `shape` and `values` have been mutated
    /// into disagreement the result is not a valid file; `write(to:)` checks this first.
    public func encoded() -> [UInt8] {
        var out = NPYHeader.encode(descr: elementType.descr, shape: shape)
        switch elementType {
        case .float32:
            out.reserveCapacity(out.count + values.count * 4)
            for value in values {
                let bits = Float(value).bitPattern
                out.append(UInt8(truncatingIfNeeded: bits))
                out.append(UInt8(truncatingIfNeeded: bits >> 8))
                out.append(UInt8(truncatingIfNeeded: bits >> 16))
                out.append(UInt8(truncatingIfNeeded: bits >> 24))
            }
        case .float64:
            out.reserveCapacity(out.count + values.count * 8)
            for value in values {
                let bits = value.bitPattern
                for byte in 0..<8 {
                    out.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(byte))))
                }
            }
        }
        return out
    }

    /// Writes `encoded()` to `path`: a regular file (or a new one) is replaced atomically
    /// (a temporary file renamed over it, its permissions kept), a symbolic link's target is
    /// written and the link kept, a character device or FIFO is written in place, and a
    /// directory, block device or socket is refused: nothing is renamed over a file that is
    /// not regular.
    ///
    /// - Throws: `NumPyFormatError` naming `path` when `shape` and `values` disagree or the file
    ///   cannot be written.
    public func write(to path: String) throws {
        do {
            try checkConsistency(shape: shape, elementType: elementType, count: values.count)
        } catch {
            throw NumPyFormatError(file: path, problem: error.text)
        }
        do {
            try FileReplacement.write(encoded(), to: path)
        } catch let failure as FileReplacement.Failure {
            throw NumPyFormatError(file: path, problem: "cannot write the file: \(failure.reason)")
        }
    }
}

// MARK: - Internals

/// A problem found while decoding or validating, without the file name.
struct NPYProblem: Error {
    var text: String
    init(_ text: String) { self.text = text }
}

private func oneLine(_ text: String) -> String {
    guard text.contains(where: { $0.isNewline }) else { return text }
    return String(text.map { $0.isNewline ? " " : $0 })
}

/// Python's `repr` of a shape tuple: `()`, `(3,)`, `(2, 3)`.
func shapeRepr<S: Sequence>(_ dims: S) -> String where S.Element == String {
    let parts = Array(dims)
    switch parts.count {
    case 0: return "()"
    case 1: return "(\(parts[0]),)"
    default: return "(" + parts.joined(separator: ", ") + ")"
    }
}

/// Shortens text quoted in error messages (e.g. junk from a corrupt header).
func abbreviated(_ text: String, limit: Int = 40) -> String {
    text.count <= limit ? text : String(text.prefix(limit)) + "..."
}

/// Checks that `shape` is 1-D or 2-D with non-negative dimensions whose product (and byte size)
/// does not overflow, and returns the element count.
func checkedElementCount(shape: [Int], elementType: NumPyElementType) throws(NPYProblem) -> Int {
    let repr = abbreviated(shapeRepr(shape.lazy.map { String($0) }), limit: 80)
    if shape.isEmpty {
        throw NPYProblem("0-D arrays (shape ()) are not supported; need a 1-D or 2-D array")
    }
    if shape.count > 2 {
        throw NPYProblem(
            "\(shape.count)-D arrays are not supported (shape \(repr)); need a 1-D or 2-D array")
    }
    var count = 1
    for dimension in shape {
        if dimension < 0 {
            throw NPYProblem("negative dimension \(dimension) in shape \(repr)")
        }
        let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
        if overflow {
            throw NPYProblem("shape \(repr) is too large: the element count overflows")
        }
        count = product
    }
    let (_, overflow) = count.multipliedReportingOverflow(by: elementType.byteCount)
    if overflow {
        throw NPYProblem("shape \(repr) is too large: the data size in bytes overflows")
    }
    return count
}

private func checkConsistency(
    shape: [Int], elementType: NumPyElementType, count: Int
)
    throws(NPYProblem)
{
    let expected = try checkedElementCount(shape: shape, elementType: elementType)
    if expected != count {
        throw NPYProblem(
            "shape \(shapeRepr(shape.lazy.map { String($0) })) needs \(expected) values, "
                + "but there are \(count)")
    }
}

// MARK: Decoder

/// Where a validated `.npy` file's elements lie: `count` elements of `elementType` from byte
/// `dataStart` to the end of the file.
struct NPYLayout {
    var shape: [Int]
    var elementType: NumPyElementType
    var count: Int
    var dataStart: Int
}

enum NPYDecoder {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] // \x93NUMPY

    /// Decodes complete file contents into float64 values.
    static func decode(_ bytes: [UInt8]) throws(NPYProblem) -> NumPyArray {
        let result: Result<NumPyArray, NPYProblem> = bytes.withUnsafeBytes { raw in
            Result { () throws(NPYProblem) -> NumPyArray in
                let layout = try layout(raw)
                return NumPyArray(
                    validatedShape: layout.shape, elementType: layout.elementType,
                    values: widenedValues(raw, layout: layout))
            }
        }
        return try result.get()
    }

    /// Validates the magic string, version, header and data length of complete file contents
    /// (in memory or memory-mapped) and says where the elements lie. Every malformed input, of
    /// any length, is rejected with a problem; nothing is read out of bounds.
    static func layout(_ bytes: UnsafeRawBufferPointer) throws(NPYProblem) -> NPYLayout {
        // Magic string.
        if bytes.isEmpty {
            throw NPYProblem("empty input: not a .npy file (no magic string)")
        }
        let magicCount = min(bytes.count, magic.count)
        for index in 0..<magicCount where bytes[index] != magic[index] {
            throw NPYProblem("not a .npy file (bad magic string; expected \\x93NUMPY)")
        }
        if bytes.count < 8 {
            throw NPYProblem(
                "truncated header: \(bytes.count) bytes is too short for the magic string and version")
        }

        // Version and header length.
        let major = bytes[6]
        let minor = bytes[7]
        let lengthFieldSize: Int
        switch (major, minor) {
        case (1, 0): lengthFieldSize = 2
        case (2, 0), (3, 0): lengthFieldSize = 4
        default:
            throw NPYProblem(
                "unsupported .npy format version \(major).\(minor) (need 1.0, 2.0 or 3.0)")
        }
        let headerStart = 8 + lengthFieldSize
        if bytes.count < headerStart {
            throw NPYProblem(
                "truncated header: the file ends inside the \(lengthFieldSize)-byte header length field")
        }
        var headerLength: UInt64 = 0
        for index in 0..<lengthFieldSize {
            headerLength |= UInt64(bytes[8 + index]) << (8 * UInt64(index))
        }
        let available = bytes.count - headerStart
        guard let length = Int(exactly: headerLength), length <= available else {
            throw NPYProblem(
                "header length \(headerLength) extends past the end of the file "
                    + "(only \(available) bytes follow the length field)")
        }
        let dataStart = headerStart + length

        // Header.
        let header = Array(UnsafeRawBufferPointer(rebasing: bytes[headerStart..<dataStart]))
        for (offset, byte) in header.enumerated() {
            let allowedControl = byte == 0x0A || byte == 0x0D || byte == 0x09
            if byte >= 0x7F || (byte < 0x20 && !allowedControl) {
                throw NPYProblem(
                    "header contains a non-ASCII or control byte 0x\(hex(byte)) at header offset \(offset)")
            }
        }
        var parser = HeaderParser(header)
        let entries = try parser.parseDictionary()
        let fields = try HeaderFields(entries)

        // Data.
        let count = try checkedElementCount(shape: fields.shape, elementType: fields.elementType)
        let expectedBytes = count * fields.elementType.byteCount // cannot overflow: checked above
        let foundBytes = bytes.count - dataStart
        if foundBytes < expectedBytes {
            throw NPYProblem("truncated data: expected \(expectedBytes) bytes, found \(foundBytes)")
        }
        if foundBytes > expectedBytes {
            throw NPYProblem(
                "trailing bytes after the data: expected \(expectedBytes) bytes, found \(foundBytes) "
                    + "(\(foundBytes - expectedBytes) extra)")
        }
        return NPYLayout(shape: fields.shape, elementType: fields.elementType, count: count, dataStart: dataStart)
    }

    /// The elements `layout` locates in `bytes`, widened to float64: one bulk copy for float64
    /// (the host is little-endian, as the stored data is) and one tight widening loop for
    /// float32, with unaligned loads since a hand-made header need not pad the data start.
    static func widenedValues(_ bytes: UnsafeRawBufferPointer, layout: NPYLayout) -> [Double] {
        let count = layout.count
        guard count > 0, let base = bytes.baseAddress,
            bytes.count - layout.dataStart == count * layout.elementType.byteCount
        else { return [] }
        let data = base + layout.dataStart
        return [Double](unsafeUninitializedCapacity: count) { out, initialized in
            guard let destination = out.baseAddress else { return }
            switch layout.elementType {
            case .float64:
                UnsafeMutableRawPointer(destination).copyMemory(from: data, byteCount: count * 8)
            case .float32:
                for index in 0..<count {
                    let bits = UInt32(littleEndian: data.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
                    destination[index] = Double(Float(bitPattern: bits))
                }
            }
            initialized = count
        }
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}

/// The three required header entries, validated.
private struct HeaderFields {
    var elementType: NumPyElementType
    var shape: [Int]

    init(_ entries: [(key: String, value: HeaderParser.Value)]) throws(NPYProblem) {
        var descr: HeaderParser.Value?
        var fortranOrder: HeaderParser.Value?
        var shapeValue: HeaderParser.Value?
        for (key, value) in entries {
            switch key {
            case "descr":
                if descr != nil { throw NPYProblem("header has a duplicate key 'descr'") }
                descr = value
            case "fortran_order":
                if fortranOrder != nil { throw NPYProblem("header has a duplicate key 'fortran_order'") }
                fortranOrder = value
            case "shape":
                if shapeValue != nil { throw NPYProblem("header has a duplicate key 'shape'") }
                shapeValue = value
            default:
                throw NPYProblem(
                    "header has an unknown key '\(abbreviated(key))' "
                        + "(expected exactly 'descr', 'fortran_order' and 'shape')")
            }
        }
        guard let descr else { throw NPYProblem("header is missing the 'descr' key") }
        guard let fortranOrder else { throw NPYProblem("header is missing the 'fortran_order' key") }
        guard let shapeValue else { throw NPYProblem("header is missing the 'shape' key") }

        // descr
        switch descr {
        case .string(let text):
            switch text {
            case "<f4", "=f4": elementType = .float32
            case "<f8", "=f8": elementType = .float64
            default:
                throw NPYProblem(
                    "unsupported dtype '\(abbreviated(text))' (need float32 or float64, little-endian: '<f4' or '<f8')")
            }
        case .list, .tuple:
            throw NPYProblem(
                "unsupported dtype: structured dtypes are not supported (need float32 or float64, little-endian: '<f4' or '<f8')")
        default:
            throw NPYProblem("'descr' must be a dtype string such as '<f8'")
        }

        // fortran_order
        switch fortranOrder {
        case .bool(false): break
        case .bool(true):
            throw NPYProblem("Fortran order is not supported; save with np.ascontiguousarray")
        default:
            throw NPYProblem("'fortran_order' must be True or False")
        }

        // shape
        guard case .tuple(let items) = shapeValue else {
            throw NPYProblem("'shape' must be a tuple of integers such as (3,) or (2, 3)")
        }
        var texts: [String] = []
        for item in items {
            guard case .integer(let text, _) = item else {
                throw NPYProblem("'shape' must be a tuple of integers such as (3,) or (2, 3)")
            }
            texts.append(text)
        }
        let repr = abbreviated(shapeRepr(texts), limit: 80)
        if items.isEmpty {
            throw NPYProblem("0-D arrays (shape ()) are not supported; need a 1-D or 2-D array")
        }
        if items.count > 2 {
            throw NPYProblem(
                "\(items.count)-D arrays are not supported (shape \(repr)); need a 1-D or 2-D array")
        }
        var dims: [Int] = []
        for item in items {
            guard case .integer(let text, let value) = item else { continue }
            if text.hasPrefix("-") {
                throw NPYProblem("negative dimension \(abbreviated(text)) in shape \(repr)")
            }
            guard let value else {
                throw NPYProblem("dimension \(abbreviated(text)) in shape \(repr) is too large")
            }
            dims.append(value)
        }
        shape = dims
    }
}

/// A strict recursive-descent parser for the subset of Python literal syntax used by `.npy`
/// headers: a dict with string keys whose values are strings, `True`/`False`/`None`, decimal
/// integers, tuples and lists. It works on bytes already checked to be printable ASCII.
struct HeaderParser {
    indirect enum Value {
        case string(String)
        case bool(Bool)
        case none
        /// The literal as written (sign included, `L` suffix dropped) and its value, or `nil` when
        /// it does not fit in `Int`.
        case integer(String, Int?)
        case tuple([Value])
        case list([Value])
    }

    /// Deeper nesting than this is rejected (no valid header nests more than twice).
    static let maxDepth = 16

    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private func fail(_ what: String) -> NPYProblem {
        NPYProblem("malformed header at offset \(position): \(what)")
    }

    private func describeCurrent() -> String {
        guard let byte = current else { return "the end of the header" }
        if byte == 0x0A { return "a newline" }
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(NPYDecoder.hex(byte))"
    }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
            position += 1
        }
    }

    /// Parses the whole header: one dict literal, optionally surrounded by whitespace.
    mutating func parseDictionary() throws(NPYProblem) -> [(key: String, value: Value)] {
        skipWhitespace()
        guard current == UInt8(ascii: "{") else {
            if current == nil { throw NPYProblem("the header is empty (expected a Python dict literal)") }
            throw fail("the header is not a Python dict literal (expected '{', found \(describeCurrent()))")
        }
        position += 1
        var entries: [(key: String, value: Value)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
        } else {
            while true {
                let keyValue = try parseValue(depth: 1)
                guard case .string(let key) = keyValue else {
                    throw fail("dict keys must be strings")
                }
                skipWhitespace()
                guard current == UInt8(ascii: ":") else {
                    throw fail("expected ':' after key '\(abbreviated(key))', found \(describeCurrent())")
                }
                position += 1
                let value = try parseValue(depth: 1)
                entries.append((key, value))
                skipWhitespace()
                if current == UInt8(ascii: ",") {
                    position += 1
                    skipWhitespace()
                    if current == UInt8(ascii: "}") {
                        position += 1
                        break
                    }
                    continue
                }
                if current == UInt8(ascii: "}") {
                    position += 1
                    break
                }
                throw fail("expected ',' or '}' in the header dict, found \(describeCurrent())")
            }
        }
        skipWhitespace()
        if current != nil {
            throw fail("unexpected \(describeCurrent()) after the closing '}' of the header dict")
        }
        return entries
    }

    private mutating func parseValue(depth: Int) throws(NPYProblem) -> Value {
        if depth > Self.maxDepth { throw fail("values nest too deeply") }
        skipWhitespace()
        guard let byte = current else { throw fail("unexpected end of the header") }
        switch byte {
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return try parseString()
        case UInt8(ascii: "("):
            let (items, sawComma) = try parseSequence(closing: UInt8(ascii: ")"), depth: depth)
            if items.count == 1 && !sawComma, let only = items.first { return only } // (x) is x
            return .tuple(items)
        case UInt8(ascii: "["):
            return .list(try parseSequence(closing: UInt8(ascii: "]"), depth: depth).items)
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"):
            return try parseInteger()
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "_"):
            return try parseName()
        default:
            throw fail("unexpected \(describeCurrent())")
        }
    }

    private mutating func parseString() throws(NPYProblem) -> Value {
        guard let quote = current else { throw fail("expected a string") }
        position += 1
        let start = position
        while true {
            guard let byte = current, byte != 0x0A, byte != 0x0D else {
                throw fail("unterminated string")
            }
            if byte == UInt8(ascii: "\\") {
                throw fail("escape sequences in header strings are not supported")
            }
            if byte == quote { break }
            position += 1
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        position += 1 // closing quote
        return .string(text)
    }

    /// Parses `(` or `[` ... up to `closing`; returns the items and whether any comma was seen.
    private mutating func parseSequence(
        closing: UInt8, depth: Int
    ) throws(NPYProblem)
        -> (items: [Value], sawComma: Bool)
    {
        position += 1 // opening bracket
        var items: [Value] = []
        var sawComma = false
        skipWhitespace()
        if current == closing {
            position += 1
            return (items, sawComma)
        }
        let closingText = String(Character(Unicode.Scalar(closing)))
        while true {
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            if current == UInt8(ascii: ",") {
                position += 1
                sawComma = true
                skipWhitespace()
                if current == closing {
                    position += 1
                    return (items, sawComma)
                }
                continue
            }
            if current == closing {
                position += 1
                return (items, sawComma)
            }
            throw fail("expected ',' or '\(closingText)', found \(describeCurrent())")
        }
    }

    private mutating func parseInteger() throws(NPYProblem) -> Value {
        var negative = false
        if let sign = current, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            negative = sign == UInt8(ascii: "-")
            position += 1
        }
        let digitsStart = position
        var value: Int? = 0
        while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            if let partial = value {
                let (shifted, overflow1) = partial.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = shifted.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                value = overflow1 || overflow2 ? nil : sum
            }
            position += 1
        }
        let digits = bytes[digitsStart..<position]
        if digits.isEmpty { throw fail("expected digits after the sign") }
        let digitText = String(decoding: digits, as: UTF8.self)
        if digits.count > 1, digits.first == UInt8(ascii: "0") {
            throw fail("invalid integer literal '\(abbreviated(digitText))' (leading zero)")
        }
        if let suffix = current, suffix == UInt8(ascii: "L") || suffix == UInt8(ascii: "l") {
            position += 1 // Python 2 long suffix, as written by old NumPy versions
        }
        if let next = current {
            let isDelimiter =
                next == 0x20 || next == 0x09 || next == 0x0A || next == 0x0D
                || next == UInt8(ascii: ",") || next == UInt8(ascii: ")")
                || next == UInt8(ascii: "]") || next == UInt8(ascii: "}")
                || next == UInt8(ascii: ":")
            if !isDelimiter {
                throw fail("malformed number (only decimal integers are allowed), found \(describeCurrent())")
            }
        }
        if negative, let magnitude = value { value = -magnitude }
        return .integer((negative ? "-" : "") + digitText, value)
    }

    private mutating func parseName() throws(NPYProblem) -> Value {
        let start = position
        while let byte = current,
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "_")
        {
            position += 1
        }
        let name = String(decoding: bytes[start..<position], as: UTF8.self)
        switch name {
        case "True": return .bool(true)
        case "False": return .bool(false)
        case "None": return .none
        default:
            position = start
            throw fail("unexpected name '\(abbreviated(name))' (only True, False and None are allowed)")
        }
    }
}

// MARK: Header encoder

enum NPYHeader {
    /// NumPy's `GROWTH_AXIS_MAX_DIGITS`: spare spaces so the header can be rewritten in place.
    static let growthAxisMaxDigits = 21
    /// NumPy's `ARRAY_ALIGN`.
    static let alignment = 64

    /// The magic string, version, header length and padded header, exactly as NumPy writes them.
    static func encode(descr: String, shape: [Int]) -> [UInt8] {
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': "
        dict += shapeRepr(shape.lazy.map { String($0) }) + ", }"
        if let first = shape.first {
            dict += String(repeating: " ", count: max(0, growthAxisMaxDigits - String(first).count))
        }
        let text = Array(dict.utf8)
        for (version, lengthFieldSize) in [(UInt8(1), 2), (UInt8(2), 4)] {
            let prefixSize = NPYDecoder.magic.count + 2 + lengthFieldSize
            let unpadded = text.count + 1 // + '\n'
            let padding = alignment - (prefixSize + unpadded) % alignment
            let headerLength = unpadded + padding
            if lengthFieldSize == 2 && headerLength > Int(UInt16.max) { continue }
            var out = NPYDecoder.magic
            out.reserveCapacity(prefixSize + headerLength)
            out.append(version)
            out.append(0)
            for index in 0..<lengthFieldSize {
                out.append(UInt8(truncatingIfNeeded: headerLength >> (8 * index)))
            }
            out.append(contentsOf: text)
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
            out.append(UInt8(ascii: "\n"))
            return out
        }
        return NPYDecoder.magic // unreachable: a version 2.0 header holds any realistic shape
    }
}
