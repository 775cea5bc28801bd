#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation

/// A `.npy` file memory-mapped and validated, its elements read in place: no copy of the
/// data is made, so a factor of several GiB costs its page-cache pages and nothing more.
///
/// The header is checked exactly as `NumPyArray.decode(_:name:)` checks it (the same
/// messages); the elements stay in the stored type (`float32` or `float64`,
/// little-endian). The mapping is private and writable, so a consumer that writes to the
/// memory (an OpenCL host-pointer buffer may) changes its own copy of a page, never the
/// file. The mapping lives as long as the object: keep it alive while anything (a device
/// buffer over the memory) uses `data`.
public final class NumPyMappedArray: @unchecked Sendable {
    /// The file.
    public let path: String
    /// `[n]` or `[rows, columns]`.
    public let shape: [Int]
    /// The stored element type.
    public let elementType: NumPyElementType
    /// The number of elements, `shape.reduce(1, *)`.
    public let count: Int
    private let mapping: UnsafeMutableRawPointer?
    private let mappedLength: Int
    private let dataStart: Int

    /// Maps and validates the `.npy` file at `path`.
    ///
    /// - Throws: `NumPyFormatError` naming `path`, with the messages of
    ///   `NumPyArray.read(contentsOf:)`: no such file, a directory, unreadable, or not a valid
    ///   `.npy` file this module supports. A file that cannot be mapped (a pipe) is refused as
    ///   unreadable; `NumPyArray.read(contentsOf:)` reads those.
    /// - Parameter populate: fault the whole file in now (the fast way to read all of it);
    ///   false maps it lazily, for a caller that needs only the header (a dry run).
    public init(contentsOf path: String, populate: Bool = true) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw NumPyFormatError(file: path, problem: "no such file")
        }
        if isDirectory.boolValue {
            throw NumPyFormatError(file: path, problem: "is a directory, not a .npy file")
        }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw NumPyFormatError(file: path, problem: "cannot read the file (permission denied or I/O error)")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG, let length = Int(exactly: status.st_size)
        else {
            throw NumPyFormatError(
                file: path, problem: "cannot read the file (not a regular file that can be memory-mapped)")
        }
        var base: UnsafeMutableRawPointer?
        if length > 0 {
            // MAP_POPULATE faults the whole file in with one call, which from the page cache
            // runs at memory bandwidth; touching the pages one by one costs a fault per page.
            // Mapped read-only first: populating a writable private mapping copies every
            // page (copy-on-write for the write access it prepares), doubling the resident
            // memory; made writable after, a page is copied only if something writes it.
            let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), descriptor, 0)
            guard let mapped, mapped != MAP_FAILED else {
                throw NumPyFormatError(
                    file: path, problem: "cannot map the file (\(String(cString: strerror(errno))))")
            }
            guard mprotect(mapped, length, PROT_READ | PROT_WRITE) == 0 else {
                munmap(mapped, length)
                throw NumPyFormatError(
                    file: path, problem: "cannot map the file (\(String(cString: strerror(errno))))")
            }
            base = mapped
        }
        let layout: NPYLayout
        do {
            layout = try NPYDecoder.layout(UnsafeRawBufferPointer(start: base, count: length))
        } catch {
            if let base { munmap(base, length) }
            throw NumPyFormatError(file: path, problem: error.text)
        }
        mapping = base
        mappedLength = length
        dataStart = layout.dataStart
        shape = layout.shape
        elementType = layout.elementType
        count = layout.count
    }

    deinit {
        if let mapping { munmap(mapping, mappedLength) }
    }

    /// The stored elements' bytes, `count * elementType.byteCount` of them, valid while this
    /// object lives.
    public var data: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping.map { $0 + dataStart }, count: count * elementType.byteCount)
    }

    /// The elements as `T` in place, when `T` is the stored type (`Float` for `float32`,
    /// `Double` for `float64`) and the data start is aligned for it; nil otherwise.
    public func elements<T: BinaryFloatingPoint>(as _: T.Type) -> UnsafeBufferPointer<T>? {
        let expected = elementType == .float32 ? MemoryLayout<Float>.size : MemoryLayout<Double>.size
        guard MemoryLayout<T>.size == expected, let start = data.baseAddress,
            Int(bitPattern: start) % MemoryLayout<T>.alignment == 0
        else { return nil }
        return UnsafeBufferPointer(start: start.assumingMemoryBound(to: T.self), count: count)
    }

    /// The number of NaN or infinite elements: one pass over the data in its stored type.
    public var nonFiniteCount: Int {
        let raw = data
        guard let base = raw.baseAddress else { return 0 }
        var nonFinite = 0
        switch elementType {
        case .float32:
            // Exponent bits all set: NaN or ±infinity, counted without branching.
            for index in 0..<count {
                let bits = base.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)
                nonFinite &+= Int(truncatingIfNeeded: (bits & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0)
            }
        case .float64:
            for index in 0..<count {
                let bits = base.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
                nonFinite &+= (bits & 0x7FF0_0000_0000_0000) == 0x7FF0_0000_0000_0000 ? 1 : 0
            }
        }
        return nonFinite
    }

    /// Elements `range` widened to float64 (a copy).
    public func widened(_ range: Range<Int>? = nil) -> [Double] {
        let range = (range ?? 0..<count).clamped(to: 0..<count)
        let size = elementType.byteCount
        let slice = UnsafeRawBufferPointer(rebasing: data[(range.lowerBound * size)..<(range.upperBound * size)])
        return NPYDecoder.widenedValues(
            slice, layout: NPYLayout(shape: [range.count], elementType: elementType, count: range.count, dataStart: 0))
    }

    /// Every element in a `NumPyArray` (float64 values: a copy of twice the size for
    /// `float32`).
    public func array() -> NumPyArray {
        NumPyArray(validatedShape: shape, elementType: elementType, values: widened())
    }

    /// Hands the pages holding elements `range` back to the kernel (they are read again from
    /// the page cache if touched later): a consumer that has copied a range elsewhere
    /// (converted, uploaded) keeps the process's resident memory at one copy.
    public func releasePages(_ range: Range<Int>) {
        guard let mapping, !range.isEmpty else { return }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = elementType.byteCount
        // Whole pages inside the range only: a page shared with unreleased elements stays.
        let first = (dataStart + range.lowerBound * size + pageSize - 1) / pageSize * pageSize
        let last = (dataStart + range.upperBound * size) / pageSize * pageSize
        guard last > first else { return }
        madvise(mapping + first, last - first, MADV_DONTNEED)
    }
}
