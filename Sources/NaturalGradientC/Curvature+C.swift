import CNaturalGradient
import NaturalGradient

/// A curvature representation behind a handle. `TypedCurvature` implements the calls for
/// one concrete operator type; this base class is what the handle table holds.
class CurvatureObject: HandledObject, @unchecked Sendable {
    /// NG_CURVATURE_*.
    let representation: Int32
    let dtype: DType
    let dimension: Int

    init(representation: Int32, dtype: DType, dimension: Int) {
        self.representation = representation
        self.dtype = dtype
        self.dimension = dimension
        super.init(kind: .curvature)
    }

    static func lookup(_ handle: UInt64, _ name: String = "curvature") throws -> CurvatureObject {
        try Registry.shared.lookup(handle, CurvatureObject.self, .curvature, name)
    }

    /// `y = (F + λI) x` for `count` vectors (the caller holds the lock).
    func apply(_ x: UnsafeRawPointer?, count: Int, damping: Double, into y: UnsafeMutableRawPointer?) throws {
        throw NaturalGradientError.invalidArgument(name: "curvature", reason: "has no implementation")
    }

    /// diag F into `values`.
    func diagonal(into values: UnsafeMutableRawPointer?, length: Int64) throws {
        throw NaturalGradientError.invalidArgument(name: "curvature", reason: "has no implementation")
    }

    /// tr F.
    func trace() throws -> Double {
        throw NaturalGradientError.invalidArgument(name: "curvature", reason: "has no implementation")
    }

    /// `x = (F + λI)⁻¹ g` with reports.
    func solve(
        _ g: UnsafeRawPointer?, count: Int, damping: Double, options: ng_solve_options, into x: UnsafeMutableRawPointer?,
        reports: UnsafeMutablePointer<ng_column_report>, info: UnsafeMutablePointer<ng_solve_info>?
    ) throws {
        throw NaturalGradientError.invalidArgument(name: "curvature", reason: "has no implementation")
    }
}

/// The calls for one concrete representation `Op`, with its device batches kept between
/// calls of the same shape.
final class TypedCurvature<Op: CurvatureOperator>: CurvatureObject, @unchecked Sendable where Op.Element: BridgeScalar {
    typealias E = Op.Element
    let curvature: Op
    private var batches = BatchCache<E>()

    init(_ curvature: Op, representation: Int32) {
        self.curvature = curvature
        super.init(representation: representation, dtype: E.dtype, dimension: curvature.dimension)
    }

    /// The device batch `role` holding `count` finite vectors from `pointer`.
    private func upload(_ pointer: UnsafeRawPointer?, count: Int, _ role: String) throws -> VectorBatch<E> {
        let values = try elements(pointer, count: try product(dimension, count, role), role, as: E.self)
        try requireFinite(values, role)
        let batch = try batches.batch(role, context: curvature.context, dimension: dimension, count: count)
        try batch.buffer.write(values)
        return batch
    }

    override func apply(_ x: UnsafeRawPointer?, count: Int, damping: Double, into y: UnsafeMutableRawPointer?) throws {
        let lambda = try narrowedDamping(damping, E.self)
        let output = try destination(y, count: dimension * count, "y", as: E.self)
        let input = try upload(x, count: count, "x")
        let result = try batches.batch("y", context: curvature.context, dimension: dimension, count: count)
        try curvature.apply(input, damping: lambda, into: result)
        try result.buffer.read(into: output)
    }

    override func diagonal(into values: UnsafeMutableRawPointer?, length: Int64) throws {
        try check(length == Int64(dimension), "length", "is \(length), the curvature has dimension \(dimension)")
        let output = try destination(values, count: dimension, "values", as: E.self)
        try curvature.diagonal().read(into: output)
    }

    override func trace() throws -> Double { try curvature.trace() }

    override func solve(
        _ g: UnsafeRawPointer?, count: Int, damping: Double, options: ng_solve_options, into x: UnsafeMutableRawPointer?,
        reports: UnsafeMutablePointer<ng_column_report>, info: UnsafeMutablePointer<ng_solve_info>?
    ) throws {
        let lambda = try narrowedDamping(damping, E.self)
        let (method, cg) = try solveOptions(options)
        let output = try destination(x, count: dimension * count, "x", as: E.self)
        let rhs = try upload(g, count: count, "g")
        let clock = ContinuousClock()
        let start = clock.now
        let solution = try NaturalGradientSolver.solve(curvature, rhs, damping: lambda, method: method, options: cg)
        try solution.x.buffer.read(into: output)
        let elapsed = (clock.now - start).components
        for (index, report) in solution.reports.prefix(count).enumerated() {
            reports[index] = ng_column_report(report)
        }
        guard let info else { return }
        var result = ng_solve_info()
        result.method = methodCode(solution.method)
        result.reciprocal_condition = solution.reciprocalCondition ?? .nan
        result.seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
        switch solution.densePath {
        case nil: result.dense_path = Int32(NG_PATH_NONE)
        case .cholesky: result.dense_path = Int32(NG_PATH_CHOLESKY)
        case let .jitter(amount):
            result.dense_path = Int32(NG_PATH_JITTER)
            result.dense_path_value = amount
        case let .eigen(clamped):
            result.dense_path = Int32(NG_PATH_EIGEN)
            result.dense_path_value = Double(clamped)
        }
        info.pointee = result
    }
}

