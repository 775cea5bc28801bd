import OpenCLHost

/// The curvature factor of DESIGN.md section 2: a row-major matrix `U` (M x P) with
/// optional row weights `w ≥ 0` and a sample count N, standing for
/// `F = (1/N) Σ_m w_m u_m u_mᵀ`. M = N·C for C rows per sample; the mean is over the
/// N samples, not the M rows.
///
/// Make one from per-sample gradients (`empiricalFisher`, `monteCarloFisher`), from
/// output Jacobians and an output metric (`exactFisher`), or directly from a matrix.
public struct CurvatureFactor<Element: DeviceScalar> {
    /// U in row pieces, in row order: one device buffer per piece. One piece unless U is
    /// larger than the context's largest allocation (`Context.maxAllocationBytes`), when it
    /// is split by rows so that every piece fits; the products, accumulations and solvers
    /// launch their kernels once per piece and combine the partial results in piece order.
    public let pieces: [FactorPiece<Element>]
    /// M, the number of rows of U.
    public let rows: Int
    /// P, the number of parameters.
    public let dimension: Int
    /// N, the number of samples the mean is taken over.
    public let samples: Int
    /// Per-row weights w (M values, all finite and ≥ 0), or nil for all ones.
    public let weights: Buffer<Element>?

    /// U in one buffer (`rows * dimension` elements from the start, row-major).
    ///
    /// - Throws: `NaturalGradientError.invalidArgument` naming `matrix` when U is split into
    ///   several pieces (see `pieces`; `download(into:)` and `downloadFloat64()` read any factor).
    public var matrix: Buffer<Element> {
        get throws {
            guard pieces.count == 1 else {
                throw NaturalGradientError.invalidArgument(
                    name: "matrix",
                    reason: "U (\(rows) x \(dimension)) is split by rows into \(pieces.count) buffers, "
                        + "each within the device's largest allocation; use pieces or download(into:)")
            }
            return pieces[0].matrix
        }
    }

    /// A factor over device data the caller already has (nothing is copied). Weights are
    /// read back once to check that they are finite and not negative.
    public init(
        matrix: Buffer<Element>, rows: Int, dimension: Int, samples: Int, weights: Buffer<Element>? = nil
    )
        throws
    {
        try require(rows > 0, "rows", "must be positive (an empty batch), got \(rows)")
        try require(dimension > 0, "dimension", "must be positive, got \(dimension)")
        try require(samples > 0, "samples", "must be positive, got \(samples)")
        let (needed, overflow) = rows.multipliedReportingOverflow(by: dimension)
        try require(
            !overflow && matrix.count >= needed, "matrix",
            "holds \(matrix.count) elements, fewer than \(rows) x \(dimension)")
        try require(UInt64(needed) < UInt64(UInt32.max), "matrix", "has more than 2^32 elements; split it into chunks")
        if let weights {
            try require(weights.context === matrix.context, "weights", "belong to another context")
            try require(weights.count >= rows, "weights", "holds \(weights.count) values for \(rows) rows")
            try Self.validateWeights(weights.download(0..<rows))
        }
        self.pieces = [FactorPiece(rows: 0..<rows, matrix: matrix, weights: weights)]
        self.rows = rows
        self.dimension = dimension
        self.samples = samples
        self.weights = weights
    }

    /// A factor copied from host arrays: `matrix` is M x P row-major; split into pieces when
    /// it exceeds the context's largest allocation.
    public init(
        context: Context, matrix: [Element], rows: Int, dimension: Int, samples: Int, weights: [Element]? = nil
    ) throws {
        try require(rows > 0 && dimension > 0, "rows", "the shape \(rows) x \(dimension) is empty")
        try require(
            matrix.count == rows * dimension, "matrix", "holds \(matrix.count) values, expected \(rows) x \(dimension)")
        try self.init(context: context, rows: rows, dimension: dimension, samples: samples, weights: weights) {
            range, piece in
            try matrix.withUnsafeBufferPointer { values in
                try piece.upload(
                    from: UnsafeBufferPointer(rebasing: values[(range.lowerBound * dimension)..<(range.upperBound * dimension)]))
            }
        }
    }

