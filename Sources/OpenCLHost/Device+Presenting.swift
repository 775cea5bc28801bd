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
}
