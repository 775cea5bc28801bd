/*
 * naturalgradient.h: the C ABI of NaturalGradient (libNaturalGradientC.so).
 *
 * Natural-gradient curvature (Fisher, GGN, K-FAC), its products and solvers, output metrics
 * of similarity measures and the optimizer, on any OpenCL device, callable from C, C++ and
 * anything with a C foreign-function interface (the Python package `naturalgradient` uses
 * ctypes over exactly this header).
 *
 * CONVENTIONS
 *
 * Status codes. Every function that can fail returns an ng_status: NG_OK (0) on success,
 * else one of the NG_ERROR_* codes below. On failure `ng_last_error()` returns a one-line
 * message, the same text the library's Swift error carries, naming the argument, its value
 * and the rule it broke ("invalid argument 'damping': must be finite and not negative, got
 * -1.0"). No Swift error, trap or precondition crosses this boundary: null pointers, wrong
 * dtype codes, wrong lengths, misaligned data, released or forged handles are statuses.
 * Output arguments are written only on success.
 *
 * Handles. Objects (contexts, factors, curvatures, optimizers) are opaque 64-bit handles; 0
 * is never a valid handle. A handle is an index plus a generation: after ng_release the
 * handle is dead and every later use (including a second ng_release) returns
 * NG_ERROR_INVALID_HANDLE, as does a forged value or a handle of the wrong kind (a factor
 * passed where a curvature is expected). Handles are never reused.
 *
 * Ownership. A handle is owned by the caller until ng_release. Objects keep what they
 * depend on alive: a curvature built from a factor keeps the factor's data, every object
 * keeps its context, so handles may be released in any order. Arrays passed in are
 * borrowed for the duration of the call only: the library copies what it keeps (to the
 * device), never retains a caller's pointer. Strings and byte blocks the library returns
 * through `char **` / `void **` are allocated by the library and freed with ng_free.
 * `ng_last_error()` and `ng_version()` return library-owned strings: do not free them.
 *
 * Arrays. Row-major (C order), contiguous, aligned to their element type, with their
 * element type given by an ng_dtype (NG_FLOAT32 or NG_FLOAT64) that must match the
 * object's dtype. Every array argument comes with the lengths that fix its size; the
 * library never reads or writes past them. A batch of k vectors of length P is k x P
 * row-major: vector j starts at element j*P. The work runs in the dtype of the data
 * (float64 in, float64 on the device and out); NG_FLOAT64 needs a device with cl_khr_fp64.
 * Input values must be finite (NG_ERROR_NON_FINITE otherwise).
 *
 * Concurrency. Any function may be called from any thread. Calls on different objects run
 * concurrently (ctypes and other FFIs may release their interpreter lock around calls);
 * calls on one object are serialised by that object's lock (they wait, they do not race).
 * Creating and releasing handles is thread-safe. `ng_last_error()` is per thread.
 * Objects sharing a context share its in-order OpenCL queue, so their device work is
 * interleaved, not parallel, on that device.
 *
 * Copies. Inputs are uploaded to the device with one host-to-device copy straight from the
 * caller's memory (no intermediate host copy) and outputs are read back with one
 * device-to-host copy straight into the caller's memory. Exceptions, which stage through a
 * host array: weights (checked on the host), optimizer inputs and outputs (the Swift
 * optimizer API takes host arrays), output metrics (host float64).
 */
#ifndef NATURALGRADIENT_H
#define NATURALGRADIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes; `ng_abi_version()` returns the library's. */
#define NG_ABI_VERSION 1

/* ---------------------------------------------------------------------------------------
 * Status codes, dtypes, handles
 * ------------------------------------------------------------------------------------- */

