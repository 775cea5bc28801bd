// Element-wise vector updates that the solvers are composed of.
//
// Host-set defines: REAL and USE_FP64 (Common.cl).
// Every kernel takes the element count n (the matrix order for `symmetrize`) and guards its
// work-item, so any global size (rounded up to the work-group size by the host) is correct.

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

// X <- (X + X^T) / 2 for the n x n row-major matrix starting at x[offset]: a 2-D launch over
// (columns, rows) of at least n x n work-items; the item (column, row) with column > row
// averages that pair and writes both, so every pair has one writer and the diagonal is
// untouched. Newton-Schulz inversion calls it every iteration: the Kronecker kernels read a
// factor's rows as its columns, so X M X is formed as X M X^T, and without this the
// antisymmetric rounding of X would double every iteration.
__kernel void symmetrize(const ulong n, const ulong offset, __global REAL* x) {
    const size_t column = get_global_id(0), row = get_global_id(1);
    if (row < n && column < n && column > row) {
        const ulong upper = offset + row * n + column, lower = offset + column * n + row;
        const REAL mean = (x[upper] + x[lower]) * (REAL)0.5;
        x[upper] = mean;
        x[lower] = mean;
    }
}
