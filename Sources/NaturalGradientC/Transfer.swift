import NaturalGradient

// Transfers straight between a caller's memory and device buffers through the host layer's
// pointer transfers (`Buffer.upload(from:at:)`, `Buffer.download(into:from:)`): one blocking
// write or read, with no intermediate Swift array, which would add a host copy of every
// large input.

extension Buffer where Element: BridgeScalar {
    /// Writes `values` at element 0 (blocking: the caller's memory may be reused afterwards).
    func write(_ values: UnsafeBufferPointer<Element>) throws {
        guard !values.isEmpty else { return }
        try check(values.count <= count, "values", "\(values.count) values do not fit a buffer of \(count)")
        try upload(from: values)
    }

    /// Reads elements `0..<values.count` into `values` after all enqueued work (blocking).
    func read(into values: UnsafeMutableBufferPointer<Element>) throws {
        guard !values.isEmpty else { return }
        try check(values.count <= count, "out", "\(values.count) values exceed a buffer of \(count)")
        try download(into: values)
    }

    /// A new buffer holding `count` finite values from `pointer` (checked on the host first).
    static func uploading(
        _ context: Context, _ pointer: UnsafeRawPointer?, count: Int, _ name: String, checkFinite: Bool = true
    ) throws -> Buffer<Element> {
        let values = try elements(pointer, count: count, name, as: Element.self)
        if checkFinite { try requireFinite(values, name) }
        let buffer = try Buffer<Element>(context: context, count: count)
        try buffer.write(values)
        return buffer
    }
}

/// A reusable pair of device batches for products and solves of one shape, so repeated
/// calls on one object do not allocate (the object's lock guards it).
struct BatchCache<Element: BridgeScalar> {
    private var batches: [String: VectorBatch<Element>] = [:]

    /// The batch named `role` of `count` vectors of `dimension`, reused when the shape fits.
    mutating func batch(_ role: String, context: Context, dimension: Int, count: Int) throws -> VectorBatch<Element> {
        if let batch = batches[role], batch.dimension == dimension, batch.count == count { return batch }
        let batch = try VectorBatch<Element>(context: context, dimension: dimension, count: count)
        batches[role] = batch
        return batch
    }
}
