import Foundation
import OpenCLHost

/// How a `NaturalGradientOptimizer` holds its curvature: it builds the representation from
/// a refresh's data (a factor, or K-FAC's layer statistics) and rebuilds it from a saved
/// `SavedCurvature`. Averaging into an existing curvature goes through
/// `FactorAccumulatingCurvature` / `LayerAccumulatingCurvature` instead.
///
/// The optimizer makes one from its options for the built-in representations; pass your own
/// to `NaturalGradientOptimizer(context:dimension:options:curvature:)` to train with a
/// representation of your own.
public struct CurvatureBuilder<Element: DeviceScalar> {
    let fromFactor: ((CurvatureFactor<Element>) throws -> any CurvatureOperator<Element>)?
    let fromLayers: ((_ layers: [KFACLayer<Element>], _ samples: Int) throws -> any CurvatureOperator<Element>)?
    let restoring: (SavedCurvature) throws -> any CurvatureOperator<Element>

    /// A builder of a factor-based representation: `build` makes it from a refresh's factor
    /// (the first one, and every one the representation cannot accumulate); `restore` makes
    /// it from a saved state (the default refuses, so such an optimizer cannot be restored).
    public init(
        build: @escaping (CurvatureFactor<Element>) throws -> any CurvatureOperator<Element>,
        restore: @escaping (SavedCurvature) throws -> any CurvatureOperator<Element> = { _ in
            throw NaturalGradientError.invalidArgument(name: "state", reason: "this curvature builder cannot restore")
        }
    ) {
        fromFactor = build
        fromLayers = nil
        restoring = restore
    }

    /// A builder of a representation made from K-FAC's per-layer statistics (for an
    /// optimizer configured with `.kfac(layers:)`): `build` makes it from a refresh's layers
    /// and sample count; `restore` as for a factor-based builder. `NaturalGradientDistributed`
    /// passes one that sums the statistics over MPI ranks.
    public init(
        buildFromLayers build:
            @escaping (_ layers: [KFACLayer<Element>], _ samples: Int) throws
            -> any CurvatureOperator<Element>,
        restore: @escaping (SavedCurvature) throws -> any CurvatureOperator<Element> = { _ in
            throw NaturalGradientError.invalidArgument(name: "state", reason: "this curvature builder cannot restore")
        }
    ) {
        self.init(fromFactor: nil, fromLayers: build, restoring: restore)
    }

    private init(
        fromFactor: ((CurvatureFactor<Element>) throws -> any CurvatureOperator<Element>)?,
        fromLayers: (([KFACLayer<Element>], Int) throws -> any CurvatureOperator<Element>)?,
        restoring: @escaping (SavedCurvature) throws -> any CurvatureOperator<Element>
    ) {
        self.fromFactor = fromFactor
        self.fromLayers = fromLayers
        self.restoring = restoring
    }

