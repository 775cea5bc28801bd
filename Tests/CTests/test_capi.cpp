// Tests of the C ABI (naturalgradient.h), written the way a C++ framework binds it: RAII
// owners over the handles, std::vector buffers, std::thread for concurrency. Every result is
// checked against a float64 host reference on random data at awkward sizes; outputs are
// poisoned with NaN first so an unwritten element fails. Every error path checks the status
// code and that ng_last_error() names the argument.
//
// Build and run: scripts/test-c.sh (part of scripts/test.sh).
#include "naturalgradient.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

int failures = 0;
int checks = 0;

void expect(bool condition, const std::string &what) {
    ++checks;
    if (!condition) {
        ++failures;
        std::fprintf(stderr, "FAIL: %s (last error: %s)\n", what.c_str(), ng_last_error());
    }
}

// Calls that must succeed; a failure aborts the test, printing the library's message.
void ok(ng_status status, const char *call) {
    if (status != NG_OK) {
        std::fprintf(stderr, "FATAL: %s returned %d: %s\n", call, status, ng_last_error());
        std::exit(1);
    }
}
#define OK(call) ok((call), #call)

// An error path: the status and that the message names `argument`.
void expect_error(ng_status status, ng_status expected, const char *argument, const std::string &what) {
    ++checks;
    std::string message = ng_last_error();
    if (status != expected || message.find(argument) == std::string::npos) {
        ++failures;
        std::fprintf(stderr, "FAIL: %s: status %d (expected %d), message '%s' (expected to name '%s')\n",
                     what.c_str(), status, expected, message.c_str(), argument);
    }
}

// Owns one handle, releasing it at scope exit (what a C++ binding would do).
struct Handle {
    ng_handle value = 0;
    Handle() = default;
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;
    ~Handle() {
        if (value != 0) ng_release(value);
    }
    ng_handle *out() { return &value; }
    operator ng_handle() const { return value; }
};

const double nan_value = std::numeric_limits<double>::quiet_NaN();

std::vector<double> random_vector(std::mt19937_64 &rng, size_t n) {
    std::normal_distribution<double> normal;
    std::vector<double> v(n);
    for (auto &x : v) x = normal(rng);
    return v;
}

double relative_error(const std::vector<double> &a, const std::vector<double> &b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return std::sqrt(num / (den > 0 ? den : 1));
}

// F = (1/N) U^T diag(w) U, dense P x P.
std::vector<double> reference_fisher(const std::vector<double> &u, const std::vector<double> &w, int64_t m,
                                     int64_t p, int64_t n) {
    std::vector<double> f(p * p, 0.0);
    for (int64_t r = 0; r < m; ++r)
        for (int64_t i = 0; i < p; ++i)
            for (int64_t j = 0; j < p; ++j) f[i * p + j] += w[r] * u[r * p + i] * u[r * p + j] / double(n);
    return f;
}

// y = (A + l I) x for k vectors, A dense P x P.
std::vector<double> reference_apply(const std::vector<double> &a, const std::vector<double> &x, int64_t p,
                                    int64_t k, double damping) {
    std::vector<double> y(p * k, 0.0);
    for (int64_t c = 0; c < k; ++c)
        for (int64_t i = 0; i < p; ++i) {
            double s = damping * x[c * p + i];
            for (int64_t j = 0; j < p; ++j) s += a[i * p + j] * x[c * p + j];
            y[c * p + i] = s;
        }
    return y;
}

void test_library_and_devices() {
    expect(ng_abi_version() == NG_ABI_VERSION, "ABI version matches the header");
    expect(std::strlen(ng_version()) > 0, "version string");
    char *json = nullptr;
    OK(ng_devices_json(&json));
    expect(json != nullptr && json[0] == '[' && std::strstr(json, "\"name\"") != nullptr, "devices JSON lists devices");
    ng_free(json);
    expect_error(ng_devices_json(nullptr), NG_ERROR_NULL_POINTER, "json", "devices JSON into NULL");
    Handle context;
    expect_error(ng_context_create("no-such-device-xyz", context.out()), NG_ERROR_DEVICE, "no-such-device-xyz",
                 "unknown device selector");
}

