// Factor rows B_i J_i of the exact Fisher / generalised Gauss-Newton matrix from per-sample
// output Jacobians J_i (outputs x dim, row-major, samples one after another) and an
// analytic square root B_i of the output-space metric (B_i^T B_i = M_i, DESIGN.md
// section 2). One work-item per (column, sample); the output may not alias the input.
//
// Host-set defines: REAL and USE_FP64 (Common.cl).

// Softmax cross-entropy: B = scale (diag(sqrt p) - sqrt(p) p^T), so row c of B J is
// scale sqrt(p_c) (J[c] - sum_c' p_c' J[c']). p holds the probabilities (samples x outputs);
// scale is sqrt(f''(1)) for an f-divergence (1 for KL).
__kernel void softmax_factor(const uint samples, const uint outputs, const uint dim, const REAL scale,
                             __global const REAL* p, __global const REAL* jacobians, __global REAL* u) {
    const size_t column = get_global_id(0);
    const size_t sample = get_global_id(1);
    if (column >= dim || sample >= samples) return;
    __global const REAL* probabilities = p + sample * outputs;
    __global const REAL* jacobian = jacobians + sample * outputs * dim + column;
    REAL mean = 0;
    uint top = 0;
    for (uint c = 0; c < outputs; ++c) {
        mean += probabilities[c] * jacobian[c * dim];
        if (probabilities[c] > probabilities[top]) top = c;
    }
    // For the most probable class J[top] - mean cancels when p_top is near 1 (with J = I it
    // is 1 - p_top); sum_{c != top} p_c (J[top] - J[c]) is the same value without the
    // cancellation. The other classes have p_c <= 1/2, so J[c] - mean keeps its digits.
    REAL topDifference = 0;
    for (uint c = 0; c < outputs; ++c) {
        if (c != top) topDifference += probabilities[c] * (jacobian[top * dim] - jacobian[c * dim]);
    }
    __global REAL* out = u + sample * outputs * dim + column;
    for (uint c = 0; c < outputs; ++c) {
        out[c * dim] = scale * sqrt(probabilities[c]) * (c == top ? topDifference : jacobian[c * dim] - mean);
    }
}

// Bernoulli on the logit (sigmoid): B = scale sqrt(p (1 - p)), one output per sample.
__kernel void bernoulli_factor(const uint samples, const uint dim, const REAL scale, __global const REAL* p,
                               __global const REAL* jacobians, __global REAL* u) {
    const size_t column = get_global_id(0);
    const size_t sample = get_global_id(1);
    if (column >= dim || sample >= samples) return;
    const REAL probability = p[sample];
    const size_t index = sample * dim + column;
    u[index] = scale * sqrt(probability * (1 - probability)) * jacobians[index];
}

// Gaussian mean with fixed standard deviation sigma: B = I / sigma.
__kernel void gaussian_mean_factor(const uint rows, const uint dim, const REAL inverseSigma,
                                   __global const REAL* jacobians, __global REAL* u) {
    const size_t column = get_global_id(0);
    const size_t row = get_global_id(1);
    if (column >= dim || row >= rows) return;
    u[row * dim + column] = inverseSigma * jacobians[row * dim + column];
}

// MARK: Metrics evaluated at the model's outputs z (similarity measures)

// p = softmax(z) per sample, with the largest logit subtracted. One work-item per sample:
// the class counts of classification heads are small.
__kernel void softmax_probabilities(const uint samples, const uint classes, __global const REAL* logits,
                                    __global REAL* p) {
    const size_t sample = get_global_id(0);
    if (sample >= samples) return;
    __global const REAL* z = logits + sample * classes;
    __global REAL* out = p + sample * classes;
    REAL largest = z[0];
    for (uint c = 1; c < classes; ++c) largest = fmax(largest, z[c]);
    REAL sum = 0;
    for (uint c = 0; c < classes; ++c) {
        out[c] = exp(z[c] - largest);
        sum += out[c];
    }
    for (uint c = 0; c < classes; ++c) out[c] /= sum;
}

// scale sqrt(sigmoid(z) sigmoid(-z)) = scale exp(-|z|/2) / (1 + exp(-|z|)): the square root of
// the Bernoulli metric straight from the logit. Through p = sigmoid(z), 1 - p rounds to 0 in
// float32 from |z| of about 17 (and the metric with it); this form keeps full relative
// precision until exp(-|z|/2) underflows.
__kernel void sigmoid_metric_roots(const uint count, const REAL scale, __global const REAL* logits,
                                   __global REAL* roots) {
    const size_t i = get_global_id(0);
    if (i >= count) return;
    const REAL a = fabs(logits[i]);
    roots[i] = scale * exp(-a / 2) / (1 + exp(-a));
}

// Square roots of the diagonal metric of a diagonal Gaussian, z = [mu_1..mu_d, s_1..s_d]
// per sample, s = sigma (parametrization 0), log sigma (1) or sigma^2 (2); measure 0 is KL
// times f''(1) = scale^2, measure 1 is W2^2 (scale ignored). The closed forms are in
// SimilarityMeasure+Metric.swift (gaussianMetric), which the tests compare against.
__kernel void gaussian_metric_roots(const uint samples, const uint d, const uint parametrization, const uint measure,
                                    const REAL scale, __global const REAL* z, __global REAL* roots) {
    const size_t i = get_global_id(0);
    const size_t sample = get_global_id(1);
    if (i >= d || sample >= samples) return;
    const REAL s = z[sample * 2 * d + d + i];
    const REAL root2 = sqrt((REAL)2);
    REAL mean, spread;
    if (measure == 0) {
        if (parametrization == 0) {
            mean = scale / s;
            spread = scale * root2 / s;
        } else if (parametrization == 1) {
            mean = scale * exp(-s);
            spread = scale * root2;
        } else {
            mean = scale / sqrt(s);
            spread = scale / (root2 * s);
        }
    } else {
        mean = root2;
        spread = parametrization == 0 ? root2 : (parametrization == 1 ? root2 * exp(s) : 1 / (root2 * sqrt(s)));
    }
    roots[sample * 2 * d + i] = mean;
    roots[sample * 2 * d + d + i] = spread;
}

// A diagonal root: row r of U is roots[r] times row r of J.
__kernel void diagonal_factor(const uint rows, const uint dim, __global const REAL* roots,
                              __global const REAL* jacobians, __global REAL* u) {
    const size_t column = get_global_id(0);
    const size_t row = get_global_id(1);
    if (column >= dim || row >= rows) return;
    u[row * dim + column] = roots[row] * jacobians[row * dim + column];
}

// A dense root per sample: U_i = B_i J_i with B_i (outputs x outputs, row-major) from the
// host (full-covariance Gaussians, custom measures). One work-item per (column, sample).
__kernel void dense_factor(const uint samples, const uint outputs, const uint dim, __global const REAL* roots,
                           __global const REAL* jacobians, __global REAL* u) {
    const size_t column = get_global_id(0);
    const size_t sample = get_global_id(1);
    if (column >= dim || sample >= samples) return;
    __global const REAL* b = roots + sample * outputs * outputs;
    __global const REAL* jacobian = jacobians + sample * outputs * dim + column;
    __global REAL* out = u + sample * outputs * dim + column;
    for (uint r = 0; r < outputs; ++r) {
        REAL sum = 0;
        for (uint c = 0; c < outputs; ++c) sum += b[r * outputs + c] * jacobian[c * dim];
        out[r * dim] = sum;
    }
}
