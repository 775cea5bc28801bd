import NaturalGradientTestSupport
import Testing

@testable import NumPyFormat

/// Shapes with awkward sizes, including empty arrays.
private let roundTripShapes: [[Int]] = [[1], [7], [33, 5], [1, 1], [5, 1], [1, 9], [0], [3, 0], [100]]

/// Values exercising every bit-level corner: signed zeros, subnormals, extremes, infinities and
/// quiet NaNs with payloads, then seeded random values. All are exactly representable in the
/// element type so bit patterns survive the round trip.
private func specialValues(count: Int, elementType: NumPyElementType, seed: UInt64) -> [Double] {
    var generator = SplitMix64(seed: seed)
    switch elementType {
    case .float64:
        let specials: [Double] = [
            -0.0, 0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
            Double(bitPattern: 0x000F_FFFF_FFFF_FFFF), .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            .infinity, -.infinity, .nan, -.nan, Double(bitPattern: 0x7FF8_0000_0000_1234), 1, -1, .pi,
        ]
        return (0..<count).map { index in
            index < specials.count
                ? specials[index] : Double(bitPattern: generator.next() & 0x7FEF_FFFF_FFFF_FFFF)
        }
    case .float32:
        let specials: [Float] = [
            -0.0, 0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
            Float(bitPattern: 0x007F_FFFF), .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            .infinity, -.infinity, .nan, -.nan, Float(bitPattern: 0x7FC0_1234), 1, -1, .pi,
        ]
        return (0..<count).map { index in
            let value =
                index < specials.count
                ? specials[index] : Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()) & 0x7F7F_FFFF)
            return Double(value)
        }
    }
}

@Suite("Round trips")
struct RoundTripTests {
    @Test(arguments: [NumPyElementType.float32, .float64], roundTripShapes)
    func encodeThenDecode(elementType: NumPyElementType, shape: [Int]) throws {
        let count = shape.reduce(1, *)
        let values = specialValues(count: count, elementType: elementType, seed: UInt64(count))
        let array = try NumPyArray(shape: shape, elementType: elementType, values: values)
        let bytes = array.encoded()

        // Header layout.
        #expect(Array(bytes.prefix(8)) == npyMagic + [1, 0])
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        #expect(bytes[10 + headerLength - 1] == UInt8(ascii: "\n"))
        #expect(bytes.count == 10 + headerLength + count * elementType.byteCount)

        // Values, bit for bit.
        let decoded = try NumPyArray.decode(bytes)
        #expect(decoded.shape == shape)
        #expect(decoded.elementType == elementType)
        #expect(decoded.values.map(\.bitPattern) == values.map(\.bitPattern))
        #expect(decoded == array)
        #expect(decoded.encoded() == bytes)
    }

    @Test func float32ValuesAreRoundedWhenWritten() throws {
        let array = try NumPyArray(shape: [3], elementType: .float32, values: [0.1, 1e300, -1e-300])
        let decoded = try NumPyArray.decode(array.encoded())
        #expect(decoded.values[0] == Double(Float(0.1)))
        #expect(decoded.values[1] == .infinity)
        #expect(decoded.values[2].bitPattern == (-0.0 as Double).bitPattern)
    }

    @Test func encodingMatchesNumPyByteForByte() throws {
        let arange = try NumPyArray(shape: [2, 3], elementType: .float64, values: [0, 1, 2, 3, 4, 5])
        #expect(arange.encoded() == NumPyFixtures.arange2x3Float64)
        let pair = try NumPyArray(shape: [2], elementType: .float32, values: [1.5, -2.0])
        #expect(pair.encoded() == NumPyFixtures.pairFloat32)
        let column = try NumPyArray.decode(NumPyFixtures.column7x1Float64)
        #expect(column.encoded() == NumPyFixtures.column7x1Float64)
    }

    @Test func headerPaddingForLongDimensions() throws {
        // A large first dimension shrinks NumPy's growth padding; the total stays 64-aligned.
        let array = try NumPyArray(
            shape: [123_456_789, 0], elementType: .float64, values: [])
        let bytes = array.encoded()
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        #expect(try NumPyArray.decode(bytes) == array)
    }

    @Test func nonFiniteCount() throws {
        let array = try NumPyArray(
            shape: [2, 3], elementType: .float64, values: [1, .nan, -.infinity, .infinity, 0, -0.0])
        #expect(array.nonFiniteCount == 3)
        #expect(try NumPyArray.decode(array.encoded()).nonFiniteCount == 3)
        #expect(try NumPyArray(shape: [0], elementType: .float32, values: []).nonFiniteCount == 0)
    }

    @Test func equalityComparesBitPatterns() throws {
        let a = try NumPyArray(shape: [2], elementType: .float64, values: [.nan, 1])
        #expect(a == a)
        let positiveZero = try NumPyArray(shape: [1], elementType: .float64, values: [0.0])
        let negativeZero = try NumPyArray(shape: [1], elementType: .float64, values: [-0.0])
        #expect(positiveZero != negativeZero)
        let float32 = try NumPyArray(shape: [1], elementType: .float32, values: [0.0])
        #expect(positiveZero != float32)
        let column = try NumPyArray(shape: [1, 1], elementType: .float64, values: [0.0])
        #expect(positiveZero != column)
    }

    @Test func initializerValidates() {
        let cases: [([Int], Int, String)] = [
            ([2, 3], 5, "needs 6 values, but there are 5"),
            ([], 1, "0-D"),
            ([1, 1, 1], 1, "3-D"),
            ([-1], 0, "negative dimension -1"),
            ([Int.max, 2], 0, "too large"),
            ([Int.max / 4 + 1], 0, "too large"),
        ]
        for (shape, count, fragment) in cases {
            #expect {
                try NumPyArray(shape: shape, elementType: .float64, values: Array(repeating: 0, count: count))
            } throws: { error in
                guard let error = error as? NumPyFormatError else { return false }
                return error.file == "<NumPyArray>" && error.problem.contains(fragment)
            }
        }
    }
}
