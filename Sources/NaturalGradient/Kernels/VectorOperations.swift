import OpenCLHost

/// Launch plans for the vector kernels the solvers are composed of: `scale`, `axpy`,
/// `axpby` (`Vector.cl`) and a two-stage dot product with a fixed summation order
/// (`Reduction.cl`).
///
/// An instance owns kernel objects and scratch buffers, so it is not shared between
/// threads; make one per thread (programs are cached per context, so that is cheap).
/// Every operation validates its arguments and throws, naming the argument, before it
/// launches anything.
package final class VectorOperations<Element: DeviceScalar> {
    /// The context everything runs on.
    public let context: Context
    /// Work-items per group for the element-wise kernels.
    public let elementwiseGroupSize: Int
    /// Work-items per group of the reduction (a power of two).
    public let reductionGroupSize: Int
    /// The most work-groups stage 1 of the reduction uses: a constant, not the device's
    /// compute-unit count, so that the summation order (and so every bit of a result)
    /// depends only on the length and the tunables, whatever threads the device runs.
    public let maxReductionGroups = 256

    private let scaleKernel: Kernel
    private let axpyKernel: Kernel
    private let axpbyKernel: Kernel
    private let dotKernel: Kernel
    private let sumKernel: Kernel
    private let partials: Buffer<Element>
    private let hostResult: Buffer<Element>

    /// Builds (or reuses) the programs for `Element` on the context's device, with
    /// `tunables` for the reduction (default: the tuning cache's or the device's).
    public init(context: Context, tunables: ReductionTunables? = nil) throws {
        self.context = context
        let device = context.device
        let vector = try context.build(KernelConfiguration(.vector, element: Element.self, device: device)).program
        scaleKernel = try vector.makeKernel(named: "scale")
        axpyKernel = try vector.makeKernel(named: "axpy")
        axpbyKernel = try vector.makeKernel(named: "axpby")
        elementwiseGroupSize = workGroupSize(for: axpyKernel.info)

        let reduction = try context.buildFixedGroupKernels(
            tunables ?? .resolved(for: device, element: Element.self), element: Element.self,
            names: ["dot_partial", "sum_partials"])
        dotKernel = reduction.kernels[0]
        sumKernel = reduction.kernels[1]
        reductionGroupSize = reduction.tunables.groupSize
        partials = try Buffer(context: context, count: maxReductionGroups)
        hostResult = try Buffer(context: context, count: 1)
    }

    // MARK: - Element-wise updates

    /// `x[0..<count] ← alpha x[0..<count]` (all of `x` by default).
    @discardableResult
    public func scale(_ x: Buffer<Element>, by alpha: Element, count: Int? = nil) throws -> Event {
        let n = try Self.length(count, ("x", x))
        try scaleKernel.setArguments(UInt64(n), alpha, x)
        return try launchElementwise(scaleKernel, count: n)
    }

    /// `y ← alpha x + y` over the first `count` elements (both whole buffers by default).
    @discardableResult
    public func axpy(_ alpha: Element, _ x: Buffer<Element>, _ y: Buffer<Element>, count: Int? = nil) throws -> Event {
        let n = try Self.length(count, ("x", x), ("y", y))
        try axpyKernel.setArguments(UInt64(n), alpha, x, y)
        return try launchElementwise(axpyKernel, count: n)
    }

    /// `y ← alpha x + beta y` over the first `count` elements (both whole buffers by default).
    @discardableResult
    public func axpby(
        _ alpha: Element, _ x: Buffer<Element>, _ beta: Element, _ y: Buffer<Element>, count: Int? = nil
    ) throws -> Event {
        let n = try Self.length(count, ("x", x), ("y", y))
        try axpbyKernel.setArguments(UInt64(n), alpha, x, beta, y)
        return try launchElementwise(axpbyKernel, count: n)
    }

    // MARK: - Reductions

    /// `Σ x[i] y[i]` over the first `count` elements, read back to the host.
    public func dot(_ x: Buffer<Element>, _ y: Buffer<Element>, count: Int? = nil) throws -> Element {
        try dot(x, y, into: hostResult, at: 0, count: count)
        return try hostResult.download()[0]
    }

    /// `Σ x[i]²`, read back to the host.
    public func squaredNorm(_ x: Buffer<Element>, count: Int? = nil) throws -> Element {
        try dot(x, x, count: count)
    }

    /// `‖x‖₂`, read back to the host.
    public func norm(_ x: Buffer<Element>, count: Int? = nil) throws -> Element {
        try squaredNorm(x, count: count).squareRoot()
    }

    /// Writes `Σ x[i] y[i]` to `result[index]` on the device without a read-back, so an
    /// iterative solver can keep its scalars on the device.
    @discardableResult
    public func dot(
        _ x: Buffer<Element>, _ y: Buffer<Element>, into result: Buffer<Element>, at index: Int, count: Int? = nil
    ) throws -> Event {
        let n = try Self.length(count, ("x", x), ("y", y))
        guard (0..<result.count).contains(index) else {
            throw OpenCLError.invalidArgument(
                name: "index", reason: "\(index) is outside the result buffer's \(result.count) elements")
        }
        let groups = reductionGroups(for: n)
        try dotKernel.setArguments(UInt64(n), x, y, partials)
        try context.enqueue(dotKernel, globalSize: [groups * reductionGroupSize], localSize: [reductionGroupSize])
        try sumKernel.setArguments(UInt32(groups), partials, result, UInt32(index))
        return try context.enqueue(sumKernel, globalSize: [reductionGroupSize], localSize: [reductionGroupSize])
    }

    /// Stage-1 work-groups for `n` elements: a function of `n` and the device only, which
    /// is what makes results repeatable.
    func reductionGroups(for n: Int) -> Int {
        max(1, min(maxReductionGroups, (n + reductionGroupSize - 1) / reductionGroupSize))
    }

    // MARK: - Helpers

    private func launchElementwise(_ kernel: Kernel, count: Int) throws -> Event {
        try context.enqueue(
            kernel, globalSize: [roundUp(count, toMultipleOf: elementwiseGroupSize)], localSize: [elementwiseGroupSize])
    }

    /// The element count an operation covers: `count` if given (it must fit every
    /// buffer), else the buffers' common length.
    static func length(_ count: Int?, _ buffers: (String, Buffer<Element>)...) throws -> Int {
        if let count {
            guard count > 0 else {
                throw OpenCLError.invalidArgument(name: "count", reason: "must be positive, got \(count)")
            }
            for (name, buffer) in buffers where buffer.count < count {
                throw OpenCLError.invalidArgument(
                    name: name, reason: "has \(buffer.count) elements, fewer than count \(count)")
            }
            return count
        }
        let (firstName, first) = buffers[0]
        for (name, buffer) in buffers.dropFirst() where buffer.count != first.count {
            throw OpenCLError.invalidArgument(
                name: name, reason: "has \(buffer.count) elements but \(firstName) has \(first.count)")
        }
        return first.count
    }
}
