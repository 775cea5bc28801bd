import OpenCLHost

/// K-FAC inputs of one dense layer with an `outputs x inputs` parameter matrix.
///
/// Parameters are flattened row-major per layer (DESIGN.md section 2). For a layer with a
/// bias, the parameter matrix is `[W | b]` and each activation row carries a trailing 1
/// (`inputs` counts it); `appendingBiasColumn` adds it to host data.
public struct KFACLayer<Element: DeviceScalar> {
    /// Per-sample layer inputs a (samples x inputs, row-major).
    public let activations: Buffer<Element>
    /// Per-sample gradients with respect to the layer's outputs g (samples x outputs).
    public let outputGradients: Buffer<Element>
    /// Columns of the parameter matrix (including a bias column).
    public let inputs: Int
    /// Rows of the parameter matrix.
    public let outputs: Int

    public init(activations: Buffer<Element>, outputGradients: Buffer<Element>, inputs: Int, outputs: Int) {
        self.activations = activations
        self.outputGradients = outputGradients
        self.inputs = inputs
        self.outputs = outputs
    }

    /// `rows x columns` row-major values with a 1 appended to every row.
    public static func appendingBiasColumn(_ values: [Element], rows: Int, columns: Int) -> [Element] {
        var result: [Element] = []
        result.reserveCapacity(rows * (columns + 1))
        for row in 0..<rows {
            result += values[(row * columns)..<((row + 1) * columns)]
            result.append(1)
        }
        return result
    }

    /// Throws unless this input is `layers[index]` of an `outputs x inputs` layer with
    /// activations and output gradients for `samples` samples (K-FAC's and EKFAC's check).
    func requireFits(outputs: Int, inputs: Int, samples: Int, index: Int) throws {
        try require(
            self.inputs == inputs && self.outputs == outputs, "layers[\(index)]",
            "is \(self.outputs) x \(self.inputs), expected \(outputs) x \(inputs)")
        try require(
            activations.count >= samples * inputs, "layers[\(index)].activations",
            "holds \(activations.count) values, fewer than \(samples) x \(inputs)")
        try require(
            outputGradients.count >= samples * outputs, "layers[\(index)].outputGradients",
            "holds \(outputGradients.count) values, fewer than \(samples) x \(outputs)")
    }
}

/// K-FAC: per layer `F_l ≈ G_l ⊗ A_l` with `A = (1/N) Σ w a aᵀ` (inputs x inputs) and
/// `G = (1/N) Σ w g gᵀ` (outputs x outputs), so `(G ⊗ A) vec(V) = vec(G V A)`.
///
/// Damping is factored (DESIGN.md section 5): `apply(x, damping: λ)` applies
/// `(G + (√λ/π) I) ⊗ (A + π√λ I)` with `π = √((tr A / inputs) / (tr G / outputs))`
/// (π = 1 where a trace is zero), which is what K-FAC inverts; it equals `F + λI` only
/// for λ = 0.
public final class KroneckerCurvature<Element: DeviceScalar>: CurvatureOperator {
    /// One layer's place in the parameter vector and in the factor buffer.
    public struct Layer: Hashable, Sendable {
        /// Rows (outputs) and columns (inputs) of the layer's parameter matrix.
        public let outputs: Int, inputs: Int
        /// The layer's first parameter.
        public let parameterOffset: Int
        /// Where A_l and G_l start in `factors`.
        public let aOffset: Int, gOffset: Int
    }

    /// The layers in parameter order.
    public let layers: [Layer]
    /// All A_l then G_l, packed per layer (A_l, G_l, A_{l+1}, ...), row-major.
    public let factors: Buffer<Element>
    public let dimension: Int

    private let accumulation: FisherAccumulation<Element>
    private let rightKernel: Kernel
    private let leftKernel: Kernel
    private let layerTable: Buffer<UInt64>
    /// Work-items per group and groups per launch (all layers) of the two kernels.
    private let groupSize: Int, rightGroups: Int, leftGroups: Int
    private var traces: [(a: Double, g: Double)]?
    private var intermediate: VectorBatch<Element>?

    /// Zero factors for layers of the given `(outputs, inputs)` shapes.
    public convenience init(context: Context, shapes: [(outputs: Int, inputs: Int)]) throws {
        try self.init(context: context, shapes: shapes, tunables: nil)
    }

    /// The same with the device defaults' `defines` replaced (tests cover the GPU path on
    /// any device this way).
    convenience init(context: Context, shapes: [(outputs: Int, inputs: Int)], defines: [String: Int]) throws {
        try self.init(
            context: context, shapes: shapes,
            tunables: KroneckerTunables.defaults(for: context.device, element: Element.self).overriding(defines))
    }

