import Foundation
import Testing
import NaturalGradientTestSupport

@_spi(Benchmarks) @testable import NaturalGradient

/// Every kernel family over the space its validity rule admits (what a tuning-cache entry,
/// a tuner candidate or a GPU with other limits can run): each configuration either
/// computes the right answer at small awkward sizes (float64 references, outputs poisoned
/// with NaN first) or is refused by the rule and by the launch plan.
///
/// The space: the full product of each tunable's admitted values where that is at most
/// `fullProductLimit` configurations; else a covering set in which every admitted value
/// (up to `TunableValues.representatives` for long ranges) of every tunable appears, the
/// others cycling through theirs (so the builds stay few: the test runs in seconds).
/// The device defaults are always in the set.
@Suite("Kernel tunables: every admitted configuration is correct", .serialized)
struct KernelTunablesSpaceTests {
    static let fullProductLimit = 48

    /// The configurations of `Tunables` to run, as define dictionaries over the defaults.
    static func space<Tunables: KernelTunables, Element: DeviceScalar>(
        _: Tunables.Type, _: Element.Type, device: Device
    ) throws -> [Tunables] {
        let defaults = Tunables.defaults(for: device, element: Element.self)
        let admitted = Tunables.admittedValues(on: device, element: Element.self).map {
            (name: $0.name, values: $0.representatives())
        }
        var rows: [[String: Int]] = [[:]]
        let product = admitted.reduce(1) { $0 * $1.values.count }
        if product <= fullProductLimit {
            for tunable in admitted {
                rows = rows.flatMap { row in tunable.values.map { row.merging([tunable.name: $0]) { _, new in new } } }
            }
        } else {
            let longest = admitted.map(\.values.count).max() ?? 0
            for index in 0..<longest {
                // Tunable t takes value (index + t) so the combinations differ between rows.
                rows.append(
                    Dictionary(
                        uniqueKeysWithValues: admitted.enumerated().map { t, tunable in
                            (tunable.name, tunable.values[(index + t) % tunable.values.count])
                        }))
            }
        }
        var seen = Set<Tunables>()
        return try rows.map { try defaults.overriding($0) }.filter { seen.insert($0).inserted }
    }

    /// Runs `check` on every admitted configuration, and for every refused one expects the
    /// rule's reason and `make` to throw.
    private func sweep<Tunables: KernelTunables, Element: DeviceScalar>(
        _: Tunables.Type, _: Element.Type, only: [Tunables]? = nil, make: (Tunables) throws -> Void,
        check: (Tunables) throws -> Void
    ) throws {
        let device = try TestDevice.context().device
        var ran = 0
        for tunables in try only ?? Self.space(Tunables.self, Element.self, device: device) {
            if tunables.violation(on: device, element: Element.self) != nil {
                #expect(throws: NaturalGradientError.self, "\(tunables) was refused by the rule") { try make(tunables) }
                continue
            }
            try check(tunables)
            ran += 1
        }
        #expect(ran > 0)
    }

    @Test func reduction() throws {
        try reduction(Float.self)
        if deviceSupports(Double.self) { try reduction(Double.self) }
    }