/** The result of every fallible call. */
typedef int32_t ng_status;
enum {
    NG_OK = 0,
    /** A size, shape, value or option broke a rule (the message names it). */
    NG_ERROR_INVALID_ARGUMENT = 1,
    /** A required pointer argument was NULL. */
    NG_ERROR_NULL_POINTER = 2,
    /** A handle that is 0, released, forged, or of the wrong kind. */
    NG_ERROR_INVALID_HANDLE = 3,
    /** A dtype code other than NG_FLOAT32 / NG_FLOAT64, or one that differs from the object's. */
    NG_ERROR_INVALID_DTYPE = 4,
    /** An input array holds NaN or infinity. */
    NG_ERROR_NON_FINITE = 5,
    /** The OpenCL driver or device failed (no device, build failure, out of resources,
     *  no cl_khr_fp64 for NG_FLOAT64). */
    NG_ERROR_DEVICE = 6,
    /** A host factorisation (LAPACK) failed. */
    NG_ERROR_SOLVER = 7,
    /** A caller's callback returned non-zero. */
    NG_ERROR_CALLBACK = 8,
    /** Anything else (a bug: please report the message). */
    NG_ERROR_INTERNAL = 9
};

/** Element type of arrays and objects. */
typedef int32_t ng_dtype;
enum { NG_FLOAT32 = 1, NG_FLOAT64 = 2 };

/** An opaque object handle (0 is never valid). The typedefs say which kind a call takes. */
typedef uint64_t ng_handle;
typedef ng_handle ng_context;
typedef ng_handle ng_factor;
typedef ng_handle ng_curvature;
typedef ng_handle ng_optimizer;

/** The message of this thread's last failed call ("" if none). Valid until the next failing
 *  call on this thread; owned by the library. Successful calls leave it unchanged. */
const char *ng_last_error(void);

/** The library version ("0.1.0"); owned by the library. */
const char *ng_version(void);

/** NG_ABI_VERSION of the library that is loaded. */
int32_t ng_abi_version(void);

/** Frees a string or byte block the library returned (NULL is ignored). */
void ng_free(void *pointer);

/** Releases a handle of any kind. The object goes once nothing else depends on it. */
ng_status ng_release(ng_handle handle);

/* ---------------------------------------------------------------------------------------
 * Devices and contexts
 * ------------------------------------------------------------------------------------- */

/** Every OpenCL device as a JSON array (the fields of `ngrad devices --json`: index, name,
 *  vendor, type, platform, driverVersion, computeUnits, globalMemoryBytes,
 *  maxAllocationBytes, supportsFloat64, isPoCL, isDefault, ...). Free *json with ng_free. */
ng_status ng_devices_json(char **json);

/** A context (device, in-order queue, program cache) on the device `selector` names: an
 *  index from ng_devices_json, "gpu", "cpu", or part of a device name (case-insensitive).
 *  NULL or "" uses $NGRAD_DEVICE if set, else the first GPU, else the first CPU device. */
ng_status ng_context_create(const char *selector, ng_context *context);

/** The context's device as a JSON object (fields as in ng_devices_json). */
ng_status ng_context_device_json(ng_context context, char **json);

/** Compiles every kernel family for the context's device in float and (with fp64) double
 *  and describes each kernel as a JSON array (the rows of `ngrad kernels --json`: file,
 *  element, buildOptions, kernel, origin, buildMilliseconds, maxWorkGroupSize,
 *  preferredWorkGroupMultiple, localMemoryBytes, privateMemoryBytes). */
ng_status ng_kernels_json(ng_context context, char **json);

/* ---------------------------------------------------------------------------------------
 * Curvature factors: F = (1/N) sum_m w_m u_m u_m^T over the rows of U (M x P)
 * ------------------------------------------------------------------------------------- */

/** A factor from U (rows x dimension, row-major), N = samples, optional row weights
 *  (rows values, finite and >= 0; NULL for all ones). U and the weights are copied to the
 *  device once. */
ng_status ng_factor_create(ng_context context, ng_dtype dtype, const void *matrix, int64_t rows,
                           int64_t dimension, int64_t samples, const void *weights, ng_factor *factor);

