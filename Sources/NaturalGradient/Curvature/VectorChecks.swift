import OpenCLHost

/// Launch plans for data checks: the count of non-finite values (`Reduction.cl`) and the
/// strided gather (`Vector.cl`) that extracts matrix diagonals.
final class VectorChecks<Element: DeviceScalar> {
    let context: Context
    private let countKernel: Kernel
    private let gatherKernel: Kernel

    init(context: Context) throws {
        self.context = context
        let device = context.device
        countKernel = try context.build(KernelConfiguration(.reduction, element: Element.self, device: device))
            .program.makeKernel(named: "count_nonfinite")
        gatherKernel = try context.build(KernelConfiguration(.vector, element: Element.self, device: device))
            .program.makeKernel(named: "gather_strided")
    }

    /// The number of NaN or infinite values among `buffer[0..<count]`.
    func nonFiniteCount(_ buffer: Buffer<Element>, count: Int) throws -> Int {
        let counter = try Buffer<UInt32>(context: context, count: 1)
        try counter.fill(0)
        try countKernel.setArguments(UInt64(count), buffer, counter)
        // A bounded number of items, each striding through the buffer.
        let items = min(count, max(1, context.device.computeUnits) * 4096)
        try context.enqueue1D(countKernel, items: items)
        return Int(try counter.download()[0])
    }

    /// `y[i] = x[offset + i * stride]` for i in 0..<count.
    func gather(_ x: Buffer<Element>, offset: Int, stride: Int, count: Int, into y: Buffer<Element>) throws {
        try gatherKernel.setArguments(UInt64(count), x, UInt64(offset), UInt64(stride), y)
        try context.enqueue1D(gatherKernel, items: count)
    }
}