/// λ checked in float64 (finite, ≥ 0) and rounded to `E` (where it must stay finite).
func narrowedDamping<E: BridgeScalar>(_ damping: Double, _: E.Type) throws -> E {
    try check(damping.isFinite && damping >= 0, "damping", "must be finite and not negative, got \(damping)")
    let narrowed = E(float64: damping)
    try check(narrowed.isFinite, "damping", "\(damping) overflows \(E.dtype.name)")
    return narrowed
}

extension ng_column_report {
    init(_ report: ColumnReport) {
        let status: Int32 =
            switch report.status {
            case .converged: Int32(NG_SOLVE_CONVERGED)
            case .iterationCap: Int32(NG_SOLVE_ITERATION_CAP)
            case .progressStalled: Int32(NG_SOLVE_PROGRESS_STALLED)
            case .negativeCurvature: Int32(NG_SOLVE_NEGATIVE_CURVATURE)
            case .nonFinite: Int32(NG_SOLVE_NON_FINITE)
            case .stagnated: Int32(NG_SOLVE_STAGNATED)
            case .perturbed: Int32(NG_SOLVE_PERTURBED)
            case .inaccurate: Int32(NG_SOLVE_INACCURATE)
            case .illConditioned: Int32(NG_SOLVE_ILL_CONDITIONED)
            }
        self.init(
            status: status, reserved: 0, iterations: Int64(report.iterations),
            relative_residual: report.relativeResidual, objective: report.objective)
    }
}

/// The NG_METHOD_* code of a method.
func methodCode(_ method: SolveMethod) -> Int32 {
    switch method {
    case .automatic: Int32(NG_METHOD_AUTO)
    case .cg: Int32(NG_METHOD_CG)
    case .pcg: Int32(NG_METHOD_PCG)
    case .woodbury: Int32(NG_METHOD_WOODBURY)
    case .cholesky: Int32(NG_METHOD_CHOLESKY)
    case .kfac: Int32(NG_METHOD_KFAC)
    }
}

/// The method and CG options an `ng_solve_options` describes.
func solveOptions(_ options: ng_solve_options) throws -> (SolveMethod, ConjugateGradientOptions) {
    let methods: [Int32: SolveMethod] = [
        Int32(NG_METHOD_AUTO): .automatic, Int32(NG_METHOD_CG): .cg, Int32(NG_METHOD_PCG): .pcg,
        Int32(NG_METHOD_WOODBURY): .woodbury, Int32(NG_METHOD_CHOLESKY): .cholesky, Int32(NG_METHOD_KFAC): .kfac,
    ]
    guard let method = methods[options.method] else {
        throw NaturalGradientError.invalidArgument(
            name: "options.method", reason: "\(options.method) is not an NG_METHOD_* code (0-5)")
    }
    try check(
        options.tolerance.isFinite && options.tolerance >= 0, "options.tolerance",
        "must be finite and ≥ 0, got \(options.tolerance)")
    var cg = ConjugateGradientOptions(
        tolerance: options.tolerance, maxIterations: options.max_iterations > 0 ? Int(options.max_iterations) : nil,
        progressRule: options.progress_rule != 0)
    switch options.preconditioner {
    case Int32(NG_PRECONDITIONER_NONE):
        cg.preconditioner = .none
    case Int32(NG_PRECONDITIONER_JACOBI):
        try check(
            options.jacobi_exponent.isFinite && options.jacobi_exponent >= 0, "options.jacobi_exponent",
            "must be finite and ≥ 0, got \(options.jacobi_exponent)")
        cg.preconditioner = .jacobi(exponent: options.jacobi_exponent)
    default:
        throw NaturalGradientError.invalidArgument(
            name: "options.preconditioner", reason: "\(options.preconditioner) is not NG_PRECONDITIONER_NONE (0) or _JACOBI (1)")
    }
    return (method, cg)
}