    /// The same with the kernels' `tunables` (nil: the tuning cache's for this device, else
    /// the device defaults); throws when they are outside the family's valid space.
    init(context: Context, shapes: [(outputs: Int, inputs: Int)], tunables: KroneckerTunables?) throws {
        try require(!shapes.isEmpty, "shapes", "is empty")
        var layers: [Layer] = []
        var parameters = 0
        var offset = 0
        for (index, shape) in shapes.enumerated() {
            try require(shape.outputs > 0 && shape.inputs > 0, "shapes", "layer \(index) is \(shape.outputs) x \(shape.inputs)")
            let layer = Layer(
                outputs: shape.outputs, inputs: shape.inputs, parameterOffset: parameters, aOffset: offset,
                gOffset: offset + shape.inputs * shape.inputs)
            layers.append(layer)
            parameters += shape.outputs * shape.inputs
            offset = layer.gOffset + shape.outputs * shape.outputs
        }
        self.layers = layers
        dimension = parameters
        factors = try Buffer(context: context, count: offset)
        try factors.fill(0)
        accumulation = try FisherAccumulation(context: context)
        let built = try context.buildKernels(
            tunables ?? .resolved(for: context.device, element: Element.self), element: Element.self,
            names: ["kronecker_right", "kronecker_left"], groupSize: \.groupSize
        ) { tunables, _ in
            // Halve the rows of the group (the columns keep loads coalesced) until it fits.
            guard tunables.groupRows > 1 else { return nil }
            var smaller = tunables
            smaller.groupRows /= 2
            return smaller
        }
        rightKernel = built.kernels[0]
        leftKernel = built.kernels[1]
        let tunables = built.tunables
        let tileRows = tunables.groupRows * tunables.tileRows
        let tileColumns = tunables.groupColumns * tunables.tileColumns
        groupSize = tunables.groupSize
        // Both stages compute a K x N result in TM x TN tiles: right K = inputs, N = outputs;
        // left K = outputs, N = inputs.
        func tiles(_ k: Int, _ n: Int) -> Int { ((k + tileRows - 1) / tileRows) * ((n + tileColumns - 1) / tileColumns) }
        var descriptors: [UInt64] = []
        var right = 0, left = 0
        for layer in layers {
            descriptors += KroneckerLayerField.row { field in
                switch field {
                case .parameterOffset: UInt64(layer.parameterOffset)
                case .outputs: UInt64(layer.outputs)
                case .inputs: UInt64(layer.inputs)
                case .gOffset: UInt64(layer.gOffset)
                case .aOffset: UInt64(layer.aOffset)
                case .rightGroup: UInt64(right)
                case .leftGroup: UInt64(left)
                }
            }
            right += tiles(layer.inputs, layer.outputs)
            left += tiles(layer.outputs, layer.inputs)
        }
        rightGroups = right
        leftGroups = left
        layerTable = try Buffer(context: context, copying: descriptors)
    }

    /// K-FAC factors of `layers` over `samples` samples with optional per-sample weights.
    public convenience init(layers: [KFACLayer<Element>], samples: Int, weights: Buffer<Element>? = nil) throws {
        guard let first = layers.first else {
            throw NaturalGradientError.invalidArgument(name: "layers", reason: "is empty")
        }
        try self.init(context: first.activations.context, shapes: layers.map { ($0.outputs, $0.inputs) })
        try accumulate(layers, samples: samples, weights: weights, beta: 0)
    }

    public var context: Context { factors.context }

    /// `A_l ← βA_l + α Σ w a aᵀ` and `G_l ← βG_l + α Σ w g gᵀ` for every layer, all in one
    /// launch; α = 1/samples by default. Stream chunks with β = 1, or use β < 1 for the
    /// exponential moving averages K-FAC keeps.
    public func accumulate(
        _ inputs: [KFACLayer<Element>], samples: Int, weights: Buffer<Element>? = nil, alpha: Element? = nil,
        beta: Element = 1
    ) throws {
        try require(inputs.count == layers.count, "layers", "has \(inputs.count) layers, expected \(layers.count)")
        try require(samples > 0, "samples", "must be positive (an empty batch), got \(samples)")
        if let weights {
            try require(weights.count >= samples, "weights", "holds \(weights.count) values for \(samples) samples")
            try CurvatureFactor<Element>.validateWeights(weights.download(0..<samples))
        }
        // Stage every layer's a and g rows in one buffer so one launch covers all blocks.
        var blocks: [AccumulationBlock] = []
        var staged = 0
        for (index, (input, layer)) in zip(inputs, layers).enumerated() {
            try input.requireFits(outputs: layer.outputs, inputs: layer.inputs, samples: samples, index: index)
            for (offset, size) in [(layer.aOffset, layer.inputs), (layer.gOffset, layer.outputs)] {
                blocks.append(
                    AccumulationBlock(
                        factorOffset: staged, rowStride: size, rows: samples, dimension: size, outputOffset: offset,
                        weightOffset: weights == nil ? nil : 0))
                staged += samples * size
            }
        }
        let staging = try Buffer<Element>(context: context, count: staged)
        for (input, block) in zip(inputs.flatMap { [$0.activations, $0.outputGradients] }, blocks) {
            try staging.copy(from: input, range: 0..<(block.rows * block.dimension), to: block.factorOffset)
        }
        try accumulation.accumulate(
            blocks, factors: staging, weights: weights, into: factors, alpha: alpha ?? 1 / Element(samples), beta: beta)
        traces = nil
    }

