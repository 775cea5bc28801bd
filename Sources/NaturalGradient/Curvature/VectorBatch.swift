import OpenCLHost

/// `count` vectors of length `dimension`, stored one after another in a device buffer
/// (vector j starts at element `j * dimension`). Curvature operators apply to whole
/// batches, so k right-hand sides cost one pass over the curvature data.
public struct VectorBatch<Element: DeviceScalar> {
    /// The storage; it may be longer than `dimension * count`.
    public let buffer: Buffer<Element>
    /// The length of each vector (the parameter count P).
    public let dimension: Int
    /// The number of vectors k.
    public let count: Int

    /// A view of `count` vectors of length `dimension` at the start of `buffer`.
    public init(_ buffer: Buffer<Element>, dimension: Int, count: Int = 1) throws {
        try require(dimension > 0, "dimension", "must be positive, got \(dimension)")
        try require(count > 0, "count", "must be positive, got \(count)")
        let (needed, overflow) = dimension.multipliedReportingOverflow(by: count)
        try require(
            !overflow && buffer.count >= needed, "buffer",
            "holds \(buffer.count) elements, fewer than \(count) vectors of \(dimension)")
        self.buffer = buffer
        self.dimension = dimension
        self.count = count
    }

    /// A new, uninitialised batch.
    public init(context: Context, dimension: Int, count: Int = 1) throws {
        try require(dimension > 0, "dimension", "must be positive, got \(dimension)")
        try require(count > 0, "count", "must be positive, got \(count)")
        try self.init(Buffer(context: context, count: dimension * count), dimension: dimension, count: count)
    }

    /// A batch holding copies of `vectors`, which must be non-empty and of equal length.
    public init(context: Context, vectors: [[Element]]) throws {
        guard let first = vectors.first else {
            throw NaturalGradientError.invalidArgument(name: "vectors", reason: "is empty")
        }
        for (index, vector) in vectors.enumerated() where vector.count != first.count {
            throw NaturalGradientError.invalidArgument(
                name: "vectors", reason: "vector \(index) has \(vector.count) elements, vector 0 has \(first.count)")
        }
        try self.init(context: context, dimension: first.count, count: vectors.count)
        try buffer.upload(vectors.flatMap { $0 })
    }

    /// The vectors, read back to the host.
    public func download() throws -> [[Element]] {
        let flat = try buffer.download(0..<(dimension * count))
        return (0..<count).map { Array(flat[($0 * dimension)..<(($0 + 1) * dimension)]) }
    }

    /// Throws unless `other` has the same shape; `name` is `other`'s argument name.
    func requireSameShape(_ other: VectorBatch<Element>, _ name: String) throws {
        try require(
            other.dimension == dimension && other.count == count, name,
            "has \(other.count) vectors of \(other.dimension), expected \(count) of \(dimension)")
    }
}
