import NaturalGradient
import OpenCLHost

extension TrainingComparison {
    /// `ngrad train --dry-run`: for each natural-gradient method, the representation its
    /// options give (the one `.automatic` would pick) and its memory plan on `context`'s
    /// device at `batchSize`, without building an optimizer or running a step. First-order
    /// methods keep three parameter-sized vectors and are listed as such.
    public static func memoryPlans(methods: [TrainMethod], model: MLP, batchSize: Int, context: Context) throws -> String {
        let available = MemoryAvailability(context: context)
        let p = model.parameterCount
        var lines: [String] = []
        for method in methods {
            guard method != .sgd, method != .adam else {
                lines.append(
                    "\(method.rawValue): first-order, \(MemoryPlan.formatted(UInt64(3 * p * 4))) of parameter-sized vectors on the host"
                )
                continue
            }
            let options = try NaturalGradientRule.options(for: method, model: model)
            let rows = NaturalGradientRule.factorRows(for: method, model: model, batchSize: batchSize) ?? batchSize
            let plan = MemoryPlan.optimizer(
                options, dimension: p, rowsPerStep: rows, elementBytes: 4, deviceKind: context.device.kind,
                available: available)
            let representation: String
            if let name = options.plannedName {
                representation = name
            } else {
                representation = try plan.automaticRepresentation(rows: rows, averaging: options.curvatureDecay > 0)
            }
            var status = "fits"
            do { try plan.check(representation) } catch { status = "would be refused: \(error)" }
            lines.append("\(method.rawValue): \(representation), factor rows per step \(rows); \(status)")
            lines.append(plan.text.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        }
        return lines.joined(separator: "\n")
    }
}
