import Testing

@testable import NumPyFormat

/// A malformed input and a fragment its error's problem must contain.
struct CorruptCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let fragment: String

    var testDescription: String { name }
}

private let data6 = float64Bytes([0, 1, 2, 3, 4, 5])

private func file(_ header: String, data: [UInt8] = data6) -> [UInt8] {
    npyBytes(header: header, data: data)
}

private let corruptCases: [CorruptCase] = [
    CorruptCase(name: "empty input", bytes: [], fragment: "empty"),
    CorruptCase(name: "bad magic", bytes: Array("\u{13}NUMPY\u{1}\u{0}".utf8) + [0, 0], fragment: "magic"),
    CorruptCase(name: "zip (.npz) file", bytes: [0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0, 0, 0], fragment: "magic"),
    CorruptCase(name: "magic only", bytes: npyMagic, fragment: "truncated header"),
    CorruptCase(name: "unknown version 4.0", bytes: npyMagic + [4, 0, 0, 0, 0, 0], fragment: "version 4.0"),
    CorruptCase(name: "unknown version 1.1", bytes: npyMagic + [1, 1, 0, 0], fragment: "version 1.1"),
    CorruptCase(name: "header length field cut", bytes: npyMagic + [2, 0, 0x10], fragment: "header length field"),
    CorruptCase(
        name: "header length past the end", bytes: npyMagic + [1, 0, 0xFF, 0xFF] + Array("{}".utf8),
        fragment: "header length 65535 extends past the end"),
    CorruptCase(
        name: "4-byte header length past the end", bytes: npyMagic + [2, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x7B],
        fragment: "header length 4294967295 extends past the end"),
    CorruptCase(name: "empty header", bytes: npyMagic + [1, 0, 0, 0], fragment: "header is empty"),
    CorruptCase(name: "header not a dict", bytes: file("[1, 2, 3]"), fragment: "not a Python dict literal"),
    CorruptCase(name: "header a bare string", bytes: file("'descr'"), fragment: "not a Python dict literal"),
    CorruptCase(
        name: "missing descr", bytes: file("{'fortran_order': False, 'shape': (2, 3)}"),
        fragment: "missing the 'descr' key"),
    CorruptCase(
        name: "missing shape", bytes: file("{'descr': '<f8', 'fortran_order': False}"),
        fragment: "missing the 'shape' key"),
    CorruptCase(
        name: "missing fortran_order", bytes: file("{'descr': '<f8', 'shape': (2, 3)}"),
        fragment: "missing the 'fortran_order' key"),
    CorruptCase(
        name: "unknown key",
        bytes: file("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}"),
        fragment: "unknown key 'extra'"),
    CorruptCase(
        name: "duplicate key",
        bytes: file("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}"),
        fragment: "duplicate key 'descr'"),
    CorruptCase(
        name: "non-string key", bytes: file("{1: '<f8', 'fortran_order': False, 'shape': (2, 3)}"),
        fragment: "keys must be strings"),
    CorruptCase(
        name: "big-endian dtype", bytes: file(headerDict(descr: "'>f8'")),
        fragment: "unsupported dtype '>f8' (need float32 or float64, little-endian"),
    CorruptCase(name: "int64 dtype", bytes: file(headerDict(descr: "'<i8'")), fragment: "unsupported dtype '<i8'"),
    CorruptCase(name: "complex dtype", bytes: file(headerDict(descr: "'<c16'")), fragment: "unsupported dtype '<c16'"),
    CorruptCase(name: "object dtype", bytes: file(headerDict(descr: "'|O'")), fragment: "unsupported dtype '|O'"),
    CorruptCase(name: "float16 dtype", bytes: file(headerDict(descr: "'<f2'")), fragment: "unsupported dtype '<f2'"),
    CorruptCase(
        name: "structured dtype", bytes: file(headerDict(descr: "[('a', '<f8'), ('b', '<f8')]", shape: "(3,)")),
        fragment: "structured dtypes are not supported"),
    CorruptCase(name: "descr not a string", bytes: file(headerDict(descr: "8")), fragment: "'descr' must be"),
    CorruptCase(
        name: "Fortran order", bytes: file(headerDict(fortranOrder: "True")),
        fragment: "Fortran order is not supported; save with np.ascontiguousarray"),
    CorruptCase(
        name: "fortran_order not a bool", bytes: file(headerDict(fortranOrder: "0")),
        fragment: "'fortran_order' must be True or False"),
    CorruptCase(
        name: "3-D shape", bytes: file(headerDict(shape: "(1, 2, 3)")),
        fragment: "3-D arrays are not supported (shape (1, 2, 3))"),
    CorruptCase(name: "0-D shape", bytes: file(headerDict(shape: "()"), data: data6.prefix(8).map { $0 }), fragment: "0-D"),
    CorruptCase(name: "negative dimension", bytes: file(headerDict(shape: "(-1, 6)")), fragment: "negative dimension -1"),
    CorruptCase(
        name: "dimension product overflow", bytes: file(headerDict(shape: "(9223372036854775807, 2)")),
        fragment: "too large"),
    CorruptCase(
        name: "byte size overflow", bytes: file(headerDict(shape: "(2305843009213693952,)")),
        fragment: "too large"),
    CorruptCase(
        name: "dimension beyond Int", bytes: file(headerDict(shape: "(99999999999999999999999, 1)")),
        fragment: "dimension 99999999999999999999999 in shape (99999999999999999999999, 1) is too large"),
    CorruptCase(name: "shape an integer", bytes: file(headerDict(shape: "(6)")), fragment: "'shape' must be a tuple"),
    CorruptCase(name: "shape a list", bytes: file(headerDict(shape: "[2, 3]")), fragment: "'shape' must be a tuple"),
    CorruptCase(name: "shape of strings", bytes: file(headerDict(shape: "('2', '3')")), fragment: "'shape' must be a tuple"),
    CorruptCase(name: "float dimension", bytes: file(headerDict(shape: "(2.0, 3)")), fragment: "malformed number"),
    CorruptCase(name: "leading zero", bytes: file(headerDict(shape: "(02, 3)")), fragment: "leading zero"),
    CorruptCase(
        name: "truncated data", bytes: file(headerDict(), data: Array(data6.dropLast(8))),
        fragment: "truncated data: expected 48 bytes, found 40"),
    CorruptCase(name: "no data", bytes: file(headerDict(), data: []), fragment: "truncated data: expected 48 bytes, found 0"),
    CorruptCase(name: "trailing data", bytes: file(headerDict(), data: data6 + [0]), fragment: "trailing bytes"),
    CorruptCase(
        name: "non-ASCII junk in the header",
        bytes: file("{'descr': '<f8', 'fortran_order': Fälse, 'shape': (2, 3)}"), fragment: "non-ASCII"),
    CorruptCase(
        name: "NUL byte in the header", bytes: file("{'descr': '<f8',\u{0} 'fortran_order': False, 'shape': (2, 3)}"),
        fragment: "non-ASCII or control byte 0x00"),
    CorruptCase(
        name: "unterminated string", bytes: file("{'descr': '<f8, 'fortran_order': False, 'shape': (2, 3)}"),
        fragment: "expected ',' or '}'"),
    CorruptCase(name: "string runs to the end", bytes: file("{'descr"), fragment: "unterminated string"),
    CorruptCase(name: "unclosed dict", bytes: file("{'descr': '<f8'"), fragment: "expected ',' or '}'"),
    CorruptCase(name: "unclosed tuple", bytes: file("{'shape': (2, 3"), fragment: "expected ',' or ')'"),
    CorruptCase(name: "escape in string", bytes: file(headerDict(descr: "'<f\\x38'")), fragment: "escape"),
    CorruptCase(name: "unknown name", bytes: file(headerDict(fortranOrder: "false")), fragment: "unexpected name 'false'"),
    CorruptCase(name: "text after the dict", bytes: file(headerDict() + " x"), fragment: "after the closing '}'"),
    CorruptCase(name: "nested dict", bytes: file(headerDict(descr: "{}")), fragment: "unexpected '{'"),
    CorruptCase(
        name: "deep nesting", bytes: file(headerDict(shape: String(repeating: "(", count: 5000))),
        fragment: "nest too deeply"),
]

@Suite("Corrupt inputs")
struct CorruptInputTests {
    @Test(arguments: corruptCases)
    func rejectedWithClearProblem(_ corrupt: CorruptCase) {
        do {
            let array = try NumPyArray.decode(corrupt.bytes, name: "bad.npy")
            Issue.record("decoded \(corrupt.name) as \(array.shape)")
        } catch let error as NumPyFormatError {
            #expect(error.file == "bad.npy")
            #expect(error.problem.contains(corrupt.fragment), "problem was: \(error.problem)")
            #expect(error.description == "bad.npy: \(error.problem)")
            #expect(!error.description.contains("\n"))
        } catch {
            Issue.record("wrong error type: \(error)")
        }
    }

    @Test func defaultNameIsBytes() {
        #expect(throws: NumPyFormatError(file: "<bytes>", problem: "empty input: not a .npy file (no magic string)")) {
            try NumPyArray.decode([])
        }
    }
}
