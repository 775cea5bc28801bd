// Curvature-vector products for a batch of KB right-hand sides.
//
// Vector batches are KB vectors of length dim stored one after another (vector j of a
// batch starts at j * dim). All reductions run in a fixed order, so results are bitwise
// repeatable on one device.
//
// Host-set defines (besides REAL and USE_FP64, Common.cl):
//   WGS         work-group size of the row-reducing kernels (default 256)
//   VW          vector width of column loops: 1, 2, 4, 8 or 16 (default 8)
//   KB          right-hand sides per launch (default 1)
//   RB          factor rows per block of the implicit product (default 8)
//   CONTIGUOUS  1: each work-item owns a contiguous run of column vectors (CPU caches);
//               0: work-items interleave (coalesced GPU access). Default 0.
//   REVERSE     1 (with CONTIGUOUS): the implicit product's update phase sweeps the columns
//               backwards, so the row lines it re-reads are the ones the dot phase read
//               last, still in L2 when the block and x/y do not all fit. Default 0.

#ifndef VW
#define VW 8
#endif
#ifndef KB
#define KB 1
#endif
#ifndef RB
#define RB 8
#endif
#ifndef CONTIGUOUS
#define CONTIGUOUS 0
#endif
#ifndef REVERSE
#define REVERSE 0
#endif

#if VW == 1
#define REALV REAL
#define VLOAD(offset, pointer) ((pointer)[offset])
#define VSTORE(value, offset, pointer) ((pointer)[offset] = (value))
#else
#define REALV CONCAT(REAL, VW)
#define VLOAD CONCAT(vload, VW)
#define VSTORE CONCAT(vstore, VW)
#endif

// Sum of a vector's lanes in lane order (fixed, so repeatable).
inline REAL lane_sum(const REALV v) {
#if VW == 1
    return v;
#else
    const REAL* lanes = (const REAL*)&v;
    REAL sum = lanes[0];
    for (uint c = 1; c < VW; ++c) sum += lanes[c];
    return sum;
#endif
}

// The column vectors [first, last) that a work-item handles, as a loop over v.
#if CONTIGUOUS
#define PER_ITEM(vectors) (((vectors) + WGS - 1) / WGS)
#define FOR_COLUMN_VECTORS(v, vectors) \
    for (uint v = item * PER_ITEM(vectors), end_ = min((uint)(vectors), v + PER_ITEM(vectors)); v < end_; ++v)
// The same vectors, last item's last vector first (PoCL runs items in order).
#define FOR_COLUMN_VECTORS_REVERSED(v, vectors)                                                          \
    for (uint i_ = (WGS - 1 - item) * PER_ITEM(vectors), e_ = min((uint)(vectors), i_ + PER_ITEM(vectors)), \
              v = e_ - 1; e_ > i_ && v + 1 > i_; --v)
#else
#define FOR_COLUMN_VECTORS(v, vectors) for (uint v = item; v < (vectors); v += WGS)
#endif

// The implicit product's two column loops over one block of rows, with ACTIVE(r) saying
// which of the RB rows exist (`true` for a full block: no guard in the loop).
#define DOT_PHASE(ACTIVE)                                                    \
    FOR_COLUMN_VECTORS(v, vectors) {                                         \
        REALV xs[KB];                                                        \
        _Pragma("unroll") for (uint j = 0; j < KB; ++j) xs[j] = VLOAD(v, x + (size_t)j * dim); \
        _Pragma("unroll") for (uint r = 0; r < RB; ++r) {                    \
            if (ACTIVE) {                                                    \
                const REALV row = VLOAD(v, u + (size_t)(m0 + r) * ldu);      \
                _Pragma("unroll") for (uint j = 0; j < KB; ++j) dots[r][j] += row * xs[j]; \
            }                                                                \
        }                                                                    \
    }
