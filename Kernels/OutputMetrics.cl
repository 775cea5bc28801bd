// Factor rows B_i J_i of the exact Fisher / generalised Gauss-Newton matrix from per-sample
// output Jacobians J_i (outputs x dim, row-major, samples one after another) and an
// analytic square root B_i of the output-space metric (B_i^T B_i = M_i, DESIGN.md
// section 2). One work-item per (column, sample); the output may not alias the input.
//
// Host-set defines: REAL and USE_FP64 (Common.cl).

// Softmax cross-entropy: B = diag(sqrt p) - sqrt(p) p^T, so row c of B J is
// sqrt(p_c) (J[c] - sum_c' p_c' J[c']). p holds the probabilities (samples x outputs).
__kernel void softmax_factor(const uint samples, const uint outputs, const uint dim, __global const REAL* p,
                             __global const REAL* jacobians, __global REAL* u) {
    const size_t column = get_global_id(0);
    const size_t sample = get_global_id(1);
    if (column >= dim || sample >= samples) return;
    __global const REAL* probabilities = p + sample * outputs;
    __global const REAL* jacobian = jacobians + sample * outputs * dim + column;
    REAL mean = 0;
    for (uint c = 0; c < outputs; ++c) mean += probabilities[c] * jacobian[c * dim];
    __global REAL* out = u + sample * outputs * dim + column;
    for (uint c = 0; c < outputs; ++c) out[c * dim] = sqrt(probabilities[c]) * (jacobian[c * dim] - mean);
}

// Bernoulli on the logit (sigmoid): B = sqrt(p (1 - p)), one output per sample.
__kernel void bernoulli_factor(const uint samples, const uint dim, __global const REAL* p,
                               __global const REAL* jacobians, __global REAL* u) {
    const size_t column = get_global_id(0);
    const size_t sample = get_global_id(1);
    if (column >= dim || sample >= samples) return;
    const REAL probability = p[sample];
    const size_t index = sample * dim + column;
    u[index] = sqrt(probability * (1 - probability)) * jacobians[index];
}

// Gaussian mean with fixed standard deviation sigma: B = I / sigma.
__kernel void gaussian_mean_factor(const uint rows, const uint dim, const REAL inverseSigma,
                                   __global const REAL* jacobians, __global REAL* u) {
    const size_t column = get_global_id(0);
    const size_t row = get_global_id(1);
    if (column >= dim || row >= rows) return;
    u[row * dim + column] = inverseSigma * jacobians[row * dim + column];
}
