import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif

/// `--check-outputs`: re-reads the files this run wrote and checks that they say what the
/// run measured (CI's smoke test): every case in the JSON with every check passed and
/// positive, ordered timings; one CSV line per contestant with the header's column count;
/// an SVG that parses as XML and has a panel per charted operation.
struct OutputCheck {
    struct Failure: Error, CustomStringConvertible {
        let problems: [String]
        var description: String { "output check failed:\n  " + problems.joined(separator: "\n  ") }
    }

    static func run(cases: [CaseResult], json: String?, csv: String?, svg: String?) throws {
        var problems: [String] = []
        let operations = Set(cases.map(\.operation.rawValue))
        if let json {
            if let data = FileManager.default.contents(atPath: json),
                let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let entries = root["cases"] as? [[String: Any]]
            {
                if entries.count != cases.count { problems.append("JSON: \(entries.count) cases, the run had \(cases.count)") }
                if Set(entries.compactMap { $0["operation"] as? String }) != operations {
                    problems.append("JSON: operations differ from the run's")
                }
                for entry in entries {
                    let name = "\(entry["operation"] ?? "?") \(entry["element"] ?? "?") \(entry["size"] ?? "?")"
                    let checks = entry["checks"] as? [[String: Any]] ?? []
                    if checks.isEmpty { problems.append("JSON \(name): no checks") }
                    for check in checks where check["passed"] as? Bool != true {
                        problems.append("JSON \(name): check '\(check["name"] ?? "?")' did not pass")
                    }
                    let contestants = entry["contestants"] as? [[String: Any]] ?? []
                    if contestants.isEmpty { problems.append("JSON \(name): no contestants") }
                    for contestant in contestants {
                        let low = contestant["minSeconds"] as? Double ?? -1
                        let median = contestant["medianSeconds"] as? Double ?? -1
                        let high = contestant["maxSeconds"] as? Double ?? -1
                        if !(low > 0 && low <= median && median <= high) {
                            problems.append("JSON \(name) \(contestant["label"] ?? "?"): timings \(low), \(median), \(high)")
                        }
                        if !((contestant["rate"] as? Double ?? 0) > 0) {
                            problems.append("JSON \(name) \(contestant["label"] ?? "?"): rate not positive")
                        }
                    }
                }
                if (root["hostCeilings"] as? [[String: Any]] ?? []).isEmpty { problems.append("JSON: no ceilings") }
            } else {
                problems.append("JSON: \(json) is missing or not a report")
            }
        }
        if let csv {
            let lines = ((try? String(contentsOfFile: csv, encoding: .utf8)) ?? "").split(separator: "\n")
            let expected = cases.reduce(0) { $0 + $1.contestants.count }
            if lines.count != expected + 1 { problems.append("CSV: \(lines.count - 1) lines, expected \(expected)") }
            if let header = lines.first {
                let columns = header.split(separator: ",", omittingEmptySubsequences: false).count
                // Quoted fields never hold commas in these rows except sizes: count outside quotes.
                for line in lines.dropFirst() where fieldCount(line) != columns {
                    problems.append("CSV: a line has \(fieldCount(line)) fields, the header \(columns): \(line)")
                }
            }
        }
        if let svg {
            if let data = FileManager.default.contents(atPath: svg) {
                let parser = XMLParser(data: data)
                if !parser.parse() { problems.append("SVG: not well-formed XML (\(parser.parserError.map { "\($0)" } ?? "?"))") }
                let text = String(decoding: data, as: UTF8.self)
                if !text.contains("<svg") { problems.append("SVG: no <svg> element") }
                for operation in ["accumulation", "implicit-product"] where operations.contains(operation) {
                    if !text.contains(operation) { problems.append("SVG: no panel for \(operation)") }
                }
            } else {
                problems.append("SVG: \(svg) is missing")
            }
        }
        if !problems.isEmpty { throw Failure(problems: problems) }
    }

    private static func fieldCount(_ line: Substring) -> Int {
        var count = 1
        var quoted = false
        for character in line {
            if character == "\"" { quoted.toggle() } else if character == ",", !quoted { count += 1 }
        }
        return count
    }
}