/** Built-in output metrics of the exact Fisher / GGN (analytic square roots B). */
enum {
    /** Softmax cross-entropy: M = diag(p) - pp^T; `values` are p (samples x outputs). */
    NG_OUTPUT_SOFTMAX_CROSS_ENTROPY = 1,
    /** Bernoulli on the logit: M = p(1 - p); outputs = 1; `values` are p (samples). */
    NG_OUTPUT_BERNOULLI = 2,
    /** Gaussian mean with fixed sigma: M = I / sigma^2; `values` unused (NULL). */
    NG_OUTPUT_GAUSSIAN_MEAN = 3,
    /** (Optimizer input only) the formal metric of a similarity measure: `values` are the
     *  outputs z (samples x family output count), with `family` and `measure`. */
    NG_OUTPUT_SIMILARITY = 4
};

/** The exact Fisher / GGN factor: rows B_i J_i from the per-sample output Jacobians J_i
 *  (samples*outputs x dimension, each sample's `outputs` rows together) and a built-in
 *  output metric (NG_OUTPUT_SOFTMAX_CROSS_ENTROPY, _BERNOULLI, _GAUSSIAN_MEAN). */
ng_status ng_factor_exact_fisher(ng_context context, ng_dtype dtype, const void *jacobians, int64_t samples,
                                 int64_t outputs, int64_t dimension, int32_t metric, const void *values,
                                 double sigma, ng_factor *factor);

/** Predictive families (the layout of one output z; Docs/SimilarityMeasures.md). */
enum {
    /** `dimension` logits (classes >= 2). */
    NG_FAMILY_CATEGORICAL = 1,
    /** One logit (dimension ignored). */
    NG_FAMILY_BERNOULLI = 2,
    /** Diagonal Gaussian: [mu_1..mu_d, s_1..s_d], s per `parametrization`. */
    NG_FAMILY_GAUSSIAN = 3,
    /** Full-covariance Gaussian: [mu, lower triangle of Sigma row by row], d <= 8. */
    NG_FAMILY_GAUSSIAN_FULL = 4,
    /** A plain vector (squared Euclidean only). */
    NG_FAMILY_VECTOR = 5
};
/** How a diagonal Gaussian's scale s is written. */
enum { NG_GAUSSIAN_SIGMA = 0, NG_GAUSSIAN_LOG_SIGMA = 1, NG_GAUSSIAN_VARIANCE = 2 };

/** A predictive family: kind NG_FAMILY_*, its dimension, a Gaussian's parametrization. */
typedef struct ng_family {
    int32_t kind;
    int32_t parametrization;
    int64_t dimension;
} ng_family;

/** Similarity measures D(p_z, p_z'); the metric is the Hessian in z' at z' = z. */
enum {
    NG_MEASURE_KL = 1,
    NG_MEASURE_REVERSE_KL = 2,
    /** sum (sqrt p - sqrt q)^2: 1/2 Fisher. */
    NG_MEASURE_HELLINGER = 3,
    /** Pearson chi^2: 2 Fisher. */
    NG_MEASURE_CHI2 = 4,
    /** Jensen-Shannon: 1/4 Fisher. */
    NG_MEASURE_JS = 5,
    /** Any f-divergence, given by f''(1) (`f_second_derivative`, finite and > 0). */
    NG_MEASURE_F_DIVERGENCE = 6,
    /** Squared Wasserstein-2 between Gaussians. */
    NG_MEASURE_W2 = 7,
    /** 1/2 |z - z'|^2: the identity. */
    NG_MEASURE_EUCLIDEAN = 8,
    /** The caller's D(z, z') (`divergence`, `user`), differentiated numerically (central
     *  differences with Richardson extrapolation); at most 64 outputs. */
    NG_MEASURE_CUSTOM = 9
};

/** D(z, z') for a custom measure: `length` values each. Called on the calling thread during
 *  the call that uses the measure, many times (O(length^2) per output z); return NaN where
 *  D is undefined (the step is then skipped or the call fails naming z). */
