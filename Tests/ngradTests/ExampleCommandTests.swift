import Foundation
import NaturalGradient
import NaturalGradientExamples
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// `ngrad example gp` through the built binary, plus the GP model's derivatives against
/// finite differences.
@Suite("ngrad example gp")
struct ExampleCommandTests {
    private static func scratchDirectory() -> String {
        NSTemporaryDirectory() + "ngrad-gp-\(UInt64.random(in: 0...UInt64.max))"
    }

    @Test func shortRunPrintsTheTableAndWritesTheFiles() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try runNgrad(["example", "gp", "--iterations", "40", "--points", "24", "--seed", "3", "--output", directory])
        #expect(result.status == 0, "\(result.stderr)")
        for text in ["metric", "iterations to converge", "final NLL", "Fisher-Rao", "Wasserstein-2", "Euclidean", "fastest:"] {
            #expect(result.stdout.contains(text), "missing '\(text)' in\n\(result.stdout)")
        }

        // The SVG is well-formed XML with one line per metric in each panel.
        let svg = try String(contentsOfFile: directory + "/gp-nll.svg", encoding: .utf8)
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = PolylineCounter()
        parser.delegate = counter
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(counter.root == "svg")
        #expect(counter.polylines >= 5)
        #expect(svg.contains("Fisher-Rao") && svg.contains("Wasserstein-2") && svg.contains("Euclidean"))

        // The CSV holds every iteration; Fisher-Rao's NLL ends well below the start, at its minimum.
        let csv = try String(contentsOfFile: directory + "/gp-nll.csv", encoding: .utf8)
        let lines = csv.split(separator: "\n")
        #expect(lines.first == "iteration,fisher-rao,wasserstein-2,euclidean")
        #expect(lines.count == 42)
        let fisher = lines.dropFirst().compactMap { Double($0.split(separator: ",", omittingEmptySubsequences: false)[1]) }
        #expect(fisher.count == 41)
        let first = try #require(fisher.first)
        let last = try #require(fisher.last)
        #expect(last < first - 1, "\(fisher)")
        // Fisher scoring at the η that converges fastest may overshoot in its first steps
        // (it does for this seed), so only its tail must be settled at the minimum.
        let tail = fisher.suffix(10)
        #expect(zip(tail, tail.dropFirst()).allSatisfy { $1 <= $0 + 1e-9 }, "tail not monotone: \(fisher)")
        #expect(abs(last - (fisher.min() ?? last)) < 1e-6, "\(fisher)")
    }

    @Test func badOptionsExitTwoOnOneLineNamingTheOption() throws {
        let cases: [([String], String)] = [
            (["--iterations", "0"], "--iterations"),
            (["--iterations", "lots"], "--iterations"),
            (["--points", "2"], "--points"),
            (["--points", "100000"], "--points"),
            (["--seed", "-1"], "--seed"),
            (["--output", ""], "--output"),
            (["--bogus"], "--bogus"),
        ]
        for (arguments, option) in cases {
            let result = try runNgrad(["example", "gp"] + arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            let lines = result.stderr.trimmingCharacters(in: .newlines).split(separator: "\n")
            #expect(lines.count == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(option), "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
        #expect(try runNgrad(["example", "gp", "--help"]).status == 0)
        #expect(try runNgrad(["example", "--help"]).stdout.contains("gp"))
    }

    @Test func anUnwritableOutputExitsOneNamingIt() throws {
        let file = Self.scratchDirectory()
        try "not a directory".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try runNgrad(["example", "gp", "--iterations", "2", "--points", "5", "--output", file + "/sub"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("--output"), "\(result.stderr)")
    }

    // MARK: The model's derivatives

    @Test func gradientMatchesFiniteDifferencesOfTheNLL() throws {
        let model = GaussianProcessModel(data: .synthetic(points: 15, seed: 11))
        let theta = RBFHyperparameters(lengthScale: 1.3, signalVariance: 0.7, noiseVariance: 0.1).logarithms
        let evaluation = try #require(model.evaluate(theta))
        let h = 1e-5
        for i in 0..<3 {
            var plus = theta
            var minus = theta
            plus[i] += h
            minus[i] -= h
            let nllPlus = try #require(model.evaluate(plus)).negativeLogLikelihood
            let nllMinus = try #require(model.evaluate(minus)).negativeLogLikelihood
            let difference = (nllPlus - nllMinus) / (2 * h)
            #expect(abs(difference - evaluation.gradient[i]) <= 1e-6 * max(1, abs(difference)), "θ_\(i)")
            // ∂K/∂θ_i against a difference of K.
            let kPlus = try #require(model.evaluate(plus)).covariance
            let kMinus = try #require(model.evaluate(minus)).covariance
            for index in kPlus.indices {
                let dk = (kPlus[index] - kMinus[index]) / (2 * h)
                #expect(abs(dk - evaluation.covarianceDerivatives[i][index]) <= 1e-6 * max(1, abs(dk)))
            }
        }
    }

    @Test func fisherRaoIsTheFisherInformationOfTheMarginalLikelihood() throws {
        // For y ~ N(0, K_θ), E[∇NLL ∇NLLᵀ] = Cov(½ yᵀ A_i y, ½ yᵀ A_j y) with
        // A_i = K⁻¹∂_iK K⁻¹, which for Gaussian y is ½ tr(A_i K A_j K): the Fisher information
        // of the marginal likelihood, here with an explicit inverse. So the Fisher-Rao step
        // with η = 1 is Fisher scoring.
        let model = GaussianProcessModel(data: .synthetic(points: 9, seed: 5))
        let theta = RBFHyperparameters(lengthScale: 0.8, signalVariance: 1.5, noiseVariance: 0.2).logarithms
        let evaluation = try #require(model.evaluate(theta))
        let n = model.data.count
        let metric = try ParameterMetric.fisherRao.matrix(at: evaluation, dimension: n)
        let identity: [Double] = (0..<(n * n)).map { $0 % (n + 1) == 0 ? 1 : 0 }
        let inverse = try DenseSymmetricFactorization(matrix: evaluation.covariance, dimension: n)
            .solve(identity, count: n)
        func multiply(_ a: [Double], _ b: [Double]) -> [Double] {
            var c = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for k in 0..<n { for j in 0..<n { c[i * n + j] += a[i * n + k] * b[k * n + j] } } }
            return c
        }
        let a = evaluation.covarianceDerivatives.map { multiply(multiply(inverse, $0), inverse) }
        for i in 0..<3 {
            for j in 0..<3 {
                let product = multiply(multiply(a[i], evaluation.covariance), multiply(a[j], evaluation.covariance))
                let expected = 0.5 * (0..<n).reduce(0.0) { $0 + product[$1 * n + $1] }
                #expect(abs(metric[i * 3 + j] - expected) <= 1e-9 * max(1, abs(expected)))
            }
        }
        #expect(try ParameterMetric.euclidean.matrix(at: evaluation, dimension: n) == [1, 0, 0, 0, 1, 0, 0, 0, 1])
    }
}

/// Counts polylines and records the root element.
private final class PolylineCounter: NSObject, XMLParserDelegate {
    var root: String?
    var polylines = 0
    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if root == nil { root = name }
        if name == "polyline" { polylines += 1 }
    }
}
