import Foundation
import NaturalGradient

// `NaturalGradientOptimizerOptions` is not Codable (its CG options are not), so the C ABI
// takes the flat JSON object documented in naturalgradient.h and builds the options here.
// Unknown keys are refused, so a misspelt option is an error rather than a silent default.

extension NaturalGradientOptimizerOptions {
    /// The keys `init(json:)` accepts.
    static let jsonKeys: Set<String> = [
        "curvature", "layers", "representation", "block_sizes", "method", "tolerance", "max_iterations",
        "progress_rule", "preconditioner", "jacobi_exponent", "damping", "damping_policy", "damping_minimum",
        "damping_maximum", "step_size", "learning_rate", "step_size_maximum", "momentum", "curvature_decay",
        "curvature_refresh_period", "inverse_refresh_period", "max_update_norm",
    ]

    /// Options from the JSON object of `ng_optimizer_create` (nil or empty: the defaults).
    init(json text: String?) throws {
        guard let text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            self.init(curvature: .empiricalFisher)
            return
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
        } catch {
            throw NaturalGradientError.invalidArgument(
                name: "options", reason: "is not valid JSON (\(error.localizedDescription))")
        }
        guard let object = parsed as? [String: Any] else {
            throw NaturalGradientError.invalidArgument(name: "options", reason: "must be a JSON object")
        }
        let fields = JSONFields(object)
        for key in object.keys.sorted() where !Self.jsonKeys.contains(key) {
            throw NaturalGradientError.invalidArgument(
                name: "options.\(key)", reason: "is not an option; known: \(Self.jsonKeys.sorted().joined(separator: ", "))")
        }

        let curvature: CurvatureSource
        switch try fields.string("curvature", ["empirical_fisher", "exact_fisher", "kfac"]) ?? "empirical_fisher" {
        case "exact_fisher":
            curvature = .exactFisher
        case "kfac":
            guard let layers = try fields.intLists("layers") else {
                throw NaturalGradientError.invalidArgument(
                    name: "options.layers", reason: "K-FAC needs the layer shapes [[outputs, inputs], ...]")
            }
            curvature = .kfac(
                layers: try layers.enumerated().map { index, shape in
                    try check(shape.count == 2, "options.layers", "entry \(index) is not [outputs, inputs]")
                    return LayerShape(outputs: shape[0], inputs: shape[1])
                })
        default:
            curvature = .empiricalFisher
        }
        self.init(curvature: curvature)

        switch try fields.string("representation", ["implicit", "dense", "block_diagonal", "diagonal"]) {
        case "dense": representation = .dense
        case "diagonal": representation = .diagonal
        case "block_diagonal":
            guard let sizes = try fields.ints("block_sizes") else {
                throw NaturalGradientError.invalidArgument(
                    name: "options.block_sizes", reason: "a block-diagonal representation needs its block sizes")
            }
            representation = .blockDiagonal(blockSizes: sizes)
        default: representation = .implicit
        }
        if let name = try fields.string("method", SolveMethod.allCases.map(\.rawValue)),
            let solveMethod = SolveMethod(rawValue: name)
        {
            method = solveMethod
        }
        if let tolerance = try fields.double("tolerance") { conjugateGradient.tolerance = tolerance }
        if fields.has("max_iterations") { conjugateGradient.maxIterations = try fields.int("max_iterations") }
        if let rule = try fields.bool("progress_rule") { conjugateGradient.progressRule = rule }
        let exponent = try fields.double("jacobi_exponent") ?? 0.75
        switch try fields.string("preconditioner", ["none", "jacobi"]) {
        case "jacobi": conjugateGradient.preconditioner = .jacobi(exponent: exponent)
        case "none": conjugateGradient.preconditioner = .none
        default: break
        }

        let lambda = try fields.double("damping") ?? 1e-3
        switch try fields.string("damping_policy", ["fixed", "levenberg_marquardt"]) ?? "fixed" {
        case "levenberg_marquardt":
            damping = .levenbergMarquardt(
                initial: lambda, minimum: try fields.double("damping_minimum") ?? 1e-8,
                maximum: try fields.double("damping_maximum") ?? 1e8)
        default:
            damping = .fixed(lambda)
        }
        switch try fields.string("step_size", ["learning_rate", "quadratic_model"]) ?? "learning_rate" {
        case "quadratic_model": stepSize = .quadraticModel(maximum: try fields.double("step_size_maximum") ?? 1)
        default: stepSize = .learningRate(try fields.double("learning_rate") ?? 1)
        }
        if let value = try fields.double("momentum") { momentum = value }
        if let value = try fields.double("curvature_decay") { curvatureDecay = value }
        if let value = try fields.int("curvature_refresh_period") { curvatureRefreshPeriod = value }
        if let value = try fields.int("inverse_refresh_period") { inverseRefreshPeriod = value }
        maxUpdateNorm = try fields.double("max_update_norm")
    }
}

/// Typed reads of a parsed JSON object; errors name `options.<key>`.
private struct JSONFields {
    let object: [String: Any]

    init(_ object: [String: Any]) { self.object = object }

    func has(_ key: String) -> Bool { object[key] != nil }

    /// The value, nil when absent or JSON null.
    private func value(_ key: String) -> Any? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        return value
    }

    private func fail(_ key: String, _ reason: String) -> NaturalGradientError {
        .invalidArgument(name: "options.\(key)", reason: reason)
    }

    func string(_ key: String, _ allowed: [String]) throws -> String? {
        guard let value = value(key) else { return nil }
        guard let text = value as? String, allowed.contains(text) else {
            throw fail(key, "is \(value); use one of \(allowed.joined(separator: ", "))")
        }
        return text
    }

    func double(_ key: String) throws -> Double? {
        guard let value = value(key) else { return nil }
        guard let number = value as? NSNumber else {
            throw fail(key, "is \(value), not a number")
        }
        return number.doubleValue
    }

    func int(_ key: String) throws -> Int? {
        guard let number = try double(key) else { return nil }
        guard number.rounded() == number, let integer = Int(exactly: number) else {
            throw fail(key, "is \(number), not an integer")
        }
        return integer
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard let flag = value as? Bool else { throw fail(key, "is \(value), not true or false") }
        return flag
    }

    func ints(_ key: String) throws -> [Int]? {
        guard let value = value(key) else { return nil }
        guard let list = value as? [Any] else { throw fail(key, "is \(value), not a list of integers") }
        return try integers(list, key)
    }

    private func integers(_ list: [Any], _ key: String) throws -> [Int] {
        try list.map { element in
            guard let number = element as? NSNumber, number.doubleValue.rounded() == number.doubleValue,
                let integer = Int(exactly: number.doubleValue)
            else { throw fail(key, "holds \(element), not an integer") }
            return integer
        }
    }

    func intLists(_ key: String) throws -> [[Int]]? {
        guard let value = value(key) else { return nil }
        guard let list = value as? [Any] else { throw fail(key, "is \(value), not a list of [outputs, inputs]") }
        return try list.map { element in
            guard let pair = element as? [Any] else { throw fail(key, "holds \(element), not [outputs, inputs]") }
            return try integers(pair, key)
        }
    }
}
