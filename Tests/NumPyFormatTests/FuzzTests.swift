import NaturalGradientTestSupport
import Testing

@testable import NumPyFormat

/// Valid encodings the mutations start from.
private func seedFiles() throws -> [[UInt8]] {
    [
        NumPyFixtures.arange2x3Float64, NumPyFixtures.pairFloat32, NumPyFixtures.version2Float32,
        NumPyFixtures.version3Float64, NumPyFixtures.column7x1Float64,
        try NumPyArray(shape: [1], elementType: .float64, values: [.nan]).encoded(),
        try NumPyArray(shape: [0], elementType: .float32, values: []).encoded(),
        try NumPyArray(shape: [3, 2], elementType: .float32, values: [1, 2, 3, 4, 5, 6]).encoded(),
        npyBytes(header: "{'descr':'<f4','fortran_order':False,'shape':(1,)}", pad: false, data: [0, 0, 0, 0]),
    ]
}

/// Checks one arbitrary input: decoding must succeed or throw `NumPyFormatError`, and anything
/// that decodes must be a consistent array that survives a round trip.
private func check(_ bytes: [UInt8], context: String) -> Bool {
    switch decodeOutcome(bytes) {
    case .rejected:
        return false
    case .wrongError(let error):
        Issue.record("\(context): wrong error type \(error) for \(hexDump(bytes))")
        return false
    case .decoded(let array):
        let consistent =
            (1...2).contains(array.shape.count) && array.shape.allSatisfy { $0 >= 0 }
            && array.shape.reduce(1, *) == array.values.count
        if !consistent {
            Issue.record("\(context): inconsistent array \(array.shape) from \(hexDump(bytes))")
        } else if (try? NumPyArray.decode(array.encoded())) != array {
            Issue.record("\(context): decoded array does not round-trip: \(hexDump(bytes))")
        }
        return true
    }
}

@Suite("Fuzzing the decoder")
struct FuzzTests {
    @Test func everyTruncationIsRejected() throws {
        for file in try seedFiles() {
            #expect(check(file, context: "untruncated"))
            for length in 0..<file.count {
                let accepted = check(Array(file.prefix(length)), context: "truncated to \(length)")
                #expect(!accepted, "prefix of length \(length) of \(hexDump(file)) was accepted")
            }
        }
    }

    @Test func randomMutationsNeverCrash() throws {
        var generator = SplitMix64(seed: 0x5EED_0001)
        let seeds = try seedFiles()
        var acceptedCount = 0
        for iteration in 0..<6000 {
            var bytes = seeds[Int.random(in: 0..<seeds.count, using: &generator)]
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                mutate(&bytes, using: &generator)
            }
            if check(bytes, context: "mutation \(iteration)") { acceptedCount += 1 }
        }
        // Flipping data bytes keeps files valid, so some mutants must decode.
        #expect(acceptedCount > 0)
    }

    @Test func randomByteStringsNeverCrash() {
        var generator = SplitMix64(seed: 0x5EED_0002)
        for iteration in 0..<3000 {
            let length = Int.random(in: 0...300, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Half of them get a valid magic string and version so the header parser is reached.
            if iteration % 2 == 1 {
                let version: [[UInt8]] = [
                    [1, 0, UInt8(truncatingIfNeeded: length), 0], [2, 0, UInt8(truncatingIfNeeded: length), 0, 0, 0],
                    [3, 0, 40, 0, 0, 0],
                ]
                bytes = npyMagic + version[iteration % 3] + bytes
            }
            _ = check(bytes, context: "random \(iteration)")
        }
    }

    @Test func randomHeaderTokensNeverCrash() {
        var generator = SplitMix64(seed: 0x5EED_0003)
        let tokens = [
            "{", "}", "(", ")", "[", "]", ",", ":", " ", "\n", "'descr'", "'fortran_order'", "'shape'",
            "'<f8'", "'<f4'", "'>f8'", "'=f4'", "True", "False", "None", "0", "1", "2", "3L", "-1", "+4",
            "9223372036854775807", "18446744073709551616", "'", "\"", "1.5", "x", "\\", "()", "(1,)",
            "(2, 3)",
        ]
        let prefix = "{'descr': '<f4', 'fortran_order': False, 'shape': "
        var acceptedCount = 0
        for iteration in 0..<3000 {
            var header = iteration % 2 == 0 ? prefix : ""
            var dataLength = [0, 4, 8, 24, Int.random(in: 0...40, using: &generator)][iteration % 5]
            if iteration % 4 == 3 {
                // Nearly valid: a real prefix, a plausible shape and a plausible ending.
                let shapes = [("(1,)", 4), ("(2, 3)", 24), ("(0, 2)", 0), ("(2,)", 8), ("()", 4), ("(1, 1, 1)", 4)]
                let endings = [", }", "}", " }", ",}", "", "}}", ", 'x': 1}"]
                let (shape, bytes) = shapes[Int.random(in: 0..<shapes.count, using: &generator)]
                header = prefix + shape + endings[Int.random(in: 0..<endings.count, using: &generator)]
                if Bool.random(using: &generator) { dataLength = bytes }
            }
            for _ in 0..<Int.random(in: 0...24, using: &generator) where iteration % 4 != 3 {
                header += tokens[Int.random(in: 0..<tokens.count, using: &generator)]
            }
            let data = (0..<dataLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let major: UInt8 = iteration % 3 == 0 ? 2 : 1
            let bytes = npyBytes(header: header, major: major, pad: iteration % 4 != 0, data: data)
            if check(bytes, context: "tokens \(iteration)") { acceptedCount += 1 }
        }
        #expect(acceptedCount > 0)
    }

    private func mutate(_ bytes: inout [UInt8], using generator: inout SplitMix64) {
        // Most mutations land in the first 128 bytes, where the header lives.
        func position(in count: Int) -> Int {
            guard count > 0 else { return 0 }
            let limit = Bool.random(using: &generator) ? min(count, 128) : count
            return Int.random(in: 0..<limit, using: &generator)
        }
        switch Int.random(in: 0..<7, using: &generator) {
        case 0: // flip one bit
            guard !bytes.isEmpty else { return }
            bytes[position(in: bytes.count)] ^= 1 << UInt8.random(in: 0...7, using: &generator)
        case 1: // replace a byte
            guard !bytes.isEmpty else { return }
            bytes[position(in: bytes.count)] = UInt8.random(in: 0...255, using: &generator)
        case 2: // replace with an interesting byte
            guard !bytes.isEmpty else { return }
            let interesting: [UInt8] = [0, 0x0A, 0x20, 0x27, 0x28, 0x29, 0x2C, 0x2D, 0x3A, 0x7B, 0x7D, 0x7F, 0x80, 0xFF]
            bytes[position(in: bytes.count)] = interesting[Int.random(in: 0..<interesting.count, using: &generator)]
        case 3: // insert random bytes
            let insert = (0..<Int.random(in: 1...8, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            bytes.insert(contentsOf: insert, at: position(in: bytes.count + 1))
        case 4: // delete a range
            guard !bytes.isEmpty else { return }
            let start = position(in: bytes.count)
            let end = min(bytes.count, start + Int.random(in: 1...8, using: &generator))
            bytes.removeSubrange(start..<end)
        case 5: // truncate
            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
        default: // append
            bytes += (0..<Int.random(in: 1...16, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
        }
    }
}