void test_representations(ng_context context) {
    std::mt19937_64 rng(7);
    const int64_t m = 7, p = 33, n = 7, k = 3;
    const double damping = 0.37;
    auto u = random_vector(rng, m * p);
    std::vector<double> w(m);
    for (int64_t i = 0; i < m; ++i) w[i] = 0.25 + 0.5 * double(i) / double(m);
    auto x = random_vector(rng, p * k);
    auto f = reference_fisher(u, w, m, p, n);
    auto want = reference_apply(f, x, p, k, damping);

    Handle factor;
    OK(ng_factor_create(context, NG_FLOAT64, u.data(), m, p, n, w.data(), factor.out()));
    int64_t rows = 0, dimension = 0, samples = 0;
    ng_dtype dtype = 0;
    OK(ng_factor_info(factor, &dtype, &rows, &dimension, &samples));
    expect(dtype == NG_FLOAT64 && rows == m && dimension == p && samples == n, "factor info");

    Handle implicit, dense, diagonal, blocks;
    OK(ng_curvature_implicit(factor, implicit.out()));
    OK(ng_curvature_dense(factor, dense.out()));
    OK(ng_curvature_diagonal(factor, diagonal.out()));
    const int64_t sizes[] = {1, 25, 7};
    OK(ng_curvature_block_diagonal(factor, sizes, 3, blocks.out()));

    double trace_want = 0;
    for (int64_t i = 0; i < p; ++i) trace_want += f[i * p + i];

    for (ng_curvature c : {ng_curvature(implicit), ng_curvature(dense)}) {
        std::vector<double> y(p * k, nan_value);
        OK(ng_curvature_apply(c, NG_FLOAT64, x.data(), p, k, damping, y.data()));
        expect(relative_error(y, want) < 1e-12, "implicit/dense apply matches (F + lI) X");
        double trace = 0;
        OK(ng_curvature_trace(c, &trace));
        expect(std::fabs(trace - trace_want) < 1e-12 * std::fabs(trace_want), "trace");
        std::vector<double> d(p, nan_value), d_want(p);
        for (int64_t i = 0; i < p; ++i) d_want[i] = f[i * p + i];
        OK(ng_curvature_diagonal_values(c, NG_FLOAT64, d.data(), p));
        expect(relative_error(d, d_want) < 1e-12, "diagonal");
    }

    // Diagonal and block-diagonal: the reference keeps only those entries of F.
    std::vector<double> f_diagonal(p * p, 0.0), f_blocks(p * p, 0.0);
    for (int64_t i = 0; i < p; ++i) f_diagonal[i * p + i] = f[i * p + i];
    int64_t start = 0;
    for (int64_t size : sizes) {
        for (int64_t i = start; i < start + size; ++i)
            for (int64_t j = start; j < start + size; ++j) f_blocks[i * p + j] = f[i * p + j];
        start += size;
    }
    std::vector<double> y(p * k, nan_value);
    OK(ng_curvature_apply(diagonal, NG_FLOAT64, x.data(), p, k, damping, y.data()));
    expect(relative_error(y, reference_apply(f_diagonal, x, p, k, damping)) < 1e-12, "diagonal apply");
    std::fill(y.begin(), y.end(), nan_value);
    OK(ng_curvature_apply(blocks, NG_FLOAT64, x.data(), p, k, damping, y.data()));
    expect(relative_error(y, reference_apply(f_blocks, x, p, k, damping)) < 1e-12, "block-diagonal apply");

    // In place: y may be x.
    std::vector<double> in_place = x;
    OK(ng_curvature_apply(implicit, NG_FLOAT64, in_place.data(), p, k, damping, in_place.data()));
    expect(relative_error(in_place, want) < 1e-12, "apply in place (y = x)");

    int32_t kind = 0;
    OK(ng_curvature_info(blocks, &kind, &dtype, &dimension));
    expect(kind == NG_CURVATURE_BLOCK_DIAGONAL && dtype == NG_FLOAT64 && dimension == p, "curvature info");

    // Every solver: the residual of x against the host's (F + lI).
    struct Case {
        ng_curvature curvature;
        int32_t method;
        const std::vector<double> *matrix;
    };
    const Case cases[] = {
        {implicit, NG_METHOD_WOODBURY, &f}, {implicit, NG_METHOD_CG, &f},         {implicit, NG_METHOD_PCG, &f},
        {dense, NG_METHOD_CHOLESKY, &f},    {dense, NG_METHOD_AUTO, &f},          {diagonal, NG_METHOD_PCG, &f_diagonal},
        {blocks, NG_METHOD_CG, &f_blocks},
    };
    for (const Case &test : cases) {
        ng_solve_options options;
        OK(ng_solve_options_init(&options));
        options.method = test.method;
        options.tolerance = 1e-10;
        std::vector<double> solution(p * k, nan_value);
        std::vector<ng_column_report> reports(k);
        ng_solve_info info;
        OK(ng_solve(test.curvature, NG_FLOAT64, x.data(), p, k, damping, &options, solution.data(), reports.data(), k,
                    &info));
        auto back = reference_apply(*test.matrix, solution, p, k, damping);
        expect(relative_error(back, x) < 1e-8, "solve residual, method " + std::to_string(test.method));
        expect(info.method != NG_METHOD_AUTO, "the method that ran is reported");
        for (const auto &report : reports)
            expect(report.status == NG_SOLVE_CONVERGED && report.relative_residual < 1e-8, "column report");
    }
}

