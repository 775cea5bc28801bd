// Pipelined (Chronopoulos-Gear) preconditioned conjugate gradient for k right-hand sides.
//
// One iteration is: cg_update, the operator product w = (F + lambda I) u, cg_curvature,
// and one read-back of the group partial sums, which the host adds in group order in
// float64 (fixed order: bitwise repeatable). Per column j (vectors one after another):
//   cg_update:    p = u + beta p;  s = w + beta s;  x += alpha p;  r -= alpha s;  u = m o r
//                 partials: r.u, r.r, x.r, x.b      (x.r and x.b give the quadratic model phi)
//   cg_curvature: partials: w.u
// steps[0..k) = 1 for an active column, 0 for a frozen one; steps[k..2k) = alpha,
// steps[2k..3k) = beta: one small write per iteration. A frozen column's vectors are
// neither read nor written, so a column stopped on a NaN cannot spread it.
//
// Host-set defines (besides REAL and USE_FP64, Common.cl):
//   WGS         work-group size, a power of two (default 256)
//   CONTIGUOUS  1: work-item t (t = g*WGS + item over the groups) owns a contiguous run of
//               VW-wide vectors and item t of the elements past the last whole vector
//               (CPUs: PoCL runs a group's items one after another, and explicit vectors
//               give SIMD); 0: item t handles elements t, t + groups*WGS, ... (coalesced GPU
//               access). Default 0.
//   VW          vector width with CONTIGUOUS: 1, 2, 4, 8 or 16 (default 16)
// Launch: global (groups * WGS, k), local (WGS, 1). Partials: [column][group][5], entries
// 0..3 from cg_update and entry 4 from cg_curvature.

#define PARTIALS 5

#ifndef CONTIGUOUS
#define CONTIGUOUS 0
#endif
#ifndef VW
#define VW 16
#endif
#if !CONTIGUOUS || VW == 1
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
#if !CONTIGUOUS || VW == 1
    return v;
#else
    const REAL* lanes = (const REAL*)&v;
    REAL sum = lanes[0];
    for (uint c = 1; c < VW; ++c) sum += lanes[c];
    return sum;
#endif
}

#if CONTIGUOUS
// Vectors [v, end) of work-item t, then (scalar) element tail + t where it exists.
#define FOR_ITEM_VECTORS(v, t, dim, count)                                                   \
    const uint vectors_ = (dim) / VW;                                                        \
    const uint per_ = (vectors_ + (count) - 1) / (count);                                    \
    for (uint v = (t) * per_, end_ = min(vectors_, (t) * per_ + per_); v < end_; ++v)
#define ITEM_TAIL(t, dim) ((dim) / VW * VW + (t))
#endif

