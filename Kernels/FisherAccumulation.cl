// Curvature accumulation F <- beta F + alpha U^T diag(w) U, batched over blocks.
//
// Each block b reads a row-major factor slice U_b (rows x dim, row stride ldu, starting at
// uOffset in u) and writes a dense symmetric dim x dim matrix at fOffset in f. Dense
// accumulation is one block; per-layer blocks and the K-FAC factors A and G of every layer
// are many blocks in one launch. U is streamed in row chunks by calling again with
// beta = 1, so the number of samples is unbounded.
//
// Work decomposition (BLIS's, in one work-item): `pack_panels` first copies every block's
// slice into column strips of VW columns, each strip holding all rows contiguously and
// scaled by sqrt(w_k), padded with zeros past dim. One work-item of `accumulate_blocks` then
// owns an item block of MT micro-tiles of RM rows by NT strips of VW columns (MT RM x NT VW
// elements of one block's matrix) and walks the factor rows k in blocks of KC: for each
// k-block, for each strip (its KC x VW slab stays in L1), for each micro-tile (its RM rows
// of the same k-block come from L2), an RM x VW register tile accumulates over the k-block
// (per k: one VW-vector of the strip, RM scalars broadcast, RM vector FMAs) and is added to
// F's upper triangle in place (the first k-block applies beta, the last also writes the
// mirror). So the item's (MT RM + NT VW) x KC working set stays in L2 whatever the number
// of rows, and each packed strip is read once per item block instead of once per
// micro-tile. RM need not divide VW: a micro-tile's rows may straddle two strips (each row
// has its own offset), and rows past dim read row dim - 1 and are never stored.
// The host lists only item blocks that meet the upper triangle (i <= j); an element is
// stored only where i <= j < dim, and its mirror F[j][i] only after the last k-block, so
// every element is owned by one work-item and the result is fully symmetric. No local
// memory, no barriers. GPUs take MT = NT = 1 and KC = 0 (one micro-tile over all rows per
// work-item); CPUs a 64 x 64 item block, a work-group of one item (one thread runs it like
// compiled C) and register tiles sized from the native vector width
// (FisherAccumulationTunables).
//
// Host-set defines (besides REAL and USE_FP64, Common.cl):
//   RM     rows of a micro-tile, 1...16 (default 8)
//   VW     columns of a micro-tile, an OpenCL vector width: 2, 4, 8 or 16 (default 16)
//   MT     micro-tiles of an item block along the rows (default 1)
//   NT     strips of an item block along the columns (default 1)
//   KC     factor rows per k-block; 0: all rows in one block (default 0)
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
#ifndef MT
#define MT 1
#endif
#ifndef NT
#define NT 1
#endif
#ifndef KC
#define KC 0
#endif

#define REALV CONCAT(REAL, VW)
#define VLOAD CONCAT(vload, VW)
#define VSTORE CONCAT(vstore, VW)
#define NO_WEIGHTS ((ulong)-1)