void test_kronecker(ng_context context) {
    std::mt19937_64 rng(11);
    const int64_t n = 9, in = 5, out = 3, p = in * out;
    auto a = random_vector(rng, n * in), g = random_vector(rng, n * out);
    ng_kfac_layer layer = {a.data(), g.data(), in, out};
    Handle kronecker;
    OK(ng_curvature_kronecker(context, NG_FLOAT64, &layer, 1, n, nullptr, kronecker.out()));
    // A = (1/N) sum a a^T, G = (1/N) sum g g^T; (G (x) A) vec(V) = vec(G V A), row-major.
    std::vector<double> A(in * in, 0), G(out * out, 0);
    for (int64_t s = 0; s < n; ++s) {
        for (int64_t i = 0; i < in; ++i)
            for (int64_t j = 0; j < in; ++j) A[i * in + j] += a[s * in + i] * a[s * in + j] / n;
        for (int64_t i = 0; i < out; ++i)
            for (int64_t j = 0; j < out; ++j) G[i * out + j] += g[s * out + i] * g[s * out + j] / n;
    }
    auto v = random_vector(rng, p);
    std::vector<double> want(p, 0.0);
    for (int64_t r = 0; r < out; ++r)
        for (int64_t c = 0; c < in; ++c)
            for (int64_t i = 0; i < out; ++i)
                for (int64_t j = 0; j < in; ++j) want[r * in + c] += G[r * out + i] * v[i * in + j] * A[j * in + c];
    std::vector<double> y(p, nan_value);
    OK(ng_curvature_apply(kronecker, NG_FLOAT64, v.data(), p, 1, 0.0, y.data()));
    expect(relative_error(y, want) < 1e-12, "Kronecker apply is vec(G V A)");
    // K-FAC solve inverts its own (factored-damping) operator: applying it back gives g.
    std::vector<double> x(p, nan_value), back(p, nan_value);
    ng_column_report report;
    ng_solve_options options;
    OK(ng_solve_options_init(&options));
    OK(ng_solve(kronecker, NG_FLOAT64, v.data(), p, 1, 0.1, &options, x.data(), &report, 1, nullptr));
    OK(ng_curvature_apply(kronecker, NG_FLOAT64, x.data(), p, 1, 0.1, back.data()));
    expect(relative_error(back, v) < 1e-10, "K-FAC solve inverts the damped Kronecker operator");
}

