import Foundation
import NaturalGradientTestSupport
import Testing

@testable import NumPyFormat

/// `NumPyMappedArray`: the file read in place, with `decode`'s checks and messages.
@Suite("Memory-mapped reading")
struct MappedArrayTests {
    @Test(arguments: [NumPyElementType.float32, .float64])
    func elementsAreReadInPlace(type: NumPyElementType) throws {
        let scratch = try ScratchDirectory(prefix: "MappedArrayTests")
        // 7 x 1031: more than a page, a row count that is no power of two.
        let values = (0..<(7 * 1031)).map { Double(Float(sin(Double($0)) * 3)) }
        let file = scratch.path + "/u.npy"
        try NumPyArray(shape: [7, 1031], elementType: type, values: values).write(to: file)
        let mapped = try NumPyMappedArray(contentsOf: file)
        #expect(mapped.shape == [7, 1031])
        #expect(mapped.elementType == type)
        #expect(mapped.count == values.count)
        #expect(mapped.nonFiniteCount == 0)
        #expect(mapped.array() == (try NumPyArray.read(contentsOf: file)))
        #expect(mapped.widened(5..<9) == Array(values[5..<9]))
        switch type {
        case .float32:
            let floats = try #require(mapped.elements(as: Float.self))
            #expect(floats.map { Double($0) } == values)
            #expect(mapped.elements(as: Double.self) == nil)
        case .float64:
            #expect(try #require(mapped.elements(as: Double.self)).elementsEqual(values))
            #expect(mapped.elements(as: Float.self) == nil)
        }
        // Released pages read back from the file unchanged.
        mapped.releasePages(0..<values.count)
        #expect(mapped.widened() == values)
    }

    @Test func nonFiniteValuesAreCounted() throws {
        let scratch = try ScratchDirectory(prefix: "MappedArrayTests")
        let values: [Float] = [1, .nan, -.infinity, .infinity, 0, -0.0, .greatestFiniteMagnitude, -.nan, 5]
        let file = try scratch.write(
            "n.npy", npyBytes(header: headerDict(descr: "'<f4'", shape: "(9,)"), data: float32Bytes(values)))
        #expect(try NumPyMappedArray(contentsOf: file).nonFiniteCount == 4)
        let doubles: [Double] = [.nan, 2, .infinity]
        let file64 = try scratch.write(
            "d.npy", npyBytes(header: headerDict(descr: "'<f8'", shape: "(3,)"), data: float64Bytes(doubles)))
        #expect(try NumPyMappedArray(contentsOf: file64).nonFiniteCount == 2)
    }

    /// Every malformed file is refused with the message `decode` gives the same bytes.
    @Test func malformedFilesGiveDecodesMessages() throws {
        let scratch = try ScratchDirectory(prefix: "MappedArrayTests")
        let cases: [[UInt8]] = [
            [],
            Array("not numpy".utf8),
            npyBytes(header: headerDict(shape: "(2, 3)"), data: float64Bytes([1, 2, 3])),
            npyBytes(header: headerDict(shape: "(1,)"), data: float64Bytes([1, 2])),
            npyBytes(header: headerDict(descr: "'<i4'"), data: []),
            npyBytes(header: headerDict(), major: 9),
            Array(npyMagic + [1, 0, 0xFF]),
        ]
        for (index, bytes) in cases.enumerated() {
            let file = try scratch.write("bad\(index).npy", bytes)
            var expected = ""
            do { _ = try NumPyArray.decode(bytes, name: file) } catch { expected = "\(error)" }
            #expect(!expected.isEmpty)
            let error = #expect(throws: NumPyFormatError.self) { try NumPyMappedArray(contentsOf: file) }
            #expect(error.map { "\($0)" } == expected, "case \(index)")
        }
        let missing = #expect(throws: NumPyFormatError.self) { try NumPyMappedArray(contentsOf: scratch.path + "/none.npy") }
        #expect(missing?.problem == "no such file")
        let directory = #expect(throws: NumPyFormatError.self) { try NumPyMappedArray(contentsOf: scratch.path) }
        #expect(directory?.problem == "is a directory, not a .npy file")
    }
}
