// Curvature accumulation F <- beta F + alpha U^T diag(w) U, batched over blocks.
//
// Each block b reads a row-major factor slice U_b (rows x dim, row stride ldu, starting at
// uOffset in u) and writes a dense symmetric dim x dim matrix at fOffset in f. Dense
// accumulation is one block; per-layer blocks and the K-FAC factors A and G of every layer
// are many blocks in one launch. U is streamed in row chunks by calling again with
// beta = 1, so the number of samples is unbounded.
//
// Work decomposition: one work-item computes one RM x VW micro-tile of one block. The host
// lists only micro-tiles that meet the upper triangle (i <= j); each item writes F[i][j]
// and its mirror F[j][i], so every element is written exactly once and the result is fully
// symmetric. No local memory and no barriers: on PoCL a work-group is a loop over
// independent micro-tiles that share a column strip in cache; on GPUs each item is a
// register tile.
//
// Host-set defines:
//   REAL   element type: float (default) or double (with USE_FP64)
//   RM     rows of a micro-tile (default 8)
//   VW     columns of a micro-tile, an OpenCL vector width: 2, 4, 8 or 16 (default 16)
//
// Table layouts (host: FisherAccumulation.swift):
//   tasks[3 t + 0..2]   = block, i0, j0 of micro-tile t
//   blocks[6 b + 0..5]  = uOffset, ldu, rows, dim, fOffset, wOffset (NO_WEIGHTS: unweighted)
// beta == 0 never reads F, so F may hold garbage (or NaN) before the first chunk.

#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#ifndef REAL
#define REAL float
#endif
#ifndef RM
#define RM 8
#endif
#ifndef VW
#define VW 16
#endif

#define CONCAT2(a, b) a##b
#define CONCAT(a, b) CONCAT2(a, b)
#define REALV CONCAT(REAL, VW)
#define VLOAD CONCAT(vload, VW)
#define NO_WEIGHTS ((ulong)-1)

// One rank-1 update of the micro-tile accumulators: acc[r] += u_row[i0 + r] * b.
#define MICRO_UPDATE(ROW, B)                                        \
    for (uint r = 0; r < RM; ++r) acc[r] += (ROW)[i0 + r] * (B);

__kernel void accumulate_blocks(const uint taskCount, __global const uint* tasks, __global const ulong* blocks,
                                __global const REAL* u, __global const REAL* w, __global REAL* f,
                                const REAL alpha, const REAL beta) {
    const uint task = get_global_id(0);
    if (task >= taskCount) return;
    __global const ulong* block = blocks + 6 * tasks[3 * task];
    const ulong i0 = tasks[3 * task + 1];
    const ulong j0 = tasks[3 * task + 2];
    const ulong ldu = block[1];
    const ulong rows = block[2];
    const ulong dim = block[3];
    const ulong wOffset = block[5];
    __global const REAL* rowStart = u + block[0];
    __global REAL* out = f + block[4];

    REALV acc[RM];
    for (uint r = 0; r < RM; ++r) acc[r] = (REALV)(0);

    if (i0 + RM <= dim && j0 + VW <= dim) {
        // Interior micro-tile: vector loads, no guards.
        if (wOffset == NO_WEIGHTS) {
            for (ulong k = 0; k < rows; ++k) {
                __global const REAL* row = rowStart + k * ldu;
                const REALV b = VLOAD(0, row + j0);
                MICRO_UPDATE(row, b)
            }
        } else {
            for (ulong k = 0; k < rows; ++k) {
                __global const REAL* row = rowStart + k * ldu;
                const REALV b = VLOAD(0, row + j0) * w[wOffset + k];
                MICRO_UPDATE(row, b)
            }
        }
    } else {
        // Edge micro-tile (dim not a multiple of RM or VW): guarded scalar loads.
        for (ulong k = 0; k < rows; ++k) {
            __global const REAL* row = rowStart + k * ldu;
            const REAL weight = wOffset == NO_WEIGHTS ? (REAL)1 : w[wOffset + k];
            REALV b = (REALV)(0);
            REAL* lanes = (REAL*)&b;
            for (uint c = 0; c < VW; ++c) lanes[c] = j0 + c < dim ? row[j0 + c] * weight : (REAL)0;
            for (uint r = 0; r < RM; ++r) acc[r] += (i0 + r < dim ? row[i0 + r] : (REAL)0) * b;
        }
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