    /// Layer `index`'s factors A (inputs x inputs) and G (outputs x outputs), on the host.
    public func layerFactors(_ index: Int) throws -> (a: [Element], g: [Element]) {
        try require(layers.indices.contains(index), "index", "\(index) is not one of \(layers.count) layers")
        let layer = layers[index]
        return (
            try factors.download(layer.aOffset..<(layer.aOffset + layer.inputs * layer.inputs)),
            try factors.download(layer.gOffset..<(layer.gOffset + layer.outputs * layer.outputs))
        )
    }

    /// `(G + γ_G I) V (A + γ_A I)` per layer with the factored damping for λ.
    public func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        try validate(x, y)
        try validateDamping(damping)
        try require(x.buffer !== y.buffer, "y", "must not share x's buffer")
        let dampings = try factoredDampings(damping).flatMap { [Element(float64: $0.g), Element(float64: $0.a)] }
        let dampingTable = try Buffer(context: context, copying: dampings)
        let t = try scratch(like: x)
        // T is left transposed per layer (inputs x outputs); the left stage reads it so.
        try rightKernel.setArguments(
            UInt32(dimension), UInt32(layers.count), layerTable, dampingTable, factors, x.buffer, t.buffer)
        try context.enqueue(
            rightKernel, globalSize: [rightGroups * groupSize, x.count], localSize: [groupSize, 1])
        try leftKernel.setArguments(
            UInt32(dimension), UInt32(layers.count), layerTable, dampingTable, factors, t.buffer, y.buffer)
        // Releasing dampingTable at return is safe: OpenCL frees a buffer only after the
        // commands that use it have finished.
        try context.enqueue(leftKernel, globalSize: [leftGroups * groupSize, x.count], localSize: [groupSize, 1])
    }

    /// `(γ_G, γ_A)` per layer: `(√λ/π, π√λ)` with π from the factors' traces
    /// (`FactoredDamping`).
    public func factoredDampings(_ damping: Element) throws -> [(g: Double, a: Double)] {
        try layerTraces().enumerated().map { index, trace in
            let layer = layers[index]
            let split = FactoredDamping.split(
                damping: damping.float64, traceA: trace.a, dimensionA: layer.inputs, traceG: trace.g,
                dimensionG: layer.outputs)
            return (split.g, split.a)
        }
    }

    public func diagonal() throws -> Buffer<Element> {
        var diagonal: [Element] = []
        diagonal.reserveCapacity(dimension)
        for index in layers.indices {
            let layer = layers[index]
            let (a, g) = try layerFactors(index)
            for o in 0..<layer.outputs {
                for i in 0..<layer.inputs { diagonal.append(g[o * layer.outputs + o] * a[i * layer.inputs + i]) }
            }
        }
        return try Buffer(context: context, copying: diagonal)
    }

    /// `Σ_l tr G_l · tr A_l`.
    public func trace() throws -> Double {
        try layerTraces().reduce(0) { $0 + $1.a * $1.g }
    }

    /// Every layer's A_l and G_l on the host in `factors`' packed layout, in one read (a
    /// read per factor cost about 0.06 ms each on PoCL, a K-FAC refresh made twelve), with
    /// the traces cached from the same copy so `factoredDampings` reads nothing more.
    func downloadFactors() throws -> [Element] {
        let packed = try factors.download()
        if traces == nil { traces = layerTraces(packed) }
        return packed
    }

    private func layerTraces() throws -> [(a: Double, g: Double)] {
        if let traces { return traces }
        return try layerTraces(downloadFactors())
    }

    /// Each layer's `(tr A_l, tr G_l)` from the packed factors.
    private func layerTraces(_ packed: [Element]) -> [(a: Double, g: Double)] {
        layers.map { layer in
            let traceA = (0..<layer.inputs).reduce(0.0) { $0 + packed[layer.aOffset + $1 * layer.inputs + $1].float64 }
            let traceG = (0..<layer.outputs).reduce(0.0) { $0 + packed[layer.gOffset + $1 * layer.outputs + $1].float64 }
            return (traceA, traceG)
        }
    }

    private func scratch(like x: VectorBatch<Element>) throws -> VectorBatch<Element> {
        if let intermediate, intermediate.buffer.count >= x.dimension * x.count {
            return try VectorBatch(intermediate.buffer, dimension: x.dimension, count: x.count)
        }
        let batch = try VectorBatch<Element>(context: context, dimension: x.dimension, count: x.count)
        intermediate = batch
        return batch
    }
}
