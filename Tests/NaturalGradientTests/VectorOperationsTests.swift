import Testing
import NaturalGradientTestSupport

@testable import NaturalGradient

/// Each vector kernel against a float64 host reference at the awkward sizes. The updates
/// are in place, so an unwritten element keeps its input and fails the comparison; the
/// elements past `count` hold a finite sentinel that any write would change (a NaN there
/// would stay NaN through `alpha * x + y` and hide a stray write).
@Suite("Vector kernels against float64 references")
struct VectorOperationsTests {
    @Test(arguments: awkwardVectorSizes) func floatUpdates(count: Int) throws {
        try checkUpdates(Float.self, count: count)
    }

    @Test(arguments: awkwardVectorSizes) func doubleUpdates(count: Int) throws {
        try #require(deviceSupports(Double.self))
        try checkUpdates(Double.self, count: count)
    }

    @Test(arguments: awkwardVectorSizes) func floatDot(count: Int) throws {
        try checkDot(Float.self, count: count)
    }

    @Test(arguments: awkwardVectorSizes) func doubleDot(count: Int) throws {
        try #require(deviceSupports(Double.self))
        try checkDot(Double.self, count: count)
    }

    private func checkUpdates<T: DeviceScalar>(_: T.Type, count: Int) throws {
        let context = try TestDevice.context()
        let operations = try VectorOperations<T>(context: context)
        let x: [T] = randomValues(count, seed: UInt64(count))
        let y: [T] = randomValues(count, seed: UInt64(count) + 1)
        let tail = 5
        let sentinel: T = 4096.5
        let (alpha, beta): (T, T) = (-1.375, 0.8125)

        func run(_ operation: (Buffer<T>, Buffer<T>) throws -> Void, reference: [Double], name: String) throws {
            let xBuffer = try Buffer<T>(context: context, count: count + tail)
            let yBuffer = try Buffer<T>(context: context, count: count + tail)
            try xBuffer.fill(sentinel)
            try yBuffer.fill(sentinel)
            try xBuffer.upload(x)
            try yBuffer.upload(y)
            try operation(xBuffer, yBuffer)
            let target = name == "scale" ? xBuffer : yBuffer
            let out = try target.download()
            #expect(relativeError(Array(out[..<count]), reference) < tolerance(for: T.self), "\(name) n=\(count)")
            #expect(out[count...].allSatisfy { $0 == sentinel }, "\(name) wrote past count \(count)")
        }

        let xd = x.map { Double($0) }, yd = y.map { Double($0) }
        let (a, b) = (Double(alpha), Double(beta))
        try run({ x, _ in try operations.scale(x, by: alpha, count: count) }, reference: xd.map { a * $0 }, name: "scale")
        try run(
            { x, y in try operations.axpy(alpha, x, y, count: count) }, reference: zip(xd, yd).map { a * $0 + $1 },
            name: "axpy")
        try run(
            { x, y in try operations.axpby(alpha, x, beta, y, count: count) },
            reference: zip(xd, yd).map { a * $0 + b * $1 }, name: "axpby")
    }

    private func checkDot<T: DeviceScalar>(_: T.Type, count: Int) throws {
        let context = try TestDevice.context()
        let operations = try VectorOperations<T>(context: context)
        let x: [T] = randomValues(count, seed: UInt64(count) &* 31)
        let y: [T] = randomValues(count, seed: UInt64(count) &* 37)
        let xBuffer = try Buffer(context: context, copying: x)
        let yBuffer = try Buffer(context: context, copying: y)

        // Error bound relative to Σ|x y|, which a dot with cancellation can exceed |Σ x y| by.
        let products = zip(x, y).map { Double($0) * Double($1) }
        let reference = products.reduce(0, +)
        let scale = products.reduce(0) { $0 + abs($1) }
        let dot = try operations.dot(xBuffer, yBuffer)
        #expect(abs(Double(dot) - reference) <= tolerance(for: T.self) * scale, "dot n=\(count)")

        let squares = x.reduce(0.0) { $0 + Double($1) * Double($1) }
        let squaredNorm = try operations.squaredNorm(xBuffer)
        #expect(abs(Double(squaredNorm) - squares) <= tolerance(for: T.self) * squares)
        #expect(abs(Double(try operations.norm(xBuffer)) - squares.squareRoot()) <= tolerance(for: T.self) * squares.squareRoot())

        // Device-resident result: only the chosen slot is written.
        let results = try Buffer<T>(context: context, count: 3)
        try results.fill(.nan)
        try operations.dot(xBuffer, yBuffer, into: results, at: 1)
        let slots = try results.download()
        #expect(slots[0].isNaN && slots[2].isNaN)
        #expect(slots[1] == dot)
    }

