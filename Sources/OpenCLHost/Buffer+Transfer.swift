import COpenCL

// MARK: - Host <-> device transfers, fills and copies

extension Buffer {
    /// Writes `values` into the buffer starting at element `offset`; returns when the
    /// host array may be reused (a blocking write).
    public func upload(_ values: [Element], at offset: Int = 0) throws {
        guard !values.isEmpty else { return }
        try validate(offset..<(offset + values.count), argument: "offset")
        let stride = MemoryLayout<Element>.stride
        try values.withUnsafeBytes { bytes in
            try check(
                clEnqueueWriteBuffer(
                    context.queue, memory, cl_bool(CL_TRUE), offset * stride, bytes.count, bytes.baseAddress, 0, nil, nil),
                "clEnqueueWriteBuffer", objectDescription)
        }
    }

    /// Writes the elements `values` points at into the buffer starting at element `offset`,
    /// straight from the caller's memory (a memory-mapped file, a caller's array) with no
    /// intermediate copy; blocking, so the memory may be reused when it returns.
    ///
    /// - Throws: `OpenCLError.invalidArgument` naming `offset` when the elements do not fit
    ///   at `offset`; `OpenCLError.callFailed` when the driver refuses.
    public func upload(from values: UnsafeBufferPointer<Element>, at offset: Int = 0) throws {
        guard let base = values.baseAddress, !values.isEmpty else { return }
        let (end, overflow) = offset.addingReportingOverflow(values.count)
        guard !overflow else {
            throw OpenCLError.invalidArgument(name: "offset", reason: "\(offset) + \(values.count) elements overflows")
        }
        try validate(offset..<end, argument: "offset")
        let stride = MemoryLayout<Element>.stride
        try check(
            clEnqueueWriteBuffer(
                context.queue, memory, cl_bool(CL_TRUE), offset * stride, values.count * stride, base, 0, nil, nil),
            "clEnqueueWriteBuffer", objectDescription)
    }

    /// Reads elements `range` (all of them by default) back to the host, after every
    /// command enqueued before it has completed.
    public func download(_ range: Range<Int>? = nil) throws -> [Element] {
        let range = range ?? 0..<count
        try validate(range, argument: "range")
        guard !range.isEmpty else { return [] }
        let stride = MemoryLayout<Element>.stride
        return try [Element](unsafeUninitializedCapacity: range.count) { buffer, initialized in
            try check(
                clEnqueueReadBuffer(
                    context.queue, memory, cl_bool(CL_TRUE), range.lowerBound * stride, range.count * stride,
                    buffer.baseAddress, 0, nil, nil),
                "clEnqueueReadBuffer", objectDescription)
            initialized = range.count
        }
    }

    /// Copies elements `range` (all by default) into `destination`, which must hold exactly
    /// `range.count` elements; blocks until the copy is done. Reusing one destination for
    /// repeated reads avoids allocating and first-touching fresh pages on every call, which
    /// costs more than the copy for large buffers.
    public func download(_ range: Range<Int>? = nil, into destination: inout [Element]) throws {
        let range = range ?? 0..<count
        try validate(range, argument: "range")
        guard destination.count == range.count else {
            throw OpenCLError.invalidArgument(
                name: "destination", reason: "holds \(destination.count) elements for a range of \(range.count)")
        }
        guard !range.isEmpty else { return }
        let stride = MemoryLayout<Element>.stride
        try destination.withUnsafeMutableBufferPointer { buffer in
            try check(
                clEnqueueReadBuffer(
                    context.queue, memory, cl_bool(CL_TRUE), range.lowerBound * stride, range.count * stride,
                    buffer.baseAddress, 0, nil, nil),
                "clEnqueueReadBuffer", objectDescription)
        }
    }

    /// Reads `destination.count` elements starting at element `offset` straight into the
    /// caller's memory, after every command enqueued before it has completed (blocking).
    ///
    /// - Throws: `OpenCLError.invalidArgument` naming `offset` when the range is outside the
    ///   buffer; `OpenCLError.callFailed` when the driver refuses.
    public func download(into destination: UnsafeMutableBufferPointer<Element>, from offset: Int = 0) throws {
        guard let base = destination.baseAddress, !destination.isEmpty else { return }
        let (end, overflow) = offset.addingReportingOverflow(destination.count)
        guard !overflow else {
            throw OpenCLError.invalidArgument(name: "offset", reason: "\(offset) + \(destination.count) elements overflows")
        }
        try validate(offset..<end, argument: "offset")
        let stride = MemoryLayout<Element>.stride
        try check(
            clEnqueueReadBuffer(
                context.queue, memory, cl_bool(CL_TRUE), offset * stride, destination.count * stride, base, 0, nil, nil),
            "clEnqueueReadBuffer", objectDescription)
    }