// EKFAC: S is the diagonal of the exact empirical Fisher in the returned Kronecker
// eigenbasis; apply is K diag(S + l) K^T; the solve inverts it; the error paths.
void test_ekfac(ng_context context) {
    std::mt19937_64 rng(13);
    const int64_t n = 13;
    const int64_t outs[2] = {5, 3}, ins[2] = {7, 4};  // the inputs count the bias column
    std::vector<double> acts[2], grads[2];
    ng_kfac_layer layers[2];
    int64_t p = 0;
    for (int l = 0; l < 2; ++l) {
        acts[l] = random_vector(rng, n * ins[l]);
        for (int64_t s = 0; s < n; ++s) acts[l][s * ins[l] + ins[l] - 1] = 1.0;
        grads[l] = random_vector(rng, n * outs[l]);
        layers[l] = {acts[l].data(), grads[l].data(), ins[l], outs[l]};
        p += ins[l] * outs[l];
    }
    Handle ekfac;
    OK(ng_curvature_ekfac(context, NG_FLOAT64, layers, 2, n, nullptr, ekfac.out()));
    int32_t kind = 0;
    OK(ng_curvature_info(ekfac, &kind, nullptr, nullptr));
    expect(kind == NG_CURVATURE_EKFAC, "EKFAC kind");
    const double damping = 0.05;
    auto v = random_vector(rng, p);
    std::vector<double> want(p, 0.0), eigen_all;
    int64_t offset = 0;
    for (int l = 0; l < 2; ++l) {
        const int64_t in = ins[l], out = outs[l], pl = in * out;
        std::vector<double> qa(in * in, nan_value), qg(out * out, nan_value), s(pl, nan_value);
        OK(ng_ekfac_eigenbasis(ekfac, l, qa.data(), in * in, qg.data(), out * out));
        OK(ng_ekfac_eigenvalues(ekfac, l, s.data(), pl));
        double orthogonality = 0;
        for (int64_t r = 0; r < in; ++r)
            for (int64_t c = 0; c < in; ++c) {
                double dot = 0;
                for (int64_t i = 0; i < in; ++i) dot += qa[i * in + r] * qa[i * in + c];
                orthogonality = std::fmax(orthogonality, std::fabs(dot - (r == c ? 1.0 : 0.0)));
            }
        expect(orthogonality < 1e-12, "EKFAC Q_A is orthonormal");
        // Per-sample gradient in the basis: (Q_G^T g)_k (Q_A^T a)_j; S = mean of its square.
        std::vector<double> want_s(pl, 0.0);
        for (int64_t smp = 0; smp < n; ++smp)
            for (int64_t k = 0; k < out; ++k) {
                double gk = 0;
                for (int64_t o = 0; o < out; ++o) gk += qg[o * out + k] * grads[l][smp * out + o];
                for (int64_t j = 0; j < in; ++j) {
                    double aj = 0;
                    for (int64_t i = 0; i < in; ++i) aj += qa[i * in + j] * acts[l][smp * in + i];
                    want_s[k * in + j] += gk * gk * aj * aj / double(n);
                }
            }
        expect(relative_error(s, want_s) < 1e-12, "EKFAC S is the projected empirical Fisher's diagonal");
        // y = Q_G ((Q_G^T V Q_A) .* (S + l)) Q_A^T.
        std::vector<double> w(pl, 0.0);
        for (int64_t k = 0; k < out; ++k)
            for (int64_t j = 0; j < in; ++j) {
                double sum = 0;
                for (int64_t o = 0; o < out; ++o)
                    for (int64_t i = 0; i < in; ++i) sum += qg[o * out + k] * v[offset + o * in + i] * qa[i * in + j];
                w[k * in + j] = sum * (want_s[k * in + j] + damping);
            }
        for (int64_t o = 0; o < out; ++o)
            for (int64_t i = 0; i < in; ++i)
                for (int64_t k = 0; k < out; ++k)
                    for (int64_t j = 0; j < in; ++j) want[offset + o * in + i] += qg[o * out + k] * w[k * in + j] * qa[i * in + j];
        eigen_all.insert(eigen_all.end(), s.begin(), s.end());
        offset += pl;
    }
    std::vector<double> y(p, nan_value);
    OK(ng_curvature_apply(ekfac, NG_FLOAT64, v.data(), p, 1, damping, y.data()));
    expect(relative_error(y, want) < 1e-12, "EKFAC apply is K diag(S + l) K^T");
    double trace = 0, want_trace = 0;
    for (double e : eigen_all) want_trace += e;
    OK(ng_curvature_trace(ekfac, &trace));
    expect(std::fabs(trace - want_trace) < 1e-12 * want_trace, "EKFAC trace is sum S");
    std::vector<double> x(p, nan_value), back(p, nan_value);
    ng_column_report report;
    ng_solve_info info;
    ng_solve_options options;
    OK(ng_solve_options_init(&options));
    OK(ng_solve(ekfac, NG_FLOAT64, v.data(), p, 1, damping, &options, x.data(), &report, 1, &info));
    OK(ng_curvature_apply(ekfac, NG_FLOAT64, x.data(), p, 1, damping, back.data()));
    expect(info.method == NG_METHOD_KFAC && relative_error(back, v) < 1e-10, "EKFAC solve inverts F + l I exactly");
    // Re-accumulating the same batch (beta 0, refreshed basis) reproduces S.
    OK(ng_ekfac_accumulate(ekfac, layers, 2, n, nullptr, nan_value, 0.0, 1));
    std::vector<double> s0(ins[0] * outs[0], nan_value);
    OK(ng_ekfac_eigenvalues(ekfac, 0, s0.data(), ins[0] * outs[0]));
    expect(relative_error(s0, std::vector<double>(eigen_all.begin(), eigen_all.begin() + ins[0] * outs[0])) < 1e-10,
           "EKFAC accumulate with beta 0 and a refresh reproduces S");

    // Errors.
    std::vector<double> buffer(64, 0.0);
    expect_error(ng_ekfac_eigenvalues(ekfac, 2, buffer.data(), 35), NG_ERROR_INVALID_ARGUMENT, "layer", "EKFAC layer range");
    expect_error(ng_ekfac_eigenvalues(ekfac, 0, buffer.data(), 34), NG_ERROR_INVALID_ARGUMENT, "length", "EKFAC length");
    expect_error(ng_ekfac_eigenvalues(ekfac, 0, nullptr, 35), NG_ERROR_NULL_POINTER, "values", "EKFAC NULL values");
    expect_error(ng_ekfac_eigenbasis(ekfac, 1, buffer.data(), 16, buffer.data(), 8), NG_ERROR_INVALID_ARGUMENT,
                 "length_g", "EKFAC basis length");
    expect_error(ng_ekfac_accumulate(ekfac, layers, 2, n, nullptr, nan_value, -1.0, 0), NG_ERROR_INVALID_ARGUMENT,
                 "beta", "EKFAC negative beta");
    expect_error(ng_ekfac_accumulate(ekfac, layers, 2, n, nullptr, nan_value, 0.5, 2), NG_ERROR_INVALID_ARGUMENT,
                 "refresh_basis", "EKFAC refresh flag");
    expect_error(ng_ekfac_accumulate(ekfac, layers, 1, n, nullptr, nan_value, 0.5, 0), NG_ERROR_INVALID_ARGUMENT,
                 "layers", "EKFAC layer count");
    Handle kronecker;
    OK(ng_curvature_kronecker(context, NG_FLOAT64, layers, 2, n, nullptr, kronecker.out()));
    expect_error(ng_ekfac_eigenvalues(kronecker, 0, buffer.data(), 35), NG_ERROR_INVALID_ARGUMENT, "curvature",
                 "EKFAC call on a K-FAC handle");
    std::vector<double> bad = acts[1];
    bad[3] = nan_value;
    ng_kfac_layer bad_layers[2] = {layers[0], {bad.data(), grads[1].data(), ins[1], outs[1]}};
    Handle refused;
    expect_error(ng_curvature_ekfac(context, NG_FLOAT64, bad_layers, 2, n, nullptr, refused.out()), NG_ERROR_NON_FINITE,
                 "layers[1].activations", "EKFAC non-finite activations");
    expect_error(ng_curvature_ekfac(context, NG_FLOAT64, layers, 2, 0, nullptr, refused.out()), NG_ERROR_INVALID_ARGUMENT,
                 "samples", "EKFAC zero samples");
    expect_error(ng_curvature_ekfac(context, NG_FLOAT64, nullptr, 2, n, nullptr, refused.out()), NG_ERROR_NULL_POINTER,
                 "layers", "EKFAC NULL layers");
    // One sample: S has zeros, so damping 0 has no inverse.
    Handle single;
    OK(ng_curvature_ekfac(context, NG_FLOAT64, layers, 2, 1, nullptr, single.out()));
    options.method = NG_METHOD_KFAC;
    expect_error(ng_solve(single, NG_FLOAT64, v.data(), p, 1, 0.0, &options, x.data(), &report, 1, nullptr),
                 NG_ERROR_INVALID_ARGUMENT, "damping", "EKFAC solve with S + 0 at zero");
}

