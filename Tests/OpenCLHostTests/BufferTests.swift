import Testing
import NaturalGradientTestSupport

@testable import OpenCLHost

@Suite("Typed buffers")
struct BufferTests {
    @Test(arguments: [1, 7, 33, 4097])
    func floatRoundTrip(count: Int) throws {
        try roundTrip(Float.self, count: count)
    }

    @Test(arguments: [1, 7, 33, 4097])
    func doubleRoundTrip(count: Int) throws {
        try #require(deviceSupports(Double.self))
        try roundTrip(Double.self, count: count)
    }

    private func roundTrip<T: DeviceScalar>(_: T.Type, count: Int) throws {
        let context = try TestDevice.context()
        let values: [T] = randomValues(count, seed: UInt64(count))
        let buffer = try Buffer(context: context, copying: values)
        #expect(buffer.count == count)
        #expect(buffer.byteCount == count * MemoryLayout<T>.stride)
        #expect(try buffer.download() == values)
    }

    @Test func downloadIntoReusedStorage() throws {
        let context = try TestDevice.context()
        let values: [Float] = randomValues(4097, seed: 9)
        let buffer = try Buffer(context: context, copying: values)
        var destination = [Float](repeating: .nan, count: 4097)
        try buffer.download(into: &destination)
        #expect(destination == values)
        var part = [Float](repeating: .nan, count: 10)
        try buffer.download(100..<110, into: &part)
        #expect(part == Array(values[100..<110]))
        #expect(throws: OpenCLError.self) { try buffer.download(0..<11, into: &part) }
        #expect(throws: OpenCLError.self) { try buffer.download(4090..<4100, into: &part) }
    }

    @Test func subRangesTransferFillAndCopy() throws {
        let context = try TestDevice.context()
        let values: [Double] = randomValues(100, seed: 7)
        guard context.device.supportsFloat64 else { return }
        let buffer = try Buffer(context: context, copying: values)

        #expect(try buffer.download(10..<17) == Array(values[10..<17]))
        #expect(try buffer.download(5..<5) == [])

        try buffer.upload([1, 2, 3], at: 97)
        try buffer.fill(.nan, range: 20..<30)
        let target = try Buffer<Double>(context: context, count: 50)
        try target.fill(-4)
        try target.copy(from: buffer, range: 90..<100, to: 40)
        try buffer.copy(from: buffer, range: 0..<10, to: 50)

        let whole = try buffer.download()
        #expect(Array(whole[97..<100]) == [1, 2, 3])
        #expect(whole[20..<30].allSatisfy { $0.isNaN })
        #expect(whole[19] == values[19] && whole[30] == values[30])
        #expect(Array(whole[50..<60]) == Array(values[0..<10]))
        let copied = try target.download()
        #expect(copied[0..<40].allSatisfy { $0 == -4 })
        #expect(Array(copied[40..<47]) == Array(values[90..<97]))
        #expect(Array(copied[47..<50]) == [1, 2, 3])
    }

    @Test func rejectsBadRangesAndSizes() throws {
        let context = try TestDevice.context()
        let buffer = try Buffer<Float>(context: context, count: 10)
        #expect(throws: OpenCLError.self) { try Buffer<Float>(context: context, count: 0) }
        #expect(throws: OpenCLError.self) { try Buffer<Float>(context: context, count: Int.max / 2) }
        #expect(throws: OpenCLError.self) { try buffer.upload([1, 2, 3], at: 8) }
        #expect(throws: OpenCLError.self) { try buffer.download(5..<11) }
        #expect(throws: OpenCLError.self) { try buffer.fill(0, range: 9..<12) }
        #expect(throws: OpenCLError.self) { try buffer.copy(from: buffer, range: 0..<5, to: 3) }
        let error = #expect(throws: OpenCLError.self) { try buffer.download(5..<11) }
        #expect(error?.description.contains("'range'") == true)
    }
}

@Suite("Buffer interop")
struct BufferInteropTests {
    /// A cl_mem made elsewhere in the same context is wrapped without a copy and stays
    /// valid after the original owner is gone.
    @Test func wrapsAForeignMemoryObject() throws {
        let context = try TestDevice.context()
        let values: [Float] = randomValues(33, seed: 4)
        var original: Buffer<Float>? = try Buffer(context: context, copying: values)
        let handle = try #require(original).unsafeMemoryHandle
        let wrapped = try Buffer<Float>(context: context, retaining: handle, count: 33)
        original = nil
        #expect(try wrapped.download() == values)
        #expect(throws: OpenCLError.self) { try Buffer<Float>(context: context, retaining: handle, count: 34) }
        #expect(throws: OpenCLError.self) { try Buffer<Float>(context: context, retaining: handle, count: 0) }

        let other = try Context(device: context.device, binaryCachePolicy: .disabled)
        let error = #expect(throws: OpenCLError.self) { try Buffer<Float>(context: other, retaining: handle, count: 33) }
        #expect(error?.description.contains("another OpenCL context") == true)
    }
}
