#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import OpenCLHost

/// The stack a CPU device's work-group runs on, for bounding `work-group size x private
/// bytes per item` of the kernels with a barrier.
///
/// PoCL's CPU devices run a work-group as loops over its items on one worker thread. A
/// kernel with a barrier keeps every item's private arrays for the whole group at once (its
/// "context arrays"), on that thread's stack; a group that needs more than the stack holds
/// overflows it and kills the process with SIGSEGV. It did, in CI, on an AVX-512 Xeon:
/// `block_dense_product` at DWGS = 1024. Measured on PoCL 3.1 (AMD EPYC, 64-byte vectors):
/// `block_dense_product` at DWGS = 512, DRB = 16 (4.4 MiB of arrays) ran on a 6 MiB stack
/// and crashed on 4 MiB; `implicit_product_partial` at WGS = 256, RB = 16 (4.7 MiB counted
/// as `implicitProductBytes` counts it) ran on 6 MiB and crashed on 4 MiB.
///
/// The worker threads are created with default attributes, so their stack is glibc's default
/// thread stack: the soft `RLIMIT_STACK` (usually 8 MiB), or 2 MiB where that is unlimited
/// (`ulimit -s unlimited` crashed at 2.6 MiB of arrays, as the 2 MiB limit did). A group may
/// use half of it; the rest is left to the frames that call the kernel and to what the
/// compiler keeps besides the arrays. GPUs keep private arrays in registers or per-item
/// scratch, so the bound is for CPU devices only.
enum CPUWorkGroupStack {
    /// The bytes of private arrays one work-group may hold on a CPU device.
    static let budget: Int = threadStackBytes / 2

    /// The default stack of a new thread: the soft stack limit, 2 MiB where it is unlimited.
    static let threadStackBytes: Int = {
        let fallback = 2 << 20
        var limit = rlimit()
        #if canImport(Glibc)
            let resource = __rlimit_resource_t(RLIMIT_STACK.rawValue)
        #else
            let resource = RLIMIT_STACK
        #endif
        // RLIM_INFINITY is all ones on Linux and Int64.max on Darwin: both read as unlimited.
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < rlim_t(Int.max) else { return fallback }
        return Int(limit.rlim_cur)
    }()

    /// Why `groupSize` items of `itemBytes` private bytes each do not fit a work-group's
    /// stack on `device` (nil: they fit, or `device` is not a CPU).
    static func violation(groupSize: Int, itemBytes: Int, _ what: String, device: Device) -> String? {
        guard device.kind == .cpu else { return nil }
        let bytes = groupSize * itemBytes
        return bytes <= budget
            ? nil
            : "\(what) keeps \(bytes) bytes of private arrays per work-group on a CPU worker thread's stack, "
                + "more than \(budget) (half of the \(threadStackBytes)-byte thread stack; `ulimit -s` sets it)"
    }

    /// The largest power of two no larger than `limit` whose groups of `itemBytes` fit the
    /// budget on `device` (at least 1): the CPU defaults' group size.
    static func largestGroup(atMost limit: Int, itemBytes: Int, device: Device) -> Int {
        var size = largestPowerOfTwo(atMost: limit)
        while size > 1, violation(groupSize: size, itemBytes: itemBytes, "", device: device) != nil { size /= 2 }
        return size
    }
}
