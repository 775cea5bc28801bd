import COpenCL

/// The two-call pattern every `clGet*Info` function shares: ask for the size, then the bytes.
/// `get(size, destination, sizeReturned)` wraps one such function with its object and name.
struct InfoQuery {
    typealias Getter = (Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> cl_int

    let function: String
    let object: String
    let get: Getter

    func bytes() throws -> [UInt8] {
        var size = 0
        try check(get(0, nil, &size), function, object)
        guard size > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: size)
        try bytes.withUnsafeMutableBytes { buffer in
            try check(get(size, buffer.baseAddress, nil), function, object)
        }
        return bytes
    }

    func string() throws -> String {
        let bytes = try bytes()
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[..<end], as: UTF8.self).trimmingWhitespace()
    }

    func value<T: BitwiseCopyable>(_: T.Type) throws -> T {
        try withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { buffer in
            try check(get(MemoryLayout<T>.size, buffer.baseAddress, nil), function, object)
            return buffer[0]
        }
    }

    func array<T: BitwiseCopyable>(of _: T.Type) throws -> [T] {
        let bytes = try bytes()
        let count = bytes.count / MemoryLayout<T>.stride
        return (0..<count).map { index in
            bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index * MemoryLayout<T>.stride, as: T.self) }
        }
    }
}