    /// A factor uploaded straight from the caller's memory (a memory-mapped file, a host
    /// array): M x P row-major, each piece written from its rows in place, with no
    /// intermediate copy.
    public init(
        context: Context, copying matrix: UnsafeBufferPointer<Element>, rows: Int, dimension: Int, samples: Int,
        weights: [Element]? = nil
    ) throws {
        try Self.validateShape(rows: rows, dimension: dimension, samples: samples)
        try require(
            matrix.count == rows * dimension, "matrix", "holds \(matrix.count) values, expected \(rows) x \(dimension)")
        try self.init(context: context, rows: rows, dimension: dimension, samples: samples, weights: weights) {
            range, piece in
            try piece.upload(
                from: UnsafeBufferPointer(rebasing: matrix[(range.lowerBound * dimension)..<(range.upperBound * dimension)]))
        }
    }

    /// A factor whose pieces the device uses in the caller's host memory in place
    /// (`CL_MEM_USE_HOST_PTR`, one buffer per piece over its rows): on a CPU device U then
    /// costs no copy at all. `owner` (the mapping or storage of `matrix`) is kept alive by
    /// the pieces; the memory must stay unchanged while the factor is used.
    public init(
        context: Context, usingHostMemory matrix: UnsafeMutableBufferPointer<Element>, owner: AnyObject, rows: Int,
        dimension: Int, samples: Int, weights: [Element]? = nil
    ) throws {
        try Self.validateShape(rows: rows, dimension: dimension, samples: samples)
        try require(
            matrix.count == rows * dimension, "matrix", "holds \(matrix.count) values, expected \(rows) x \(dimension)")
        let pieceRows = try Self.rowsPerPiece(context: context, rows: rows, dimension: dimension)
        let ranges = stride(from: 0, to: rows, by: pieceRows).map { $0..<min(rows, $0 + pieceRows) }
        let buffers = try ranges.map { range in
            try Buffer<Element>(
                context: context,
                usingHostMemory: matrix.baseAddress.map { UnsafeMutableRawPointer($0 + range.lowerBound * dimension) },
                count: range.count * dimension, owner: owner)
        }
        try self.init(
            context: context, ranges: ranges, buffers: buffers, dimension: dimension, samples: samples, weights: weights)
    }

    /// A factor of `rows` x `dimension` whose pieces `fill` writes: called once per piece, in
    /// row order, with the piece's rows of U and its uninitialised buffer
    /// (`range.count * dimension` elements). The way to build a large factor chunk by chunk
    /// (a converted file, a stream) without holding all of U on the host.
    public init(
        context: Context, rows: Int, dimension: Int, samples: Int, weights: [Element]? = nil,
        fill: (_ rows: Range<Int>, _ piece: Buffer<Element>) throws -> Void
    ) throws {
        try Self.validateShape(rows: rows, dimension: dimension, samples: samples)
        let pieceRows = try Self.rowsPerPiece(context: context, rows: rows, dimension: dimension)
        let ranges = stride(from: 0, to: rows, by: pieceRows).map { $0..<min(rows, $0 + pieceRows) }
        let buffers = try ranges.map { range in
            let buffer = try Buffer<Element>(context: context, count: range.count * dimension)
            try fill(range, buffer)
            return buffer
        }
        try self.init(
            context: context, ranges: ranges, buffers: buffers, dimension: dimension, samples: samples, weights: weights)
    }

    /// The same rows and weights with another sample count N (a distributed factor's global N).
    public func withSamples(_ samples: Int) throws -> CurvatureFactor {
        try require(samples > 0, "samples", "must be positive, got \(samples)")
        return CurvatureFactor(pieces: pieces, rows: rows, dimension: dimension, samples: samples, weights: weights)
    }

    private init(pieces: [FactorPiece<Element>], rows: Int, dimension: Int, samples: Int, weights: Buffer<Element>?) {
        self.pieces = pieces
        self.rows = rows
        self.dimension = dimension
        self.samples = samples
        self.weights = weights
    }

