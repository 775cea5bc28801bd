/// The kernel files under `Kernels/`, embedded at build time by the EmbedKernels plugin.
package enum KernelFiles {
    /// File names (`"Reduction.cl"`, ...), sorted.
    package static var names: [String] { embeddedKernelSources.keys.sorted() }

    /// The OpenCL C text of `fileName`, or nil when no such file was embedded.
    package static func text(of fileName: String) -> String? {
        embeddedKernelSources[fileName]
    }
}
