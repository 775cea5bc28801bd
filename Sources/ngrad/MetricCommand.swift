import ArgumentParser
import Foundation
import NaturalGradient
import NaturalGradientTestSupport

/// `ngrad metric`: the output metric of a similarity measure at one output z, printed as a
/// matrix: a diagnostic and a way to see the formulas of `Docs/SimilarityMeasures.md`.
struct MetricCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metric",
        abstract: "Print the output metric M(z) = ∇²_{z'} D(p_z, p_{z'}) at z' = z for a family and a measure.",
        discussion: """
            z is given with --at as comma-separated values in the family's layout: categorical: \
            the logits; bernoulli: one logit; gaussian: μ_1..μ_d then the d scales (σ, log σ or \
            σ² by --parametrization); gaussian-full: μ_1..μ_d then Σ's lower triangle row by \
            row; vector: any values (at most 512 in all). The metric is computed in float64 on the \
            host and checked against the device's factor B(z)ᵀB(z); a metric that is not finite is \
            an error (exit status 1).
            """,
        version: NaturalGradientVersion.string
    )

    enum Family: String, ExpressibleByArgument, CaseIterable {
        case categorical, bernoulli, gaussian, gaussianFull = "gaussian-full", vector
    }

    enum Parametrization: String, ExpressibleByArgument, CaseIterable {
        case sigma, logSigma = "log-sigma", variance

        var library: GaussianParametrization {
            switch self {
            case .sigma: .meanStandardDeviation
            case .logSigma: .meanLogStandardDeviation
            case .variance: .meanVariance
            }
        }
    }

    enum Measure: String, ExpressibleByArgument, CaseIterable {
        case kl, reverseKL = "reverse-kl", hellinger, chi2, js, w2, euclidean

        var library: SimilarityMeasure {
            switch self {
            case .kl: .kullbackLeibler
            case .reverseKL: .fDivergence(.reverseKullbackLeibler)
            case .hellinger: .fDivergence(.squaredHellinger)
            case .chi2: .fDivergence(.chiSquared)
            case .js: .fDivergence(.jensenShannon)
            case .w2: .wasserstein2
            case .euclidean: .squaredEuclidean
            }
        }
    }

    @Option(name: .long, help: "categorical, bernoulli, gaussian, gaussian-full or vector.")
    var family: Family

    @Option(name: .long, help: "kl, reverse-kl, hellinger, chi2, js, w2 or euclidean.")
    var measure: Measure

    /// The most values `--at` may hold: the metric is O x O, printed in full and checked on
    /// the device with an O x O factor, so time and memory grow with O² (O³ on the device).
    static let maximumOutputs = 512

    // Taken after a space even when it starts with a minus sign (`--at -1,2`).
    @Option(name: .long, parsing: .unconditional, help: "The output z: comma-separated values in the family's layout.")
    var at: String

    @Option(name: .long, help: "Gaussian scales: sigma, log-sigma or variance.")
    var parametrization: Parametrization = .sigma

    @Flag(name: .long, help: "Also print the square root B with BᵀB = M.")
    var squareRoot = false

    @OptionGroup var deviceOptions: DeviceOptions

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let z = try parseOutput()
        let family = try predictiveFamily(outputs: z.count)
        let measure = measure.library
        let metric = try measure.metric(for: family, at: z)
        let root = try measure.squareRoot(for: family, at: z)
        try requireFinite(metric, "M(z)")
        try requireFinite(root, "its square root B(z)")
        let device = try deviceOptions.selectDevice()
        let check = try deviceCheck(family: family, measure: measure, z: z, metric: metric, device: device)
        guard check.difference.isFinite else {
            throw CommandFailure(
                "--at=\(at): the device check in \(check.precision) is not finite (M(z)'s entries reach "
                    + "\(format(metric.map(abs).max() ?? 0)), beyond \(check.precision)'s range)")
        }
        let labels = coordinateLabels(family)
        let o = z.count
        let rows = { (m: [Double]) in (0..<o).map { Array(m[($0 * o)..<(($0 + 1) * o)]) } }
        if json {
            try printJSON(
                MetricReport(
                    family: family.description, measure: measure.description, at: z, coordinates: labels,
                    metric: rows(metric), squareRoot: squareRoot ? rows(root) : nil,
                    device: check.device, precision: check.precision, deviceMaxDifference: check.difference))
            return
        }
        var lines = [
            "M(z) = Hessian of D(p_z, p_z') at z' = z", "family:  \(family)", "measure: \(measure)",
            "z:       \(z.map(format).joined(separator: ", "))", "", matrixTable(metric, labels: labels),
        ]
        if squareRoot { lines += ["", "B (rows) with BᵀB = M:", matrixTable(root, labels: labels)] }
        lines += ["", "device check (\(check.device), \(check.precision)): max |BᵀB − M| = \(format(check.difference))"]
        try StandardOutput.print(lines.joined(separator: "\n"))
    }

    /// A metric that overflowed float64 (a scale near 0 or huge) is an error naming --at.
    private func requireFinite(_ matrix: [Double], _ what: String) throws {
        let o = Int(Double(matrix.count).squareRoot())
        guard let index = matrix.firstIndex(where: { !$0.isFinite }) else { return }
        throw CommandFailure(
            "--at=\(at): \(what) is not finite in float64 (entry (\(index / o + 1), \(index % o + 1)) is \(matrix[index])); "
                + "the values are beyond the range this family's metric can be computed in")
    }

    // MARK: Input

    private func parseOutput() throws -> [Double] {
        let count = at.reduce(1) { $0 + ($1 == "," ? 1 : 0) }
        guard count <= Self.maximumOutputs else {
            throw ValidationError(
                "--at: \(count) values exceed the limit of \(Self.maximumOutputs) (the metric is O x O and printed in full)")
        }
        let parts = at.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var values: [Double] = []
        for (index, part) in parts.enumerated() {
            guard let value = Double(part), value.isFinite else {
                throw ValidationError("--at: value \(index + 1) ('\(part)') is not a finite number")
            }
            values.append(value)
        }
        return values
    }

    private func predictiveFamily(outputs count: Int) throws -> PredictiveFamily {
        switch family {
        case .categorical:
            return .categorical(classes: count)
        case .bernoulli:
            guard count == 1 else { throw ValidationError("--at: a Bernoulli output is one logit, got \(count) values") }
            return .bernoulli
        case .gaussian:
            guard count >= 2, count % 2 == 0 else {
                throw ValidationError("--at: a diagonal Gaussian takes d means and d scales (an even count), got \(count) values")
            }
            return .gaussian(dimension: count / 2, parametrization: parametrization.library)
        case .gaussianFull:
            let limit = PredictiveFamily.maximumFullCovarianceDimension
            let counts = (1...limit).map { $0 + $0 * ($0 + 1) / 2 }
            // Solve d + d(d+1)/2 = count for any d, so a too-large d is named as such.
            let d = Int(((9 + 8 * Double(count)).squareRoot() - 3) / 2)
            if d > limit, d + d * (d + 1) / 2 == count {
                throw ValidationError(
                    "--at: \(count) values are a full-covariance Gaussian with d = \(d), beyond the limit d ≤ \(limit)")
            }
            guard let index = counts.firstIndex(of: count) else {
                throw ValidationError(
                    "--at: a full-covariance Gaussian takes d + d(d+1)/2 values with 1 ≤ d ≤ \(limit) ("
                        + counts.map(String.init).joined(separator: ", ") + "), got \(count)")
            }
            return .gaussianFullCovariance(dimension: index + 1)
        case .vector:
            return .vector(dimension: count)
        }
    }

    // MARK: Device check

    /// The device's `BᵀB` with J = I and one sample, against the host metric.
    private func deviceCheck(
        family: PredictiveFamily, measure: SimilarityMeasure, z: [Double], metric: [Double], device: Device
    ) throws -> (device: String, precision: String, difference: Double) {
        let context = try Context(device: device)
        let o = z.count
        let identity = (0..<(o * o)).map { $0 / o == $0 % o ? 1.0 : 0.0 }
        func product<Element: DeviceScalar>(_: Element.Type) throws -> [Double] {
            let factor = try CurvatureFactor<Element>.formalMetric(
                outputJacobians: Buffer(context: context, copying: Element.narrowed(identity)),
                outputs: Buffer(context: context, copying: Element.narrowed(z)), samples: 1, dimension: o,
                family: family, measure: measure)
            return Element.widened(try DenseCurvature(factor: factor).download())
        }
        let double = device.supportsFloat64
        let onDevice = double ? try product(Double.self) : try product(Float.self)
        let difference = zip(onDevice, metric).map { abs($0 - $1) }.max() ?? 0
        return (device.name, double ? "double" : "float", difference)
    }

    // MARK: Output

    private func coordinateLabels(_ family: PredictiveFamily) -> [String] {
        switch family {
        case let .categorical(classes): return (1...classes).map { "z\($0)" }
        case .bernoulli: return ["logit"]
        case let .gaussian(d, _):
            let scale = ["sigma": "sigma", "log-sigma": "log sigma", "variance": "var"][parametrization.rawValue] ?? "s"
            return (1...d).map { "mu\($0)" } + (1...d).map { "\(scale)\($0)" }
        case let .gaussianFullCovariance(d):
            var labels = (1...d).map { "mu\($0)" }
            for i in 1...d { for j in 1...i { labels.append("S\(i)\(j)") } }
            return labels
        case let .vector(dimension): return (1...dimension).map { "z\($0)" }
        }
    }

    private func matrixTable(_ matrix: [Double], labels: [String]) -> String {
        let o = labels.count
        var table = TextTable([""] + labels)
        for i in 0..<o { table.append([labels[i]] + (0..<o).map { format(matrix[i * o + $0]) }) }
        return table.render()
    }

    private func format(_ value: Double) -> String {
        value == 0 ? "0" : String(format: "%.6g", value)
    }
}

/// `ngrad metric --json`.
private struct MetricReport: Encodable {
    let family: String
    let measure: String
    let at: [Double]
    let coordinates: [String]
    let metric: [[Double]]
    let squareRoot: [[Double]]?
    let device: String
    let precision: String
    let deviceMaxDifference: Double
}