typedef double (*ng_divergence_callback)(const double *z, const double *z_prime, int64_t length, void *user);

/** A similarity measure: kind NG_MEASURE_*, f''(1) for NG_MEASURE_F_DIVERGENCE, the
 *  callback and its `user` pointer for NG_MEASURE_CUSTOM (else NULL). */
typedef struct ng_measure {
    int32_t kind;
    int32_t reserved; /* set to 0 */
    double f_second_derivative;
    ng_divergence_callback divergence;
    void *user;
} ng_measure;

/** The formal natural-gradient factor of a similarity measure: rows B(z_i) J_i with
 *  B^T B = M(z_i), from the output Jacobians (samples*O x dimension, O = the family's output
 *  count) and the outputs z (samples x O). */
ng_status ng_factor_formal_metric(ng_context context, ng_dtype dtype, const void *jacobians, const void *outputs,
                                  int64_t samples, int64_t dimension, const ng_family *family,
                                  const ng_measure *measure, ng_factor *factor);

/** The factor's dtype and shape (any output pointer may be NULL). */
ng_status ng_factor_info(ng_factor factor, ng_dtype *dtype, int64_t *rows, int64_t *dimension, int64_t *samples);

/** Reads U back: `length` must be rows x dimension. */
ng_status ng_factor_download(ng_factor factor, ng_dtype dtype, void *matrix, int64_t length);

/* ---------------------------------------------------------------------------------------
 * Curvature representations (all of them: apply, diagonal, trace, every solver)
 * ------------------------------------------------------------------------------------- */

enum {
    /** The factor itself, F never formed (CG, PCG, Woodbury). */
    NG_CURVATURE_IMPLICIT = 1,
    /** F as a P x P matrix (Cholesky, CG, PCG). */
    NG_CURVATURE_DENSE = 2,
    /** Dense blocks on the diagonal (CG, PCG). */
    NG_CURVATURE_BLOCK_DIAGONAL = 3,
    /** diag F (CG, PCG). */
    NG_CURVATURE_DIAGONAL = 4,
    /** K-FAC: G (x) A per layer (K-FAC inverse, CG, PCG); damping is factored. */
    NG_CURVATURE_KRONECKER = 5
};

/** Implicit curvature over `factor` (shares its device data). */
ng_status ng_curvature_implicit(ng_factor factor, ng_curvature *curvature);
/** Dense F = (1/N) U^T diag(w) U. */
ng_status ng_curvature_dense(ng_factor factor, ng_curvature *curvature);
/** Dense F from a symmetric matrix the caller has (dimension x dimension, copied). */
ng_status ng_curvature_dense_from_matrix(ng_context context, ng_dtype dtype, const void *matrix, int64_t dimension,
                                         ng_curvature *curvature);
/** Block-diagonal part of F, blocks of `block_sizes` (positive, summing to P). */
ng_status ng_curvature_block_diagonal(ng_factor factor, const int64_t *block_sizes, int64_t block_count,
                                      ng_curvature *curvature);
/** Diagonal of F. */
ng_status ng_curvature_diagonal(ng_factor factor, ng_curvature *curvature);
/** Diagonal curvature from `dimension` values the caller has (copied). */
ng_status ng_curvature_diagonal_from_values(ng_context context, ng_dtype dtype, const void *values,
                                            int64_t dimension, ng_curvature *curvature);

/** One dense layer's K-FAC inputs: per-sample layer inputs (samples x inputs, the bias 1
 *  included) and output gradients (samples x outputs); the layer's parameters are its
 *  outputs x inputs matrix [W | b], flattened row-major, layers one after another. */
typedef struct ng_kfac_layer {
    const void *activations;
    const void *output_gradients;
    int64_t inputs;
    int64_t outputs;
} ng_kfac_layer;

/** K-FAC factors A = (1/N) sum w a a^T, G = (1/N) sum w g g^T per layer; optional per-sample
 *  weights (samples values; NULL for ones). */
