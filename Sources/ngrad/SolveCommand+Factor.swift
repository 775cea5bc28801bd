import ArgumentParser
import NaturalGradient
import NumPyFormat

// `ngrad solve`'s factor upload: from the memory-mapped `.npy` to the device with no host
// copy of U where the stored type is the working one, and one bounded chunk where it is not.
//
// Peak resident memory, for a factor of B bytes in the working precision:
// - CPU device, stored type = working type: the mapped pages are the device buffers
//   (`CL_MEM_USE_HOST_PTR`), 1.0·B.
// - other device, same type: the mapped pages (B, handed back piece by piece after each
//   upload) plus what the driver stages, at most 2·B.
// - a converted factor (float64 file, float32 solve, or the reverse): each chunk is
//   converted into a bounded staging array, uploaded, and its mapped pages handed back,
//   so the host holds B of device buffers (on a CPU) plus one chunk.

extension SolveCommand {
    /// Elements converted and uploaded at a time when the file's type is not the working one.
    static let conversionChunk = 4 << 20

    func uploadFactor<Element: DeviceScalar>(
        _: Element.Type, _ input: SolveInput, context: Context, weights: [Element]?
    ) throws -> CurvatureFactor<Element> {
        let mapped = input.factor
        let (rows, dimension) = (input.rows, input.dimension)
        if let values = mapped.elements(as: Element.self) {
            if context.device.kind == .cpu {
                return try CurvatureFactor(
                    context: context, usingHostMemory: UnsafeMutableBufferPointer(mutating: values), owner: mapped,
                    rows: rows, dimension: dimension, samples: input.samples, weights: weights)
            }
            return try CurvatureFactor(
                context: context, rows: rows, dimension: dimension, samples: input.samples, weights: weights
            ) { range, piece in
                let span = (range.lowerBound * dimension)..<(range.upperBound * dimension)
                try piece.upload(from: UnsafeBufferPointer(rebasing: values[span]))
                mapped.releasePages(span)
            }
        }
        return try CurvatureFactor(
            context: context, rows: rows, dimension: dimension, samples: input.samples, weights: weights
        ) { range, piece in
            let span = (range.lowerBound * dimension)..<(range.upperBound * dimension)
            for start in stride(from: span.lowerBound, to: span.upperBound, by: Self.conversionChunk) {
                let chunk = start..<min(span.upperBound, start + Self.conversionChunk)
                let converted = try narrowed(mapped.widened(chunk), "--factor", file: factor, Element.self)
                try converted.withUnsafeBufferPointer { try piece.upload(from: $0, at: start - span.lowerBound) }
                mapped.releasePages(chunk)
            }
        }
    }
}