void test_metrics(ng_context context) {
    // Univariate Gaussian in (mu, sigma) under KL: diag(1/sigma^2, 2/sigma^2).
    ng_family family = {NG_FAMILY_GAUSSIAN, NG_GAUSSIAN_SIGMA, 1};
    ng_measure kl = {NG_MEASURE_KL, 0, 0, nullptr, nullptr};
    const double z[] = {0.3, 1.7};
    double m[4] = {nan_value, nan_value, nan_value, nan_value};
    OK(ng_output_metric(&family, &kl, z, 2, 0, m, 4));
    expect(std::fabs(m[0] - 1 / (1.7 * 1.7)) < 1e-12 && std::fabs(m[3] - 2 / (1.7 * 1.7)) < 1e-12 && m[1] == 0,
           "Gaussian KL metric");
    ng_measure w2 = {NG_MEASURE_W2, 0, 0, nullptr, nullptr};
    OK(ng_output_metric(&family, &w2, z, 2, 0, m, 4));
    expect(m[0] == 2 && m[3] == 2 && m[1] == 0 && m[2] == 0, "Gaussian W2 metric is 2I");
    expect_error(ng_output_metric(&family, &kl, z, 3, 0, m, 4), NG_ERROR_INVALID_ARGUMENT, "z", "z of wrong length");
    // A custom D through a C callback: 1/2 |z - z'|^2 scaled by 3 gives 3I (numerically).
    auto squared = [](const double *a, const double *b, int64_t n, void *user) -> double {
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
        return 0.5 * *static_cast<double *>(user) * s;
    };
    double scale = 3.0;
    ng_measure custom = {NG_MEASURE_CUSTOM, 0, 0, squared, &scale};
    OK(ng_output_metric(&family, &custom, z, 2, 0, m, 4));
    expect(std::fabs(m[0] - 3) < 1e-6 && std::fabs(m[3] - 3) < 1e-6 && std::fabs(m[1]) < 1e-6,
           "custom measure through a C callback");
    ng_measure no_callback = {NG_MEASURE_CUSTOM, 0, 0, nullptr, nullptr};
    expect_error(ng_output_metric(&family, &no_callback, z, 2, 0, m, 4), NG_ERROR_NULL_POINTER,
                 "measure.divergence", "custom measure without a callback");
    ng_family categorical = {NG_FAMILY_CATEGORICAL, 0, 3};
    expect_error(ng_output_metric(&categorical, &w2, z, 3, 0, m, 9), NG_ERROR_INVALID_ARGUMENT, "measure",
                 "W2 on a categorical");

    // Exact Fisher of softmax: rows B_i J_i; its Gram is J^T (diag p - pp^T) J.
    std::mt19937_64 rng(3);
    const int64_t n = 2, classes = 3, p = 4;
    auto jac = random_vector(rng, n * classes * p);
    std::vector<double> probabilities = {0.2, 0.3, 0.5, 0.6, 0.3, 0.1};
    Handle factor;
    OK(ng_factor_exact_fisher(context, NG_FLOAT64, jac.data(), n, classes, p, NG_OUTPUT_SOFTMAX_CROSS_ENTROPY,
                              probabilities.data(), 0, factor.out()));
    std::vector<double> u(n * classes * p, nan_value);
    OK(ng_factor_download(factor, NG_FLOAT64, u.data(), n * classes * p));
    std::vector<double> got(p * p, 0), want(p * p, 0);
    for (int64_t r = 0; r < n * classes; ++r)
        for (int64_t i = 0; i < p; ++i)
            for (int64_t j = 0; j < p; ++j) got[i * p + j] += u[r * p + i] * u[r * p + j];
    for (int64_t s = 0; s < n; ++s) {
        const double *q = &probabilities[s * classes];
        for (int64_t a = 0; a < classes; ++a)
            for (int64_t b = 0; b < classes; ++b) {
                double mab = (a == b ? q[a] : 0) - q[a] * q[b];
                for (int64_t i = 0; i < p; ++i)
                    for (int64_t j = 0; j < p; ++j)
                        want[i * p + j] += jac[(s * classes + a) * p + i] * mab * jac[(s * classes + b) * p + j];
            }
    }
    expect(relative_error(got, want) < 1e-12, "exact Fisher factor of softmax cross-entropy");
    // The same through the KL measure on the logits.
    std::vector<double> logits(n * classes);
    for (int64_t s = 0; s < n; ++s)
        for (int64_t a = 0; a < classes; ++a) logits[s * classes + a] = std::log(probabilities[s * classes + a]);
    Handle formal;
    OK(ng_factor_formal_metric(context, NG_FLOAT64, jac.data(), logits.data(), n, p, &categorical, &kl,
                               formal.out()));
    std::fill(u.begin(), u.end(), nan_value);
    OK(ng_factor_download(formal, NG_FLOAT64, u.data(), n * classes * p));
    std::fill(got.begin(), got.end(), 0.0);
    for (int64_t r = 0; r < n * classes; ++r)
        for (int64_t i = 0; i < p; ++i)
            for (int64_t j = 0; j < p; ++j) got[i * p + j] += u[r * p + i] * u[r * p + j];
    expect(relative_error(got, want) < 1e-10, "formal metric (KL on logits) equals the exact Fisher");
}

