// Element-wise vector updates that the solvers are composed of.
//
// Host-set defines: REAL and USE_FP64 (Common.cl).
// Every kernel takes the element count n and guards its work-item, so any global size
// (rounded up to the work-group size by the host) is correct.

// x <- alpha x
__kernel void scale(const ulong n, const REAL alpha, __global REAL* x) {
    const size_t i = get_global_id(0);
    if (i < n) x[i] = alpha * x[i];
}

// y <- alpha x + y
__kernel void axpy(const ulong n, const REAL alpha, __global const REAL* x, __global REAL* y) {
    const size_t i = get_global_id(0);
    if (i < n) y[i] = alpha * x[i] + y[i];
}

// y <- alpha x + beta y
__kernel void axpby(const ulong n, const REAL alpha, __global const REAL* x, const REAL beta, __global REAL* y) {
    const size_t i = get_global_id(0);
    if (i < n) y[i] = alpha * x[i] + beta * y[i];
}

// y[i] <- x[offset + i * stride]: a strided gather (for example a matrix diagonal).
__kernel void gather_strided(const ulong n, __global const REAL* x, const ulong offset, const ulong stride,
                             __global REAL* y) {
    const size_t i = get_global_id(0);
    if (i < n) y[i] = x[offset + i * stride];
}