ng_status ng_curvature_kronecker(ng_context context, ng_dtype dtype, const ng_kfac_layer *layers,
                                 int64_t layer_count, int64_t samples, const void *weights,
                                 ng_curvature *curvature);

/** The representation (NG_CURVATURE_*), dtype and P (any output pointer may be NULL). */
ng_status ng_curvature_info(ng_curvature curvature, int32_t *kind, ng_dtype *dtype, int64_t *dimension);

/** y = (F + damping I) x for `count` vectors of length `dimension` (x, y: count x dimension;
 *  y may be x: the input is uploaded before the output is written). damping finite, >= 0. Kronecker: the factored damping
 *  (G + sqrt(l)/pi I) (x) (A + pi sqrt(l) I), equal to F + lI only at l = 0. */
ng_status ng_curvature_apply(ng_curvature curvature, ng_dtype dtype, const void *x, int64_t dimension,
                             int64_t count, double damping, void *y);

/** diag F (no damping) into `values` (`length` = P). */
ng_status ng_curvature_diagonal_values(ng_curvature curvature, ng_dtype dtype, void *values, int64_t length);

/** tr F, accumulated in float64. */
ng_status ng_curvature_trace(ng_curvature curvature, double *trace);

/* ---------------------------------------------------------------------------------------
 * Solving (F + damping I) x = g
 * ------------------------------------------------------------------------------------- */

/** Solve methods. NG_METHOD_AUTO: Woodbury for implicit with M <= P and damping > 0,
 *  Cholesky for dense with P <= 4096, K-FAC for Kronecker, else CG. */
enum {
    NG_METHOD_AUTO = 0,
    NG_METHOD_CG = 1,
    NG_METHOD_PCG = 2,
    NG_METHOD_WOODBURY = 3,
    NG_METHOD_CHOLESKY = 4,
    NG_METHOD_KFAC = 5
};
enum { NG_PRECONDITIONER_NONE = 0, NG_PRECONDITIONER_JACOBI = 1 };

/** Options of a solve; fill with ng_solve_options_init, then change fields. */
typedef struct ng_solve_options {
    int32_t method;         /* NG_METHOD_* */
    int32_t preconditioner; /* NG_PRECONDITIONER_*; PCG with NONE uses Jacobi 0.75 */
    double tolerance;       /* CG: stop at relative residual <= tolerance (>= 0) */
    int64_t max_iterations; /* CG: iteration cap per column; <= 0 means P */
    double jacobi_exponent; /* M^-1 = (diag F + l)^-exponent */
    int32_t progress_rule;  /* CG: Martens' progress rule (0 / 1) */
    int32_t reserved;       /* set to 0 */
} ng_solve_options;

/** Defaults: NG_METHOD_AUTO, tolerance 1e-6, no cap, no preconditioner, exponent 0.75. */
ng_status ng_solve_options_init(ng_solve_options *options);

/** Why a column stopped. */
enum {
    NG_SOLVE_CONVERGED = 0,
    NG_SOLVE_ITERATION_CAP = 1,
    NG_SOLVE_PROGRESS_STALLED = 2,
    NG_SOLVE_NEGATIVE_CURVATURE = 3,
    NG_SOLVE_NON_FINITE = 4,
    NG_SOLVE_STAGNATED = 5,
    NG_SOLVE_PERTURBED = 6,      /* direct: the factorisation added jitter or clamped eigenvalues */
    NG_SOLVE_INACCURATE = 7,     /* direct: backward error above the working precision's bound */
    NG_SOLVE_ILL_CONDITIONED = 8 /* direct: condition beyond the working precision; use float64 */
};

/** One right-hand side's outcome. */
typedef struct ng_column_report {
    int32_t status; /* NG_SOLVE_* */
    int32_t reserved;
    int64_t iterations;       /* 0 for direct methods */
    double relative_residual; /* |g - (F + lI)x| / |g|, recomputed from x */
    double objective;         /* phi(x) = 1/2 x^T(F + lI)x - g^T x */
} ng_column_report;