void test_errors(ng_context context) {
    std::vector<double> u(12, 1.0), x(4, 1.0), y(4);
    std::vector<float> xf(4, 1.0f);
    Handle factor, curvature;
    OK(ng_factor_create(context, NG_FLOAT64, u.data(), 3, 4, 3, nullptr, factor.out()));
    OK(ng_curvature_implicit(factor, curvature.out()));

    Handle bad;
    expect_error(ng_factor_create(context, 7, u.data(), 3, 4, 3, nullptr, bad.out()), NG_ERROR_INVALID_DTYPE, "dtype",
                 "unknown dtype code");
    expect_error(ng_factor_create(context, NG_FLOAT64, nullptr, 3, 4, 3, nullptr, bad.out()), NG_ERROR_NULL_POINTER,
                 "matrix", "NULL matrix");
    expect_error(ng_factor_create(context, NG_FLOAT64, u.data(), 3, 4, 3, nullptr, nullptr), NG_ERROR_NULL_POINTER,
                 "factor", "NULL output handle");
    expect_error(ng_factor_create(context, NG_FLOAT64, u.data(), -3, 4, 3, nullptr, bad.out()),
                 NG_ERROR_INVALID_ARGUMENT, "rows", "negative rows");
    expect_error(ng_factor_create(context, NG_FLOAT64, u.data(), INT64_MAX, INT64_MAX, 3, nullptr, bad.out()),
                 NG_ERROR_INVALID_ARGUMENT, "matrix", "overflowing shape");
    std::vector<double> with_nan = u;
    with_nan[5] = nan_value;
    expect_error(ng_factor_create(context, NG_FLOAT64, with_nan.data(), 3, 4, 3, nullptr, bad.out()),
                 NG_ERROR_NON_FINITE, "matrix", "NaN in the factor");
    std::vector<double> negative_weights = {1, -1, 1};
    expect_error(ng_factor_create(context, NG_FLOAT64, u.data(), 3, 4, 3, negative_weights.data(), bad.out()),
                 NG_ERROR_INVALID_ARGUMENT, "weights", "negative weight");
    char raw[64] = {};
    expect_error(ng_curvature_apply(curvature, NG_FLOAT64, raw + 1, 4, 1, 0.0, y.data()), NG_ERROR_INVALID_ARGUMENT,
                 "x", "misaligned x");
    expect_error(ng_curvature_apply(curvature, NG_FLOAT32, xf.data(), 4, 1, 0.0, y.data()), NG_ERROR_INVALID_DTYPE,
                 "dtype", "float32 data for a float64 curvature");
    expect_error(ng_curvature_apply(curvature, NG_FLOAT64, x.data(), 5, 1, 0.0, y.data()), NG_ERROR_INVALID_ARGUMENT,
                 "dimension", "wrong dimension");
    expect_error(ng_curvature_apply(curvature, NG_FLOAT64, x.data(), 4, 1, -1.0, y.data()), NG_ERROR_INVALID_ARGUMENT,
                 "damping", "negative damping");
    expect_error(ng_curvature_apply(curvature, NG_FLOAT64, x.data(), 4, 1, nan_value, y.data()),
                 NG_ERROR_INVALID_ARGUMENT, "damping", "NaN damping");
    expect_error(ng_curvature_apply(factor, NG_FLOAT64, x.data(), 4, 1, 0.0, y.data()), NG_ERROR_INVALID_HANDLE,
                 "curvature", "a factor handle where a curvature is expected");
    expect_error(ng_curvature_apply(0x123456789abcULL, NG_FLOAT64, x.data(), 4, 1, 0.0, y.data()),
                 NG_ERROR_INVALID_HANDLE, "curvature", "forged handle");
    expect_error(ng_curvature_apply(0, NG_FLOAT64, x.data(), 4, 1, 0.0, y.data()), NG_ERROR_INVALID_HANDLE,
                 "curvature", "zero handle");
    std::vector<double> diag(3);
    expect_error(ng_curvature_diagonal_values(curvature, NG_FLOAT64, diag.data(), 3), NG_ERROR_INVALID_ARGUMENT,
                 "length", "short diagonal output");
    ng_column_report report;
    ng_solve_options options;
    OK(ng_solve_options_init(&options));
    options.method = NG_METHOD_CHOLESKY;
    expect_error(ng_solve(curvature, NG_FLOAT64, x.data(), 4, 1, 0.1, &options, y.data(), &report, 1, nullptr),
                 NG_ERROR_INVALID_ARGUMENT, "method", "Cholesky on an implicit curvature");
    options.method = 42;
    expect_error(ng_solve(curvature, NG_FLOAT64, x.data(), 4, 1, 0.1, &options, y.data(), &report, 1, nullptr),
                 NG_ERROR_INVALID_ARGUMENT, "options.method", "unknown method code");
    expect_error(ng_solve(curvature, NG_FLOAT64, x.data(), 4, 1, 0.1, nullptr, y.data(), &report, 2, nullptr),
                 NG_ERROR_INVALID_ARGUMENT, "report_count", "report count differs");
    const int64_t sizes[] = {2, 3};
    expect_error(ng_curvature_block_diagonal(factor, sizes, 2, bad.out()), NG_ERROR_INVALID_ARGUMENT, "blockSizes",
                 "blocks that do not cover P");

    // A released handle: every use, and a second release, is a status.
    ng_curvature released = 0;
    OK(ng_curvature_implicit(factor, &released));
    OK(ng_release(released));
    expect_error(ng_curvature_apply(released, NG_FLOAT64, x.data(), 4, 1, 0.0, y.data()), NG_ERROR_INVALID_HANDLE,
                 "released", "released curvature used again");
    expect_error(ng_release(released), NG_ERROR_INVALID_HANDLE, "released", "double release");
    // The factor outlives its handle inside the curvature.
    ng_factor short_lived = 0;
    ng_curvature survivor = 0;
    OK(ng_factor_create(context, NG_FLOAT64, u.data(), 3, 4, 3, nullptr, &short_lived));
    OK(ng_curvature_dense(short_lived, &survivor));
    OK(ng_release(short_lived));
    OK(ng_curvature_apply(survivor, NG_FLOAT64, x.data(), 4, 1, 0.0, y.data()));
    expect(std::fabs(y[0] - 4.0) < 1e-12, "a curvature keeps its released factor's data");
    OK(ng_release(survivor));

    Handle optimizer;
    expect_error(ng_optimizer_create(context, NG_FLOAT64, 4, "{\"momentun\": 0.9}", optimizer.out()),
                 NG_ERROR_INVALID_ARGUMENT, "options.momentun", "misspelt option");
    expect_error(ng_optimizer_create(context, NG_FLOAT64, 4, "{\"momentum\": 1.5}", optimizer.out()),
                 NG_ERROR_INVALID_ARGUMENT, "momentum", "momentum out of range");
    expect_error(ng_optimizer_create(context, NG_FLOAT64, 4, "not json", optimizer.out()), NG_ERROR_INVALID_ARGUMENT,
                 "options", "options that are not JSON");
    OK(ng_optimizer_create(context, NG_FLOAT64, 4, nullptr, optimizer.out()));
    const char garbage[] = "{\"version\": 1}";
    expect_error(ng_optimizer_restore(optimizer, garbage, sizeof garbage - 1), NG_ERROR_INVALID_ARGUMENT, "bytes",
                 "restoring a state that is not one");
}

