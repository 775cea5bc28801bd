/// OpenCL C text with the file name it came from (used in build errors and cache keys).
public struct ProgramSource: Sendable, Hashable {
    /// The file name, for example `"Reduction.cl"`.
    public let name: String
    /// The OpenCL C text.
    public let text: String
    /// 64-bit FNV-1a hash of `text`, computed once.
    public let hash: UInt64

    public init(name: String, text: String) {
        self.name = name
        self.text = text
        self.hash = fnv1a(text.utf8)
    }
}

/// 64-bit FNV-1a: a fast, stable (across processes and Swift versions) hash for cache keys.
/// Swift's `Hasher` is seeded per process, so it cannot name files on disk.
func fnv1a<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    return hash
}

extension UInt64 {
    var hexadecimal: String {
        let digits = String(self, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
