import Testing

@testable import NumPyFormat

@Suite("Files written by NumPy, and header variants")
struct KnownBytesTests {
    @Test func arange2x3Float64() throws {
        let array = try NumPyArray.decode(NumPyFixtures.arange2x3Float64)
        #expect(array.shape == [2, 3])
        #expect(array.elementType == .float64)
        #expect(array.values == [0, 1, 2, 3, 4, 5])
    }

    @Test func pairFloat32() throws {
        let array = try NumPyArray.decode(NumPyFixtures.pairFloat32)
        #expect(array.shape == [2])
        #expect(array.elementType == .float32)
        #expect(array.values == [1.5, -2.0])
    }

    @Test func version2Float32() throws {
        let array = try NumPyArray.decode(NumPyFixtures.version2Float32)
        #expect(NumPyFixtures.version2Float32[6] == 2)
        #expect(array.shape == [2, 2])
        #expect(array.elementType == .float32)
        #expect(array.values == [0.25, -1, 3, Double(Float(1e30))])
    }

    @Test func version3Float64() throws {
        let array = try NumPyArray.decode(NumPyFixtures.version3Float64)
        #expect(NumPyFixtures.version3Float64[6] == 3)
        #expect(array.shape == [3])
        #expect(array.elementType == .float64)
        #expect(array.values.map(\.bitPattern) == [-0.0, .infinity, 5e-324].map(\.bitPattern))
        #expect(array.nonFiniteCount == 1)
    }

    @Test func column7x1Float64() throws {
        let array = try NumPyArray.decode(NumPyFixtures.column7x1Float64)
        #expect(array.shape == [7, 1])
        // Python's repr of np.linspace(-1, 1, 7), which round-trips exactly.
        #expect(
            array.values == [
                -1.0, -0.6666666666666667, -0.33333333333333337, 0.0, 0.33333333333333326,
                0.6666666666666665, 1.0,
            ])
    }

    @Test func headerSpellingVariantsAreAccepted() throws {
        let data = float64Bytes([1, 2, 3, 4, 5, 6])
        let headers = [
            "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f8'}", // any key order
            "{'descr': '=f8', 'fortran_order': False, 'shape': (2,3)}", // native order, no spaces
            "{ 'descr' :'<f8' ,\t'fortran_order':False,'shape':( 2 , 3 , ) , }", // odd spacing
            "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2L, 3L)}", // Python 2 style
            "\n {'descr': '<f8',\n 'fortran_order': False,\n 'shape': (2, 3)}\n", // line breaks
        ]
        for header in headers {
            let array = try NumPyArray.decode(npyBytes(header: header, data: data))
            #expect(array.shape == [2, 3], "\(header)")
            #expect(array.values == [1, 2, 3, 4, 5, 6], "\(header)")
        }
        // Unpadded header (not 64-byte aligned) and '=f4'.
        let unpadded = npyBytes(
            header: headerDict(descr: "'=f4'", shape: "(3,)"), pad: false, data: float32Bytes([1, 2, 3]))
        #expect(try NumPyArray.decode(unpadded).values == [1, 2, 3])
        // Version 2.0 built by hand, and empty arrays.
        let version2 = npyBytes(header: headerDict(shape: "(0, 4)"), major: 2)
        #expect(try NumPyArray.decode(version2).shape == [0, 4])
        #expect(try NumPyArray.decode(npyBytes(header: headerDict(shape: "(0,)"))).values.isEmpty)
    }

    @Test func nonFiniteValuesAreAccepted() throws {
        let bytes = npyBytes(
            header: headerDict(shape: "(3,)"), data: float64Bytes([.nan, .infinity, -.infinity]))
        let array = try NumPyArray.decode(bytes)
        #expect(array.nonFiniteCount == 3)
    }
}