// One step of an empirical-Fisher optimizer, returning the parameters after it.
std::vector<double> optimizer_step(ng_optimizer optimizer, std::vector<double> theta, const std::vector<double> &g,
                                   const std::vector<double> &per_sample, int64_t samples) {
    ng_curvature_input input;
    std::memset(&input, 0, sizeof input);
    input.kind = NG_INPUT_PER_SAMPLE_GRADIENTS;
    input.samples = samples;
    input.data = per_sample.data();
    ng_step_report report;
    OK(ng_optimizer_step(optimizer, NG_FLOAT64, theta.data(), g.data(), int64_t(theta.size()), &input, nan_value,
                         nullptr, nullptr, &report));
    return theta;
}

void test_optimizer(ng_context context) {
    std::mt19937_64 rng(5);
    const int64_t p = 10, n = 6;
    const char *options = "{\"curvature\": \"empirical_fisher\", \"representation\": \"dense\", \"damping\": 0.01,"
                          " \"learning_rate\": 0.5, \"momentum\": 0.9, \"curvature_decay\": 0.5}";
    Handle first, second;
    OK(ng_optimizer_create(context, NG_FLOAT64, p, options, first.out()));
    OK(ng_optimizer_create(context, NG_FLOAT64, p, options, second.out()));
    auto theta = random_vector(rng, p);
    auto g1 = random_vector(rng, p), g2 = random_vector(rng, p);
    auto s1 = random_vector(rng, n * p), s2 = random_vector(rng, n * p);

    theta = optimizer_step(first, theta, g1, s1, n);
    void *bytes = nullptr;
    size_t length = 0;
    OK(ng_optimizer_state(first, &bytes, &length));
    expect(length > 0, "state bytes");
    OK(ng_optimizer_restore(second, bytes, length));
    ng_free(bytes);
    int64_t step = -1;
    double damping = 0;
    int32_t needs = -1;
    OK(ng_optimizer_info(second, &step, &damping, &needs));
    expect(step == 1 && damping == 0.01 && needs == 1, "restored optimizer info");
    auto a = optimizer_step(first, theta, g2, s2, n);
    auto b = optimizer_step(second, theta, g2, s2, n);
    expect(a == b, "a restored optimizer takes bit for bit the same step");
    expect(a != theta, "the step moved the parameters");

    // The first step against the host: theta1 = theta0 - 0.5 (F + 0.01 I)^-1 g1 (F of s1).
    Handle fresh;
    OK(ng_optimizer_create(context, NG_FLOAT64, p, options, fresh.out()));
    auto theta0 = random_vector(rng, p);
    std::vector<double> ones(n, 1.0);
    auto f = reference_fisher(s1, ones, n, p, n);
    auto theta1 = optimizer_step(fresh, theta0, g1, s1, n);
    std::vector<double> delta(p);
    for (int64_t i = 0; i < p; ++i) delta[i] = (theta0[i] - theta1[i]) / 0.5;
    expect(relative_error(reference_apply(f, delta, p, 1, 0.01), g1) < 1e-9, "optimizer step solves (F + lI) d = g");

    // Levenberg-Marquardt needs the loss callback; a failing callback is a status.
    Handle lm;
    OK(ng_optimizer_create(context, NG_FLOAT64, p, "{\"damping_policy\": \"levenberg_marquardt\", \"damping\": 1}",
                           lm.out()));
    ng_curvature_input input;
    std::memset(&input, 0, sizeof input);
    input.kind = NG_INPUT_PER_SAMPLE_GRADIENTS;
    input.samples = n;
    input.data = s1.data();
    std::vector<double> update(p, nan_value);
    expect_error(ng_optimizer_update(lm, NG_FLOAT64, theta0.data(), g1.data(), p, &input, 1.0, nullptr, nullptr,
                                     update.data(), nullptr),
                 NG_ERROR_INVALID_ARGUMENT, "lossAt", "Levenberg-Marquardt without a loss callback");
    auto failing = [](const void *, int64_t, double *, void *) -> int32_t { return 3; };
    expect_error(ng_optimizer_update(lm, NG_FLOAT64, theta0.data(), g1.data(), p, &input, 1.0, failing, nullptr,
                                     update.data(), nullptr),
                 NG_ERROR_CALLBACK, "loss_at", "a failing loss callback");
    auto quadratic = [](const void *candidate, int64_t dimension, double *loss, void *) -> int32_t {
        const double *c = static_cast<const double *>(candidate);
        double s = 0;
        for (int64_t i = 0; i < dimension; ++i) s += c[i] * c[i];
        *loss = s;
        return 0;
    };
    ng_step_report report;
    OK(ng_optimizer_update(lm, NG_FLOAT64, theta0.data(), g1.data(), p, &input, nan_value, quadratic, nullptr,
                           update.data(), &report));
    const double rho = report.reduction_ratio;
    const double factor = rho < 0.25 ? 1.5 : (rho > 0.75 ? 2.0 / 3.0 : 1.0);
    expect(!std::isnan(rho) && std::fabs(report.next_damping - factor * report.damping) < 1e-12,
           "Levenberg-Marquardt adapted lambda from the callback's loss");
}