#if REVERSE && CONTIGUOUS
#define UPDATE_COLUMNS(v) FOR_COLUMN_VECTORS_REVERSED(v, vectors)
#else
#define UPDATE_COLUMNS(v) FOR_COLUMN_VECTORS(v, vectors)
#endif
#define UPDATE_PHASE(ACTIVE)                                                 \
    UPDATE_COLUMNS(v) {                                                      \
        REALV sums[KB];                                                      \
        _Pragma("unroll") for (uint j = 0; j < KB; ++j)                      \
            sums[j] = firstBlock ? (REALV)(0) : VLOAD(v, y + (size_t)j * dim); \
        _Pragma("unroll") for (uint r = 0; r < RB; ++r) {                    \
            if (ACTIVE) {                                                    \
                const REALV row = VLOAD(v, u + (size_t)(m0 + r) * ldu);      \
                _Pragma("unroll") for (uint j = 0; j < KB; ++j) sums[j] += coefficients[r * KB + j] * row; \
            }                                                                \
        }                                                                    \
        _Pragma("unroll") for (uint j = 0; j < KB; ++j) VSTORE(sums[j], v, y + (size_t)j * dim); \
    }

// Fused implicit product, stage 1. Work-group g owns factor rows [g * rowsPerGroup,
// min(rows, (g + 1) * rowsPerGroup)) and, for every block of RB of them:
//   t[r][j] = alpha * w[m_r] * (u_{m_r} . x_j)       (dot phase, then a group reduction)
//   partial_g[j] += sum_r t[r][j] * u_{m_r}           (update phase)
// The block's rows are read by the update right after the dot, while they are in cache,
// so U leaves DRAM once per product. partial holds one dim x KB slice per group.
__kernel __attribute__((reqd_work_group_size(WGS, 1, 1)))
void implicit_product_partial(const uint rows, const uint dim, const uint ldu, const uint rowsPerGroup,
                              __global const REAL* u, __global const REAL* w, const uint weighted,
                              const REAL alpha, __global const REAL* x, __global REAL* partial,
                              const uint firstGroup) {
    __local REAL scratch[RB * KB * WGS];
    __local REAL coefficients[RB * KB];
    const uint item = get_local_id(0);
    const uint group = get_group_id(0);
    const uint first = group * rowsPerGroup;
    const uint last = min(rows, first + rowsPerGroup);
    const uint vectors = dim / VW;
    const uint tail = vectors * VW;  // columns [tail, dim) are scalar leftovers
    // A factor split into row pieces runs one launch per piece; each writes its groups'
    // partials after the previous pieces', so the finish adds every group in row order.
    __global REAL* y = partial + (size_t)(firstGroup + group) * dim * KB;

    for (uint m0 = first; m0 < last; m0 += RB) {
        const uint count = min((uint)RB, last - m0);

        // Dot phase: per-item partial dots of RB rows with KB vectors.
        // Loops over RB and KB are unrolled so the accumulators stay in registers; rows
        // past `count` (the last block of a group) are skipped, not loaded.
        REALV dots[RB][KB];
#pragma unroll
        for (uint r = 0; r < RB; ++r)
#pragma unroll
            for (uint j = 0; j < KB; ++j) dots[r][j] = (REALV)(0);
        // A full block (every block but a group's last, where count < RB) takes a copy of
        // the loop without the per-row guard: PoCL's LLVM kept `r < count` as a compare and
        // branch beside every FMA of the unrolled loop (perf annotate). Same arithmetic in
        // the same order, so the results are unchanged bit for bit.
        if (count == RB) {
            DOT_PHASE(true)
        } else {
            DOT_PHASE(r < count)
        }
        // The scalar tail columns [tail, dim) go to items in turn (more than WGS of them
        // when WGS < VW), so every WGS is correct.
        for (uint r = 0; r < RB; ++r) {
            for (uint j = 0; j < KB; ++j) {
                REAL sum = lane_sum(dots[r][j]);
                if (r < count) {
                    for (uint c = tail + item; c < dim; c += WGS) {
                        sum += u[(size_t)(m0 + r) * ldu + c] * x[(size_t)j * dim + c];
                    }
                }
                scratch[(r * KB + j) * WGS + item] = sum;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        // RB * KB coefficients, each item taking every WGS-th (a group may be smaller).
        for (uint e = item; e < RB * KB; e += WGS) {
            const uint r = e / KB;
            REAL sum = 0;
            for (uint i = 0; i < WGS; ++i) sum += scratch[e * WGS + i];
            const REAL weight = r < count && weighted ? w[m0 + r] : (REAL)1;
            coefficients[e] = r < count ? alpha * weight * sum : (REAL)0;
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        // Update phase: partial_g[j] += sum_r t[r][j] u_{m_r}, the rows still in cache.
        const bool firstBlock = m0 == first;
        if (count == RB) {
            UPDATE_PHASE(true)
        } else {
            UPDATE_PHASE(r < count)
        }
        for (uint c = tail + item; c < dim; c += WGS) {
            for (uint j = 0; j < KB; ++j) {
                REAL sum = firstBlock ? (REAL)0 : y[(size_t)j * dim + c];
                for (uint r = 0; r < count; ++r) sum += coefficients[r * KB + j] * u[(size_t)(m0 + r) * ldu + c];
                y[(size_t)j * dim + c] = sum;
            }
        }
        // The next block rewrites scratch only after its own first barrier, and every
        // item has finished reading coefficients before it reaches that barrier.
    }
}

// Fused implicit product, stage 2: y = sum_g partial_g + lambda x, over groups in order.
// A group that owned no rows (rows < groups * rowsPerGroup) is not summed.
__kernel void implicit_product_finish(const uint dim, const uint groups, __global const REAL* partial,
                                      const REAL lambda, __global const REAL* x, __global REAL* y) {
    const size_t index = get_global_id(0);
    if (index >= (size_t)dim * KB) return;
    REAL sum = 0;
    for (uint g = 0; g < groups; ++g) sum += partial[(size_t)g * dim * KB + index];
    y[index] = sum + lambda * x[index];
}

// Block-diagonal dense product: for every block b (blocks[DENSE_FIELDS b + DENSE_<field>] =
// OFFSET, SIZE, F_OFFSET: DenseBlockField in DescriptorLayout.swift), y_j[offset + i] = sum_c F_b[i][c] x_j[offset + c] + lambda x_j[offset + i].
// Memory-bound: every matrix element is read once for all KB vectors. One work-group per
// (block, first row) task (tasks[2 t + 0..1]) owns DRB consecutive rows of the block; its
// DWGS items split the columns in VW-wide vectors (contiguous runs per item on CPUs,
// interleaved on GPUs, as CONTIGUOUS says), each loading the KB x vectors once for all DRB
// rows, then the group sums each (row, vector) in a fixed order. A dense matrix is one
// block. DRB and DWGS are this kernel's own tunables (defaults 4 and WGS), so it can use
// short groups on CPUs where a row is only a few kilobytes.
#ifndef DRB
#define DRB 4
#endif
#ifndef DWGS
#define DWGS WGS
#endif
#if CONTIGUOUS
#define DENSE_PER_ITEM(vectors) (((vectors) + DWGS - 1) / DWGS)
#define FOR_DENSE_VECTORS(v, vectors) \
    for (uint v = item * DENSE_PER_ITEM(vectors), end_ = min((uint)(vectors), v + DENSE_PER_ITEM(vectors)); v < end_; ++v)
#else
#define FOR_DENSE_VECTORS(v, vectors) for (uint v = item; v < (vectors); v += DWGS)
#endif
__kernel __attribute__((reqd_work_group_size(DWGS, 1, 1)))
void block_dense_product(const uint dim, __global const uint* tasks, __global const ulong* blocks,
                         __global const REAL* f, const REAL lambda, __global const REAL* x, __global REAL* y) {
    __local REAL scratch[DRB * KB * DWGS];
    const uint item = get_local_id(0);
    const uint task = get_group_id(0);
    __global const ulong* block = blocks + DENSE_FIELDS * tasks[2 * task];
    const uint i0 = tasks[2 * task + 1];
    const ulong offset = block[DENSE_OFFSET];
    const uint size = (uint)block[DENSE_SIZE];
    const uint count = min((uint)DRB, size - i0);
    // Rows past the block's end (count < DRB) re-read its last row; their sums are dropped.
    __global const REAL* rows[DRB];
#pragma unroll
    for (uint r = 0; r < DRB; ++r) rows[r] = f + block[DENSE_F_OFFSET] + (size_t)min(i0 + r, size - 1) * size;
    __global const REAL* xs = x + offset;
    const uint vectors = size / VW;
    const uint tail = vectors * VW;

    REALV dots[DRB][KB];
#pragma unroll
    for (uint r = 0; r < DRB; ++r) {
#pragma unroll
        for (uint j = 0; j < KB; ++j) dots[r][j] = (REALV)(0);
    }
    FOR_DENSE_VECTORS(v, vectors) {
        REALV xv[KB];
#pragma unroll
        for (uint j = 0; j < KB; ++j) xv[j] = VLOAD(v, xs + (size_t)j * dim);
#pragma unroll
        for (uint r = 0; r < DRB; ++r) {
            const REALV values = VLOAD(v, rows[r]);
#pragma unroll
            for (uint j = 0; j < KB; ++j) dots[r][j] += values * xv[j];
        }
    }
    for (uint r = 0; r < DRB; ++r) {
        for (uint j = 0; j < KB; ++j) {
            REAL sum = lane_sum(dots[r][j]);
            for (uint c = tail + item; c < size; c += DWGS) sum += rows[r][c] * xs[(size_t)j * dim + c];
            scratch[(r * KB + j) * DWGS + item] = sum;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint e = item; e < DRB * KB; e += DWGS) {
        const uint r = e / KB, j = e % KB;
        if (r < count) {
            REAL sum = 0;
            for (uint k = 0; k < DWGS; ++k) sum += scratch[e * DWGS + k];
            const size_t index = (size_t)j * dim + offset + i0 + r;
            y[index] = sum + lambda * x[index];
        }
    }
}

// Diagonal product: y_j[c] = (d[c] + lambda) x_j[c] for all `total` = dim * vectors elements.
__kernel void diagonal_product(const uint dim, const ulong total, __global const REAL* d, const REAL lambda,
                               __global const REAL* x, __global REAL* y) {
    const size_t index = get_global_id(0);
    if (index >= total) return;
    y[index] = (d[index % dim] + lambda) * x[index];
}

// y[first + i] = alpha * (A_i . x) for the rows of a rows x cols row-major matrix A: one
// work-group per row, items splitting the columns, a fixed-order reduction (the Woodbury
// solver's U b; `first` places a row piece of a split U).
__kernel __attribute__((reqd_work_group_size(WGS, 1, 1)))
void row_dots(const uint cols, __global const REAL* a, __global const REAL* x, const REAL alpha,
              __global REAL* y, const uint first) {
    __local REAL scratch[WGS];
    const uint item = get_local_id(0);
    const size_t i = get_group_id(0);
    __global const REAL* row = a + i * cols;
    const uint vectors = cols / VW;
    const uint tail = vectors * VW;
    REALV dots = (REALV)(0);
    FOR_COLUMN_VECTORS(v, vectors) { dots += VLOAD(v, row) * VLOAD(v, x); }
    REAL sum = lane_sum(dots);
    for (uint c = tail + item; c < cols; c += WGS) sum += row[c] * x[c];
    scratch[item] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (item == 0) {
        REAL total = 0;
        for (uint k = 0; k < WGS; ++k) total += scratch[k];
        y[first + i] = alpha * total;
    }
}

// v[c] = sum_m coefficients[m] U[m][c] for the rows x dim row-major U (that is, U^T c):
// one work-item per column, so a work-group reads each row contiguously. With the Woodbury
// solver's coefficients this is U~^T z without a transposed copy of U.
__kernel void column_combination(const uint rows, const uint dim, __global const REAL* u,
                                 __global const REAL* coefficients, __global REAL* v, const uint accumulate) {
    const size_t c = get_global_id(0);
    if (c >= dim) return;
    // accumulate: continue the sum of the previous row pieces of a split U, so the result
    // is bitwise the one sequential sum over all rows.
    REAL sum = accumulate ? v[c] : (REAL)0;
    for (uint m = 0; m < rows; ++m) sum += coefficients[m] * u[(size_t)m * dim + c];
    v[c] = sum;
}
