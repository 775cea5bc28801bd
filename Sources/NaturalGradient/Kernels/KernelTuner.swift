import Foundation
import OpenCLHost

/// The search behind `ngrad tune`: times each candidate of a family's search space
/// (`KernelTunables.searchSpace`) on one device, checks every candidate's result against a
/// float64 host reference before it can win, and returns the candidates with the winner
/// marked; `store` writes the winners to a tuning cache.
package struct KernelTuner {
    /// Problem sizes of the search.
    package enum Size: String, CaseIterable, Encodable, Sendable {
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
    package struct Candidate: Encodable {
        /// The candidate's tunables (encoded as `defines`, by define name).
        package let tunables: any KernelTunables
        /// Whether these are the device-property defaults (the baseline).
        package let isDefault: Bool
        package var medianSeconds: Double = .nan
        package var minSeconds: Double = .nan
        package var maxSeconds: Double = .nan
        /// `‖ours − float64‖/‖float64‖` on the tuning problem.
        package var relativeError: Double = .nan
        /// nil when accepted; why it was rejected otherwise.
        package var rejection: String?
        package var winner = false

        enum CodingKeys: String, CodingKey {
            case defines, isDefault, medianSeconds, minSeconds, maxSeconds, relativeError, rejection, winner
        }

        package func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(tunables, forKey: .defines)
            try container.encode(isDefault, forKey: .isDefault)
            for (key, value) in [
                (CodingKeys.medianSeconds, medianSeconds), (.minSeconds, minSeconds),
                (.maxSeconds, maxSeconds), (.relativeError, relativeError),
            ] {
                try container.encode(value.isFinite ? value : nil, forKey: key)
            }
            try container.encodeIfPresent(rejection, forKey: .rejection)
            try container.encode(winner, forKey: .winner)
        }
    }

    /// The outcome for one kernel family and element type.
    package struct Search: Encodable {
        package let family: String
        package let element: String
        package let operation: String
        package let rows: Int
        package let dimension: Int
        package var candidates: [Candidate]
        /// The default's median over the winner's (> 1: the winner is faster).
        package var speedupOverDefault: Double {
            guard let best = winner, let base = candidates.first(where: \.isDefault), base.rejection == nil
            else { return .nan }
            return base.medianSeconds / best.medianSeconds
        }
        package var winner: Candidate? { candidates.first(where: \.winner) }

        enum CodingKeys: String, CodingKey {
            case family, element, operation, rows, dimension, candidates, speedupOverDefault
        }

        package func encode(to encoder: Encoder) throws {
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

    package let context: Context
    package let size: Size
    package let warmup: Int
    package let repetitions: Int
    /// Called before each candidate with a short description (the progress line).
    package var progress: (String) -> Void = { _ in }

    package init(context: Context, size: Size, warmup: Int, repetitions: Int) throws {
        try require(repetitions >= 1, "repetitions", "must be at least 1, got \(repetitions)")
        try require(warmup >= 0, "warmup", "must not be negative, got \(warmup)")
        (self.context, self.size, self.warmup, self.repetitions) = (context, size, warmup, repetitions)
    }

    /// Every search for `Element`: the dense accumulation's micro-tile and the implicit
    /// product's group size and groups per pass.
    package func searches<Element: DeviceScalar>(_: Element.Type) throws -> [Search] {
        [try tuneAccumulation(Element.self), try tuneImplicitProduct(Element.self)]
    }

    /// Writes each search's winner to `cache` (the entries of other keys kept); returns the
    /// new cache and whether anything was written.
    package func store(_ searches: [Search], in cache: TuningCache) throws -> (cache: TuningCache, stored: Bool) {
        var current = cache
        var stored = false
        for search in searches {
            guard let winner = search.winner else { continue }
            let note = String(
                format: "ngrad tune --size %@: %@ at M=%d P=%d, median %.3f ms", size.rawValue, search.operation,
                search.rows, search.dimension, winner.medianSeconds * 1e3)
            current = try current.storing(winner.tunables, for: context.device, element: search.element, note: note)
            stored = true
        }
        return (current, stored)
    }

    /// Accumulation `F = (1/N) UᵀU`: micro-tiles RM x VW with RM dividing VW.
    func tuneAccumulation<Element: DeviceScalar>(_: Element.Type) throws -> Search {
        let (m, p) = size.accumulation
        let u = TuningInputs.uniform(count: m * p, seed: 0x7E57_0001)
        let factor = try CurvatureFactor(
            matrix: Buffer(context: context, copying: Element.narrowed(u)), rows: m, dimension: p, samples: m)
        let output = try Buffer<Element>(context: context, count: p * p)
        let entries = TuningInputs.sampledEntries(p)
        let rounded = Element.widened(Element.narrowed(u))
        let reference = entries.map { entry -> Double in
            let (i, j) = (entry / p, entry % p)
            var sum = 0.0
            for row in 0..<m { sum += rounded[row * p + i] * rounded[row * p + j] }
            return sum / Double(m)
        }
        return try search(
            FisherAccumulationTunables.self, Element.self, operation: "dense accumulation F = (1/N) UᵀU", rows: m,
            dimension: p
        ) { tunables in
            let accumulation = try FisherAccumulation<Element>(context: context, tunables: tunables)
            try output.fill(Element(float64: .nan))
            try accumulation.accumulate(factor, into: output)
            let values = try output.downloadFloat64()
            return (
                relativeError(entries.map { values[$0] }, reference),
                {
                    try accumulation.accumulate(factor, into: output)
                    try context.finish()
                }
            )
        }
    }

    /// Implicit product `y = (1/N) Uᵀ(Ux) + λx`: work-group size and work-groups per pass.
    func tuneImplicitProduct<Element: DeviceScalar>(_: Element.Type) throws -> Search {
        let (m, p) = size.product
        let u = TuningInputs.uniform(count: m * p, seed: 0x7E57_0002)
        let x = TuningInputs.uniform(count: p, seed: 0x7E57_0003)
        let damping = 1e-3
        let factor = try CurvatureFactor(
            matrix: Buffer(context: context, copying: Element.narrowed(u)), rows: m, dimension: p, samples: m)
        let xBatch = try VectorBatch<Element>(context: context, vectors: [Element.narrowed(x)])
        let y = try VectorBatch<Element>(context: context, dimension: p, count: 1)
        // float64 reference on the element-rounded inputs.
        let ur = Element.widened(Element.narrowed(u))
        let xr = Element.widened(Element.narrowed(x))
        var reference = xr.map { Element(float64: damping).float64 * $0 }
        for row in 0..<m {
            var t = 0.0
            for column in 0..<p { t += ur[row * p + column] * xr[column] }
            t /= Double(m)
            for column in 0..<p { reference[column] += ur[row * p + column] * t }
        }
        return try search(
            CurvatureProductTunables.self, Element.self, operation: "implicit product (1/N) Uᵀ(Ux) + λx", rows: m, dimension: p
        ) { tunables in
            let product = try ImplicitProduct<Element>(context: context, tunables: tunables)
            try y.buffer.fill(Element(float64: .nan))
            try product.apply(factor, xBatch, damping: Element(float64: damping), into: y)
            return (
                relativeError(try y.buffer.downloadFloat64(), reference),
                {
                    try product.apply(factor, xBatch, damping: Element(float64: damping), into: y)
                    try context.finish()
                }
            )
        }
    }

    // MARK: - The engine

    /// Runs every candidate of `Tunables`' search space (at most `size.candidateLimit`):
    /// `run` builds it, computes once and returns the relative error and the timed body.
    private func search<Tunables: KernelTunables, Element: DeviceScalar>(
        _: Tunables.Type, _: Element.Type, operation: String, rows: Int, dimension: Int,
        run: (Tunables) throws -> (error: Double, timed: () throws -> Void)
    ) throws -> Search {
        let device = context.device
        let space = Array(Tunables.searchSpace(for: device, element: Element.self).prefix(size.candidateLimit))
        var candidates: [Candidate] = []
        for (index, tunables) in space.enumerated() {
            progress("\(operation) \(Element.openCLTypeName) \(tunables) (\(index + 1)/\(space.count))")
            var candidate = Candidate(tunables: tunables, isDefault: index == 0)
            do {
                if let violation = tunables.violation(on: device, element: Element.self) {
                    candidate.rejection = "outside the valid space: \(violation)"
                } else {
                    let (error, timed) = try run(tunables)
                    candidate.relativeError = error
                    if let problem = check(error, Element.self) {
                        candidate.rejection = problem
                    } else {
                        record(try time(timed), in: &candidate)
                    }
                }
            } catch {
                candidate.rejection = "failed: \(error)"
            }
            candidates.append(candidate)
        }
        return finish(
            Search(
                family: Tunables.family.rawValue, element: Element.openCLTypeName, operation: operation, rows: rows,
                dimension: dimension, candidates: candidates))
    }

    /// A reason to reject a result, or nil: relative error within 1e-5 (float), 1e-12 (double).
    private func check<Element: DeviceScalar>(_ error: Double, _: Element.Type) -> String? {
        let limit = Element.self == Double.self ? 1e-12 : 1e-5
        if error.isNaN { return "wrong result: NaN (an element left unwritten?)" }
        return error <= limit ? nil : String(format: "wrong result: relative error %.2e > %.0e", error, limit)
    }

    private func time(_ body: () throws -> Void) throws -> [Double] {
        for _ in 0..<warmup { try body() }
        let clock = ContinuousClock()
        return try (0..<repetitions).map { _ in
            let elapsed = try clock.measure(body)
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }
    }

    private func record(_ seconds: [Double], in candidate: inout Candidate) {
        let sorted = seconds.sorted()
        candidate.medianSeconds =
            sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        candidate.minSeconds = sorted.first ?? .nan
        candidate.maxSeconds = sorted.last ?? .nan
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

extension TuningCache {
    /// `storing(_:for:element:note:)` with the element type by name (`float`, `double`).
    func storing<Tunables: KernelTunables>(
        _ tunables: Tunables, for device: Device, element: String, note: String?
    ) throws -> TuningCache {
        try storing(tunables.encodedValues, for: device, family: Tunables.family, element: element, note: note)
    }
}

/// `‖a − b‖₂ / ‖b‖₂` (NaN if `a` holds a NaN).
package func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    var difference = 0.0
    var reference = 0.0
    for index in a.indices {
        difference += (a[index] - b[index]) * (a[index] - b[index])
        reference += b[index] * b[index]
    }
    if difference.isNaN { return .nan }
    if difference == 0 { return 0 }
    return (difference / reference).squareRoot()
}

/// Deterministic inputs for tuning and benchmarks (`NaturalGradientTestSupport`'s
/// `uniformValues` and `sampledUpperEntries` are these).
package enum TuningInputs {
    /// `count` values uniform in [-1, 1) (``SplitMix64/nextSymmetric()``), as float64.
    package static func uniform(count: Int, seed: UInt64) -> [Double] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in generator.nextSymmetric() }
    }

    /// A spread of upper-triangle entries (row-major indices, sorted, without repeats) of a
    /// P x P matrix: the corners, the middle of the diagonal and up to `count` pseudo-random
    /// ones, the same for a given P.
    package static func sampledEntries(_ p: Int, count: Int = 200) -> [Int] {
        guard p > 0 else { return [] }
        var entries: Set<Int> = [0, p - 1, (p - 1) * p + p - 1, (p / 2) * p + p / 2]
        var generator = SplitMix64(seed: UInt64(p) &* 31)
        for _ in 0..<count {
            let a = min(p - 1, Int((generator.nextSymmetric() + 1) / 2 * Double(p)))
            let b = min(p - 1, Int((generator.nextSymmetric() + 1) / 2 * Double(p)))
            entries.insert(min(a, b) * p + max(a, b))
        }
        return entries.sorted()
    }
}