// packed[packOffset + (s rows + k) VW + c] = sqrt(w_k) U[k][s VW + c], or 0 past dim.
// One work-item per packed row of VW elements of all blocks (`total` such rows), so the
// block search and the two divisions by the row count are paid once per VW elements; a
// row that lies inside dim of a factor with unit column stride is one vector load.
__kernel void pack_panels(const ulong total, const uint blockCount, __global const ulong* blocks,
                          __global const REAL* u, __global const REAL* w, __global REAL* packed) {
    const size_t e = get_global_id(0);
    if (e >= total) return;
    const ulong element = (ulong)e * VW;
    uint b = 0;
    while (b + 1 < blockCount && blocks[BLOCK_FIELDS * (b + 1) + BLOCK_PACK_OFFSET] <= element) ++b;
    __global const ulong* block = blocks + BLOCK_FIELDS * b;
    const ulong rows = block[BLOCK_ROWS];
    const ulong dim = block[BLOCK_DIM];
    const ulong ldc = block[BLOCK_LDC];
    const ulong vector = (element - block[BLOCK_PACK_OFFSET]) / VW;
    const ulong k = vector % rows;
    const ulong column0 = (vector / rows) * VW;
    __global const REAL* row = u + block[BLOCK_U_OFFSET] + k * block[BLOCK_LDU];
    const REAL scale = block[BLOCK_W_OFFSET] != NO_WEIGHTS ? sqrt(w[block[BLOCK_W_OFFSET] + k]) : (REAL)1;
    if (ldc == 1 && column0 + VW <= dim) {
        VSTORE(VLOAD(0, row + column0) * scale, 0, packed + element);
        return;
    }
    for (uint c = 0; c < VW; ++c) {
        const ulong column = column0 + c;
        packed[element + c] = column < dim ? row[column * ldc] * scale : (REAL)0;
    }
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
    const ulong depth = KC == 0 ? rows : (ulong)KC;
    __global const REAL* panel = packed + block[BLOCK_PACK_OFFSET];
    __global REAL* out = f + block[BLOCK_F_OFFSET];

    for (ulong kb = 0; kb < rows; kb += depth) {
        const ulong kEnd = min(rows, kb + depth);
        const bool first = kb == 0;
        const bool last = kEnd == rows;
        for (uint s = 0; s < NT; ++s) {
            const ulong jj = j0 + (ulong)s * VW;
            if (jj >= dim) break;
            __global const REAL* columnStrip = panel + (jj / VW) * rows * VW;
            for (uint t = 0; t < MT; ++t) {
                const ulong ii = i0 + (ulong)t * RM;
                // Past dim, or wholly below this strip's diagonal: nothing to store.
                if (ii >= dim || ii > jj + VW - 1) break;
                // Row r's place in the packed strips (rows past dim read the last row).
                ulong offset[RM];
#pragma unroll
                for (uint r = 0; r < RM; ++r) {
                    const ulong row = min(ii + r, dim - 1);
                    offset[r] = (row / VW) * rows * VW + row % VW;
                }
                // Fully unrolled so that the RM accumulators live in registers (without the
                // pragma, LLVM for PoCL kept them on the stack: 2-3x slower).
                REALV acc[RM];
#pragma unroll
                for (uint r = 0; r < RM; ++r) acc[r] = (REALV)(0);
                for (ulong k = kb; k < kEnd; ++k) {
                    const REALV b = VLOAD(0, columnStrip + k * VW);
                    __global const REAL* a = panel + k * VW;
#pragma unroll
                    for (uint r = 0; r < RM; ++r) acc[r] += a[offset[r]] * b;
                }
                if (ii + RM - 1 <= jj && jj + VW <= dim) {
                    // Wholly above the diagonal and inside dim: whole rows as vectors (the
                    // scalar loop below costs about a third of a 256-row k-block's FMAs).
#pragma unroll
                    for (uint r = 0; r < RM; ++r) {
                        __global REAL* row = out + (ii + r) * dim + jj;
                        REALV value = alpha * acc[r];
                        if (!first) value += VLOAD(0, row);
                        else if (beta != (REAL)0) value += beta * VLOAD(0, row);
                        VSTORE(value, 0, row);
                        if (last) {
                            const REAL* lanes = (const REAL*)&value;
                            for (uint c = 0; c < VW; ++c) out[(jj + c) * dim + ii + r] = lanes[c];
                        }
                    }
                    continue;
                }
                for (uint r = 0; r < RM; ++r) {
                    const ulong i = ii + r;
                    const REAL* lanes = (const REAL*)&acc[r];
                    for (uint c = 0; c < VW; ++c) {
                        const ulong j = jj + c;
                        if (i > j || j >= dim) continue;
                        REAL value = alpha * lanes[c];
                        if (!first) value += out[i * dim + j];
                        else if (beta != (REAL)0) value += beta * out[i * dim + j];
                        out[i * dim + j] = value;
                        if (last) out[j * dim + i] = value;
                    }
                }
            }
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
