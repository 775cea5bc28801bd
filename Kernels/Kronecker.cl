// Kronecker-factored products, batched over layers: for each layer l with factors
// G_l (rows x rows) and A_l (cols x cols) and the layer's slice V_l (rows x cols,
// row-major) of each of the KB parameter vectors,
//   Y_l = (G_l + gammaG_l I) V_l (A_l + gammaA_l I)
// which is ((G + gammaG I) kron (A + gammaA I)) vec(V) under row-major vec (DESIGN.md
// sections 2 and 5).
//
// Both stages are one operation, C = (S + gamma I) R^T, with S a symmetric K x K factor,
// R an N x K row-major matrix and C a K x N row-major result:
//   right: S = A_l, R = V_l (N = rows, K = cols), C = T_l^T, the transposed intermediate;
//   left:  S = G_l, R = T_l^T (N = cols, K = rows), C = Y_l.
// Writing T transposed makes both operands of both stages contiguous along the summed
// index k (S is symmetric, so its rows are its columns): every inner loop streams rows.
//
// Work decomposition (CLBlast's xgemm shape): a work-group computes a TM x TN tile of C,
// TM = WGY RM and TN = WGX RN; each work-item an RM x RN register tile. Groups of all
// layers form one launch (dimension 0); a layer's groups start at its descriptor's
// firstGroup and run down the tile rows first, so consecutive groups share the R rows of
// one tile column (they stay in cache). Dimension 1 is the vector.
//   LOCAL_TILES 0 (CPUs): each item streams its RM rows of S and RN rows of R from global
//     memory in VW-wide vectors along k (RM x RN vector accumulators, lane sums at the
//     end). No local memory, no barriers. Items own contiguous rows and columns.
//   LOCAL_TILES 1 (GPUs): the group stages KT-long slices of its TM rows of S and TN rows
//     of R in local memory (coalesced loads along k, stored k-major), then each item
//     accumulates RM x RN scalars; items own interleaved rows and columns (bank-conflict
//     free local reads, coalesced stores).
// Every size is handled: rows and columns past the edge are clamped on load and masked on
// store; the k tail past the last full vector (or slice) is summed separately / zeroed.
//
// layers[LAYER_FIELDS l + LAYER_<field>]: KroneckerLayerField (DescriptorLayout.swift), the
// indices passed as defines: V_OFFSET (the layer's start in each vector), ROWS, COLS,
// G_OFFSET, A_OFFSET, and RIGHT_GROUP / LEFT_GROUP (its first group in each launch);
// dampings[2 l + 0..1] = gammaG, gammaA.
// Global size: (groups of all layers * WGX * WGY, vectors); local size (WGX * WGY, 1).
//
// Host-set defines (besides REAL and USE_FP64, Common.cl):
//   LOCAL_TILES  0: register tiles from global memory (CPU); 1: local-memory tiles (GPU)
//   RM, RN       register tile of a work-item (default 4 x 4)
//   WGX, WGY     work-items of a group along C's columns and rows (default 16 x 16)
//   VW           vector width along k when LOCAL_TILES is 0: 2, 4, 8 or 16 (default 16)
//   KT           k-slice staged in local memory when LOCAL_TILES is 1 (default 16)

#ifndef LOCAL_TILES
#define LOCAL_TILES 1
#endif
#ifndef RM
#define RM 4
#endif
#ifndef RN
#define RN 4
#endif
#ifndef WGX
#define WGX 16
#endif
#ifndef WGY
#define WGY 16
#endif
#ifndef VW
#define VW 16
#endif
#ifndef KT
#define KT 16
#endif

#define TM (WGY * RM)
#define TN (WGX * RN)
#define ITEMS (WGX * WGY)
#define REALV CONCAT(REAL, VW)
#define VLOAD CONCAT(vload, VW)

// The layer whose groups include `group`: the last l with layers[LAYER_FIELDS l + field] <= group.
inline uint find_layer(const uint layerCount, __global const ulong* layers, const ulong group, const uint field) {
    uint lo = 0, hi = layerCount;
    while (hi - lo > 1) {
        const uint mid = (lo + hi) / 2;
        if (layers[LAYER_FIELDS * mid + field] <= group) lo = mid; else hi = mid;
    }
    return lo;
}