    /// The built-in builder for the options' curvature and representation: the one place
    /// where the configuration enums meet the representation types.
    init(options: NaturalGradientOptimizerOptions, context: Context, dimension: Int) {
        func mismatch(_ saved: SavedCurvature) -> NaturalGradientError {
            .invalidArgument(
                name: "state",
                reason: "its \(saved.kind) curvature does not fit the \(options.curvature) curvature in the "
                    + "\(options.representation) representation")
        }
        if case let .kfac(shapes) = options.curvature {
            let sizes = shapes.map { (outputs: $0.outputs, inputs: $0.inputs) }
            self.init(
                fromFactor: nil,
                fromLayers: { layers, samples in
                    let kronecker = try KroneckerCurvature<Element>(context: context, shapes: sizes)
                    try kronecker.accumulate(layers, samples: samples, alpha: Element(float64: 1 / Double(samples)), beta: 0)
                    return kronecker
                },
                restoring: { saved in
                    guard case let .kronecker(factors) = saved else { throw mismatch(saved) }
                    let kronecker = try KroneckerCurvature<Element>(context: context, shapes: sizes)
                    try require(
                        factors.count == kronecker.factors.count, "state",
                        "holds \(factors.count) K-FAC factor values, expected \(kronecker.factors.count)")
                    try kronecker.factors.upload(float64: factors)
                    return kronecker
                })
            return
        }
        // Restoring each kind of saved curvature, shared by its representation and `.automatic`.
        let restoreImplicit: (SavedCurvature) throws -> any CurvatureOperator<Element> = { saved in
            guard case let .factor(matrix, rows, samples, weights) = saved else { throw mismatch(saved) }
            try require(
                rows > 0 && matrix.count == rows * dimension, "state",
                "the factor holds \(matrix.count) values for \(rows) rows")
            return try ImplicitCurvature(
                factor: CurvatureFactor<Element>(
                    context: context, matrix: Element.narrowed(matrix), rows: rows, dimension: dimension,
                    samples: samples, weights: weights.map { Element.narrowed($0) }))
        }
        let restoreDense: (SavedCurvature) throws -> any CurvatureOperator<Element> = { saved in
            guard case let .dense(matrix) = saved else { throw mismatch(saved) }
            try require(matrix.count == dimension * dimension, "state", "the dense matrix holds \(matrix.count) values")
            let dense = try DenseCurvature<Element>(context: context, dimension: dimension)
            try dense.matrix.upload(float64: matrix)
            return dense
        }
        let restoreDiagonal: (SavedCurvature) throws -> any CurvatureOperator<Element> = { saved in
            guard case let .diagonal(values) = saved else { throw mismatch(saved) }
            try require(values.count == dimension, "state", "the diagonal holds \(values.count) values")
            return try DiagonalCurvature(
                values: Buffer(context: context, copying: Element.narrowed(values)), dimension: dimension)
        }
        // The memory plan for a step's factor, checked before a representation allocates.
        func plan(_ factor: CurvatureFactor<Element>) -> MemoryPlan {
            MemoryPlan.optimizer(
                options, dimension: dimension, rowsPerStep: factor.rows, elementBytes: MemoryLayout<Element>.stride,
                deviceKind: context.device.kind, available: MemoryAvailability(context: context))
        }
        func planned(
            _ make: @escaping (CurvatureFactor<Element>) throws -> any CurvatureOperator<Element>
        ) -> (CurvatureFactor<Element>) throws -> any CurvatureOperator<Element> {
            { factor in
                if let name = options.plannedName { try plan(factor).check(name) }
                return try make(factor)
            }
        }
        let build: (CurvatureFactor<Element>) throws -> any CurvatureOperator<Element>
        let restore: (SavedCurvature) throws -> any CurvatureOperator<Element>
        switch options.representation {
        case .implicit:
            build = planned { try ImplicitCurvature(factor: $0) }
            restore = restoreImplicit
        case .dense:
            build = planned { try DenseCurvature(factor: $0) }
            restore = restoreDense
        case let .blockDiagonal(sizes):
            build = planned { try BlockDiagonalCurvature(factor: $0, blockSizes: sizes) }
            restore = { saved in
                guard case let .blockDiagonal(matrices) = saved else { throw mismatch(saved) }
                let blocks = try BlockDiagonalCurvature<Element>(context: context, blockSizes: sizes)
                try require(
                    matrices.count == blocks.matrices.count, "state",
                    "the blocks hold \(matrices.count) values, expected \(blocks.matrices.count)")
                try blocks.matrices.upload(float64: matrices)
                return blocks
            }
        case .diagonal:
            build = planned { try DiagonalCurvature(factor: $0) }
            restore = restoreDiagonal
        case .automatic:
            build = { factor in
                switch try plan(factor).automaticRepresentation(rows: factor.rows, averaging: options.curvatureDecay > 0) {
                case "dense F": try DenseCurvature(factor: factor)
                case "implicit": try ImplicitCurvature(factor: factor)
                default: try DiagonalCurvature(factor: factor)
                }
            }
            restore = { saved in
                switch saved {
                case .factor: try restoreImplicit(saved)
                case .dense: try restoreDense(saved)
                default: try restoreDiagonal(saved)
                }
            }
        }
        self.init(fromFactor: build, fromLayers: nil, restoring: restore)
    }
}

