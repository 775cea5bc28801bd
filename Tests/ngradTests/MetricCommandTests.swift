import Foundation
import Testing

@testable import ngrad

/// `ngrad metric` as the documentation shows it.
@Suite("ngrad metric")
struct MetricCommandTests {
    private func jsonMetric(_ arguments: [String]) throws -> [String: Any] {
        let result = try runNgrad(["metric"] + arguments + ["--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    @Test func wassersteinOfAUnivariateGaussianIsTwiceTheIdentity() throws {
        let table = try runNgrad(["metric", "--family", "gaussian", "--measure", "w2", "--at", "0.7,1.3"])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("squared Wasserstein-2"))
        #expect(table.stdout.contains("sigma1"))
        let report = try jsonMetric(["--family", "gaussian", "--measure", "w2", "--at", "0.7,1.3"])
        #expect(report["metric"] as? [[Double]] == [[2, 0], [0, 2]])
        #expect((report["deviceMaxDifference"] as? Double ?? 1) < 1e-6)
    }

    @Test func klInTheVarianceParametrisation() throws {
        let sigma = 1.3
        let report = try jsonMetric([
            "--family", "gaussian", "--measure", "kl", "--parametrization", "variance", "--at", "0.7,\(sigma * sigma)",
            "--square-root",
        ])
        let metric = try #require(report["metric"] as? [[Double]])
        #expect(abs(metric[0][0] - 1 / (sigma * sigma)) < 1e-12)
        #expect(abs(metric[1][1] - 1 / (2 * pow(sigma, 4))) < 1e-12)
        let root = try #require(report["squareRoot"] as? [[Double]])
        #expect(abs(root[1][1] * root[1][1] - metric[1][1]) < 1e-12)
    }

    @Test func fullCovarianceAndNegativeValues() throws {
        let report = try jsonMetric(["--family", "gaussian-full", "--measure", "w2", "--at=-1,2,2,0.5,1"])
        #expect((report["coordinates"] as? [String]) == ["mu1", "mu2", "S11", "S21", "S22"])
        #expect((report["deviceMaxDifference"] as? Double ?? 1) < 1e-6)
    }

    @Test(arguments: [
        (["--family", "categorical", "--measure", "w2", "--at", "1,2"], "measure"),
        (["--family", "gaussian", "--measure", "kl", "--at", "0.7,-1"], "standard deviation"),
        (["--family", "gaussian", "--measure", "kl", "--at", "0.7,1,2"], "--at"),
        (["--family", "gaussian-full", "--measure", "kl", "--at", "1,2,3"], "--at"),
        (["--family", "bernoulli", "--measure", "kl", "--at", "x"], "--at"),
        (["--family", "poisson", "--measure", "kl", "--at", "1"], "family"),
    ])
    func badInputExitsTwoWithOneLine(arguments: [String], mention: String) throws {
        let result = try runNgrad(["metric"] + arguments)
        #expect(result.status == 2)
        #expect(result.stderr.contains(mention), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    /// A metric that overflows float64 is an error naming --at (it printed inf, a nan
    /// device check and exited 0), with the JSON report withheld.
    @Test(arguments: [
        ["--family", "gaussian", "--measure", "kl", "--at=0,1e-200"],
        ["--family", "gaussian", "--measure", "kl", "--at=0,-1000", "--parametrization", "log-sigma"],
        ["--family", "gaussian", "--measure", "w2", "--at=0,1000", "--parametrization", "log-sigma"],
        ["--family", "gaussian", "--measure", "hellinger", "--at=0,1e-170", "--parametrization", "variance"],
    ])
    func nonFiniteMetricsAreErrors(arguments: [String]) throws {
        for json in [false, true] {
            let result = try runNgrad(["metric"] + arguments + (json ? ["--json"] : []))
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("--at=") && result.stderr.contains("not finite"), "\(result.stderr)")
            #expect(result.stdout.isEmpty, "\(result.stdout)")
        }
    }

    /// Messages a user can act on: the limit d ≤ 8, the choices as a list, negative values
    /// after a space, the --at length cap.
    @Test func messagesNameTheRule() throws {
        let twenty = Array(repeating: "1", count: 20 + 210).joined(separator: ",")
        let full = try runNgrad(["metric", "--family", "gaussian-full", "--measure", "kl", "--at", twenty])
        #expect(full.status == 2 && full.stderr.contains("d = 20") && full.stderr.contains("d ≤ 8"), "\(full.stderr)")
        let choices = try runNgrad(["metric", "--family", "gaussian", "--measure", "kullback", "--at", "1,2"])
        #expect(choices.status == 2 && choices.stderr.contains("kl, reverse-kl, hellinger, chi2, js, w2, euclidean"))
        #expect(!choices.stderr.contains(";  "), "\(choices.stderr)")
        let negative = try runNgrad(["metric", "--family", "vector", "--measure", "euclidean", "--at", "-1,2", "--json"])
        #expect(negative.status == 0, "\(negative.stderr)")
        let long = Array(repeating: "0.5", count: MetricCommand.maximumOutputs + 1).joined(separator: ",")
        let capped = try runNgrad(["metric", "--family", "vector", "--measure", "euclidean", "--at", long])
        #expect(capped.status == 2 && capped.stderr.contains("limit of \(MetricCommand.maximumOutputs)"), "\(capped.stderr)")
        let many = Array(repeating: "0.5", count: 64).joined(separator: ",")
        #expect(try runNgrad(["metric", "--family", "categorical", "--measure", "kl", "--at", many, "--json"]).status == 0)
    }
}
