import Foundation
import Testing
import NaturalGradientTestSupport

@_spi(Benchmarks) @testable import NaturalGradient
@testable import OpenCLHost

/// The kernel configurations a GPU would run, run on the test device before a GPU ever
/// does: the test device presented as an NVIDIA, AMD, Intel and a small GPU (`Device
/// .presenting`, same handle, GPU kind and limits), so the tunables' defaults *and* the
/// launch plans' own GPU choices (the implicit product's 8-row blocks and one group per
/// block, local-memory Kronecker tiles, interleaved columns) take the GPU path; plus the
/// corners of each family's space on those limits (every tunable at its lowest or highest
/// admitted value, stepped back where a rule across tunables refuses it: the local memory of
/// 48 KiB, RM dividing VW, the group size). Every result is checked against the float64
/// references at awkward sizes with outputs poisoned first.
///
/// `KernelTunablesSpaceTests` covers every admitted value on the CPU's own limits; this
/// suite is about the GPU's defaults, plans and limits, with few builds (about 60 s on two
/// loaded cores at most): the defaults of the distinct profiles, two corners on the NVIDIA
/// limits (the largest groups, the tightest local memory) and two on the small GPU's.
@Suite("GPU configurations on the test device", .serialized)
struct GPUConfigurationTests {
    /// A GPU's kind and limits as its driver reports them.
    struct Profile: CustomStringConvertible {
        let name: String
        let maxWorkGroupSize: Int
        let localMemoryBytes: UInt64
        var description: String { name }
    }

    /// NVIDIA (CUDA's OpenCL: 1024 items, 48 KiB), AMD (ROCm: 256, 64 KiB), Intel (Xe
    /// iGPUs: 512, 64 KiB) and a small GPU at OpenCL's full-profile minimum local memory
    /// (64 items, 32 KiB), the one whose defaults differ from the others'.
    static let profiles = [
        Profile(name: "NVIDIA", maxWorkGroupSize: 1024, localMemoryBytes: 48 << 10),
        Profile(name: "AMD", maxWorkGroupSize: 256, localMemoryBytes: 64 << 10),
        Profile(name: "Intel", maxWorkGroupSize: 512, localMemoryBytes: 64 << 10),
        Profile(name: "small GPU", maxWorkGroupSize: 64, localMemoryBytes: 32 << 10),
    ]

    /// One context per profile, on the test device presented as that GPU.
    static let contexts: Result<[Context], any Error> = Result {
        let device = try TestDevice.context().device
        return try profiles.map { profile in
            try Context(
                device: device.presenting(
                    as: .gpu, name: "\(device.name) presented as \(profile.name)",
                    maxWorkGroupSize: profile.maxWorkGroupSize, localMemoryBytes: profile.localMemoryBytes))
        }
    }

    /// The configurations of one family to run, each with the context (profile) to run it
    /// on: the profiles' defaults (duplicates dropped), then the low and high corners on the
    /// NVIDIA limits and the two alternating corners on the small GPU's. `defaultsOnly`
    /// (the double runs, to bound the builds): the NVIDIA defaults alone.
    static func configurations<Tunables: KernelTunables, Element: DeviceScalar>(
        _: Tunables.Type, _: Element.Type, defaultsOnly: Bool = false
    ) throws -> [(tunables: Tunables?, context: Context, label: String)] {
        let contexts = try Self.contexts.get()
        if defaultsOnly {
            return [
                (nil, contexts[0], "\(profiles[0]) defaults \(Tunables.defaults(for: contexts[0].device, element: Element.self))")
            ]
        }
        var seen = Set<Tunables>()
        var runs: [(tunables: Tunables?, context: Context, label: String)] = []
        for (profile, context) in zip(profiles, contexts) {
            // nil: the objects resolve the tunables themselves, as they would on that GPU.
            let defaults = Tunables.defaults(for: context.device, element: Element.self)
            if seen.insert(defaults).inserted { runs.append((nil, context, "\(profile) defaults \(defaults)")) }
        }
        for (index, patterns) in [(0, [Corner.low, .high]), (3, [.alternatingHigh, .alternatingLow])] {
            let context = contexts[index]
            for pattern in patterns {
                let corner = try Self.corner(Tunables.self, Element.self, pattern, device: context.device)
                if seen.insert(corner).inserted {
                    runs.append((corner, context, "\(profiles[index]) \(pattern) corner \(corner)"))
                }
            }
        }
        return runs
    }

    enum Corner { case low, high, alternatingHigh, alternatingLow }