    /// Pieces over `buffers`, with each piece's weights copied out of the whole weights
    /// buffer (so a kernel launched on one piece indexes its weights from 0).
    private init(
        context: Context, ranges: [Range<Int>], buffers: [Buffer<Element>], dimension: Int, samples: Int,
        weights: [Element]?
    ) throws {
        try require(samples > 0, "samples", "must be positive, got \(samples)")
        let rows = ranges.last?.upperBound ?? 0
        var whole: Buffer<Element>?
        if let weights {
            try require(weights.count == rows, "weights", "holds \(weights.count) values for \(rows) rows")
            try Self.validateWeights(weights)
            whole = try Buffer(context: context, copying: weights)
        }
        var pieces: [FactorPiece<Element>] = []
        for (range, buffer) in zip(ranges, buffers) {
            var pieceWeights = whole
            if let whole, ranges.count > 1 {
                let copy = try Buffer<Element>(context: context, count: range.count)
                try copy.copy(from: whole, range: range)
                pieceWeights = copy
            }
            pieces.append(FactorPiece(rows: range, matrix: buffer, weights: pieceWeights))
        }
        self.init(pieces: pieces, rows: rows, dimension: dimension, samples: samples, weights: whole)
    }

    /// Rows per piece: as many as fit one allocation of the context and stay under 2^32
    /// elements (the kernels index a piece with 32-bit counts); all of them when U fits.
    /// Throws when a single row of P values exceeds one allocation.
    static func rowsPerPiece(context: Context, rows: Int, dimension: Int) throws -> Int {
        let rowBytes = UInt64(dimension) * UInt64(MemoryLayout<Element>.stride)
        let byBytes = context.maxAllocationBytes / rowBytes
        try require(
            byBytes > 0, "dimension",
            "one row of \(dimension) values (\(rowBytes) bytes) exceeds the device's largest allocation of "
                + "\(context.maxAllocationBytes) bytes; split the parameters into blocks")
        let byCount = (UInt64(UInt32.max) - 1) / UInt64(dimension)
        return Int(min(UInt64(rows), byBytes, byCount))
    }

    /// The context the data lives in.
    public var context: Context { pieces[0].matrix.context }

    /// The number of NaN or infinite values in U (an opt-in check: one pass over U).
    public func nonFiniteCount() throws -> Int {
        let checks = try VectorChecks<Element>(context: context)
        return try pieces.reduce(0) { $0 + (try checks.nonFiniteCount($1.matrix, count: $1.rows.count * dimension)) }
    }

    /// U downloaded into `destination` (`rows * dimension` elements, row-major), piece by piece.
    public func download(into destination: UnsafeMutableBufferPointer<Element>) throws {
        try require(
            destination.count == rows * dimension, "destination",
            "holds \(destination.count) values for \(rows) x \(dimension)")
        for piece in pieces {
            let span = (piece.rows.lowerBound * dimension)..<(piece.rows.upperBound * dimension)
            try piece.matrix.download(into: UnsafeMutableBufferPointer(rebasing: destination[span]))
        }
    }

    /// U in float64, row-major (a host copy: for saving state and for tests).
    public func downloadFloat64() throws -> [Double] {
        var values = [Element](repeating: 0, count: rows * dimension)
        try values.withUnsafeMutableBufferPointer { try download(into: $0) }
        return Element.widened(values)
    }

    /// Throws `NaturalGradientError.nonFiniteValues` if U holds any NaN or infinity.
    public func requireFinite() throws {
        let count = try nonFiniteCount()
        if count > 0 { throw NaturalGradientError.nonFiniteValues(name: "matrix", count: count) }
    }

    static func validateShape(rows: Int, dimension: Int, samples: Int) throws {
        try require(rows > 0, "rows", "must be positive (an empty batch), got \(rows)")
        try require(dimension > 0, "dimension", "must be positive, got \(dimension)")
        try require(samples > 0, "samples", "must be positive, got \(samples)")
        try require(!rows.multipliedReportingOverflow(by: dimension).overflow, "rows", "\(rows) x \(dimension) overflows")
    }

    static func validateWeights(_ weights: [Element]) throws {
        if let index = weights.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw NaturalGradientError.invalidArgument(
                name: "weights", reason: "weight \(index) is \(weights[index]); weights must be finite and ≥ 0")
        }
    }
}