    @Test(arguments: [4097, 1_000_003]) func reductionIsBitwiseRepeatable(count: Int) throws {
        let context = try TestDevice.context()
        let operations = try VectorOperations<Float>(context: context)
        let x = try Buffer<Float>(context: context, copying: randomValues(count, seed: 99))
        let y = try Buffer<Float>(context: context, copying: randomValues(count, seed: 100))
        let first = try operations.dot(x, y).bitPattern
        for _ in 0..<5 {
            #expect(try operations.dot(x, y).bitPattern == first)
        }
        // A second instance plans the same launch, so it agrees bit for bit too.
        #expect(try VectorOperations<Float>(context: context).dot(x, y).bitPattern == first)
    }

    @Test func rejectsMismatchedArgumentsBeforeLaunching() throws {
        let context = try TestDevice.context()
        let operations = try VectorOperations<Float>(context: context)
        let short = try Buffer<Float>(context: context, count: 5)
        let long = try Buffer<Float>(context: context, count: 9)
        let error = #expect(throws: OpenCLError.self) { try operations.axpy(1, short, long) }
        #expect(error?.description.contains("'y'") == true)
        #expect(throws: OpenCLError.self) { try operations.axpy(1, short, long, count: 6) }
        #expect(throws: OpenCLError.self) { try operations.scale(short, by: 2, count: 0) }
        #expect(throws: OpenCLError.self) { try operations.dot(short, long) }
        #expect(throws: OpenCLError.self) { try operations.dot(short, short, into: long, at: 9) }
    }

    @Test func reductionGroupCountDependsOnlyOnLength() throws {
        let operations = try VectorOperations<Float>(context: TestDevice.context())
        #expect(operations.reductionGroups(for: 1) == 1)
        #expect(operations.reductionGroups(for: operations.reductionGroupSize + 1) == min(2, operations.maxReductionGroups))
        #expect(operations.reductionGroups(for: 100_000_000) == operations.maxReductionGroups)
        #expect(operations.reductionGroupSize & (operations.reductionGroupSize - 1) == 0)
    }
}

@Suite("Kernel families")
struct KernelFamilyTests {
    @Test func everyFamilyBuildsForEveryElementType() throws {
        let context = try TestDevice.context()
        for family in KernelFamily.allCases {
            let floatProgram = try context.build(KernelConfiguration(family, element: Float.self, device: context.device))
            #expect(try !floatProgram.program.kernelNames().isEmpty)
            if context.device.supportsFloat64 {
                _ = try context.build(KernelConfiguration(family, element: Double.self, device: context.device))
            }
        }
    }

    @Test func configurationOptionsAreDeterministic() throws {
        let device = try TestDevice.context().device
        let configuration = KernelConfiguration(.reduction, element: Double.self, device: device, defines: ["WGS": 64, "A": 2])
        #expect(configuration.buildOptions == "-DREAL=double -DUSE_FP64 -DA=2 -DWGS=64")
        #expect(
            configuration == KernelConfiguration(.reduction, element: Double.self, device: device, defines: ["A": 2, "WGS": 64]))
    }
}
