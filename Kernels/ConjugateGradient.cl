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
//   WGS    work-group size, a power of two (default 256)
// Launch: global (groups * WGS, k), local (WGS, 1); group g of column j handles elements
// g*WGS + item, stepping by groups*WGS. Partials: [column][group][5], entries 0..3 from
// cg_update and entry 4 from cg_curvature.

#define PARTIALS 5

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
    if (steps[column] == (REAL)0) {
        // Uniform over the work-group (one column per group row), so no barrier is skipped
        // by only some items.
        if (item == 0) out[0] = out[1] = out[2] = out[3] = 0;
        return;
    }
    const REAL a = steps[columns + column];
    const REAL bt = steps[2 * columns + column];
    const size_t offset = (size_t)column * dim;
    REAL ru = 0, rr = 0, xr = 0, xb = 0;
    for (size_t i = (size_t)group * WGS + item; i < dim; i += (size_t)groups * WGS) {
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
    if (steps[column] == (REAL)0) {
        if (item == 0) out[0] = 0;
        return;
    }
    const size_t offset = (size_t)column * dim;
    REAL wu = 0;
    for (size_t i = (size_t)group * WGS + item; i < dim; i += (size_t)groups * WGS) {
        wu += w[offset + i] * u[offset + i];
    }
    scratch[item] = wu;
    group_sums(scratch, 1);
    if (item == 0) out[0] = scratch[0];
}
