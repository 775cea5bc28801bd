// Prepended by the host to every kernel family (KernelFamily.source()), as CLBlast does
// with its common header: the element type, double-precision support and the helpers more
// than one family uses. Build-log line numbers of a family are shifted by this file's
// length.
//
// Host-set defines:
//   REAL      element type: float (default) or double (with USE_FP64)
//   WGS       work-group size of kernels with a fixed size, a power of two (default 256)

#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#ifndef REAL
#define REAL float
#endif
#ifndef WGS
#define WGS 256
#endif

#define CONCAT2(a, b) a##b
#define CONCAT(a, b) CONCAT2(a, b)

// Pairwise sums over the work-group of `count` values per work-item, stored by every item
// at scratch[v * WGS + item]; afterwards scratch[v * WGS] holds sum v. The order is fixed,
// so results are bitwise repeatable. Every item of the group must call it (barriers).
inline void group_sums(__local REAL* scratch, const uint count) {
    const uint item = get_local_id(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint width = WGS / 2; width > 0; width >>= 1) {
        if (item < width) {
            for (uint v = 0; v < count; ++v) scratch[v * WGS + item] += scratch[v * WGS + item + width];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}
