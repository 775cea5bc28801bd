import Foundation
import NaturalGradient
import NaturalGradientTestSupport

/// The search behind `ngrad tune`: times each candidate of a small parameter space on one
/// device, checks every candidate's result against a float64 host reference before it can
/// win, and returns the candidates with the winner marked.
struct KernelTuner {
    /// Problem sizes of the search.
    enum Size: String, CaseIterable, Encodable {
        /// A few milliseconds per candidate, and only the first three candidates of each
        /// space: for tests and smoke runs, not for choosing parameters.
        case tiny
        /// Sizes where the kernels run as in real use (U larger than a CPU's L3 for the
        /// product): about a minute on a 2-core PoCL machine.
        case standard

        var accumulation: (rows: Int, dimension: Int) { self == .tiny ? (33, 65) : (512, 1536) }
        var product: (rows: Int, dimension: Int) { self == .tiny ? (33, 257) : (512, 65536) }
        var candidateLimit: Int { self == .tiny ? 3 : .max }
    }

    /// One candidate's outcome.
    struct Candidate: Encodable {
        let family: String
        let element: String
        let defines: [String: Int]
        /// Whether these are the device-property defaults (the baseline).
        let isDefault: Bool
        var medianSeconds: Double = .nan
        var minSeconds: Double = .nan
        var maxSeconds: Double = .nan
        /// `‖ours − float64‖/‖float64‖` on the tuning problem.
        var relativeError: Double = .nan
        /// nil when accepted; why it was rejected otherwise.
        var rejection: String?
        var winner = false
    }

    /// The outcome for one kernel family and element type.
    struct Search: Encodable {
        let family: String
        let element: String
        let operation: String
        let rows: Int
        let dimension: Int
        var candidates: [Candidate]
        /// The default's median over the winner's (> 1: the winner is faster).
        var speedupOverDefault: Double {
            guard let best = candidates.first(where: \.winner), let base = candidates.first(where: \.isDefault),
                base.rejection == nil
            else { return .nan }
            return base.medianSeconds / best.medianSeconds
        }
        var winner: Candidate? { candidates.first(where: \.winner) }

