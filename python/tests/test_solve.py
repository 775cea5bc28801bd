"""Every solver on every representation it applies to, against NumPy float64, and the
LinearOperator through SciPy's cg and eigsh."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla
from conftest import fisher, kronecker_reference, relative_error

import naturalgradient as ng

CASES = [
    ("implicit", "woodbury"),
    ("implicit", "cg"),
    ("implicit", "pcg"),
    ("implicit", "auto"),
    ("dense", "cholesky"),
    ("dense", "cg"),
    ("dense", "pcg"),
    ("block_diagonal", "cg"),
    ("block_diagonal", "pcg"),
    ("diagonal", "cg"),
    ("diagonal", "pcg"),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind, method", CASES)
def test_solvers(kind, method, dtype, context, rng):
    m, p, k = 33, 65, 3
    u = rng.standard_normal((m, p)).astype(dtype)
    f = fisher(u)
    damping = 0.1
    if kind == "implicit":
        curvature = ng.ImplicitCurvature(u, context=context)
    elif kind == "dense":
        curvature = ng.DenseCurvature(u, context=context)
    elif kind == "block_diagonal":
        curvature = ng.BlockDiagonalCurvature(u, [1, 31, 33], context=context)
        mask = np.zeros((p, p), dtype=bool)
        for start, size in ((0, 1), (1, 31), (32, 33)):
            mask[start:start + size, start:start + size] = True
        f = np.where(mask, f, 0.0)
    else:
        curvature = ng.DiagonalCurvature(u, context=context)
        f = np.diag(np.diag(f))
    g = rng.standard_normal((p, k)).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    x, reports = ng.solve(curvature, g, damping, method=method, tol=tol, maxiter=500)
    assert x.shape == g.shape and x.dtype == dtype
    a = f + damping * np.eye(p)
    reference = np.linalg.solve(a, g.astype(np.float64))
    limit = 1e-8 if dtype == np.float64 else 2e-4
    assert relative_error(x, reference) < limit
    assert len(reports) == k
    expected = {"auto": "woodbury"}.get(method, method)
    for report in reports:
        assert report.method == expected
        assert report.status == "converged"
        assert report.relative_residual < limit
        # phi(x) = x^T A x / 2 - g^T x at the solution is -g^T A^-1 g / 2.
    phi = [-(g[:, j].astype(np.float64) @ reference[:, j]) / 2 for j in range(k)]
    assert np.allclose([r.objective for r in reports], phi, rtol=1e-4 if dtype == np.float32 else 1e-9)
    if method in ("cholesky", "woodbury", "auto"):
        assert reports[0].path == "cholesky" and 0 < reports[0].reciprocal_condition <= 1
    if method in ("cg", "pcg"):
        assert all(r.iterations > 0 for r in reports)


def test_one_vector_and_kfac(context, rng):
    n = 11
    layers = [(rng.standard_normal((n, 6)), rng.standard_normal((n, 4)))]
    curvature = ng.KroneckerCurvature(layers, context=context)
    g = rng.standard_normal(24)
    x, reports = ng.solve(curvature, g, 0.2)  # auto is kfac for Kronecker
    assert reports[0].method == "kfac" and x.shape == (24,)
    # K-FAC inverts the factored-damping operator that apply() applies.
    assert relative_error(curvature.apply(x, 0.2), g) < 1e-10
    # CG on the same operator agrees.
    xs, reports = ng.solve(curvature, g, 0.2, method="cg", tol=1e-12, maxiter=200)
    assert reports[0].status == "converged" and reports[0].method == "cg"
    assert relative_error(xs, x) < 1e-9
    # Undamped, the operator is exactly the K-FAC matrix G (x) A.
    assert relative_error(curvature.apply(g), kronecker_reference(layers) @ g) < 1e-12


def test_negative_curvature_is_a_status_not_an_exception(context, rng):
    p = 7
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    matrix = q @ np.diag([-3.0, 1, 2, 3, 4, 5, 6]) @ q.T
    curvature = ng.DenseCurvature.from_matrix((matrix + matrix.T) / 2, context=context)
    _, reports = ng.solve(curvature, rng.standard_normal(p), 0.0, method="cg")
    assert reports[0].status in ("negative curvature", "converged")
    assert reports[0].status == "negative curvature" or reports[0].relative_residual < 1e-6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_operator_cg_and_eigsh(dtype, context, rng):
    m, p = 20, 57
    u = rng.standard_normal((m, p)).astype(dtype)
    curvature = ng.ImplicitCurvature(u, context=context)
    damping = 0.5
    operator = curvature.as_linear_operator(damping)
    assert operator.shape == (p, p) and operator.dtype == dtype
    a = fisher(u) + damping * np.eye(p)
    g = rng.standard_normal(p).astype(dtype)
    x, info = sla.cg(operator, g, rtol=1e-10 if dtype == np.float64 else 1e-6, maxiter=500)
    assert info == 0
    assert relative_error(x, np.linalg.solve(a, g.astype(np.float64))) < (1e-8 if dtype == np.float64 else 1e-4)
    values = sla.eigsh(operator, k=3, which="LA", return_eigenvectors=False)
    want = np.linalg.eigvalsh(a)[-3:]
    assert np.allclose(np.sort(values), want, rtol=1e-8 if dtype == np.float64 else 1e-4)
    # matmat through the operator.
    block = rng.standard_normal((p, 4)).astype(dtype)
    assert relative_error(operator.matmat(block), a @ block.astype(np.float64)) < (1e-12 if dtype == np.float64 else 1e-5)