/// One row range of a `CurvatureFactor` in one device buffer.
public struct FactorPiece<Element: DeviceScalar> {
    /// The rows of U this piece holds.
    public let rows: Range<Int>
    /// Those rows, row-major (`rows.count * dimension` elements from the start).
    public let matrix: Buffer<Element>
    /// The weights of those rows (indexed from 0), or nil for all ones.
    public let weights: Buffer<Element>?
}

// MARK: - Factors from per-sample data

extension CurvatureFactor {
    /// The empirical Fisher: row i is the gradient of the loss of sample i at its training
    /// label (N x P), C = 1.
    public static func empiricalFisher(
        perSampleGradients: Buffer<Element>, samples: Int, dimension: Int,
        weights: Buffer<Element>? = nil
    ) throws -> CurvatureFactor {
        try CurvatureFactor(
            matrix: perSampleGradients, rows: samples, dimension: dimension, samples: samples, weights: weights)
    }

    /// The Monte-Carlo Fisher: `draws` gradients per sample, each at a label drawn from the
    /// model's own predictive distribution, stored sample-major ((N·draws) x P). Each draw
    /// counts as 1/draws of a sample, so F = (1/N) Σ_i (1/draws) Σ_s u_is u_isᵀ.
    public static func monteCarloFisher(
        sampledGradients: Buffer<Element>, samples: Int, draws: Int = 1,
        dimension: Int
    ) throws -> CurvatureFactor {
        try require(draws > 0, "draws", "must be positive, got \(draws)")
        try require(samples > 0, "samples", "must be positive, got \(samples)")
        return try CurvatureFactor(
            matrix: sampledGradients, rows: samples * draws, dimension: dimension, samples: samples * draws)
    }

    /// The exact Fisher / generalised Gauss-Newton matrix: U's rows are the rows of
    /// `B_i J_i`, where `J_i` is sample i's Jacobian of the model output (outputs x P,
    /// samples stored one after another) and `B_iᵀ B_i` the output metric.
    public static func exactFisher(
        outputJacobians: Buffer<Element>, samples: Int, outputs: Int, dimension: Int,
        metric: OutputMetric<Element>
    ) throws -> CurvatureFactor {
        let matrix = try SimilarityFactors<Element>(context: outputJacobians.context)
            .factor(jacobians: outputJacobians, samples: samples, outputs: outputs, dimension: dimension, metric: metric)
        return try CurvatureFactor(matrix: matrix, rows: samples * outputs, dimension: dimension, samples: samples)
    }

    /// The formal natural-gradient metric of a similarity measure (Mallasto et al., 2019):
    /// rows `B(z_i) J_i` with `B(z)ᵀB(z) = M(z)`, the Hessian of `D(p_z, p_{z'})` at z' = z,
    /// so that `F = (1/N) Σ_i J_iᵀ M(z_i) J_i`. Every representation and solver takes the
    /// result like any other factor.
    ///
    /// - Parameters:
    ///   - outputJacobians: the Jacobians `J_i = ∂z_i/∂θ`, each O x dimension row-major
    ///     (O = `family.outputCount`), samples one after another.
    ///   - outputs: the model's outputs z_i (O values per sample, laid out as
    ///     ``PredictiveFamily`` describes); read back once and checked.
    ///   - samples: N.
    ///   - dimension: P, the number of parameters.
    ///   - family: the predictive distribution.
    ///   - measure: the similarity measure.
    /// - Throws: `NaturalGradientError.invalidArgument` naming the argument (a measure the
    ///   family does not support, short buffers, invalid outputs).
    public static func formalMetric(
        outputJacobians: Buffer<Element>, outputs: Buffer<Element>, samples: Int, dimension: Int,
        family: PredictiveFamily, measure: SimilarityMeasure
    ) throws -> CurvatureFactor {
        let matrix = try SimilarityFactors<Element>(context: outputJacobians.context).factor(
            jacobians: outputJacobians, outputs: outputs, samples: samples, dimension: dimension, family: family,
            measure: measure)
        return try CurvatureFactor(matrix: matrix, rows: samples * family.outputCount, dimension: dimension, samples: samples)
    }
}