/** Dense factorisation paths (Cholesky and Woodbury). */
enum { NG_PATH_NONE = 0, NG_PATH_CHOLESKY = 1, NG_PATH_JITTER = 2, NG_PATH_EIGEN = 3 };

/** How the solve as a whole went. */
typedef struct ng_solve_info {
    int32_t method;              /* the method that ran, never NG_METHOD_AUTO */
    int32_t dense_path;          /* NG_PATH_* */
    double dense_path_value;     /* jitter added, or eigenvalues clamped; else 0 */
    double reciprocal_condition; /* Cholesky / Woodbury; NaN otherwise */
    double seconds;              /* wall time of the solve's stages */
} ng_solve_info;

/** x = (F + damping I)^-1 g for `count` right-hand sides (g, x: count x dimension).
 *  `options` may be NULL (defaults); `reports` receives `report_count` (= count) entries;
 *  `info` may be NULL. A column that stops on negative curvature or a non-finite value
 *  reports it in its status: the call still returns NG_OK with the last finite iterate. */
ng_status ng_solve(ng_curvature curvature, ng_dtype dtype, const void *g, int64_t dimension, int64_t count,
                   double damping, const ng_solve_options *options, void *x, ng_column_report *reports,
                   int64_t report_count, ng_solve_info *info);

/* ---------------------------------------------------------------------------------------
 * Output metrics of similarity measures (host, float64)
 * ------------------------------------------------------------------------------------- */

/** The family's output count O (the length of z). */
ng_status ng_family_output_count(const ng_family *family, int64_t *count);

/** The output metric M(z) (O x O, row-major) of `measure` for `family` at z (O values), or
 *  with square_root != 0 a root B with B^T B = M. `out_length` must be O*O. */
ng_status ng_output_metric(const ng_family *family, const ng_measure *measure, const double *z, int64_t z_length,
                           int32_t square_root, double *out, int64_t out_length);

/* ---------------------------------------------------------------------------------------
 * The optimizer
 * ------------------------------------------------------------------------------------- */

/** An optimizer for `dimension` parameters, configured by a JSON object (NULL or "{}" for
 *  the defaults; unknown keys are an error). Keys and defaults (NaturalGradientOptimizerOptions):
 *    "curvature": "empirical_fisher" (default) | "exact_fisher" | "kfac"
 *    "layers": [[outputs, inputs], ...]             K-FAC layer shapes (bias column counted)
 *    "representation": "implicit" (default) | "dense" | "block_diagonal" | "diagonal"
 *    "block_sizes": [int, ...]                      for "block_diagonal"
 *    "method": "automatic" (default) | "cg" | "pcg" | "woodbury" | "cholesky" | "kfac"
 *    "tolerance": 1e-4, "max_iterations": 50 (null: P), "progress_rule": true,
 *    "preconditioner": "none" | "jacobi", "jacobi_exponent": 0.75   (CG / PCG)
 *    "damping": 1e-3, "damping_policy": "fixed" (default) | "levenberg_marquardt",
 *    "damping_minimum": 1e-8, "damping_maximum": 1e8
 *    "step_size": "learning_rate" (default) | "quadratic_model",
 *    "learning_rate": 1, "step_size_maximum": 1
 *    "momentum": 0, "curvature_decay": 0, "curvature_refresh_period": 1,
 *    "inverse_refresh_period": 1, "max_update_norm": null */
ng_status ng_optimizer_create(ng_context context, ng_dtype dtype, int64_t dimension, const char *options_json,
                              ng_optimizer *optimizer);

/** Steps taken, the lambda the next step uses, and whether it needs curvature input. */
ng_status ng_optimizer_info(ng_optimizer optimizer, int64_t *step, double *damping, int32_t *needs_curvature);