// Two threads, each with its own context and objects, and their own last-error messages.
void test_threads() {
    std::vector<int> results(2, -1);
    std::vector<std::string> messages(2);
    std::vector<int> fresh(2, 0);
    auto work = [&](int index) {
        fresh[index] = std::strlen(ng_last_error()) == 0;  // no failure on this thread yet
        ng_context context = 0;
        if (ng_context_create("cpu", &context) != NG_OK) return;
        std::mt19937_64 rng(100 + index);
        const int64_t m = 17 + index, p = 257;
        auto u = random_vector(rng, m * p), x = random_vector(rng, p);
        std::vector<double> ones(m, 1.0);
        auto want = reference_apply(reference_fisher(u, ones, m, p, m), x, p, 1, 0.5);
        ng_factor factor = 0;
        ng_curvature curvature = 0;
        int good = ng_factor_create(context, NG_FLOAT64, u.data(), m, p, m, nullptr, &factor) == NG_OK &&
                   ng_curvature_implicit(factor, &curvature) == NG_OK;
        for (int repeat = 0; good && repeat < 20; ++repeat) {
            std::vector<double> y(p, nan_value);
            good = ng_curvature_apply(curvature, NG_FLOAT64, x.data(), p, 1, 0.5, y.data()) == NG_OK &&
                   relative_error(y, want) < 1e-12;
        }
        // A per-thread error message.
        ng_curvature_apply(curvature, NG_FLOAT64, x.data(), p, 1, index == 0 ? -1.0 : 0.5, nullptr);
        messages[index] = ng_last_error();
        ng_release(curvature);
        ng_release(factor);
        ng_release(context);
        results[index] = good;
    };
    std::thread a(work, 0), b(work, 1);
    a.join();
    b.join();
    expect(fresh[0] && fresh[1], "a new thread starts with an empty last error");
    expect(results[0] == 1 && results[1] == 1, "two threads with their own objects get correct products");
    expect(messages[0].find("damping") != std::string::npos && messages[1].find("'y'") != std::string::npos,
           "ng_last_error is per thread");
}

}  // namespace

int main() {
    test_library_and_devices();
    Handle context;
    OK(ng_context_create("cpu", context.out()));
    char *device = nullptr;
    OK(ng_context_device_json(context, &device));
    std::printf("device: %s\n", device);
    ng_free(device);
    test_representations(context);
    test_kronecker(context);
    test_ekfac(context);
    test_metrics(context);
    test_errors(context);
    test_optimizer(context);
    test_threads();
    char *kernels = nullptr;
    OK(ng_kernels_json(context, &kernels));
    expect(std::strstr(kernels, "implicit_product_partial") != nullptr, "kernels JSON lists the kernels");
    ng_free(kernels);
    std::printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
