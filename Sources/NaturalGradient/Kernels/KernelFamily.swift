import NaturalGradientKernels
import OpenCLHost

/// A kernel file under `Kernels/`: one family of related kernels (CLBlast's layout).
public enum KernelFamily: String, CaseIterable, Sendable {
    /// Element-wise updates: `scale`, `axpy`, `axpby`, `gather_strided`, `symmetrize`.
    case vector = "Vector.cl"
    /// Two-stage dot product with a fixed summation order; the non-finite count.
    case reduction = "Reduction.cl"
    /// `F ← βF + α Uᵀ diag(w) U` over batched blocks, and its diagonal.
    case fisherAccumulation = "FisherAccumulation.cl"
    /// Fused implicit, block-dense and diagonal curvature-vector products.
    case curvatureProducts = "CurvatureProducts.cl"
    /// Kronecker-factored (K-FAC) products, batched over layers.
    case kronecker = "Kronecker.cl"
    /// Factor rows `B J` of the exact Fisher from output Jacobians.
    case similarityFactors = "SimilarityFactors.cl"
    /// Fused vector updates and dot products of the pipelined conjugate gradient.
    case conjugateGradient = "ConjugateGradient.cl"

    /// The shared header (`Common.cl`) prepended to every family.
    static let commonFile = "Common.cl"

    /// The positions of the family's descriptor tables (`DescriptorLayout`), as defines.
    var layoutDefines: [String: Int] {
        switch self {
        case .fisherAccumulation: AccumulationBlockField.defines
        case .curvatureProducts: DenseBlockField.defines
        case .kronecker: KroneckerLayerField.defines
        case .vector, .reduction, .similarityFactors, .conjugateGradient: [:]
        }
    }

    /// The embedded OpenCL C text of the family's file, after `Common.cl`.
    package func source() throws -> ProgramSource {
        // Only a stale build can miss a file: SwiftPM re-lists a path dependency's files
        // only when its manifest is reloaded (touch Package.swift after adding a kernel file).
        for file in [Self.commonFile, rawValue] where KernelFiles.text(of: file) == nil {
            throw OpenCLError.invalidArgument(
                name: "family", reason: "\(file) was not embedded into this build; rebuild after touching Package.swift")
        }
        return ProgramSource(
            name: rawValue, text: (KernelFiles.text(of: Self.commonFile) ?? "") + "\n" + (KernelFiles.text(of: rawValue) ?? ""))
    }
}

/// Everything that determines one build of a kernel family: the cache key for programs.
/// Made from a family's typed tunables (`KernelTunables`); the `-D` encoding is internal.
package struct KernelConfiguration: Hashable, Sendable, CustomStringConvertible {
    /// The file.
    package let family: KernelFamily
    /// `"float"` or `"double"`.
    package let elementTypeName: String
    /// Whether the element type needs `cl_khr_fp64`.
    package let requiresFloat64: Bool
    /// The `-D` defines, for example `["WGS": 256]`.
    private(set) var defines: [String: Int]

    /// The build of `tunables` for `Element`, plus the per-plan defines the host sets for
    /// one launch shape (e.g. `KB`, the right-hand sides per pass).
    init<Tunables: KernelTunables, Element: DeviceScalar>(
        _ tunables: Tunables, element _: Element.Type, planDefines: [String: Int] = [:]
    ) {
        family = Tunables.family
        elementTypeName = Element.openCLTypeName
        requiresFloat64 = Element.requiresFloat64
        defines = tunables.defines.merging(Tunables.family.layoutDefines) { tunable, _ in tunable }
            .merging(planDefines) { _, plan in plan }
    }

    /// The configuration for `Element`: the defaults chosen from the device's properties,
    /// or the values `ngrad tune` stored for this device, driver, family and element type
    /// in `tuningCache` where they are valid.
    package init<Element: DeviceScalar>(
        _ family: KernelFamily, element: Element.Type, device: Device, tuningCache: TuningCache = .current
    ) {
        func resolved<Tunables: KernelTunables>(_: Tunables.Type) -> KernelConfiguration {
            KernelConfiguration(
                Tunables.resolved(for: device, element: element, tuningCache: tuningCache), element: element)
        }
        self = resolved(family.tunablesType)
    }

    /// The same with raw `defines` replacing or adding defines (tests).
    init<Element: DeviceScalar>(
        _ family: KernelFamily, element: Element.Type, device: Device, defines: [String: Int],
        tuningCache: TuningCache = .current
    ) {
        self.init(family, element: element, device: device, tuningCache: tuningCache)
        self.defines.merge(defines) { _, override in override }
    }

    /// The defines of the tunables chosen from the device's properties alone (no cache).
    static func deviceDefaults<Element: DeviceScalar>(
        _ family: KernelFamily, element: Element.Type, device: Device
    ) -> [String: Int] {
        func defaults<Tunables: KernelTunables>(_: Tunables.Type) -> [String: Int] {
            KernelConfiguration(Tunables.defaults(for: device, element: element), element: element).defines
        }
        return defaults(family.tunablesType)
    }

    /// The `clBuildProgram` options: element type, then the defines in name order.
    package var buildOptions: String {
        var options = ["-DREAL=\(elementTypeName)"]
        if requiresFloat64 { options.append("-DUSE_FP64") }
        options += defines.keys.sorted().map { "-D\($0)=\(defines[$0] ?? 0)" }
        return options.joined(separator: " ")
    }

    package var description: String { "\(family.rawValue) [\(buildOptions)]" }
}

extension Context {
    /// Builds (or finds in the cache) `configuration`'s program for this context's device.
    package func build(_ configuration: KernelConfiguration) throws -> BuiltProgram {
        if configuration.requiresFloat64, !device.supportsFloat64 {
            throw OpenCLError.unsupported(device: device.name, feature: "double precision (cl_khr_fp64)")
        }
        return try buildProgram(configuration.family.source(), options: configuration.buildOptions)
    }
}

extension KernelTunables {
    /// The tunables in effect for `element` on `device`: the tuning cache's valid entry
    /// for this device, driver, family and element type, else the device defaults.
    static func resolved<Element: DeviceScalar>(
        for device: Device, element: Element.Type, tuningCache: TuningCache = .current
    ) -> Self {
        tuningCache.tunables(Self.self, for: device, element: element) ?? defaults(for: device, element: element)
    }

    /// These tunables, or an error naming the value and the rule it broke.
    func validated<Element: DeviceScalar>(on device: Device, element: Element.Type) throws -> Self {
        if let violation = violation(on: device, element: element) {
            throw NaturalGradientError.invalidArgument(name: "tunables", reason: "\(Self.family.rawValue): \(violation)")
        }
        return self
    }
}