    private func reduction<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        try sweep(ReductionTunables.self, T.self, make: { _ = try VectorOperations<T>(context: context, tunables: $0) }) {
            tunables in
            let operations = try VectorOperations<T>(context: context, tunables: tunables)
            for n in [1, 7, 257, 4097] {
                let x: [T] = randomValues(n, seed: UInt64(n))
                let y: [T] = randomValues(n, seed: UInt64(n + 1))
                let reference = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let dot = try operations.dot(Buffer(context: context, copying: x), Buffer(context: context, copying: y))
                let scale = zip(x, y).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                #expect(abs(Double(dot) - reference) <= 4 * tolerance(for: T.self) * scale, "n \(n), \(tunables)")
            }
        }
    }

    @Test func accumulation() throws {
        try accumulation(Float.self)
        if deviceSupports(Double.self) { try accumulation(Double.self) }
    }

    private func accumulation<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let (m, p) = (7, 33)
        let u: [T] = randomValues(m * p, seed: 11)
        let factor = try CurvatureFactor(matrix: Buffer(context: context, copying: u), rows: m, dimension: p, samples: m)
        let reference = referenceAccumulation(u, rows: m, dim: p, alpha: 1 / Double(m))
        try sweep(
            FisherAccumulationTunables.self, T.self, make: { _ = try FisherAccumulation<T>(context: context, tunables: $0) }
        ) { tunables in
            let output = try Buffer<T>(context: context, count: p * p)
            try output.fill(.nan)
            try FisherAccumulation<T>(context: context, tunables: tunables).accumulate(factor, into: output)
            #expect(relativeError(try output.download(), reference) < tolerance(for: T.self), "\(tunables)")
        }
    }

    @Test func products() throws {
        try products(Float.self)
        if deviceSupports(Double.self) { try products(Double.self) }
    }

    /// The largest groups `CPUWorkGroupStack` admits, at the largest row blocks, compute the
    /// right products (a bound set too high would crash here, as DWGS = 1024 did in CI), and
    /// the group above each is refused, naming the stack.
    @Test func theLargestGroupsTheStackAdmitsRun() throws {
        let device = try TestDevice.context().device
        guard device.kind == .cpu else { return }
        let defaults = CurvatureProductTunables.defaults(for: device, element: Float.self)
        var largest: [CurvatureProductTunables] = []
        for rowBlock in [nil, 16] as [Int?] {
            var tunables = defaults
            tunables.rowBlock = rowBlock
            tunables.groupSize = CPUWorkGroupStack.largestGroup(
                atMost: device.maxWorkGroupSize,
                itemBytes: CurvatureProductTunables.implicitProductItemBytes(
                    rowBlock: rowBlock, vectorWidth: tunables.vectorWidth, element: Float.self), device: device)
            largest.append(tunables)
        }
        for denseRows in [16, 32] {
            var tunables = defaults
            tunables.denseRows = denseRows
            tunables.denseGroupSize = CPUWorkGroupStack.largestGroup(
                atMost: device.maxWorkGroupSize, itemBytes: tunables.denseProductItemBytes(Float.self), device: device)
            largest.append(tunables)
        }
        // Each entry's stack-bound group (the first two: WGS, the last two: DWGS) doubled.
        for (index, tunables) in largest.enumerated() {
            var doubled = tunables
            if index < 2 { doubled.groupSize *= 2 } else { doubled.denseGroupSize *= 2 }
            guard max(doubled.groupSize, doubled.denseGroupSize) <= device.maxWorkGroupSize else { continue }
            let reason = doubled.violation(on: device, element: Float.self)
            #expect(reason != nil, "\(doubled) is admitted although its group is twice the largest")
        }
        let stackBound = largest.filter { $0.violation(on: device, element: Float.self) == nil }
        #expect(!stackBound.isEmpty)
        try products(Float.self, only: stackBound, vectors: CurvatureProductTunables.maxVectorsPerPass)
    }

    @Test func aGroupOverTheStackIsRefusedByName() throws {
        let context = try TestDevice.context()
        guard context.device.kind == .cpu else { return }
        let budget = CPUWorkGroupStack.budget
        #expect(CPUWorkGroupStack.violation(groupSize: 4, itemBytes: budget / 4, "k", device: context.device) == nil)
        let reason = try #require(
            CPUWorkGroupStack.violation(groupSize: 4, itemBytes: budget / 4 + 1, "k", device: context.device))
        #expect(reason.contains("\(budget + 4) bytes") && reason.contains("ulimit -s"), "\(reason)")
        // A dense-product group within local memory and over the stack (DWGS = 1024, DRB = 16
        // crashed CI): refused, naming the stack. A device whose local memory refuses every
        // such group first has none to refuse.
        let defaults = CurvatureProductTunables.defaults(for: context.device, element: Float.self)
        let candidates = powersOfTwo(1...context.device.maxWorkGroupSize).flatMap { groupSize in
            (1...32).map { rows in
                var tunables = defaults
                (tunables.denseRows, tunables.denseGroupSize) = (rows, groupSize)
                return tunables
            }
        }
        guard
            let tunables = candidates.first(where: {
                $0.denseRows * CurvatureProductTunables.maxVectorsPerPass * $0.denseGroupSize * 4
                    <= context.device.localMemoryBytes && $0.denseGroupSize * $0.denseProductItemBytes(Float.self) > budget
            })
        else { return }
        let error = #expect(throws: NaturalGradientError.self) {
            try BlockDenseProduct<Float>(context: context, tunables: tunables)
        }
        #expect("\(String(describing: error))".contains("stack"), "\(String(describing: error))")
    }

    /// `vectors` right-hand sides: the kernels' private arrays grow with them (KB).
    private func products<T: DeviceScalar>(
        _: T.Type, only: [CurvatureProductTunables]? = nil, vectors: Int = 3
    ) throws {
        let context = try TestDevice.context()
        let (m, p, damping) = (9, 37, 0.25)
        let u: [T] = randomValues(m * p, seed: 21)
        let weights: [T] = randomValues(m, seed: 22).map { abs($0) }
        let factor = try CurvatureFactor(
            matrix: Buffer(context: context, copying: u), rows: m, dimension: p, samples: m,
            weights: Buffer(context: context, copying: weights))
        let xs: [[T]] = (0..<vectors).map { randomValues(p, seed: UInt64(30 + $0)) }
        let implicit = referenceImplicitProduct(u, rows: m, dim: p, samples: m, weights: weights, xs: xs, damping: damping)
        // Two dense blocks (5 and 32 parameters) of a symmetric matrix.
        let blocks = [DenseBlock(offset: 0, size: 5, matrixOffset: 0), DenseBlock(offset: 5, size: 32, matrixOffset: 25)]
        var matrices = [T](repeating: 0, count: 25 + 32 * 32)
        var dense = [Double](repeating: 0, count: p * p)
        let raw: [T] = randomValues(matrices.count, seed: 40)
        for block in blocks {
            for i in 0..<block.size {
                for j in 0..<block.size {
                    let value = raw[block.matrixOffset + min(i, j) * block.size + max(i, j)]
                    matrices[block.matrixOffset + i * block.size + j] = value
                    dense[(block.offset + i) * p + block.offset + j] = Double(value)
                }
            }
        }
        let matrixBuffer = try Buffer(context: context, copying: matrices)
        let denseReference = xs.map { referenceDenseProduct(dense, dim: p, x: $0.map { Double($0) }, damping: damping) }
        let x = try VectorBatch<T>(context: context, vectors: xs)
        try sweep(
            CurvatureProductTunables.self, T.self, only: only,
            make: { _ = try ImplicitProduct<T>(context: context, tunables: $0) }
        ) {
            tunables in
            let y = try VectorBatch<T>(context: context, dimension: p, count: xs.count)
            try y.buffer.fill(.nan)
            try ImplicitProduct<T>(context: context, tunables: tunables).apply(factor, x, damping: T(damping), into: y)
            for (index, out) in try y.download().enumerated() {
                #expect(relativeError(out, implicit[index]) < tolerance(for: T.self), "implicit \(index), \(tunables)")
            }
            try y.buffer.fill(.nan)
            try BlockDenseProduct<T>(context: context, tunables: tunables)
                .apply(blocks, matrices: matrixBuffer, x, damping: T(damping), into: y)
            for (index, out) in try y.download().enumerated() {
                #expect(relativeError(out, denseReference[index]) < tolerance(for: T.self), "dense \(index), \(tunables)")
            }
        }
    }

    @Test func kronecker() throws {
        try kronecker(Float.self)
        if deviceSupports(Double.self) { try kronecker(Double.self) }
    }

    private func kronecker<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let shapes = [(outputs: 1, inputs: 3), (outputs: 9, inputs: 17), (outputs: 33, inputs: 5)]
        let damping = 0.05
        var factors: [T] = []
        var xs: [[T]] = []
        var expected: [[Double]] = []
        try sweep(
            KroneckerTunables.self, T.self,
            make: { _ = try KroneckerCurvature<T>(context: context, shapes: shapes, tunables: $0) }
        ) { tunables in
            let curvature = try KroneckerCurvature<T>(context: context, shapes: shapes, tunables: tunables)
            if factors.isEmpty {
                factors = [T](repeating: 0, count: curvature.factors.count)
                for (index, layer) in curvature.layers.enumerated() {
                    for (offset, n) in [(layer.aOffset, layer.inputs), (layer.gOffset, layer.outputs)] {
                        let raw: [T] = randomValues(n * n, seed: UInt64(50 + offset))
                        for i in 0..<n {
                            for j in 0..<n { factors[offset + i * n + j] = raw[min(i, j) * n + max(i, j)] + (i == j ? 2 : 0) }
                        }
                    }
                    _ = index
                }
                xs = (0..<2).map { randomValues(curvature.dimension, seed: UInt64(60 + $0)) }
            }
            try curvature.factors.upload(factors)
            let dampings = try curvature.factoredDampings(T(damping))
            if expected.isEmpty {
                let f = factors.map { Double($0) }
                expected = xs.map { x in
                    curvature.layers.enumerated().flatMap { index, layer in
                        referenceKronecker(
                            g: Array(f[layer.gOffset..<(layer.gOffset + layer.outputs * layer.outputs)]),
                            a: Array(f[layer.aOffset..<(layer.aOffset + layer.inputs * layer.inputs)]),
                            v: x[layer.parameterOffset..<(layer.parameterOffset + layer.outputs * layer.inputs)].map {
                                Double($0)
                            },
                            rows: layer.outputs, cols: layer.inputs, gammaG: dampings[index].g, gammaA: dampings[index].a)
                    }
                }
            }
            let y = try VectorBatch<T>(context: context, dimension: curvature.dimension, count: 2)
            try y.buffer.fill(.nan)
            try curvature.apply(VectorBatch(context: context, vectors: xs), damping: T(damping), into: y)
            for (index, out) in try y.download().enumerated() {
                #expect(relativeError(out, expected[index]) < tolerance(for: T.self), "vector \(index), \(tunables)")
            }
        }
    }

    @Test func conjugateGradient() throws {
        try conjugateGradient(Float.self)
        if deviceSupports(Double.self) { try conjugateGradient(Double.self) }
    }

    /// CG on `(F + λI) x = b` at P = 37 (and P = 1), two columns (one freezes first): the returned x's residual, measured on
    /// the host in float64, must meet the tolerance, and every column must converge.
    private func conjugateGradient<T: DeviceScalar>(_: T.Type) throws {
        let context = try TestDevice.context()
        let tolerance = T.self == Float.self ? 1e-4 : 1e-10
        for (m, p) in [(5, 1), (9, 37)] {
            let u: [T] = randomValues(m * p, seed: UInt64(70 + p))
            let factor = try CurvatureFactor(matrix: Buffer(context: context, copying: u), rows: m, dimension: p, samples: m)
            let curvature = try ImplicitCurvature(factor: factor)
            let bs: [[T]] = (0..<2).map { randomValues(p, seed: UInt64(80 + $0)) }
            let damping = 0.5
            // P = 1 (one element: every group but the first idle) over the defaults only, to
            // keep the run short; P = 37 over the whole space.
            let space = p == 1 ? [ConjugateGradientTunables.defaults(for: context.device, element: T.self)] : nil
            try sweep(
                ConjugateGradientTunables.self, T.self, only: space,
                make: { _ = try ConjugateGradient<T>(context: context, tunables: $0) }
            ) { tunables in
                let solver = try ConjugateGradient<T>(context: context, tunables: tunables)
                let (x, reports) = try solver.solve(
                    curvature, VectorBatch(context: context, vectors: bs), damping: T(damping),
                    options: ConjugateGradientOptions(tolerance: tolerance, maxIterations: 4 * p + 10))
                let solutions = try x.download()
                let products = referenceImplicitProduct(u, rows: m, dim: p, samples: m, xs: solutions, damping: damping)
                for (index, b) in bs.enumerated() {
                    #expect(reports[index].status == .converged, "P \(p) column \(index), \(tunables)")
                    let residual = zip(b, products[index]).map { Double($0) - $1 }
                    let norm = { (v: [Double]) in v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
                    #expect(norm(residual) <= 10 * tolerance * norm(b.map { Double($0) }), "P \(p) column \(index), \(tunables)")
                }
            }
        }
    }

    @Test func theSpaceCoversEveryAdmittedValue() throws {
        let device = try TestDevice.context().device
        func covered<Tunables: KernelTunables>(_: Tunables.Type) throws {
            let space = try Self.space(Tunables.self, Float.self, device: device).map(\.encodedValues)
            for admitted in Tunables.admittedValues(on: device, element: Float.self) {
                for value in admitted.representatives() {
                    #expect(space.contains { $0[admitted.name] == value }, "\(Tunables.family) \(admitted.name)=\(value)")
                }
            }
        }
        try covered(ReductionTunables.self)
        try covered(FisherAccumulationTunables.self)
        try covered(CurvatureProductTunables.self)
        try covered(KroneckerTunables.self)
        try covered(ConjugateGradientTunables.self)
    }
}