__kernel __attribute__((reqd_work_group_size(WGS, 1, 1)))
void cg_update(const uint dim, __global const REAL* steps,
               __global const REAL* preconditioner, const uint preconditioned, __global REAL* p, __global REAL* s,
               __global REAL* x, __global REAL* r, __global REAL* u, __global const REAL* w,
               __global const REAL* b, __global REAL* partials) {
    __local REAL scratch[4 * WGS];
    const uint column = get_global_id(1);
    const uint group = get_group_id(0);
    const uint groups = get_num_groups(0);
    const uint item = get_local_id(0);
    __global REAL* out = partials + ((size_t)column * groups + group) * PARTIALS;
    const uint columns = get_global_size(1);
    // A frozen column reads and writes nothing (its length counts as 0) and reports zero
    // sums. No early return: every item runs the same barriers whatever the data (an
    // early return before the group reduction hung PoCL's cg_curvature at WGS <= 16).
    const uint n = steps[column] == (REAL)0 ? 0 : dim;
    const REAL a = steps[columns + column];
    const REAL bt = steps[2 * columns + column];
    const size_t offset = (size_t)column * dim;
#if CONTIGUOUS
    const uint t = group * WGS + item;
    REALV ruv = (REALV)(0), rrv = (REALV)(0), xrv = (REALV)(0), xbv = (REALV)(0);
    FOR_ITEM_VECTORS(v, t, n, groups * WGS) {
        const REALV pv = VLOAD(v, u + offset) + bt * VLOAD(v, p + offset);
        const REALV sv = VLOAD(v, w + offset) + bt * VLOAD(v, s + offset);
        const REALV xv = VLOAD(v, x + offset) + a * pv;
        const REALV rv = VLOAD(v, r + offset) - a * sv;
        const REALV uv = preconditioned ? VLOAD(v, preconditioner) * rv : rv;
        VSTORE(pv, v, p + offset);
        VSTORE(sv, v, s + offset);
        VSTORE(xv, v, x + offset);
        VSTORE(rv, v, r + offset);
        VSTORE(uv, v, u + offset);
        ruv += rv * uv;
        rrv += rv * rv;
        xrv += xv * rv;
        xbv += xv * VLOAD(v, b + offset);
    }
    REAL ru = lane_sum(ruv), rr = lane_sum(rrv), xr = lane_sum(xrv), xb = lane_sum(xbv);
    // The scalar elements past the last whole vector, one per item in turn (a launch may
    // have fewer items than the tail has elements).
    for (size_t i = ITEM_TAIL(t, n); i < n; i += (size_t)groups * WGS) {
        {
#else
    REAL ru = 0, rr = 0, xr = 0, xb = 0;
    for (size_t i = (size_t)group * WGS + item; i < n; i += (size_t)groups * WGS) {
        {
#endif
            const size_t e = offset + i;
            const REAL pv = u[e] + bt * p[e];
            const REAL sv = w[e] + bt * s[e];
            const REAL xv = x[e] + a * pv;
            const REAL rv = r[e] - a * sv;
            const REAL uv = preconditioned ? preconditioner[i] * rv : rv;
            p[e] = pv;
            s[e] = sv;
            x[e] = xv;
            r[e] = rv;
            u[e] = uv;
            ru += rv * uv;
            rr += rv * rv;
            xr += xv * rv;
            xb += xv * b[e];
        }
    }
    scratch[item] = ru;
    scratch[WGS + item] = rr;
    scratch[2 * WGS + item] = xr;
    scratch[3 * WGS + item] = xb;
    group_sums(scratch, 4);
    if (item == 0) {
        for (uint v = 0; v < 4; ++v) out[v] = scratch[v * WGS];
    }
}

__kernel __attribute__((reqd_work_group_size(WGS, 1, 1)))
void cg_curvature(const uint dim, __global const REAL* steps, __global const REAL* w, __global const REAL* u,
                  __global REAL* partials) {
    __local REAL scratch[WGS];
    const uint column = get_global_id(1);
    const uint group = get_group_id(0);
    const uint groups = get_num_groups(0);
    const uint item = get_local_id(0);
    __global REAL* out = partials + ((size_t)column * groups + group) * PARTIALS + 4;
    const uint n = steps[column] == (REAL)0 ? 0 : dim;  // frozen: as in cg_update
    const size_t offset = (size_t)column * dim;
#if CONTIGUOUS
    const uint t = group * WGS + item;
    REALV wuv = (REALV)(0);
    FOR_ITEM_VECTORS(v, t, n, groups * WGS) { wuv += VLOAD(v, w + offset) * VLOAD(v, u + offset); }
    REAL wu = lane_sum(wuv);
    for (size_t i = ITEM_TAIL(t, n); i < n; i += (size_t)groups * WGS) wu += w[offset + i] * u[offset + i];
#else
    REAL wu = 0;
    for (size_t i = (size_t)group * WGS + item; i < n; i += (size_t)groups * WGS) {
        wu += w[offset + i] * u[offset + i];
    }
#endif
    scratch[item] = wu;
    group_sums(scratch, 1);
    if (item == 0) out[0] = scratch[0];
}