        enum CodingKeys: String, CodingKey {
            case family, element, operation, rows, dimension, candidates, speedupOverDefault
        }
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(family, forKey: .family)
            try container.encode(element, forKey: .element)
            try container.encode(operation, forKey: .operation)
            try container.encode(rows, forKey: .rows)
            try container.encode(dimension, forKey: .dimension)
            try container.encode(candidates, forKey: .candidates)
            let speedup = speedupOverDefault
            try container.encode(speedup.isFinite ? speedup : nil, forKey: .speedupOverDefault)
        }
    }

    let context: Context
    let size: Size
    let warmup: Int
    let repetitions: Int
    /// Called before each candidate with a short description (the progress line).
    var progress: (String) -> Void = { _ in }

    /// Accumulation `F = (1/N) UᵀU`: micro-tiles RM x VW with RM dividing VW.
    func tuneAccumulation<Element: DeviceScalar>(_: Element.Type) throws -> Search {
        let device = context.device
        let base = KernelConfiguration.deviceDefaults(.fisherAccumulation, element: Element.self, device: device)
        var spaces: [[String: Int]] = [base]
        for columns in [4, 8, 16] {
            for rows in [2, 4, 8, 16] where rows <= columns && columns % rows == 0 {
                let candidate = ["RM": rows, "VW": columns]
                if candidate != base { spaces.append(candidate) }
            }
        }
        spaces = Array(spaces.prefix(size.candidateLimit))
        let (m, p) = size.accumulation
        let u = uniformValues(count: m * p, seed: 0x7E57_0001)
        let factor = try CurvatureFactor(
            matrix: Buffer(context: context, copying: Element.narrowed(u)), rows: m, dimension: p, samples: m)
        let output = try Buffer<Element>(context: context, count: p * p)
        let entries = sampledUpperEntries(p)
        let reference = referenceAccumulation(Element.narrowed(u), rows: m, dim: p, samples: m, entries: entries)
        var candidates: [Candidate] = []
        for (index, defines) in spaces.enumerated() {
            progress("accumulation \(Element.openCLTypeName) \(describe(defines)) (\(index + 1)/\(spaces.count))")
            var candidate = Candidate(
                family: KernelFamily.fisherAccumulation.rawValue, element: Element.openCLTypeName, defines: defines,
                isDefault: index == 0)
            do {
                let accumulation = try FisherAccumulation<Element>(context: context, tuning: defines)
                try output.fill(Element(float64: .nan))
                try accumulation.accumulate(factor, into: output)
                let values = Element.widened(try output.download())
                candidate.relativeError = relativeError(entries.map { values[$0] }, reference)
                if let problem = check(candidate.relativeError, Element.self) {
                    candidate.rejection = problem
                } else {
                    let seconds = try time {
                        try accumulation.accumulate(factor, into: output)
                        try context.finish()
                    }
                    record(seconds, in: &candidate)
                }
            } catch {
                candidate.rejection = "failed: \(error)"
            }
            candidates.append(candidate)
        }
        return finish(
            Search(
                family: KernelFamily.fisherAccumulation.rawValue, element: Element.openCLTypeName,
                operation: "dense accumulation F = (1/N) UᵀU", rows: m, dimension: p, candidates: candidates))
    }

    /// Implicit product `y = (1/N) Uᵀ(Ux) + λx`: work-group size and work-groups per pass.
    func tuneImplicitProduct<Element: DeviceScalar>(_: Element.Type) throws -> Search {
        let device = context.device
        let baseGroupSize =
            KernelConfiguration.deviceDefaults(.fisherProducts, element: Element.self, device: device)["WGS"] ?? 256
        let units = max(1, device.computeUnits)
        let base = ["WGS": baseGroupSize, "GROUPS": 2 * units]
        var spaces: [[String: Int]] = [base]
        for groupSize in [64, 128, 256] where groupSize <= device.maxWorkGroupSize {
            for groups in [units, 2 * units, 4 * units] {
                let candidate = ["WGS": groupSize, "GROUPS": groups]
                if candidate != base { spaces.append(candidate) }
            }
        }
        spaces = Array(spaces.prefix(size.candidateLimit))
        let (m, p) = size.product
        let u = uniformValues(count: m * p, seed: 0x7E57_0002)
        let x = uniformValues(count: p, seed: 0x7E57_0003)
        let damping = 1e-3
        let factor = try CurvatureFactor(
            matrix: Buffer(context: context, copying: Element.narrowed(u)), rows: m, dimension: p, samples: m)
        let xBatch = try VectorBatch<Element>(context: context, vectors: [Element.narrowed(x)])
        let y = try VectorBatch<Element>(context: context, dimension: p, count: 1)
        // float64 reference on the element-rounded inputs.
        let reference = referenceImplicitProduct(
            Element.narrowed(u), rows: m, dim: p, samples: m, xs: [Element.narrowed(x)],
            damping: Element(float64: damping).float64)[0]
        var candidates: [Candidate] = []
        for (index, defines) in spaces.enumerated() {
            progress("implicit product \(Element.openCLTypeName) \(describe(defines)) (\(index + 1)/\(spaces.count))")
            var candidate = Candidate(
                family: KernelFamily.fisherProducts.rawValue, element: Element.openCLTypeName, defines: defines,
                isDefault: index == 0)
            do {
                let product = try ImplicitProduct<Element>(context: context, tuning: defines)
                try y.buffer.fill(Element(float64: .nan))
                try product.apply(factor, xBatch, damping: Element(float64: damping), into: y)
                candidate.relativeError = relativeError(Element.widened(try y.buffer.download()), reference)
                if let problem = check(candidate.relativeError, Element.self) {
                    candidate.rejection = problem
                } else {
                    let seconds = try time {
                        try product.apply(factor, xBatch, damping: Element(float64: damping), into: y)
                        try context.finish()
                    }
                    record(seconds, in: &candidate)
                }
            } catch {
                candidate.rejection = "failed: \(error)"
            }
            candidates.append(candidate)
        }
        return finish(
            Search(
                family: KernelFamily.fisherProducts.rawValue, element: Element.openCLTypeName,
                operation: "implicit product (1/N) Uᵀ(Ux) + λx", rows: m, dimension: p, candidates: candidates))
    }

    // MARK: - Helpers

    private func describe(_ defines: [String: Int]) -> String {
        defines.keys.sorted().map { "\($0)=\(defines[$0] ?? 0)" }.joined(separator: " ")
    }

    /// A reason to reject a result, or nil: relative error within 1e-5 (float), 1e-12 (double).
    private func check<Element: DeviceScalar>(_ error: Double, _: Element.Type) -> String? {
        let limit = Element.self == Double.self ? 1e-12 : 1e-5
        if error.isNaN { return "wrong result: NaN (an element left unwritten?)" }
        return error <= limit ? nil : String(format: "wrong result: relative error %.2e > %.0e", error, limit)
    }

    private func time(_ body: () throws -> Void) throws -> Timing {
        try measure(warmup: warmup, repetitions: repetitions) { _ in try body() }
    }

    private func record(_ timing: Timing, in candidate: inout Candidate) {
        (candidate.medianSeconds, candidate.minSeconds, candidate.maxSeconds) = (timing.median, timing.min, timing.max)
    }

    /// Marks the fastest accepted candidate. The default wins ties within 2%, so noise
    /// alone never replaces it.
    private func finish(_ search: Search) -> Search {
        var search = search
        let accepted = search.candidates.indices.filter { search.candidates[$0].rejection == nil }
        guard var best = accepted.min(by: { search.candidates[$0].medianSeconds < search.candidates[$1].medianSeconds })
        else { return search }
        if let base = accepted.first(where: { search.candidates[$0].isDefault }),
            search.candidates[base].medianSeconds <= search.candidates[best].medianSeconds * 1.02
        {
            best = base
        }
        search.candidates[best].winner = true
        return search
    }
}