// MARK: - Constructors

/// Registers `curvature` under the `NG_CURVATURE_*` code `representation`; its new handle.
func publish<Op: CurvatureOperator>(_ curvature: Op, _ representation: Int32) throws -> UInt64
where Op.Element: BridgeScalar {
    try Registry.shared.insert(TypedCurvature(curvature, representation: representation))
}

/// A representation built from a factor handle.
private func fromFactor(
    _ handle: UInt64, _ out: UnsafeMutablePointer<UInt64>?,
    _ build: (FactorObject) throws -> UInt64
) -> Int32 {
    boundary {
        let out = try nonNull(out, "curvature")
        let object = try FactorObject.lookup(handle)
        out.pointee = try object.serialized { try build(object) }
    }
}

@_cdecl("ng_curvature_implicit")
public func ngCurvatureImplicit(_ factor: UInt64, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    fromFactor(factor, out) { object in
        try object.dtype.dispatch(
            { try publish(ImplicitCurvature(factor: FactorObject.typed(factor, $0)), Int32(NG_CURVATURE_IMPLICIT)) },
            { try publish(ImplicitCurvature(factor: FactorObject.typed(factor, $0)), Int32(NG_CURVATURE_IMPLICIT)) })
    }
}

@_cdecl("ng_curvature_dense")
public func ngCurvatureDense(_ factor: UInt64, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    fromFactor(factor, out) { object in
        try object.dtype.dispatch(
            { try publish(DenseCurvature(factor: FactorObject.typed(factor, $0)), Int32(NG_CURVATURE_DENSE)) },
            { try publish(DenseCurvature(factor: FactorObject.typed(factor, $0)), Int32(NG_CURVATURE_DENSE)) })
    }
}

@_cdecl("ng_curvature_diagonal")
public func ngCurvatureDiagonal(_ factor: UInt64, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    fromFactor(factor, out) { object in
        try object.dtype.dispatch(
            { try publish(DiagonalCurvature(factor: FactorObject.typed(factor, $0)), Int32(NG_CURVATURE_DIAGONAL)) },
            { try publish(DiagonalCurvature(factor: FactorObject.typed(factor, $0)), Int32(NG_CURVATURE_DIAGONAL)) })
    }
}

@_cdecl("ng_curvature_block_diagonal")
public func ngCurvatureBlockDiagonal(
    _ factor: UInt64, _ blockSizes: UnsafePointer<Int64>?, _ blockCount: Int64, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    fromFactor(factor, out) { object in
        let n = try count(blockCount, "block_count")
        let sizes = try UnsafeBufferPointer(start: nonNull(blockSizes, "block_sizes"), count: n).enumerated().map {
            try count($0.element, "block_sizes[\($0.offset)]")
        }
        return try object.dtype.dispatch(
            {
                try publish(
                    BlockDiagonalCurvature(factor: FactorObject.typed(factor, $0), blockSizes: sizes),
                    Int32(NG_CURVATURE_BLOCK_DIAGONAL))
            },
            {
                try publish(
                    BlockDiagonalCurvature(factor: FactorObject.typed(factor, $0), blockSizes: sizes),
                    Int32(NG_CURVATURE_BLOCK_DIAGONAL))
            })
    }
}

private func denseFromMatrix<E: BridgeScalar>(
    _: E.Type, _ context: Context, _ matrix: UnsafeRawPointer?, dimension p: Int
) throws -> UInt64 {
    let values = try elements(matrix, count: try product(p, p, "matrix"), "matrix", as: E.self)
    try requireFinite(values, "matrix")
    // Solvers read one triangle, products both: an unsymmetric input would give
    // inconsistent answers, so it is refused (relative to the largest entry).
    var largest = 0.0
    var asymmetry = 0.0
    for i in 0..<p {
        for j in 0..<p {
            largest = max(largest, abs(values[i * p + j].float64))
            if j > i { asymmetry = max(asymmetry, abs(values[i * p + j].float64 - values[j * p + i].float64)) }
        }
    }
    let tolerance = E.dtype == .float32 ? 1e-6 : 1e-12
    try check(
        asymmetry <= tolerance * largest, "matrix",
        "is not symmetric (largest |F_ij − F_ji| is \(asymmetry), the largest entry \(largest))")
    let dense = try DenseCurvature<E>(context: context, dimension: p)
    try dense.matrix.write(values)
    return try publish(dense, Int32(NG_CURVATURE_DENSE))
}