    /// The device defaults with every tunable in turn moved to the end of its admitted
    /// values `pattern` names (alternating: tunable 0 high, 1 low, ...), stepping back
    /// toward the other end past values the rules refuse given the tunables set so far.
    static func corner<Tunables: KernelTunables, Element: DeviceScalar>(
        _: Tunables.Type, _: Element.Type, _ pattern: Corner, device: Device
    ) throws -> Tunables {
        var tunables = Tunables.defaults(for: device, element: Element.self)
        // Two sweeps: a value the first refused for a later tunable's default (RM = 16 with
        // VW = 4) is taken once that tunable has moved.
        for (index, admitted) in Array(
            repeating: Tunables.admittedValues(on: device, element: Element.self).enumerated(), count: 2
        ).joined() {
            let high =
                switch pattern {
                case .low: false
                case .high: true
                case .alternatingHigh: index.isMultiple(of: 2)
                case .alternatingLow: !index.isMultiple(of: 2)
                }
            for value in high ? admitted.values.reversed() : admitted.values {
                let candidate = try tunables.overriding([admitted.name: value])
                if candidate.violation(on: device, element: Element.self) == nil {
                    tunables = candidate
                    break
                }
            }
        }
        return tunables
    }

    // MARK: - The families

    @Test func reduction() throws {
        for run in try Self.configurations(ReductionTunables.self, Float.self) {
            let operations = try VectorOperations<Float>(context: run.context, tunables: run.tunables)
            // 65,537: more than 256 groups' worth at the largest group, with a ragged end.
            for n in [1, 7, 1000, 65_537] {
                let x: [Float] = randomValues(n, seed: UInt64(n))
                let y: [Float] = randomValues(n, seed: UInt64(n + 1))
                let reference = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let scale = zip(x, y).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                let dot = try operations.dot(Buffer(context: run.context, copying: x), Buffer(context: run.context, copying: y))
                #expect(abs(Double(dot) - reference) <= 4 * tolerance(for: Float.self) * scale, "n \(n), \(run.label)")
            }
        }
    }

    @Test func accumulation() throws {
        try accumulation(Float.self)
        if deviceSupports(Double.self) { try accumulation(Double.self, defaultsOnly: true) }
    }

    private func accumulation<T: DeviceScalar>(_: T.Type, defaultsOnly: Bool = false) throws {
        // 37: not a multiple of any micro-tile, so every edge tile is partial.
        let (m, p) = (13, 37)
        let u: [T] = randomValues(m * p, seed: 11)
        let weights: [T] = randomValues(m, seed: 12).map { abs($0) }
        let reference = referenceAccumulation(u, rows: m, dim: p, weights: weights, alpha: 1 / Double(m))
        for run in try Self.configurations(FisherAccumulationTunables.self, T.self, defaultsOnly: defaultsOnly) {
            let factor = try CurvatureFactor(
                matrix: Buffer(context: run.context, copying: u), rows: m, dimension: p, samples: m,
                weights: Buffer(context: run.context, copying: weights))
            let output = try Buffer<T>(context: run.context, count: p * p)
            try output.fill(.nan)
            try FisherAccumulation<T>(context: run.context, tunables: run.tunables).accumulate(factor, into: output)
            #expect(relativeError(try output.download(), reference) < tolerance(for: T.self), "\(T.self) \(run.label)")
        }
    }

    @Test func products() throws {
        try products(Float.self)
        if deviceSupports(Double.self) { try products(Double.self, defaultsOnly: true) }
    }

