/// A device presented as another kind with other limits, for tests that run the code paths
/// another device would take (a GPU's tunables and launch plans) on the device at hand.
extension Device {
    /// This device (same handle, platform and driver, so a `Context` on it drives the real
    /// device) presented as `kind` named `name`, with the given work-group and local-memory
    /// limits. Throws when a limit exceeds this device's own, since kernels planned for it
    /// would then not launch here.
    package func presenting(
        as kind: Kind, name: String, maxWorkGroupSize: Int, localMemoryBytes: UInt64
    ) throws -> Device {
        guard maxWorkGroupSize >= 1, maxWorkGroupSize <= self.maxWorkGroupSize else {
            throw OpenCLError.invalidArgument(
                name: "maxWorkGroupSize",
                reason: "\(maxWorkGroupSize) is not in 1...\(self.maxWorkGroupSize), \(self.name)'s limit")
        }
        guard localMemoryBytes <= self.localMemoryBytes else {
            throw OpenCLError.invalidArgument(
                name: "localMemoryBytes",
                reason: "\(localMemoryBytes) exceeds \(self.name)'s \(self.localMemoryBytes) bytes")
        }
        var presented = self
        presented.kind = kind
        presented.name = name
        presented.maxWorkGroupSize = maxWorkGroupSize
        presented.maxWorkItemSizes = maxWorkItemSizes.map { min($0, maxWorkGroupSize) }
        presented.localMemoryBytes = localMemoryBytes
        return presented
    }

    /// This device presented with other native vector widths (floats and doubles per
    /// register), for tests of the CPU defaults that are sized from them: the register tiles
    /// an AVX2 (8, 4), AVX-512 (16, 8) or 128-bit (4, 2) CPU would get. Throws for a width
    /// outside 1...16.
    package func presenting(nativeVectorWidths widths: (float: Int, double: Int)) throws -> Device {
        for (name, width) in [("float", widths.float), ("double", widths.double)] where !(1...16).contains(width) {
            throw OpenCLError.invalidArgument(name: "nativeVectorWidths.\(name)", reason: "\(width) is not in 1...16")
        }
        var presented = self
        presented.nativeFloatVectorWidth = widths.float
        presented.nativeDoubleVectorWidth = widths.double
        return presented
    }
}