@_cdecl("ng_curvature_dense_from_matrix")
public func ngCurvatureDenseFromMatrix(
    _ contextHandle: UInt64, _ dtypeCode: Int32, _ matrix: UnsafeRawPointer?, _ dimension: Int64,
    _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    boundary {
        let context = try ContextObject.lookup(contextHandle).context
        let dtype = try DType(code: dtypeCode)
        let out = try nonNull(out, "curvature")
        let p = try count(dimension, "dimension")
        out.pointee = try dtype.dispatch(
            { try denseFromMatrix($0, context, matrix, dimension: p) },
            { try denseFromMatrix($0, context, matrix, dimension: p) })
    }
}

private func diagonalFromValues<E: BridgeScalar>(
    _: E.Type, _ context: Context, _ values: UnsafeRawPointer?, dimension p: Int
) throws -> UInt64 {
    let buffer = try Buffer<E>.uploading(context, values, count: p, "values")
    return try publish(DiagonalCurvature(values: buffer, dimension: p), Int32(NG_CURVATURE_DIAGONAL))
}

@_cdecl("ng_curvature_diagonal_from_values")
public func ngCurvatureDiagonalFromValues(
    _ contextHandle: UInt64, _ dtypeCode: Int32, _ values: UnsafeRawPointer?, _ dimension: Int64,
    _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    boundary {
        let context = try ContextObject.lookup(contextHandle).context
        let dtype = try DType(code: dtypeCode)
        let out = try nonNull(out, "curvature")
        let p = try count(dimension, "dimension")
        out.pointee = try dtype.dispatch(
            { try diagonalFromValues($0, context, values, dimension: p) },
            { try diagonalFromValues($0, context, values, dimension: p) })
    }
}

/// The `layer_count` `ng_kfac_layer`s at `layers`, checked non-null and counted.
func layerList(
    _ layers: UnsafePointer<ng_kfac_layer>?, _ layerCount: Int64
) throws
    -> UnsafeBufferPointer<ng_kfac_layer>
{
    UnsafeBufferPointer(start: try nonNull(layers, "layers"), count: try count(layerCount, "layer_count"))
}

/// Uploads every layer of `list` for `samples` samples, and the optional weights (K-FAC's
/// and EKFAC's inputs).
func uploadLayers<E: BridgeScalar>(
    _: E.Type, _ context: Context, _ list: UnsafeBufferPointer<ng_kfac_layer>, samples: Int,
    weights: UnsafeRawPointer?
) throws -> (layers: [KFACLayer<E>], weights: Buffer<E>?) {
    let inputs = try list.enumerated().map {
        try kfacLayer(E.self, context, $0.element, index: $0.offset, samples: samples)
    }
    let w = try weights.map { try Buffer<E>.uploading(context, $0, count: samples, "weights") }
    return (inputs, w)
}

/// Uploads one `ng_kfac_layer` for `samples` samples.
private func kfacLayer<E: BridgeScalar>(
    _: E.Type, _ context: Context, _ layer: ng_kfac_layer, index: Int, samples: Int
)
    throws -> KFACLayer<E>
{
    let (inputs, outputs) = (
        try count(layer.inputs, "layers[\(index)].inputs"), try count(layer.outputs, "layers[\(index)].outputs")
    )
    let a = try Buffer<E>.uploading(
        context, layer.activations, count: try product(samples, inputs, "layers[\(index)].activations"),
        "layers[\(index)].activations")
    let g = try Buffer<E>.uploading(
        context, layer.output_gradients, count: try product(samples, outputs, "layers[\(index)].output_gradients"),
        "layers[\(index)].output_gradients")
    return KFACLayer(activations: a, outputGradients: g, inputs: inputs, outputs: outputs)
}

/// `ng_curvature_kronecker` and `ng_curvature_ekfac`: the curvature `representation`
/// (NG_CURVATURE_KRONECKER or NG_CURVATURE_EKFAC) of `layer_count` `ng_kfac_layer`s.
func layerCurvature(
    _ representation: Int32, _ contextHandle: UInt64, _ dtypeCode: Int32, _ layers: UnsafePointer<ng_kfac_layer>?,
    _ layerCount: Int64, _ samples: Int64, _ weights: UnsafeRawPointer?, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    boundary {
        let context = try ContextObject.lookup(contextHandle).context
        let dtype = try DType(code: dtypeCode)
        let out = try nonNull(out, "curvature")
        let list = try layerList(layers, layerCount)
        let n = try count(samples, "samples")
        func make<E: BridgeScalar>(_: E.Type) throws -> UInt64 {
            let (inputs, w) = try uploadLayers(E.self, context, list, samples: n, weights: weights)
            if representation == Int32(NG_CURVATURE_EKFAC) {
                return try publish(
                    EigenvalueCorrectedKroneckerCurvature(layers: inputs, samples: n, weights: w), representation)
            }
            return try publish(KroneckerCurvature(layers: inputs, samples: n, weights: w), representation)
        }
        out.pointee = try dtype.dispatch({ try make($0) }, { try make($0) })
    }
}

