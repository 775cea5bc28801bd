import ArgumentParser
import Foundation
import NaturalGradient
import NaturalGradientTestSupport
import NumPyFormat

/// `ngrad solve`: the natural-gradient direction `x = (F + λI)⁻¹ g` for a factor U read from
/// `.npy` files, written back as `.npy`.
struct SolveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "solve",
        abstract: "Solve (F + λI) x = g for F = (1/N) Uᵀ diag(w) U read from .npy files.",
        discussion: """
            U.npy is the factor (M x P, one row per sample: per-sample gradients for the empirical \
            Fisher); g.npy is (P,) or (P, k) for k right-hand sides; w.npy holds M weights ≥ 0. \
            The solve runs in float64 when U.npy or g.npy is float64 (and the device has fp64), \
            else in float32; --precision overrides that. x.npy has the shape of g.npy and g.npy's \
            dtype, or the --precision given. Exit status 1 when a column's x is not to be \
            trusted (non-finite, negative curvature, perturbed, inaccurate, ill-conditioned); \
            CG's iteration cap and stagnation are reported with exit status 0.
            """,
        version: NaturalGradientVersion.string
    )

    enum Method: String, ExpressibleByArgument, CaseIterable {
        case auto, cg, pcg, woodbury, cholesky
    }

    enum Precision: String, ExpressibleByArgument, CaseIterable {
        case float, double
    }

    @Option(name: .long, help: "The factor U: an M x P .npy file (float32 or float64).")
    var factor: String

    @Option(name: .long, help: "The right-hand side g: a (P,) or (P, k) .npy file.")
    var gradient: String

    @Option(name: .long, help: "Row weights w: an (M,) .npy file, each finite and ≥ 0.")
    var weights: String?

    // Numbers are taken after a space even when they start with a minus sign
    // (`--damping -1` is then refused by its rule, not as a missing value).
    @Option(name: .long, parsing: .unconditional, help: "The sample count N of the mean (default M, one row per sample).")
    var samples: Int?

    @Option(name: .long, parsing: .unconditional, help: "The damping λ ≥ 0.")
    var damping: Double

    @Option(name: .long, help: "auto, cg, pcg, woodbury or cholesky.")
    var method: Method = .auto

    @Option(name: .long, parsing: .unconditional, help: "CG: stop at this relative residual.")
    var tolerance: Double = 1e-6

    /// The bound of --max-iterations: far beyond any P a solve handles (CG needs at most P
    /// in exact arithmetic), so only a typo or a hostile value is refused.
    static let maxIterationRange = 0...100_000_000

    @Option(
        name: .long, parsing: .unconditional,
        help: "CG: the most iterations (default P; \(SolveCommand.maxIterationRange.text)).")
    var maxIterations: Int?

    @Option(
        name: .long,
        help: "Compute in float or double (double needs fp64 on the device); default: double for float64 inputs.")
    var precision: Precision?

    @Option(name: .long, help: "Where to write x (.npy).")
    var output: String

    @OptionGroup var deviceOptions: DeviceOptions

    @Flag(name: .long, help: "Print JSON instead of a summary.")
    var json = false

    @Flag(
        name: .long,
        help:
            "Print the memory plan (each method's device and host bytes, what fits) and the method auto picks; read only the headers, solve nothing."
    )
    var dryRun = false

    func validate() throws {
        guard damping.isFinite, damping >= 0 else {
            throw ValidationError("--damping must be finite and ≥ 0, got \(damping)")
        }
        guard tolerance.isFinite, tolerance >= 0 else {
            throw ValidationError("--tolerance must be finite and ≥ 0, got \(tolerance)")
        }
        if let maxIterations { try CountOption.check(maxIterations, "--max-iterations", in: Self.maxIterationRange) }
        if let samples, samples <= 0 { throw ValidationError("--samples must be positive, got \(samples)") }
    }

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let inputs = [("--factor", factor), ("--gradient", gradient)] + (weights.map { [("--weights", $0)] } ?? [])
        // Checked before any work: an unwritable --output or one that is an input fails now.
        if dryRun {
            try printPlan()
            return
        }
        let outputFile = try OutputFile(option: "--output", path: output, inputs: inputs)
        let input = try SolveInput.read(factor: factor, gradient: gradient, weights: weights, samples: samples)
        let readSeconds = seconds(since: start, clock)
        let device = try deviceOptions.selectDevice()
        let context = try Context(device: device)
        let working = workingPrecision(input, device: device)
        let outputType: NumPyElementType =
            switch precision {
            case .double: .float64
            case .float: .float32
            case nil: input.gradientElementType
            }
        let summary =
            switch working {
            case .float: try solve(Float.self, input, context: context, output: outputFile, outputType: outputType)
            case .double: try solve(Double.self, input, context: context, output: outputFile, outputType: outputType)
            }
        let report = summary.with(stages: [("read", readSeconds)], device: device.name)
        if json {
            try printJSON(report)
        } else {
            try StandardOutput.print(report.text)
        }
        let stopped = report.columns.enumerated().filter { Self.stoppingRuleStatuses.contains($0.element.status) }
        if !stopped.isEmpty {
            let columns = stopped.map { "column \($0.offset): \($0.element.status.rawValue)" }.joined(separator: ", ")
            FileHandle.standardError.write(
                Data(
                    "ngrad: note: CG stopped before --tolerance \(tolerance) (\(columns)); raise --max-iterations or loosen --tolerance\n"
                        .utf8))
        }
        let failed = report.columns.enumerated().filter {
            $0.element.status != .converged && !Self.stoppingRuleStatuses.contains($0.element.status)
        }
        if !failed.isEmpty {
            let columns = failed.map { "column \($0.offset): \($0.element.status.rawValue)" }.joined(separator: ", ")
            var advice = ""
            if failed.contains(where: { $0.element.status == .illConditioned }) {
                advice = working == .float ? "; use --precision double" : "; increase --damping"
            } else if failed.contains(where: { $0.element.status == .perturbed }) {
                advice = "; the system is singular: add --damping > 0"
            } else if failed.contains(where: { $0.element.status == .inaccurate }) {
                advice = working == .float ? "; use --precision double or a larger --damping" : "; use a larger --damping"
            }
            FileHandle.standardError.write(
                Data("ngrad: error: the solve did not succeed (\(columns))\(advice); x was written to '\(output)'\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
    }

    /// CG statuses that end a solve by a rule the user set (`--max-iterations`,
    /// `--tolerance` finer than the precision resolves, the progress rule): x is the best
    /// iterate and the status says why; the exit status stays 0. Every other status but
    /// `converged` (non-finite, negative curvature, and the direct solves' perturbed,
    /// inaccurate and ill-conditioned) means x is not to be trusted: exit 1.
    static let stoppingRuleStatuses: Set<SolveStatus> = [.iterationCap, .stagnated, .progressStalled]

    /// The precision the solve runs in: `--precision`, else double when U or g is float64
    /// and the device has fp64 (a float64 problem must not silently lose eight digits).
    private func workingPrecision(_ input: SolveInput, device: Device) -> Precision {
        if let precision { return precision }
        guard input.hasFloat64Input else { return .float }
        if device.supportsFloat64 { return .double }
        FileHandle.standardError.write(
            Data("ngrad: note: the inputs are float64 but \(device.name) has no fp64; solving in float32\n".utf8))
        return .float
    }

    private func solve<Element: DeviceScalar>(
        _: Element.Type, _ input: SolveInput, context: Context, output outputFile: OutputFile,
        outputType: NumPyElementType
    ) throws -> SolveSummary {
        let clock = ContinuousClock()
        let start = clock.now
        let options = ConjugateGradientOptions(tolerance: tolerance, maxIterations: maxIterations)
        // The library's policy for a factor decides `auto`, and with it whether F is formed.
        let solveMethod: SolveMethod =
            switch method {
            case .auto:
                NaturalGradientSolver.automaticMethod(
                    forFactorRows: input.rows, dimension: input.dimension, damping: damping)
            case .cg: .cg
            case .pcg: .pcg
            case .woodbury: .woodbury
            case .cholesky: .cholesky
            }
        // Refused before U, F or the Gram is allocated when it cannot fit, naming what would.
        try memoryPlan(
            rows: input.rows, dimension: input.dimension, vectors: input.rightHandSides.count,
            elementBytes: MemoryLayout<Element>.stride, context: context
        ).check(Self.plannedRepresentation(solveMethod))
        let factor = try uploadFactor(
            Element.self, input, context: context,
            weights: try input.weights.map { try narrowed($0, "--weights", file: weights ?? "", Element.self) })
        let g = try VectorBatch<Element>(
            context: context,
            vectors: try input.rightHandSides.map { try narrowed($0, "--gradient", file: gradient, Element.self) })
        let uploadSeconds = seconds(since: start, clock)

        let useDense = solveMethod == .cholesky
        let buildStart = clock.now
        let solution: NaturalGradientSolution<Element>
        var stages: [(String, Double)] = [("upload", uploadSeconds)]
        do {
            if useDense {
                let dense = try DenseCurvature(factor: factor)
                try context.finish()
                stages.append(("accumulate F", seconds(since: buildStart, clock)))
                solution = try NaturalGradientSolver.solve(
                    dense, g, damping: Element(damping), method: solveMethod, options: options)
            } else {
                solution = try NaturalGradientSolver.solve(
                    ImplicitCurvature(factor: factor), g, damping: Element(damping), method: solveMethod, options: options)
            }
        } catch let NaturalGradientError.nonFiniteValues(name, count) where name == "matrix" {
            // The accumulated F overflowed the working precision: say so about the inputs,
            // not about the library's internal names.
            throw CommandFailure(
                "F = (1/N) Uᵀ diag(w) U from --factor '\(self.factor)' has \(count) non-finite entr\(count == 1 ? "y" : "ies") "
                    + "in \(Element.self == Double.self ? "float64" : "float32")"
                    + (Element.self == Double.self ? "; scale U down" : "; use --precision double or scale U down"))
        }
        stages += solution.stageSeconds.map { ($0.stage, $0.seconds) }

        let writeStart = clock.now
        let x = try solution.x.download()
        try outputFile.write(input.outputArray(x.map { $0.map { Double($0) } }, elementType: outputType).encoded())
        stages.append(("write", seconds(since: writeStart, clock)))
        return SolveSummary(
            method: solution.method.rawValue, precision: Element.self == Double.self ? "double" : "float", device: "",
            rows: input.rows,
            dimension: input.dimension, samples: input.samples, rightHandSides: g.count, damping: damping,
            densePath: solution.densePath.map { "\($0)" }, reciprocalCondition: solution.reciprocalCondition,
            columns: solution.reports, stages: stages.map { SolveSummary.Stage(name: $0.0, seconds: $0.1) },
            output: output)
    }

    /// `values` in the working precision; a value beyond its range names the option and
    /// the file instead of failing later as an internal "non-finite" matrix.
    func narrowed<Element: DeviceScalar>(
        _ values: [Double], _ option: String, file path: String, _: Element.Type
    ) throws -> [Element] {
        let narrowed = values.map { Element($0) }
        let overflowed = narrowed.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        if overflowed > 0 {
            let largest = values.map(abs).max() ?? 0
            throw ValidationError(
                "\(option) '\(path)': \(overflowed) value\(overflowed == 1 ? "" : "s") (largest magnitude \(largest)) "
                    + "exceed float32's range; use --precision double")
        }
        return narrowed
    }

    private func seconds(since start: ContinuousClock.Instant, _ clock: ContinuousClock) -> Double {
        let elapsed = (clock.now - start).components
        return Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
    }
}

// MARK: - Input files

/// The validated contents of the input files. Every problem is a one-line `ValidationError`
/// that names the file.
struct SolveInput {
    /// U, memory-mapped and read in place (`SolveCommand+Factor.swift` uploads it).
    let factor: NumPyMappedArray
    let rows: Int
    let dimension: Int
    let samples: Int
    let weights: [Double]?
    /// g's k vectors, each of length P.
    let rightHandSides: [[Double]]
    /// Whether g was 2-D (P, k), so x is written in that shape too.
    let gradientIsMatrix: Bool
    /// g's dtype, which x keeps unless `--precision` says otherwise.
    let gradientElementType: NumPyElementType
    /// Whether U or g is float64, so the default working precision is double.
    let hasFloat64Input: Bool

    static func read(
        factor factorPath: String, gradient gradientPath: String, weights weightsPath: String?, samples: Int?
    )
        throws -> SolveInput
    {
        let factor = try loadMapped(factorPath, option: "--factor")
        guard factor.shape.count == 2, factor.shape[0] > 0, factor.shape[1] > 0 else {
            throw ValidationError(
                "--factor '\(factorPath)': the factor must be 2-D (M, P) and non-empty, got shape \(factor.shape)")
        }
        let (rows, dimension) = (factor.shape[0], factor.shape[1])
        let nonFinite = factor.nonFiniteCount
        if nonFinite > 0 {
            throw ValidationError("--factor '\(factorPath)': holds \(nonFinite) non-finite values (NaN or infinity)")
        }

        let gradient = try load(gradientPath, option: "--gradient")
        guard gradient.shape.first == dimension, gradient.shape.count <= 2, gradient.shape.last ?? 0 > 0 else {
            throw ValidationError(
                "--gradient '\(gradientPath)': shape \(gradient.shape) does not match the factor's \(dimension) columns; need (\(dimension),) or (\(dimension), k)"
            )
        }
        try requireFinite(gradient, "--gradient", gradientPath)
        let k = gradient.shape.count == 2 ? gradient.shape[1] : 1
        let rightHandSides = (0..<k).map { column in (0..<dimension).map { gradient.values[$0 * k + column] } }

        var weights: [Double]?
        if let weightsPath {
            let array = try load(weightsPath, option: "--weights")
            guard array.shape == [rows] else {
                throw ValidationError("--weights '\(weightsPath)': shape \(array.shape) does not match the factor's \(rows) rows")
            }
            if let index = array.values.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
                throw ValidationError(
                    "--weights '\(weightsPath)': weight \(index) is \(array.values[index]); weights must be finite and ≥ 0")
            }
            weights = array.values
        }
        return SolveInput(
            factor: factor, rows: rows, dimension: dimension, samples: samples ?? rows, weights: weights,
            rightHandSides: rightHandSides, gradientIsMatrix: gradient.shape.count == 2,
            gradientElementType: gradient.elementType,
            hasFloat64Input: factor.elementType == .float64 || gradient.elementType == .float64)
    }

    /// x in g's shape.
    func outputArray(_ x: [[Double]], elementType: NumPyElementType) throws -> NumPyArray {
        if gradientIsMatrix {
            let k = x.count
            let values = (0..<(dimension * k)).map { x[$0 % k][$0 / k] }
            return try NumPyArray(shape: [dimension, k], elementType: elementType, values: values)
        }
        return try NumPyArray(shape: [dimension], elementType: elementType, values: x[0])
    }

    private static func load(_ path: String, option: String) throws -> NumPyArray {
        do {
            return try NumPyArray.read(contentsOf: path)
        } catch let error as NumPyFormatError {
            let verb = ["no such file", "cannot read"].contains(where: error.problem.hasPrefix) ? "cannot read " : ""
            throw ValidationError("\(verb)\(option) '\(path)': \(error.problem)")
        }
    }

    /// The factor mapped in place: a multi-GiB U is neither copied nor widened on reading.
    private static func loadMapped(_ path: String, option: String) throws -> NumPyMappedArray {
        do {
            return try NumPyMappedArray(contentsOf: path)
        } catch let error as NumPyFormatError {
            let verb =
                ["no such file", "cannot read", "cannot map"].contains(where: error.problem.hasPrefix) ? "cannot read " : ""
            throw ValidationError("\(verb)\(option) '\(path)': \(error.problem)")
        }
    }

    private static func requireFinite(_ array: NumPyArray, _ option: String, _ path: String) throws {
        let count = array.nonFiniteCount
        if count > 0 { throw ValidationError("\(option) '\(path)': holds \(count) non-finite values (NaN or infinity)") }
    }
}