extension SavedCurvature {
    /// The case's name, for error messages.
    var kind: String {
        switch self {
        case .factor: "factor"
        case .dense: "dense"
        case .blockDiagonal: "block-diagonal"
        case .diagonal: "diagonal"
        case .kronecker: "K-FAC"
        }
    }
}

extension NaturalGradientOptimizer {
    /// Builds the curvature from `input`, or averages it into the current one
    /// (`F ← βF + (1 − β)F_batch`, β = `curvatureDecay`) where the representation accumulates;
    /// with `curvatureBiasCorrection` the weights are those of `averageWeights`.
    func refreshCurvature(_ input: CurvatureInput<Element>) throws {
        let first = curvature == nil
        let (beta, newWeight) = averageWeights()
        if case let .kfac(shapes) = options.curvature {
            guard case let .layers(statistics, samples) = input else {
                throw NaturalGradientError.invalidArgument(
                    name: "curvature", reason: "K-FAC needs per-layer statistics (CurvatureInput.layers)")
            }
            let layers = try kfacLayers(statistics, samples: samples, shapes: shapes)
            if !first, let existing = curvature as? any LayerAccumulatingCurvature<Element> {
                try existing.accumulate(
                    layers, samples: samples, weights: nil, alpha: Element(float64: newWeight / Double(samples)),
                    beta: Element(float64: beta))
            } else if let fromLayers = builder.fromLayers {
                curvature = try fromLayers(layers, samples)
            } else {
                throw NaturalGradientError.invalidArgument(name: "curvature", reason: "the curvature builder takes no layers")
            }
            return
        }

        let factor = try makeFactor(input)
        if !first, let existing = curvature as? any FactorAccumulatingCurvature<Element> {
            try existing.accumulate(
                factor, alpha: Element(float64: newWeight / Double(factor.samples)), beta: Element(float64: beta))
            return
        }
        guard let fromFactor = builder.fromFactor else {
            throw NaturalGradientError.invalidArgument(name: "curvature", reason: "the curvature builder takes no factors")
        }
        let built = try fromFactor(factor)
        try require(
            built.dimension == dimension, "curvature",
            "the builder made dimension \(built.dimension), the model has \(dimension)")
        if options.curvatureDecay > 0, !(built is any FactorAccumulatingCurvature<Element>) {
            throw NaturalGradientError.invalidArgument(
                name: "curvatureDecay",
                reason: "\(type(of: built)) keeps no moving average (it is not FactorAccumulatingCurvature); use 0")
        }
        curvature = built
    }

    /// The weights `(old, new)` of this refresh's `F ← old·F + new·F_batch`: `(β, 1 − β)`,
    /// or with bias correction those that keep F the weight-normalised average. The k-th
    /// refresh (k = stepCount / curvatureRefreshPeriod + 1, so a restored state needs no
    /// extra field) has total weight `w_k = 1 − β^k`; `F_k = (β w_{k−1} F_{k−1} +
    /// (1 − β) F_batch) / w_k`.
    func averageWeights() -> (old: Double, new: Double) {
        let beta = options.curvatureDecay
        guard options.curvatureBiasCorrection, beta > 0 else { return (beta, 1 - beta) }
        let k = Double(stepCount / options.curvatureRefreshPeriod + 1)
        let total = 1 - pow(beta, k)
        let previous = 1 - pow(beta, k - 1)
        return (beta * previous / total, (1 - beta) / total)
    }