// C[m][n] = sum_k S[m][k] R[n][k] + gamma R[n][m] for the tile `tile` (tile rows first) of
// the K x N result. S: K x K, R: N x K, both with row stride K; C with row stride N.
inline void symmetric_nt_tile(const ulong K, const ulong N, __global const REAL* s, __global const REAL* r,
                              const REAL gamma, __global REAL* c, const ulong tile,
                              __local REAL* sTile, __local REAL* rTile) {
    const uint item = get_local_id(0);
    const uint lx = item % WGX, ly = item / WGX;
    const ulong tilesM = (K + TM - 1) / TM;
    const ulong tm = tile % tilesM, tn = tile / tilesM;
    REAL sums[RM][RN];
#if LOCAL_TILES
    // Item (lx, ly) owns rows tm TM + i WGY + ly and columns tn TN + j WGX + lx.
#pragma unroll
    for (uint i = 0; i < RM; ++i) {
#pragma unroll
        for (uint j = 0; j < RN; ++j) sums[i][j] = 0;
    }
    for (ulong k0 = 0; k0 < K; k0 += KT) {
        for (uint e = item; e < TM * KT; e += ITEMS) {
            const uint row = e / KT, kk = e % KT;
            const ulong m = tm * TM + row, k = k0 + kk;
            sTile[kk * TM + row] = (m < K && k < K) ? s[m * K + k] : (REAL)0;
        }
        for (uint e = item; e < TN * KT; e += ITEMS) {
            const uint row = e / KT, kk = e % KT;
            const ulong n = tn * TN + row, k = k0 + kk;
            rTile[kk * TN + row] = (n < N && k < K) ? r[n * K + k] : (REAL)0;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint kk = 0; kk < KT; ++kk) {
            REAL sv[RM], rv[RN];
#pragma unroll
            for (uint i = 0; i < RM; ++i) sv[i] = sTile[kk * TM + i * WGY + ly];
#pragma unroll
            for (uint j = 0; j < RN; ++j) rv[j] = rTile[kk * TN + j * WGX + lx];
#pragma unroll
            for (uint i = 0; i < RM; ++i) {
#pragma unroll
                for (uint j = 0; j < RN; ++j) sums[i][j] += sv[i] * rv[j];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (uint i = 0; i < RM; ++i) {
        const ulong m = tm * TM + i * WGY + ly;
        if (m >= K) continue;
        for (uint j = 0; j < RN; ++j) {
            const ulong n = tn * TN + j * WGX + lx;
            if (n < N) c[m * N + n] = sums[i][j] + gamma * r[n * K + m];
        }
    }
#else
    // Item (lx, ly) owns rows tm TM + ly RM + i and columns tn TN + lx RN + j.
    const ulong m0 = tm * TM + ly * RM, n0 = tn * TN + lx * RN;
    if (m0 >= K || n0 >= N) return;
    __global const REAL* sRows[RM];
    __global const REAL* rRows[RN];
#pragma unroll
    for (uint i = 0; i < RM; ++i) sRows[i] = s + min(m0 + i, K - 1) * K;
#pragma unroll
    for (uint j = 0; j < RN; ++j) rRows[j] = r + min(n0 + j, N - 1) * K;
    // Fully unrolled so that the RM x RN accumulators stay in registers (see
    // FisherAccumulation.cl: without it LLVM for PoCL kept them on the stack).
    REALV acc[RM][RN];
#pragma unroll
    for (uint i = 0; i < RM; ++i) {
#pragma unroll
        for (uint j = 0; j < RN; ++j) acc[i][j] = (REALV)(0);
    }
    const ulong vectors = K / VW;
    for (ulong v = 0; v < vectors; ++v) {
        REALV sv[RM], rv[RN];
#pragma unroll
        for (uint i = 0; i < RM; ++i) sv[i] = VLOAD(v, sRows[i]);
#pragma unroll
        for (uint j = 0; j < RN; ++j) rv[j] = VLOAD(v, rRows[j]);
#pragma unroll
        for (uint i = 0; i < RM; ++i) {
#pragma unroll
            for (uint j = 0; j < RN; ++j) acc[i][j] += sv[i] * rv[j];
        }
    }
#pragma unroll
    for (uint i = 0; i < RM; ++i) {
#pragma unroll
        for (uint j = 0; j < RN; ++j) {
            const REAL* lanes = (const REAL*)&acc[i][j];
            REAL sum = lanes[0];
            for (uint l = 1; l < VW; ++l) sum += lanes[l];
            for (ulong k = vectors * VW; k < K; ++k) sum += sRows[i][k] * rRows[j][k];
            sums[i][j] = sum;
        }
    }
    for (uint i = 0; i < RM; ++i) {
        const ulong m = m0 + i;
        if (m >= K) break;
        for (uint j = 0; j < RN; ++j) {
            const ulong n = n0 + j;
            if (n < N) c[m * N + n] = sums[i][j] + gamma * r[n * K + m];
        }
    }
#endif
}

// One stage for the work-group's layer: C = (S + gamma I) R^T with S the layer's G (left,
// rows x rows) or A (right, cols x cols). Descriptor field RIGHT_GROUP or LEFT_GROUP holds the
// layer's first group in that stage's launch. Whole groups leave together (the same
// condition for every item), before any barrier.
inline void kronecker_stage(const uint left, const uint dim, const uint layerCount, __global const ulong* layers,
                            __global const REAL* dampings, __global const REAL* factors, __global const REAL* r,
                            __global REAL* c, __local REAL* sTile, __local REAL* rTile) {
    const uint groupField = left ? LAYER_LEFT_GROUP : LAYER_RIGHT_GROUP;
    const ulong group = get_group_id(0);
    const uint layer = find_layer(layerCount, layers, group, groupField);
    __global const ulong* d = layers + LAYER_FIELDS * layer;
    const ulong m = left ? d[LAYER_ROWS] : d[LAYER_COLS], n = left ? d[LAYER_COLS] : d[LAYER_ROWS];
    const ulong tile = group - d[groupField];
    if (tile >= ((m + TM - 1) / TM) * ((n + TN - 1) / TN)) return;
    const size_t base = (size_t)get_global_id(1) * dim + d[LAYER_V_OFFSET];
    symmetric_nt_tile(m, n, factors + d[left ? LAYER_G_OFFSET : LAYER_A_OFFSET], r + base, dampings[2 * layer + (left ? 0 : 1)], c + base, tile,
                      sTile, rTile);
}

// Local tiles must be declared at kernel scope (OpenCL C 1.2), so each stage's kernel
// declares them and hands them to kronecker_stage.
#if LOCAL_TILES
#define KRONECKER_TILES \
    __local REAL sTile[TM * KT]; \
    __local REAL rTile[TN * KT];
#else
#define KRONECKER_TILES \
    __local REAL* sTile = 0; \
    __local REAL* rTile = 0;
#endif

// T_l^T = (A_l + gammaA I) V_l^T, stored transposed (cols x rows) in t.
__kernel __attribute__((reqd_work_group_size(ITEMS, 1, 1)))
void kronecker_right(const uint dim, const uint layerCount, __global const ulong* layers,
                     __global const REAL* dampings, __global const REAL* factors, __global const REAL* v,
                     __global REAL* t) {
    KRONECKER_TILES
    kronecker_stage(0, dim, layerCount, layers, dampings, factors, v, t, sTile, rTile);
}

// Y_l = (G_l + gammaG I) T_l, from T_l^T as kronecker_right left it.
__kernel __attribute__((reqd_work_group_size(ITEMS, 1, 1)))
void kronecker_left(const uint dim, const uint layerCount, __global const ulong* layers,
                    __global const REAL* dampings, __global const REAL* factors, __global const REAL* t,
                    __global REAL* y) {
    KRONECKER_TILES
    kronecker_stage(1, dim, layerCount, layers, dampings, factors, t, y, sTile, rTile);
}
