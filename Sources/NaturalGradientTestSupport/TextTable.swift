import Foundation

/// A left-aligned plain-text table with a header rule, for terminal output (`ngrad`'s
/// commands and the benchmark suite's report).
public struct TextTable: Sendable {
    /// The column titles; their count fixes the number of columns.
    public let header: [String]
    /// The rows added so far (a short row leaves its last columns empty).
    public var rows: [[String]] = []

    /// An empty table with these column titles.
    public init(_ header: [String]) { self.header = header }

    /// Adds a row.
    public mutating func append(_ row: [String]) { rows.append(row) }

    /// The table as lines: the header, a rule of dashes, the rows; columns two spaces apart
    /// and the last column not padded.
    public func render() -> String {
        let widths = header.indices.map { column in
            ([header] + rows).map { column < $0.count ? $0[column].count : 0 }.max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 || index >= widths.count
                    ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }
}

/// Bytes as a short human unit (binary prefixes): `512 B`, `1.5 KiB`, `3.0 GiB`.
public func formatBytes(_ bytes: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}
