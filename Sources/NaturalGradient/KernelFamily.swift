import NaturalGradientKernels
import OpenCLHost

/// A kernel file under `Kernels/`: one family of related kernels (CLBlast's layout).
public enum KernelFamily: String, CaseIterable, Sendable {
    /// Element-wise updates: `scale`, `axpy`, `axpby`, `gather_strided`.
    case vector = "Vector.cl"
    /// Two-stage dot product with a fixed summation order; the non-finite count.
    case reduction = "Reduction.cl"
    /// `F ← βF + α Uᵀ diag(w) U` over batched blocks, and its diagonal.
    case fisherAccumulation = "FisherAccumulation.cl"
    /// Fused implicit, block-dense and diagonal curvature-vector products.
    case fisherProducts = "FisherProducts.cl"
    /// Kronecker-factored (K-FAC) products, batched over layers.
    case kronecker = "Kronecker.cl"
    /// Factor rows `B J` of the exact Fisher from output Jacobians.
    case outputMetrics = "OutputMetrics.cl"
    /// Fused vector updates and dot products of the pipelined conjugate gradient.
    case conjugateGradient = "ConjugateGradient.cl"

    /// The shared header (`Common.cl`) prepended to every family.
    static let commonFile = "Common.cl"

    /// The embedded OpenCL C text of the family's file, after `Common.cl`.
    public func source() throws -> ProgramSource {
        // Only a stale build can miss a file: SwiftPM re-lists a path dependency's files
        // only when its manifest is reloaded (touch Package.swift after adding a kernel file).
        for file in [Self.commonFile, rawValue] where KernelFiles.text(of: file) == nil {
            throw OpenCLError.invalidArgument(
                name: "family", reason: "\(file) was not embedded into this build; rebuild after touching Package.swift")
        }
        return ProgramSource(
            name: rawValue, text: (KernelFiles.text(of: Self.commonFile) ?? "") + "\n" + (KernelFiles.text(of: rawValue) ?? ""))
    }

    /// Tunable defines (`#ifndef` defaults in the file) chosen from the device's properties.
    func defaultDefines<Element: DeviceScalar>(for device: Device, element _: Element.Type) -> [String: Int] {
        let groupSize = largestPowerOfTwo(atMost: min(256, device.maxWorkGroupSize))
        switch self {
        case .vector, .outputMetrics:
            return [:]
        case .kronecker:
            // CPUs: each work-item streams 4 rows of each operand along k in 512-bit vectors
            // (16 vector accumulators), 128 items per group so a group's 32 + 64 rows stay in
            // L2. GPUs: 64 x 64 group tiles staged in local memory in k-slices of 16, 4 x 4
            // scalars per item (CLBlast's xgemm shape), fewer items where the device caps
            // the group size.
            guard device.kind == .cpu else {
                let wgy = min(16, max(1, largestPowerOfTwo(atMost: max(16, device.maxWorkGroupSize)) / 16))
                return ["LOCAL_TILES": 1, "RM": 4, "RN": 4, "WGX": 16, "WGY": wgy, "KT": 16]
            }
            return ["LOCAL_TILES": 0, "RM": 4, "RN": 4, "WGX": 16, "WGY": 8, "VW": Element.self == Double.self ? 8 : 16]
        case .reduction:
            return ["WGS": groupSize]
        case .conjugateGradient:
            // CPUs: contiguous runs of 512-bit vectors per work-item (the interleaved loop
            // ran scalar on PoCL); GPUs interleave items for coalesced access.
            guard device.kind == .cpu else { return ["WGS": groupSize, "CONTIGUOUS": 0] }
            return ["WGS": groupSize, "CONTIGUOUS": 1, "VW": Element.self == Double.self ? 8 : 16]
        case .fisherAccumulation:
            // CPUs: a 16 x 16 float micro-tile (16 accumulators of one 512-bit register each)
            // measured 124 GFLOP/s on PoCL against 87 for 8 x 16; doubles take 8 x 8. GPUs
            // get a 4 x 4 register tile, since 256 accumulators per work-item would spill.
            guard device.kind == .cpu else { return ["RM": 4, "VW": 4] }
            return Element.self == Double.self ? ["RM": 8, "VW": 8] : ["RM": 16, "VW": 16]
        case .fisherProducts:
            // CPUs stream a contiguous run of columns per work-item (PoCL runs a group's
            // items one after another) and sweep the update backwards, so the rows it re-reads
            // were the dot phase's last (shortest reuse distance in L2: +0-13% at P = 100000,
            // even at 65536 on PoCL); GPUs interleave items for coalesced loads.
            // block_dense_product: DRB rows per group (CPUs 16: 8 measured 0.12-0.67x ssymv,
            // 16 0.52-0.99x in one busy run); on CPUs 16 items (a row is a few kilobytes, so
            // 256 items would each get less than one vector), on GPUs the family's group size
            // and 2 rows (local scratch DRB x KB x DWGS stays <= 32 KiB).
            let cpu = device.kind == .cpu ? 1 : 0
            return ["WGS": groupSize, "VW": device.kind == .cpu ? (Element.self == Double.self ? 8 : 16) : 4,
                    "CONTIGUOUS": cpu, "REVERSE": cpu, "KB": 1, "RB": 8,
                    "DRB": device.kind == .cpu ? 16 : 2, "DWGS": device.kind == .cpu ? min(16, groupSize) : groupSize]
        }
    }
}