@_cdecl("ng_curvature_kronecker")
public func ngCurvatureKronecker(
    _ contextHandle: UInt64, _ dtypeCode: Int32, _ layers: UnsafePointer<ng_kfac_layer>?, _ layerCount: Int64,
    _ samples: Int64, _ weights: UnsafeRawPointer?, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    layerCurvature(
        Int32(NG_CURVATURE_KRONECKER), contextHandle, dtypeCode, layers, layerCount, samples, weights, out)
}

// MARK: - Calls

@_cdecl("ng_curvature_info")
public func ngCurvatureInfo(
    _ handle: UInt64, _ kind: UnsafeMutablePointer<Int32>?, _ dtype: UnsafeMutablePointer<Int32>?,
    _ dimension: UnsafeMutablePointer<Int64>?
) -> Int32 {
    boundary {
        let object = try CurvatureObject.lookup(handle)
        store(object.representation, kind)
        store(object.dtype.rawValue, dtype)
        store(Int64(object.dimension), dimension)
    }
}

@_cdecl("ng_curvature_apply")
public func ngCurvatureApply(
    _ handle: UInt64, _ dtypeCode: Int32, _ x: UnsafeRawPointer?, _ dimension: Int64, _ count: Int64, _ damping: Double,
    _ y: UnsafeMutableRawPointer?
) -> Int32 {
    boundary {
        let object = try CurvatureObject.lookup(handle)
        try object.dtype.require(dtypeCode)
        try check(
            dimension == Int64(object.dimension), "dimension",
            "is \(dimension), the curvature has dimension \(object.dimension)")
        let k = try NaturalGradientC.count(count, "count")
        try object.serialized { try object.apply(x, count: k, damping: damping, into: y) }
    }
}

@_cdecl("ng_curvature_diagonal_values")
public func ngCurvatureDiagonalValues(
    _ handle: UInt64, _ dtypeCode: Int32, _ values: UnsafeMutableRawPointer?, _ length: Int64
) -> Int32 {
    boundary {
        let object = try CurvatureObject.lookup(handle)
        try object.dtype.require(dtypeCode)
        try object.serialized { try object.diagonal(into: values, length: length) }
    }
}

@_cdecl("ng_curvature_trace")
public func ngCurvatureTrace(_ handle: UInt64, _ trace: UnsafeMutablePointer<Double>?) -> Int32 {
    boundary {
        let object = try CurvatureObject.lookup(handle)
        let out = try nonNull(trace, "trace")
        out.pointee = try object.serialized { try object.trace() }
    }
}

@_cdecl("ng_solve_options_init")
public func ngSolveOptionsInit(_ options: UnsafeMutablePointer<ng_solve_options>?) -> Int32 {
    boundary {
        try nonNull(options, "options").pointee = defaultSolveOptions
    }
}

/// The defaults of `ng_solve_options_init` (those of `ConjugateGradientOptions`).
let defaultSolveOptions = ng_solve_options(
    method: Int32(NG_METHOD_AUTO), preconditioner: Int32(NG_PRECONDITIONER_NONE), tolerance: 1e-6, max_iterations: 0,
    jacobi_exponent: 0.75, progress_rule: 0, reserved: 0)

@_cdecl("ng_solve")
public func ngSolve(
    _ handle: UInt64, _ dtypeCode: Int32, _ g: UnsafeRawPointer?, _ dimension: Int64, _ count: Int64,
    _ damping: Double, _ options: UnsafePointer<ng_solve_options>?, _ x: UnsafeMutableRawPointer?,
    _ reports: UnsafeMutablePointer<ng_column_report>?, _ reportCount: Int64, _ info: UnsafeMutablePointer<ng_solve_info>?
) -> Int32 {
    boundary {
        let object = try CurvatureObject.lookup(handle)
        try object.dtype.require(dtypeCode)
        try check(
            dimension == Int64(object.dimension), "dimension",
            "is \(dimension), the curvature has dimension \(object.dimension)")
        let k = try NaturalGradientC.count(count, "count")
        try check(reportCount == count, "report_count", "is \(reportCount) for \(count) right-hand sides")
        let reports = try nonNull(reports, "reports")
        try object.serialized {
            try object.solve(
                g, count: k, damping: damping, options: options?.pointee ?? defaultSolveOptions, into: x,
                reports: reports, info: info)
        }
    }
}
