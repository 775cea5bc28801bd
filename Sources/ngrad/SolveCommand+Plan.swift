import ArgumentParser
import Foundation
import NaturalGradient
import NumPyFormat

// `ngrad solve`'s memory plan: checked before anything is allocated, printed by --dry-run.

extension SolveCommand {
    /// The plan's name for what `method` allocates: Cholesky forms dense F, Woodbury the Gram,
    /// CG and PCG only the product's scratch.
    static func plannedRepresentation(_ method: SolveMethod) -> String {
        switch method {
        case .cholesky: "dense F"
        case .woodbury: "woodbury"
        default: "implicit"
        }
    }

    func memoryPlan(rows: Int, dimension: Int, vectors: Int, elementBytes: Int, context: Context) -> MemoryPlan {
        MemoryPlan.solve(
            rows: rows, dimension: dimension, vectors: vectors, elementBytes: elementBytes,
            deviceKind: context.device.kind, available: MemoryAvailability(context: context))
    }

    /// --dry-run: the headers only (nothing is read beyond them, nothing uploaded), the
    /// method `auto` picks and every method's memory.
    func printPlan() throws {
        let factorFile = try mapHeader(factor, option: "--factor")
        let gradientFile = try mapHeader(gradient, option: "--gradient")
        guard factorFile.shape.count == 2, factorFile.shape[0] > 0, factorFile.shape[1] > 0 else {
            throw ValidationError(
                "--factor '\(factor)': the factor must be 2-D (M, P) and non-empty, got shape \(factorFile.shape)")
        }
        let (rows, dimension) = (factorFile.shape[0], factorFile.shape[1])
        let vectors = gradientFile.shape.count == 2 ? gradientFile.shape[1] : 1
        let device = try deviceOptions.selectDevice()
        let double =
            precision == .double
            || (precision == nil && device.supportsFloat64
                && (factorFile.elementType == .float64 || gradientFile.elementType == .float64))
        let elementBytes = double ? 8 : 4
        let solveMethod: SolveMethod =
            switch method {
            case .auto: NaturalGradientSolver.automaticMethod(forFactorRows: rows, dimension: dimension, damping: damping)
            case .cg: .cg
            case .pcg: .pcg
            case .woodbury: .woodbury
            case .cholesky: .cholesky
            }
        let plan = MemoryPlan.solve(
            rows: rows, dimension: dimension, vectors: vectors, elementBytes: elementBytes, deviceKind: device.kind,
            available: MemoryAvailability(context: try Context(device: device)))
        let planned = Self.plannedRepresentation(solveMethod)
        var refusal: String?
        do {
            try plan.check(planned)
        } catch {
            refusal = "\(error)"
        }
        if json {
            try printJSON(
                DryRun(
                    rows: rows, dimension: dimension, rightHandSides: vectors, precision: double ? "double" : "float",
                    device: device.name, method: solveMethod.rawValue, representation: planned,
                    deviceBytes: plan.available.deviceBytes, hostBytes: plan.available.hostBytes,
                    maxAllocationBytes: plan.available.maxAllocationBytes,
                    requirements: plan.requirements.map {
                        .init(
                            representation: $0.representation, deviceBytes: $0.deviceBytes, hostBytes: $0.hostBytes,
                            largestBufferBytes: $0.largestBufferBytes, fits: plan.fits($0))
                    }, fits: refusal == nil, refusal: refusal))
        } else {
            try StandardOutput.print(
                [
                    "ngrad solve --dry-run: U \(rows) x \(dimension) (\(MemoryPlan.formatted(UInt64(rows * dimension * elementBytes))) "
                        + "in \(double ? "float64" : "float32")), \(vectors) right-hand side\(vectors == 1 ? "" : "s"), on \(device.name)",
                    "method: \(solveMethod.rawValue)\(method == .auto ? " (auto)" : ""), allocating \(planned)",
                    plan.text,
                    refusal.map { "would be refused: \($0)" } ?? "the solve fits; nothing was read or allocated",
                ].joined(separator: "\n"))
        }
    }

    private func mapHeader(_ path: String, option: String) throws -> NumPyMappedArray {
        do {
            return try NumPyMappedArray(contentsOf: path, populate: false)
        } catch let error as NumPyFormatError {
            let verb =
                ["no such file", "cannot read", "cannot map"].contains(where: error.problem.hasPrefix) ? "cannot read " : ""
            throw ValidationError("\(verb)\(option) '\(path)': \(error.problem)")
        }
    }

    /// --dry-run --json.
    struct DryRun: Encodable {
        struct Requirement: Encodable {
            let representation: String
            let deviceBytes: UInt64
            let hostBytes: UInt64
            let largestBufferBytes: UInt64
            let fits: Bool
        }

        let rows: Int
        let dimension: Int
        let rightHandSides: Int
        let precision: String
        let device: String
        let method: String
        let representation: String
        let deviceBytes: UInt64
        let hostBytes: UInt64
        let maxAllocationBytes: UInt64
        let requirements: [Requirement]
        let fits: Bool
        let refusal: String?
    }
}