/// Everything that determines one build of a kernel family: the cache key for programs.
public struct KernelConfiguration: Hashable, Sendable, CustomStringConvertible {
    /// The file.
    public let family: KernelFamily
    /// `"float"` or `"double"`.
    public let elementTypeName: String
    /// Whether the element type needs `cl_khr_fp64`.
    public let requiresFloat64: Bool
    /// Tunable `-D` defines, for example `["WGS": 256]`.
    public private(set) var defines: [String: Int]

    /// The configuration for `Element`: the defaults chosen from the device's properties,
    /// then the values `ngrad tune` stored for this device, driver, family and element
    /// type in `tuningCache` (host-only launch parameters such as `GROUPS` left out), then
    /// `defines` overriding both.
    public init<Element: DeviceScalar>(
        _ family: KernelFamily, element: Element.Type, device: Device, defines: [String: Int] = [:],
        tuningCache: TuningCache = .current
    ) {
        self.family = family
        self.elementTypeName = Element.openCLTypeName
        self.requiresFloat64 = Element.requiresFloat64
        let tuned = tuningCache.defines(for: device, family: family, element: Element.openCLTypeName)
            .filter { !TuningCache.hostParameters.contains($0.key) }
        self.defines = family.defaultDefines(for: device, element: Element.self)
            .merging(tuned) { _, tuned in tuned }
            .merging(defines) { _, override in override }
    }

    /// The tunables chosen from the device's properties alone (no tuning cache): the
    /// baseline `ngrad tune` measures its candidates against.
    public static func deviceDefaults<Element: DeviceScalar>(
        _ family: KernelFamily, element: Element.Type, device: Device
    ) -> [String: Int] {
        family.defaultDefines(for: device, element: element)
    }

    /// The same configuration with `defines` replacing or adding tunables.
    public func overriding(_ defines: [String: Int]) -> KernelConfiguration {
        var copy = self
        copy.defines.merge(defines) { _, override in override }
        return copy
    }

    /// The `clBuildProgram` options: element type, then the defines in name order.
    public var buildOptions: String {
        var options = ["-DREAL=\(elementTypeName)"]
        if requiresFloat64 { options.append("-DUSE_FP64") }
        options += defines.keys.sorted().map { "-D\($0)=\(defines[$0] ?? 0)" }
        return options.joined(separator: " ")
    }

    public var description: String { "\(family.rawValue) [\(buildOptions)]" }
}

extension Context {
    /// Builds (or finds in the cache) `configuration`'s program for this context's device.
    public func build(_ configuration: KernelConfiguration) throws -> BuiltProgram {
        if configuration.requiresFloat64, !device.supportsFloat64 {
            throw OpenCLError.unsupported(device: device.name, feature: "double precision (cl_khr_fp64)")
        }
        return try buildProgram(configuration.family.source(), options: configuration.buildOptions)
    }
}

func largestPowerOfTwo(atMost value: Int) -> Int {
    var power = 1
    while power * 2 <= value { power *= 2 }
    return power
}