/** Curvature input kinds of a step. */
enum {
    NG_INPUT_NONE = 0,
    /** Empirical Fisher: `data` = per-sample gradients, samples x P. */
    NG_INPUT_PER_SAMPLE_GRADIENTS = 1,
    /** Exact Fisher: `data` = output Jacobians (samples*outputs x P) with `output_metric`
     *  (NG_OUTPUT_*) and its `values`, `sigma`, or `family` / `measure`. */
    NG_INPUT_OUTPUT_JACOBIANS = 2,
    /** K-FAC: `layers` (layer_count entries, shapes as the options' "layers"). */
    NG_INPUT_LAYERS = 3,
    /** A factor handle built on the device (empirical or exact Fisher). */
    NG_INPUT_FACTOR = 4
};

/** One step's curvature data (in the optimizer's dtype). Zero it, then set what the kind uses. */
typedef struct ng_curvature_input {
    int32_t kind;          /* NG_INPUT_* */
    int32_t output_metric; /* NG_OUTPUT_* for NG_INPUT_OUTPUT_JACOBIANS */
    int64_t samples;
    int64_t outputs;    /* rows per sample of the Jacobians (the family's count for SIMILARITY) */
    const void *data;   /* gradients or Jacobians */
    const void *values; /* probabilities (softmax, Bernoulli) or outputs z (similarity) */
    double sigma;       /* NG_OUTPUT_GAUSSIAN_MEAN */
    ng_family family;   /* NG_OUTPUT_SIMILARITY */
    ng_measure measure; /* NG_OUTPUT_SIMILARITY */
    const ng_kfac_layer *layers;
    int64_t layer_count;
    ng_factor factor;
} ng_curvature_input;

/** What one step did. Absent values are NaN. */
typedef struct ng_step_report {
    int64_t step;
    double damping;
    double next_damping;
    double step_size;
    double update_norm;
    int32_t clipped;
    int32_t method; /* NG_METHOD_* */
    int32_t has_solve;
    int32_t refreshed_curvature;
    int32_t refreshed_inverse;
    int32_t reserved;
    ng_column_report solve; /* CG / PCG only (has_solve) */
    double predicted_change;
    double actual_change;
    double reduction_ratio;
} ng_step_report;

/** The loss at `candidate` (dimension values of the optimizer's dtype), for
 *  Levenberg-Marquardt damping. Return 0 and set *loss, or non-zero to abort the step
 *  (NG_ERROR_CALLBACK). Called on the calling thread, during the step. */
typedef int32_t (*ng_loss_callback)(const void *candidate, int64_t dimension, double *loss, void *user);

/** Computes the update delta without applying it and advances the optimizer's state.
 *  parameters, gradient, update: `dimension` values; `input` NULL or kind NG_INPUT_NONE when
 *  no curvature is needed; `loss` is the loss at the parameters, NaN when not given;
 *  `loss_at` may be NULL except with Levenberg-Marquardt; `report` may be NULL. */
ng_status ng_optimizer_update(ng_optimizer optimizer, ng_dtype dtype, const void *parameters, const void *gradient,
                              int64_t dimension, const ng_curvature_input *input, double loss,
                              ng_loss_callback loss_at, void *user, void *update, ng_step_report *report);

/** As ng_optimizer_update, then parameters += delta (in place). */
ng_status ng_optimizer_step(ng_optimizer optimizer, ng_dtype dtype, void *parameters, const void *gradient,
                            int64_t dimension, const ng_curvature_input *input, double loss,
                            ng_loss_callback loss_at, void *user, ng_step_report *report);

/** The optimizer's state (step count, lambda, momentum, curvature, cached inverse) as JSON
 *  bytes (UTF-8, not NUL-terminated: *length counts them). Free *bytes with ng_free. */
ng_status ng_optimizer_state(ng_optimizer optimizer, void **bytes, size_t *length);

/** Restores a state saved by ng_optimizer_state into an optimizer with the same options;
 *  the next step is the one the saved optimizer would have taken. */
