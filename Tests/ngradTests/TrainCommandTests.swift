import Foundation
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// `ngrad train` end to end through the built binary: a 20-step smoke run of every method
/// on 128 training samples in batches of 16 (the debug build is slow), and its usage errors.
@Suite("ngrad train")
struct TrainCommandTests {
    @Test func smokeRunLowersTheLossOfEveryMethodAndWritesParsableFiles() throws {
        let directory = NSTemporaryDirectory() + "ngrad-train-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try runNgrad([
            "train", "--steps", "20", "--batch-size", "16", "--train-samples", "128", "--output", directory,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        for title in ["SGD + momentum", "Adam", "K-FAC", "exact-Fisher NGD (CG)", "empirical-Fisher NGD (Woodbury)"] {
            #expect(result.stdout.contains(title), "missing \(title) in \(result.stdout)")
        }

        // steps.csv: every step of every run; the kept run of each method went down.
        let steps = try String(contentsOfFile: directory + "/steps.csv", encoding: .utf8)
        let lines = steps.split(separator: "\n")
        #expect(lines.first == "method,setting,best,step,seconds,train_loss")
        var curves: [String: [(step: Int, loss: Double)]] = [:]
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            try #require(fields.count == 6, "bad row \(line)")
            let step = try #require(Int(fields[3]))
            let seconds = try #require(Double(fields[4]))
            let loss = try #require(Double(fields[5]))
            #expect(seconds >= 0 && loss.isFinite && loss >= 0)
            if fields[2] == "1" { curves[String(fields[0]), default: []].append((step, loss)) }
        }
        #expect(Set(curves.keys) == ["sgd", "adam", "kfac", "fisher-cg", "empirical-woodbury"])
        for (method, curve) in curves {
            #expect(curve.first?.step == 0 && curve.last?.step == 20, "\(method): steps \(curve.map(\.step))")
            if let first = curve.first, let last = curve.last {
                #expect(last.loss < first.loss, "\(method): loss \(first.loss) → \(last.loss)")
            }
        }

        // summary.csv: one row per method with a test accuracy in [0, 1].
        let summary = try String(contentsOfFile: directory + "/summary.csv", encoding: .utf8).split(separator: "\n")
        #expect(summary.count == 6)
        for row in summary.dropFirst() {
            let fields = row.split(separator: ",", omittingEmptySubsequences: false)
            try #require(fields.count == 8, "bad summary row \(row)")
            let accuracy = try #require(Double(fields[6]))
            #expect(accuracy >= 0 && accuracy <= 1)
        }

        // loss.svg: well-formed XML with an svg root.
        let svg = try Data(contentsOf: URL(fileURLWithPath: directory + "/loss.svg"))
        let parser = XMLParser(data: svg)
        let root = RootElement()
        parser.delegate = root
        #expect(parser.parse(), "loss.svg is not well-formed XML")
        #expect(root.name == "svg")
    }

    @Test(arguments: [
        (["train", "--methods", "sgd,newton"], "newton"),
        (["train", "--steps", "0"], "--steps"),
        (["train", "--data", "/nonexistent/digits.csv"], "--data"),
    ])
    func usageErrorsExitTwo(arguments: [String], mentions: String) throws {
        let result = try runNgrad(arguments)
        #expect(result.status == 2)
        #expect(result.stderr.contains(mentions), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}

/// Records the name of the document's root element.
private final class RootElement: NSObject, XMLParserDelegate {
    var name: String?
    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if name == nil { name = elementName }
    }
}
