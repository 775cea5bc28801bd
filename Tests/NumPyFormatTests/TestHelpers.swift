import Testing

@testable import NumPyFormat

/// The magic string `\x93NUMPY`.
let npyMagic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

/// Builds a `.npy` byte string by hand: magic, version, header length, `header` (padded like NumPy
/// when `pad` is true, used verbatim otherwise) and `data`.
func npyBytes(
    header: String, major: UInt8 = 1, minor: UInt8 = 0, pad: Bool = true, data: [UInt8] = []
) -> [UInt8] {
    let lengthFieldSize = major == 1 ? 2 : 4
    var text = Array(header.utf8)
    if pad {
        let prefix = 8 + lengthFieldSize
        let padding = 64 - (prefix + text.count + 1) % 64
        text += Array(repeating: UInt8(ascii: " "), count: padding) + [UInt8(ascii: "\n")]
    }
    var out = npyMagic + [major, minor]
    for index in 0..<lengthFieldSize {
        out.append(UInt8(truncatingIfNeeded: text.count >> (8 * index)))
    }
    return out + text + data
}

/// A header dict built from literal source text for each value.
func headerDict(
    descr: String = "'<f8'", fortranOrder: String = "False", shape: String = "(2, 3)"
)
    -> String
{
    "{'descr': \(descr), 'fortran_order': \(fortranOrder), 'shape': \(shape), }"
}

/// Little-endian bytes of float64 values.
func float64Bytes(_ values: [Double]) -> [UInt8] {
    values.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value.bitPattern >> (8 * UInt64($0))) } }
}

/// Little-endian bytes of float32 values.
func float32Bytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value.bitPattern >> (8 * UInt32($0))) } }
}

/// What decoding an arbitrary byte string did.
enum DecodeOutcome {
    case decoded(NumPyArray)
    case rejected(NumPyFormatError)
    case wrongError(any Error)
}

func decodeOutcome(_ bytes: [UInt8]) -> DecodeOutcome {
    do {
        return .decoded(try NumPyArray.decode(bytes, name: "fuzz.npy"))
    } catch let error as NumPyFormatError {
        return .rejected(error)
    } catch {
        return .wrongError(error)
    }
}

/// Hex dump for failure messages.
func hexDump(_ bytes: [UInt8], limit: Int = 400) -> String {
    let shown = bytes.prefix(limit).map { byte -> String in
        let text = String(byte, radix: 16)
        return text.count == 1 ? "0" + text : text
    }
    return shown.joined(separator: " ") + (bytes.count > limit ? " ..." : "")
}
