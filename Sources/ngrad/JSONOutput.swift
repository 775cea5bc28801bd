import Foundation

/// Prints `value` as pretty, key-sorted JSON on standard output (through `StandardOutput`).
func printJSON<Value: Encodable>(_ value: Value) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try StandardOutput.print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
