// Two-stage dot product / squared norm with a fixed summation order.
//
// Stage 1 (dot_partial): G work-groups of WGS items. Work-item t of the launch sums
// x[i] y[i] for i = t, t + G*WGS, t + 2*G*WGS, ... with Kahan compensation, then the
// group adds its items pairwise in local memory and writes one partial per group.
// Stage 2 (sum_partials): one work-group does the same over the G partials.
// G and WGS depend only on n and the device, so a result is bitwise repeatable run to run
// on one device. Never build this file with -cl-fast-relaxed-math or
// -cl-unsafe-math-optimizations: they let the compiler delete the Kahan correction.
//
// Host-set defines (besides REAL and USE_FP64, Common.cl):
//   WGS       work-group size, a power of two (default 256); the host lowers it when a
//             device or kernel allows fewer work-items
// Launches always use full work-groups (items past n add zero), so every barrier is
// reached by every item (DESIGN.md section 8: PoCL and partly filled groups).

// One step of Kahan summation: adds value to (*sum, *compensation).
inline void kahan_add(REAL* sum, REAL* compensation, const REAL value) {
    const REAL corrected = value - *compensation;
    const REAL next = *sum + corrected;
    *compensation = (next - *sum) - corrected;
    *sum = next;
}

// partial[g] = sum over the strided slice of group g of x[i] y[i].
__kernel __attribute__((reqd_work_group_size(WGS, 1, 1)))
void dot_partial(const ulong n, __global const REAL* x, __global const REAL* y, __global REAL* partial) {
    __local REAL scratch[WGS];
    const size_t stride = get_global_size(0);
    REAL sum = 0;
    REAL compensation = 0;
    for (size_t i = get_global_id(0); i < n; i += stride) {
        kahan_add(&sum, &compensation, x[i] * y[i]);
    }
    scratch[get_local_id(0)] = sum;
    group_sums(scratch, 1);
    if (get_local_id(0) == 0) partial[get_group_id(0)] = scratch[0];
}

// result[index] = sum of partial[0..count), by one work-group.
__kernel __attribute__((reqd_work_group_size(WGS, 1, 1)))
void sum_partials(const uint count, __global const REAL* partial, __global REAL* result, const uint index) {
    __local REAL scratch[WGS];
    REAL sum = 0;
    REAL compensation = 0;
    for (uint i = get_local_id(0); i < count; i += WGS) {
        kahan_add(&sum, &compensation, partial[i]);
    }
    scratch[get_local_id(0)] = sum;
    group_sums(scratch, 1);
    if (get_local_id(0) == 0) result[index] = scratch[0];
}

// *count += the number of NaN or infinite values among x[0..n): the opt-in check that keeps
// a non-finite factor from turning into a "successful" result. Order does not matter for
// an integer count, so one atomic per work-item that found any is enough.
__kernel void count_nonfinite(const ulong n, __global const REAL* x, __global uint* count) {
    const size_t stride = get_global_size(0);
    uint found = 0;
    for (size_t i = get_global_id(0); i < n; i += stride) {
        if (!isfinite(x[i])) ++found;
    }
    if (found > 0) atomic_add(count, found);
}
