"""Output metrics (known answers) and the exact-Fisher / formal-metric factor builders."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import relative_error

import naturalgradient as ng


def test_known_answers():
    sigma = 1.7
    z = np.array([0.3, sigma])
    assert np.allclose(ng.output_metric("gaussian", "kl", z), np.diag([1 / sigma**2, 2 / sigma**2]), rtol=1e-12)
    variance = ng.Family("gaussian", 1, "variance")
    assert np.allclose(
        ng.output_metric(variance, "kl", np.array([0.3, sigma**2])), np.diag([1 / sigma**2, 1 / (2 * sigma**4)]),
        rtol=1e-12)
    assert np.allclose(ng.output_metric("gaussian", "w2", z), 2 * np.eye(2), rtol=1e-12)
    assert np.allclose(ng.output_metric("vector", "euclidean", np.arange(3.0)), np.eye(3))
    # f-divergences: f''(1) times the Fisher metric.
    logits = np.array([0.2, -1.0, 0.7, 0.05])
    p = np.exp(logits) / np.exp(logits).sum()
    fisher = np.diag(p) - np.outer(p, p)
    for measure, factor in (("kl", 1), ("reverse_kl", 1), ("hellinger", 0.5), ("chi2", 2), ("js", 0.25), (3.5, 3.5)):
        assert np.allclose(ng.output_metric("categorical", measure, logits), factor * fisher, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("family, measure, z", [
    ("categorical", "kl", [0.2, -1.0, 0.7]),
    ("bernoulli", "kl", [0.4]),
    ("gaussian", "w2", [0.1, -0.3, 0.8, 1.9]),
    ("gaussian_full", "kl", [0.1, -0.2, 1.5, 0.3, 0.9]),
    ("gaussian_full", "w2", [0.1, -0.2, 1.5, 0.3, 0.9]),
])
def test_square_root_and_batch(family, measure, z):
    z = np.array(z)
    m = ng.output_metric(family, measure, z)
    b = ng.output_metric(family, measure, z, square_root=True)
    assert np.allclose(b.T @ b, m, rtol=1e-10, atol=1e-12)
    batch = ng.output_metric(family, measure, np.stack([z, z]))
    assert batch.shape == (2,) + m.shape and np.array_equal(batch[1], m)


def test_metric_errors():
    with pytest.raises(ValueError, match="measure"):
        ng.output_metric("categorical", "w2", np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="z"):
        ng.output_metric("gaussian", "kl", np.array([0.1, -1.0]))  # negative sigma
    with pytest.raises(ValueError, match="family"):
        ng.output_metric("poisson", "kl", np.array([0.1]))
    with pytest.raises(ValueError, match="z"):
        ng.output_metric("vector", "euclidean", np.array([np.nan, 1.0]))


def ggn(jacobians: np.ndarray, metrics: np.ndarray) -> np.ndarray:
    """(1/N) sum_i J_i^T M_i J_i."""
    return np.einsum("nap,nab,nbq->pq", jacobians, metrics, jacobians) / jacobians.shape[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exact_fisher_builders(dtype, context, rng):
    n, c, p = 5, 3, 17
    jacobians = rng.standard_normal((n, c, p)).astype(dtype)
    logits = rng.standard_normal((n, c))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    metrics = np.stack([np.diag(q) - np.outer(q, q) for q in probabilities])
    reference = ggn(jacobians.astype(np.float64), metrics)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    factor = ng.exact_fisher(jacobians, "softmax_cross_entropy", probabilities=probabilities.astype(dtype),
                             context=context)
    assert factor.shape == (n * c, p) and factor.samples == n
    assert relative_error(ng.DenseCurvature(factor).apply(np.eye(p, dtype=dtype)), reference) < tol
    formal = ng.formal_metric_factor(jacobians, logits.astype(dtype), "categorical", "kl", context=context)
    assert relative_error(ng.DenseCurvature(formal).apply(np.eye(p, dtype=dtype)), reference) < tol * 10
    # Gaussian (mu, sigma) under W2: M = 2I.
    j2 = rng.standard_normal((n, 2, p)).astype(dtype)
    z = np.column_stack([rng.standard_normal(n), rng.uniform(0.5, 2.0, n)]).astype(dtype)
    w2 = ng.formal_metric_factor(j2, z, "gaussian", "w2", context=context)
    assert relative_error(ng.DenseCurvature(w2).apply(np.eye(p, dtype=dtype)),
                          ggn(j2.astype(np.float64), np.stack([2 * np.eye(2)] * n))) < tol * 10
    sigma = ng.exact_fisher(j2, "gaussian_mean", sigma=0.5, context=context)
    assert relative_error(ng.DenseCurvature(sigma).apply(np.eye(p, dtype=dtype)),
                          ggn(j2.astype(np.float64), np.stack([4 * np.eye(2)] * n))) < tol


def test_builder_errors(context, rng):
    jacobians = rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match="probabilities"):
        ng.exact_fisher(jacobians, "softmax_cross_entropy", probabilities=np.full((2, 3), 0.5), context=context)
    with pytest.raises(ValueError, match="metric"):
        ng.exact_fisher(jacobians, "poisson", probabilities=np.full((2, 3), 1 / 3), context=context)
    with pytest.raises(ValueError, match="sigma"):
        ng.exact_fisher(jacobians, "gaussian_mean", context=context)


def test_custom_measure_through_a_callback(context, rng):
    # D = 3/2 |z - z'|^2 has the metric 3I; the numerical Hessian recovers it.
    measure = ng.Measure.custom(lambda z, w: 1.5 * float(np.sum((z - w) ** 2)))
    assert np.allclose(ng.output_metric("vector", measure, np.array([0.3, -1.2, 2.0])), 3 * np.eye(3), atol=1e-6)
    # KL between univariate Gaussians in (mu, sigma), written by hand, matches the built-in.
    def kl(z, w):
        (m1, s1), (m2, s2) = z, w
        if s1 <= 0 or s2 <= 0:
            return float("nan")
        return float(np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5)

    z = np.array([0.4, 1.3])
    assert np.allclose(ng.output_metric("gaussian", ng.Measure.custom(kl), z), ng.output_metric("gaussian", "kl", z),
                       rtol=1e-6, atol=1e-8)
    # The formal-metric factor with it: F = (1/N) sum J^T (3I) J.
    j = rng.standard_normal((4, 2, 5))
    outputs = rng.standard_normal((4, 2))
    factor = ng.formal_metric_factor(j, outputs, "vector", measure, context=context)
    reference = 3 * np.einsum("nap,naq->pq", j, j) / 4
    assert relative_error(ng.DenseCurvature(factor).apply(np.eye(5)), reference) < 1e-6


def test_custom_measure_errors_propagate():
    def broken(z, w):
        raise ZeroDivisionError("inside D")

    with pytest.raises(ZeroDivisionError, match="inside D"):
        ng.output_metric("vector", ng.Measure.custom(broken), np.array([1.0, 2.0]))
