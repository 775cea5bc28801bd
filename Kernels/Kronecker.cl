// Kronecker-factored products, batched over layers: for each layer l with factors
// G_l (rows x rows) and A_l (cols x cols) and the layer's slice V_l (rows x cols,
// row-major) of each of the KB parameter vectors,
//   Y_l = (G_l + gammaG_l I) V_l (A_l + gammaA_l I)
// which is ((G + gammaG I) kron (A + gammaA I)) vec(V) under row-major vec (DESIGN.md
// sections 2 and 5). Two launches: T = V (A + gammaA I), then Y = (G + gammaG I) T.
// The factors are symmetric, so both stages read them by rows.
//
// layers[5 l + 0..4] = vOffset (the layer's start in each vector), rows, cols, and the
// offsets of G_l and A_l in the factors buffer; dampings[2 l + 0..1] = gammaG, gammaA.
// Global size: (largest rows * cols over the layers, layers, vectors).
//
// Host-set defines: REAL and USE_FP64 (Common.cl).

// T_l[o][i] = sum_c V_l[o][c] A_l[i][c] + gammaA V_l[o][i]
__kernel void kronecker_right(const uint dim, __global const ulong* layers, __global const REAL* dampings,
                              __global const REAL* factors, __global const REAL* v, __global REAL* t) {
    const size_t element = get_global_id(0);
    const uint layer = get_global_id(1);
    const uint vector = get_global_id(2);
    __global const ulong* d = layers + 5 * layer;
    const ulong rows = d[1], cols = d[2];
    if (element >= rows * cols) return;
    const ulong o = element / cols, i = element % cols;
    __global const REAL* vRow = v + (size_t)vector * dim + d[0] + o * cols;
    __global const REAL* aRow = factors + d[4] + i * cols;
    REAL sum = 0;
    for (ulong c = 0; c < cols; ++c) sum += vRow[c] * aRow[c];
    t[(size_t)vector * dim + d[0] + element] = sum + dampings[2 * layer + 1] * vRow[i];
}

// Y_l[o][i] = sum_c G_l[o][c] T_l[c][i] + gammaG T_l[o][i]
__kernel void kronecker_left(const uint dim, __global const ulong* layers, __global const REAL* dampings,
                             __global const REAL* factors, __global const REAL* t, __global REAL* y) {
    const size_t element = get_global_id(0);
    const uint layer = get_global_id(1);
    const uint vector = get_global_id(2);
    __global const ulong* d = layers + 5 * layer;
    const ulong rows = d[1], cols = d[2];
    if (element >= rows * cols) return;
    const ulong o = element / cols, i = element % cols;
    __global const REAL* tLayer = t + (size_t)vector * dim + d[0];
    __global const REAL* gRow = factors + d[3] + o * rows;
    REAL sum = 0;
    for (ulong c = 0; c < rows; ++c) sum += gRow[c] * tLayer[c * cols + i];
    y[(size_t)vector * dim + d[0] + element] = sum + dampings[2 * layer] * tLayer[element];
}