    /// Sets elements `range` (all by default) to `value`, asynchronously.
    @discardableResult
    public func fill(_ value: Element, range: Range<Int>? = nil) throws -> Event {
        let range = range ?? 0..<count
        try validate(range, argument: "range")
        let stride = MemoryLayout<Element>.stride
        var pattern = value
        var event: cl_event?
        try check(
            clEnqueueFillBuffer(
                context.queue, memory, &pattern, stride, range.lowerBound * stride, range.count * stride, 0, nil, &event),
            "clEnqueueFillBuffer", objectDescription)
        return try Event(taking: event, from: "clEnqueueFillBuffer")
    }

    /// Copies `source[sourceRange]` (all of `source` by default) to this buffer starting at
    /// `destinationOffset`, asynchronously. Overlapping ranges of one buffer are rejected,
    /// as OpenCL requires.
    @discardableResult
    public func copy(
        from source: Buffer<Element>, range sourceRange: Range<Int>? = nil, to destinationOffset: Int = 0
    )
        throws -> Event
    {
        guard source.context === context else {
            throw OpenCLError.invalidArgument(name: "source", reason: "the buffer belongs to another context")
        }
        let sourceRange = sourceRange ?? 0..<source.count
        try source.validate(sourceRange, argument: "range")
        let destination = destinationOffset..<(destinationOffset + sourceRange.count)
        try validate(destination, argument: "destinationOffset")
        if source === self, sourceRange.overlaps(destination) {
            throw OpenCLError.invalidArgument(
                name: "range", reason: "source \(sourceRange) and destination \(destination) overlap")
        }
        let stride = MemoryLayout<Element>.stride
        var event: cl_event?
        try check(
            clEnqueueCopyBuffer(
                context.queue, source.memory, memory, sourceRange.lowerBound * stride, destination.lowerBound * stride,
                sourceRange.count * stride, 0, nil, &event),
            "clEnqueueCopyBuffer", objectDescription)
        return try Event(taking: event, from: "clEnqueueCopyBuffer")
    }
}

// MARK: - Rectangles

extension Buffer {
    /// Copies a `rows x columns` block from `source` to this buffer, asynchronously
    /// (`clEnqueueCopyBufferRect`): both row-major with rows `sourcePitch` and
    /// `destinationPitch` elements apart, the block's top-left elements at `sourceOrigin` and
    /// `destinationOrigin` (row, column). Gathers the same columns of several row pieces of a
    /// split matrix into one buffer without a host round trip.
    ///
    /// - Throws: `OpenCLError.invalidArgument` naming the argument when a block lies outside
    ///   either buffer or wider than its pitch; `OpenCLError.callFailed` when the driver refuses.
    @discardableResult
    public func copyRectangle(
        from source: Buffer<Element>, sourceOrigin: (row: Int, column: Int), sourcePitch: Int,
        destinationOrigin: (row: Int, column: Int), destinationPitch: Int, rows: Int, columns: Int
    ) throws -> Event {
        guard source.context === context else {
            throw OpenCLError.invalidArgument(name: "source", reason: "the buffer belongs to another context")
        }
        guard rows > 0, columns > 0 else {
            throw OpenCLError.invalidArgument(name: "rows", reason: "a \(rows) x \(columns) block is empty")
        }
        for (name, origin, pitch, buffer) in [
            ("sourceOrigin", sourceOrigin, sourcePitch, source), ("destinationOrigin", destinationOrigin, destinationPitch, self),
        ] {
            guard origin.row >= 0, origin.column >= 0, pitch > 0, origin.column + columns <= pitch,
                (origin.row + rows - 1) * pitch + origin.column + columns <= buffer.count
            else {
                throw OpenCLError.invalidArgument(
                    name: name,
                    reason:
                        "a \(rows) x \(columns) block at \(origin) with pitch \(pitch) lies outside the buffer's \(buffer.count) elements"
                )
            }
        }
        let stride = MemoryLayout<Element>.stride
        var sourceBytes = [sourceOrigin.column * stride, sourceOrigin.row, 0]
        var destinationBytes = [destinationOrigin.column * stride, destinationOrigin.row, 0]
        var region = [columns * stride, rows, 1]
        var event: cl_event?
        try check(
            clEnqueueCopyBufferRect(
                context.queue, source.memory, memory, &sourceBytes, &destinationBytes, &region, sourcePitch * stride, 0,
                destinationPitch * stride, 0, 0, nil, &event),
            "clEnqueueCopyBufferRect", objectDescription)
        return try Event(taking: event, from: "clEnqueueCopyBufferRect")
    }
}

// MARK: - Float64 transfers for host numerics

extension Buffer where Element: DeviceScalar {
    /// `download(range)` widened to float64, converted in one concrete loop.
    public func downloadFloat64(_ range: Range<Int>? = nil) throws -> [Double] {
        Element.widened(try download(range))
    }

    /// Rounds `values` to `Element` and uploads them at `offset`.
    public func upload(float64 values: [Double], at offset: Int = 0) throws {
        try upload(Element.narrowed(values), at: offset)
    }
}