    /// The implicit product at 37 rows (several row blocks and groups, a ragged last block)
    /// and P = 131 (a tail past every vector width), with 1 vector (the GPU plan's 8-row
    /// blocks) and 11 (a pass of 8, then 3: 1- and 2-row blocks); the block-dense product on
    /// blocks of 5, 32 and 94 parameters.
    private func products<T: DeviceScalar>(_: T.Type, defaultsOnly: Bool = false) throws {
        let (m, p, damping) = (37, 131, 0.25)
        let u: [T] = randomValues(m * p, seed: 21)
        let weights: [T] = randomValues(m, seed: 22).map { abs($0) }
        let batches: [[[T]]] = [1, 11].map { count in (0..<count).map { randomValues(p, seed: UInt64(30 + count + $0)) } }
        let implicit = batches.map {
            referenceImplicitProduct(u, rows: m, dim: p, samples: m, weights: weights, xs: $0, damping: damping)
        }
        var blocks: [DenseBlock] = []
        var matrixCount = 0
        for size in [5, 32, 94] {
            blocks.append(DenseBlock(offset: blocks.last.map { $0.offset + $0.size } ?? 0, size: size, matrixOffset: matrixCount))
            matrixCount += size * size
        }
        var matrices = [T](repeating: 0, count: matrixCount)
        var dense = [Double](repeating: 0, count: p * p)
        let raw: [T] = randomValues(matrixCount, seed: 40)
        for block in blocks {
            for i in 0..<block.size {
                for j in 0..<block.size {
                    let value = raw[block.matrixOffset + min(i, j) * block.size + max(i, j)]
                    matrices[block.matrixOffset + i * block.size + j] = value
                    dense[(block.offset + i) * p + block.offset + j] = Double(value)
                }
            }
        }
        let denseReference = batches.map {
            $0.map { referenceDenseProduct(dense, dim: p, x: $0.map { Double($0) }, damping: damping) }
        }
        for run in try Self.configurations(CurvatureProductTunables.self, T.self, defaultsOnly: defaultsOnly) {
            let context = run.context
            let factor = try CurvatureFactor(
                matrix: Buffer(context: context, copying: u), rows: m, dimension: p, samples: m,
                weights: Buffer(context: context, copying: weights))
            let matrixBuffer = try Buffer(context: context, copying: matrices)
            let product = try ImplicitProduct<T>(context: context, tunables: run.tunables)
            let blockProduct = try BlockDenseProduct<T>(context: context, tunables: run.tunables)
            // The corners take the 11-vector batch only (fewer builds); the defaults both.
            for (index, xs) in batches.enumerated() where run.tunables == nil || xs.count > 1 {
                let x = try VectorBatch<T>(context: context, vectors: xs)
                let y = try VectorBatch<T>(context: context, dimension: p, count: xs.count)
                try y.buffer.fill(.nan)
                try product.apply(factor, x, damping: T(damping), into: y)
                for (column, out) in try y.download().enumerated() {
                    #expect(
                        relativeError(out, implicit[index][column]) < tolerance(for: T.self),
                        "implicit \(xs.count) vectors, column \(column), \(T.self) \(run.label)")
                }
                try y.buffer.fill(.nan)
                try blockProduct.apply(blocks, matrices: matrixBuffer, x, damping: T(damping), into: y)
                for (column, out) in try y.download().enumerated() {
                    #expect(
                        relativeError(out, denseReference[index][column]) < tolerance(for: T.self),
                        "dense \(xs.count) vectors, column \(column), \(T.self) \(run.label)")
                }
            }
        }
    }

    @Test func kronecker() throws {
        try kronecker(Float.self)
        if deviceSupports(Double.self) { try kronecker(Double.self, defaultsOnly: true) }
    }

    /// Layers of 1 x 3, 9 x 17 and 70 x 67 (more than one 64 x 64 GPU tile along both
    /// sides, and k past the last full 16-slice) on 2 vectors.
    private func kronecker<T: DeviceScalar>(_: T.Type, defaultsOnly: Bool = false) throws {
        let shapes = [(outputs: 1, inputs: 3), (outputs: 9, inputs: 17), (outputs: 70, inputs: 67)]
        let damping = 0.05
        for run in try Self.configurations(KroneckerTunables.self, T.self, defaultsOnly: defaultsOnly) {
            let context = run.context
            let curvature = try KroneckerCurvature<T>(context: context, shapes: shapes, tunables: run.tunables)
            var factors = [T](repeating: 0, count: curvature.factors.count)
            for layer in curvature.layers {
                for (offset, n) in [(layer.aOffset, layer.inputs), (layer.gOffset, layer.outputs)] {
                    let raw: [T] = randomValues(n * n, seed: UInt64(50 + offset))
                    for i in 0..<n {
                        for j in 0..<n { factors[offset + i * n + j] = raw[min(i, j) * n + max(i, j)] + (i == j ? 2 : 0) }
                    }
                }
            }
            let xs: [[T]] = (0..<2).map { randomValues(curvature.dimension, seed: UInt64(60 + $0)) }
            try curvature.factors.upload(factors)
            let dampings = try curvature.factoredDampings(T(damping))
            let f = factors.map { Double($0) }
            let expected = xs.map { x in
                curvature.layers.enumerated().flatMap { index, layer in
                    referenceKronecker(
                        g: Array(f[layer.gOffset..<(layer.gOffset + layer.outputs * layer.outputs)]),
                        a: Array(f[layer.aOffset..<(layer.aOffset + layer.inputs * layer.inputs)]),
                        v: x[layer.parameterOffset..<(layer.parameterOffset + layer.outputs * layer.inputs)].map { Double($0) },
                        rows: layer.outputs, cols: layer.inputs, gammaG: dampings[index].g, gammaA: dampings[index].a)
                }
            }
            let y = try VectorBatch<T>(context: context, dimension: curvature.dimension, count: 2)
            try y.buffer.fill(.nan)
            try curvature.apply(VectorBatch(context: context, vectors: xs), damping: T(damping), into: y)
            for (index, out) in try y.download().enumerated() {
                #expect(relativeError(out, expected[index]) < tolerance(for: T.self), "vector \(index), \(T.self) \(run.label)")
            }
        }
    }

    /// CG on `(F + λI) x = b` at P = 300 (more than one group at every group size but the
    /// largest, a ragged last group), two columns: the residual of the returned x, measured on
    /// the host in float64, meets the tolerance.
    @Test func conjugateGradient() throws {
        let (m, p, damping, tolerance) = (9, 300, 0.5, 1e-4)
        let u: [Float] = randomValues(m * p, seed: 70)
        let bs: [[Float]] = (0..<2).map { randomValues(p, seed: UInt64(80 + $0)) }
        for run in try Self.configurations(ConjugateGradientTunables.self, Float.self) {
            let context = run.context
            let factor = try CurvatureFactor(matrix: Buffer(context: context, copying: u), rows: m, dimension: p, samples: m)
            let solver = try ConjugateGradient<Float>(context: context, tunables: run.tunables)
            let (x, reports) = try solver.solve(
                ImplicitCurvature(factor: factor), VectorBatch(context: context, vectors: bs), damping: Float(damping),
                options: ConjugateGradientOptions(tolerance: tolerance, maxIterations: 4 * m + 20))
            let solutions = try x.download()
            let products = referenceImplicitProduct(u, rows: m, dim: p, samples: m, xs: solutions, damping: damping)
            let norm = { (v: [Double]) in v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
            for (index, b) in bs.enumerated() {
                #expect(reports[index].status == .converged, "column \(index), \(run.label)")
                let residual = zip(b, products[index]).map { Double($0) - $1 }
                #expect(norm(residual) <= 10 * tolerance * norm(b.map { Double($0) }), "column \(index), \(run.label)")
            }
        }
    }

    // MARK: - The configurations themselves

    /// The presented devices take the GPU path: GPU defaults (local tiles, interleaved
    /// columns), and the corners reach the limits (the NVIDIA group of 1024 items, a
    /// local-memory footprint no larger than the profile's), so the runs above are the
    /// configurations they claim to be.
    @Test func theConfigurationsAreTheGPUOnes() throws {
        let contexts = try Self.contexts.get()
        let nvidia = contexts[0].device
        let actual = try TestDevice.context().device
        #expect(nvidia.kind == .gpu && nvidia == actual && nvidia.name != actual.name)
        let kronecker = KroneckerTunables.defaults(for: nvidia, element: Float.self)
        #expect(kronecker.localTiles == 1 && kronecker.groupSize == 256)
        let products = CurvatureProductTunables.defaults(for: nvidia, element: Float.self)
        #expect(products.contiguous == 0 && products.reverse == 0 && products.denseRows == 2)
        #expect(ConjugateGradientTunables.defaults(for: nvidia, element: Float.self).contiguous == 0)
        #expect(KroneckerTunables.defaults(for: contexts[3].device, element: Float.self).groupSize == 64)

        // Every family's defaults are valid on every profile (the products' were refused on
        // 48 KiB of local memory until the rule charged RB·KB as the plan chooses it).
        for device in contexts.map(\.device) {
            func valid<Tunables: KernelTunables>(_: Tunables.Type) {
                let violation = Tunables.defaults(for: device, element: Float.self).violation(on: device, element: Float.self)
                #expect(violation == nil, "\(Tunables.family) on \(device.name)")
            }
            valid(ReductionTunables.self)
            valid(FisherAccumulationTunables.self)
            valid(CurvatureProductTunables.self)
            valid(KroneckerTunables.self)
            valid(ConjugateGradientTunables.self)
        }
        let high = try Self.corner(ReductionTunables.self, Float.self, .high, device: nvidia)
        #expect(high.groupSize == 1024)
        let tile = try Self.corner(FisherAccumulationTunables.self, Float.self, .high, device: nvidia)
        #expect(tile.rows == 16 && tile.columns == 16)
        let tiles = try Self.corner(KroneckerTunables.self, Float.self, .high, device: nvidia)
        #expect(tiles.localTiles == 1 && tiles.violation(on: nvidia, element: Float.self) == nil)
        // Each step back was forced: one more of the stepped tunable breaks the rule.
        let local = (tiles.groupRows * tiles.tileRows + tiles.groupColumns * tiles.tileColumns) * tiles.slice * 4
        #expect(
            local <= 48 << 10
                && local + (tiles.groupRows * tiles.tileRows + tiles.groupColumns * tiles.tileColumns) * 4 > 48 << 10)
        // The largest group fits with the plan's own row blocks (RB·KB ≤ 8), and then only
        // with one row per block: two would need 65,600 bytes.
        let rows = try Self.corner(CurvatureProductTunables.self, Float.self, .high, device: nvidia)
        #expect(rows.groupSize == 1024 && rows.rowBlock == 1 && rows.violation(on: nvidia, element: Float.self) == nil)
        #expect(try rows.overriding(["RB": 2]).violation(on: nvidia, element: Float.self) != nil)
        #expect(throws: OpenCLError.self) {
            try nvidia.presenting(as: .gpu, name: "too large", maxWorkGroupSize: 1 << 30, localMemoryBytes: 0)
        }
    }
}