// MARK: - Report

/// What `ngrad solve` prints: a summary or, with `--json`, this structure.
struct SolveSummary: Encodable {
    struct Stage: Encodable {
        let name: String
        let seconds: Double
    }

    let method: String
    let precision: String
    var device: String
    let rows: Int
    let dimension: Int
    let samples: Int
    let rightHandSides: Int
    let damping: Double
    let densePath: String?
    let reciprocalCondition: Double?
    let columns: [ColumnReport]
    var stages: [Stage]
    let output: String
    /// The process's peak resident memory (VmHWM), nil where /proc cannot be read: what a
    /// large factor costs on the host (the benchmark suite's large-input row reads it).
    var peakResidentBytes: Int?

    func with(stages prefix: [(String, Double)], device: String) -> SolveSummary {
        var copy = self
        copy.stages = prefix.map { Stage(name: $0.0, seconds: $0.1) } + stages
        copy.device = device
        copy.peakResidentBytes = Self.residentHighWaterMark()
        return copy
    }

    /// VmHWM of /proc/self/status in bytes: this process's own high-water mark (getrusage's
    /// ru_maxrss also counts the memory of a parent that spawned it with vfork).
    static func residentHighWaterMark() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            if let kibibytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) { return kibibytes * 1024 }
        }
        return nil
    }

    var text: String {
        var lines = [
            "ngrad solve: \(method), \(precision), on \(device)",
            "F = (1/\(samples)) Uᵀ diag(w) U with U \(rows) x \(dimension); λ = \(damping); \(rightHandSides) right-hand side\(rightHandSides == 1 ? "" : "s")",
        ]
        if let densePath {
            lines.append(
                "factorisation: \(densePath)"
                    + (reciprocalCondition.map { String(format: ", reciprocal condition %.3g", $0) } ?? ""))
        }
        var table = TextTable(["column", "status", "iterations", "relative residual", "φ"])
        for (index, column) in columns.enumerated() {
            table.append([
                "\(index)", column.status.rawValue, "\(column.iterations)",
                String(format: "%.3e", column.relativeResidual), String(format: "%.6g", column.objective),
            ])
        }
        lines.append(table.render())
        lines.append(
            "time: " + stages.map { String(format: "%@ %.3f s", $0.name, $0.seconds) }.joined(separator: ", "))
        lines.append("wrote \(output)")
        return lines.joined(separator: "\n")
    }
}