    /// K-FAC's per-layer statistics, checked against the shapes and uploaded.
    private func kfacLayers(
        _ statistics: [LayerStatistics<Element>], samples: Int, shapes: [LayerShape]
    ) throws
        -> [KFACLayer<Element>]
    {
        try require(samples > 0, "samples", "must be positive, got \(samples)")
        try require(statistics.count == shapes.count, "layers", "holds \(statistics.count) layers, expected \(shapes.count)")
        return try zip(statistics, shapes).enumerated().map { index, pair in
            let (layer, shape) = pair
            try require(
                layer.activations.count == samples * shape.inputs, "layers[\(index)].activations",
                "holds \(layer.activations.count) values, expected \(samples) x \(shape.inputs)")
            try require(
                layer.outputGradients.count == samples * shape.outputs, "layers[\(index)].outputGradients",
                "holds \(layer.outputGradients.count) values, expected \(samples) x \(shape.outputs)")
            return KFACLayer(
                activations: try Buffer(context: context, copying: layer.activations),
                outputGradients: try Buffer(context: context, copying: layer.outputGradients),
                inputs: shape.inputs, outputs: shape.outputs)
        }
    }

    /// The factor of an empirical or exact Fisher input, checked against the options.
    func makeFactor(_ input: CurvatureInput<Element>) throws -> CurvatureFactor<Element> {
        let factor: CurvatureFactor<Element>
        switch input {
        case let .perSampleGradients(values, samples):
            try require(
                options.curvature == .empiricalFisher, "curvature",
                "per-sample gradients give the empirical Fisher; the optimizer is configured for \(options.curvature)")
            try require(samples > 0, "samples", "must be positive, got \(samples)")
            try require(
                values.count == samples * dimension, "perSampleGradients",
                "holds \(values.count) values, expected \(samples) x \(dimension)")
            factor = try CurvatureFactor(
                context: context, matrix: values, rows: samples, dimension: dimension, samples: samples)
        case let .outputJacobians(values, samples, outputs, measure):
            try require(
                options.curvature == .exactFisher, "curvature",
                "output Jacobians give the exact Fisher; the optimizer is configured for \(options.curvature)")
            try require(samples > 0, "samples", "must be positive, got \(samples)")
            try require(outputs > 0, "outputs", "must be positive, got \(outputs)")
            try require(
                values.count == samples * outputs * dimension, "outputJacobians",
                "holds \(values.count) values, expected \(samples) x \(outputs) x \(dimension)")
            let jacobians = try Buffer(context: context, copying: values)
            switch measure {
            case let .metric(metric):
                factor = try CurvatureFactor.exactFisher(
                    outputJacobians: jacobians, samples: samples, outputs: outputs, dimension: dimension, metric: metric)
            case let .similarity(family, similarity, modelOutputs):
                try require(
                    family.outputCount == outputs, "outputs",
                    "is \(outputs) per sample, but \(family) has \(family.outputCount) outputs")
                try require(
                    modelOutputs.count == samples * outputs, "measure",
                    "holds \(modelOutputs.count) model outputs, expected \(samples) x \(outputs)")
                factor = try CurvatureFactor.formalMetric(
                    outputJacobians: jacobians, outputs: Buffer(context: context, copying: modelOutputs), samples: samples,
                    dimension: dimension, family: family, measure: similarity)
            case let .custom(build):
                factor = try build(jacobians, samples, outputs, dimension)
            }
        case let .factor(given):
            try require(
                options.curvature == .empiricalFisher || options.curvature == .exactFisher, "curvature",
                "a factor gives an empirical or exact Fisher; the optimizer is configured for \(options.curvature)")
            factor = given
        case .layers:
            throw NaturalGradientError.invalidArgument(
                name: "curvature",
                reason: "per-layer statistics are K-FAC's input; the optimizer is configured for \(options.curvature)")
        }
        try require(
            factor.dimension == dimension, "curvature", "the factor has dimension \(factor.dimension), the model \(dimension)")
        try require(factor.context === context, "curvature", "the factor belongs to another context")
        return factor
    }
}
