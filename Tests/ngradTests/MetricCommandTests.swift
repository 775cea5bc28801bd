import Foundation
import Testing

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
}