ng_status ng_optimizer_restore(ng_optimizer optimizer, const void *bytes, size_t length);

/* ---------------------------------------------------------------------------------------
 * EKFAC: eigenvalue-corrected K-FAC (George et al. 2018; curvlinops' EKFACLinearOperator)
 *
 * Per layer F ~ (Q_G (x) Q_A) diag(vec S) (Q_G (x) Q_A)^T with Q_A, Q_G the eigenbases of
 * the K-FAC factors A = (1/N) sum w a a^T, G = (1/N) sum w g g^T (float64 LAPACK on the
 * host) and S (outputs x inputs) the per-sample gradients' second moments in that basis,
 *   S_kj = (1/N) sum_n w_n ((Q_G^T g_n a_n^T Q_A)_kj)^2.
 * Reduction: the mean over samples, so g_n is the output gradient of sample n's own loss
 * (for a batch-mean loss, N times what autograd gives: curvlinops' loss_average="batch").
 * The handle is an ng_curvature of kind NG_CURVATURE_EKFAC: ng_curvature_apply applies
 * F + damping I exactly (no factored damping), ng_solve with NG_METHOD_KFAC or AUTO divides
 * by S + damping in the eigenbasis (every S_kj + damping must be > 0, else
 * NG_ERROR_INVALID_ARGUMENT), CG and PCG work as for any representation.
 * ------------------------------------------------------------------------------------- */

enum {
    /** EKFAC (ng_curvature_ekfac). */
    NG_CURVATURE_EKFAC = 6
};

/** EKFAC of one batch: the K-FAC factors of `layers` (as ng_curvature_kronecker: bias as an
 *  appended 1 in the activations), their eigenbases, then S from the same samples;
 *  `weights` NULL or `samples` finite values >= 0. Statuses: NULL_POINTER (layers,
 *  curvature, a layer's data), INVALID_ARGUMENT (layer_count, samples, a layer's inputs or
 *  outputs <= 0, negative weights), NON_FINITE (activations, gradients, weights),
 *  INVALID_DTYPE, INVALID_HANDLE (context). */
ng_status ng_curvature_ekfac(ng_context context, ng_dtype dtype, const ng_kfac_layer *layers, int64_t layer_count,
                             int64_t samples, const void *weights, ng_curvature *curvature);

/** Layer `layer`'s corrected eigenvalues S in float64, outputs x inputs row-major (entry
 *  (k, j) belongs to Q_G[:, k] (x) Q_A[:, j]); `length` must be outputs * inputs.
 *  INVALID_ARGUMENT for a layer out of range, a wrong length or a non-EKFAC curvature. */
ng_status ng_ekfac_eigenvalues(ng_curvature curvature, int64_t layer, double *values, int64_t length);

/** Layer `layer`'s eigenbases in float64, row-major, eigenvectors in the columns (ascending
 *  factor eigenvalues): Q_A (length_a = inputs^2) and Q_G (length_g = outputs^2). */
ng_status ng_ekfac_eigenbasis(ng_curvature curvature, int64_t layer, double *basis_a, int64_t length_a,
                              double *basis_g, int64_t length_g);

/** A training step's update: A, G <- beta (A, G) + alpha sum w (a a^T, g g^T) and
 *  S <- beta S + alpha sum w (Q_G^T g a^T Q_A)^2 in the current basis (alpha NaN: 1/samples;
 *  alpha, beta finite and >= 0 otherwise). With refresh_basis = 1 the averaged factors are
 *  then decomposed again and S re-estimated from this batch alone in the new basis
 *  (refresh_basis 0 or 1). The layers must have the curvature's shapes. */
ng_status ng_ekfac_accumulate(ng_curvature curvature, const ng_kfac_layer *layers, int64_t layer_count,
                              int64_t samples, const void *weights, double alpha, double beta,
                              int32_t refresh_basis);

#ifdef __cplusplus
}
#endif

#endif /* NATURALGRADIENT_H */
