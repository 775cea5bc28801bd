// Curvature accumulation F <- beta F + alpha U^T diag(w) U, batched over blocks.
//
// Each block b reads a row-major factor slice U_b (rows x dim, row stride ldu, starting at
// uOffset in u) and writes a dense symmetric dim x dim matrix at fOffset in f. Dense
// accumulation is one block; per-layer blocks and the K-FAC factors A and G of every layer
// are many blocks in one launch. U is streamed in row chunks by calling again with
// beta = 1, so the number of samples is unbounded.
//
// Work decomposition: `pack_panels` first copies every block's slice into column strips
// of VW columns, each strip holding all rows contiguously and scaled by sqrt(w_k), padded
// with zeros past dim. Then one work-item of `accumulate_blocks` computes one RM x VW
// micro-tile of one block: per row k it loads one VW-vector of its column strip and RM
// scalars of its row strip, both sequential in memory (the hardware prefetcher streams
// them), and does RM vector FMAs. The host lists only micro-tiles that meet the upper
// triangle (i <= j); each item writes F[i][j] and its mirror F[j][i], so every element is
// written exactly once and the result is fully symmetric. No local memory, no barriers.
//
// Host-set defines (besides REAL and USE_FP64, Common.cl):
//   RM     rows of a micro-tile (default 8); must divide VW
//   VW     columns of a micro-tile, an OpenCL vector width: 2, 4, 8 or 16 (default 16)
//
// Table layouts (host: FisherAccumulation.swift):
//   tasks[3 t + 0..2]   = block, i0, j0 of micro-tile t
//   blocks[BLOCK_FIELDS b + BLOCK_<field>]: the fields of AccumulationBlockField
//     (DescriptorLayout.swift), whose indices the host passes as defines: U_OFFSET, LDU
//     (row stride), ROWS, DIM, F_OFFSET, W_OFFSET (NO_WEIGHTS: unweighted), PACK_OFFSET
//     (where the block's strips start in `packed`), LDC (column stride: 1 for U, M to read
//     Uᵀ of a row-major M x P matrix without a transposed copy)
// beta == 0 never reads F, so F may hold garbage (or NaN) before the first chunk.

#ifndef RM
#define RM 8
#endif
#ifndef VW
#define VW 16
#endif

#define REALV CONCAT(REAL, VW)
#define VLOAD CONCAT(vload, VW)
#define NO_WEIGHTS ((ulong)-1)

// packed[packOffset + (s rows + k) VW + c] = sqrt(w_k) U[k][s VW + c], or 0 past dim.
// One work-item per packed element of all blocks; `total` is the packed length.
__kernel void pack_panels(const ulong total, const uint blockCount, __global const ulong* blocks,
                          __global const REAL* u, __global const REAL* w, __global REAL* packed) {
    const size_t e = get_global_id(0);
    if (e >= total) return;
    uint b = 0;
    while (b + 1 < blockCount && blocks[BLOCK_FIELDS * (b + 1) + BLOCK_PACK_OFFSET] <= e) ++b;
    __global const ulong* block = blocks + BLOCK_FIELDS * b;
    const ulong rows = block[BLOCK_ROWS];
    const ulong local_ = e - block[BLOCK_PACK_OFFSET];
    const ulong c = local_ % VW;
    const ulong k = (local_ / VW) % rows;
    const ulong column = (local_ / VW / rows) * VW + c;
    REAL value = 0;
    if (column < block[BLOCK_DIM]) {
        value = u[block[BLOCK_U_OFFSET] + k * block[BLOCK_LDU] + column * block[BLOCK_LDC]];
        if (block[BLOCK_W_OFFSET] != NO_WEIGHTS) value *= sqrt(w[block[BLOCK_W_OFFSET] + k]);
    }
    packed[e] = value;
}

__kernel void accumulate_blocks(const uint taskCount, __global const uint* tasks, __global const ulong* blocks,
                                __global const REAL* packed, __global REAL* f, const REAL alpha, const REAL beta) {
    const uint task = get_global_id(0);
    if (task >= taskCount) return;
    __global const ulong* block = blocks + BLOCK_FIELDS * tasks[3 * task];
    const ulong i0 = tasks[3 * task + 1];
    const ulong j0 = tasks[3 * task + 2];
    const ulong rows = block[BLOCK_ROWS];
    const ulong dim = block[BLOCK_DIM];
    __global const REAL* panel = packed + block[BLOCK_PACK_OFFSET];
    __global const REAL* columnStrip = panel + (j0 / VW) * rows * VW;
    __global const REAL* rowStrip = panel + (i0 / VW) * rows * VW + i0 % VW;
    __global REAL* out = f + block[BLOCK_F_OFFSET];

    // Fully unrolled so that the RM accumulators live in registers (without the pragma,
    // LLVM for PoCL kept them on the stack: 2-3x slower).
    REALV acc[RM];
#pragma unroll
    for (uint r = 0; r < RM; ++r) acc[r] = (REALV)(0);
    for (ulong k = 0; k < rows; ++k) {
        const REALV b = VLOAD(0, columnStrip + k * VW);
        __global const REAL* a = rowStrip + k * VW;
#pragma unroll
        for (uint r = 0; r < RM; ++r) acc[r] += a[r] * b;
    }

    for (uint r = 0; r < RM; ++r) {
        const ulong i = i0 + r;
        const REAL* lanes = (const REAL*)&acc[r];
        for (uint c = 0; c < VW; ++c) {
            const ulong j = j0 + c;
            if (i > j || j >= dim) continue;
            const REAL value = beta == (REAL)0 ? alpha * lanes[c] : alpha * lanes[c] + beta * out[i * dim + j];
            out[i * dim + j] = value;
            out[j * dim + i] = value;
        }
    }
}

// d[c] <- beta d[c] + alpha sum_k w_k U[k][c]^2 for the rows x dim factor at u (row stride
// ldu): the diagonal of the accumulated matrix, for Jacobi preconditioning and the
// diagonal representation. One work-item per column; items read a row contiguously.
__kernel void accumulate_diagonal(const ulong rows, const ulong dim, const ulong ldu, __global const REAL* u,
                                  __global const REAL* w, const uint weighted, __global REAL* d,
                                  const REAL alpha, const REAL beta) {
    const size_t c = get_global_id(0);
    if (c >= dim) return;
    REAL sum = 0;
    for (ulong k = 0; k < rows; ++k) {
        const REAL value = u[k * ldu + c];
        sum += (weighted ? w[k] : (REAL)1) * value * value;
    }
    d[c] = beta == (REAL)0 ? alpha * sum : alpha * sum + beta * d[c];
}
