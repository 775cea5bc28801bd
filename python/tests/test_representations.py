"""Every representation's products, diagonal and trace against NumPy float64."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import fisher, kronecker_reference, relative_error, tolerance

import naturalgradient as ng

DTYPES = [np.float64, np.float32]
# (rows M, parameters P): awkward sizes, M < P and M > P, one past a 256 tile.
SHAPES = [(1, 1), (7, 33), (33, 7), (257, 129), (5, 257)]


def build(kind: str, u: np.ndarray, context: ng.Context, weights: np.ndarray | None = None):
    """A representation of F = (1/N) U^T diag(w) U and its dense float64 reference."""
    f = fisher(u, weights=weights)
    p = u.shape[1]
    if kind == "implicit":
        return ng.ImplicitCurvature(u, weights=weights, context=context), f
    if kind == "dense":
        return ng.DenseCurvature(u, weights=weights, context=context), f
    if kind == "dense_matrix":
        matrix = f.astype(u.dtype)
        matrix = ((matrix + matrix.T) / 2).astype(u.dtype)
        return ng.DenseCurvature.from_matrix(matrix, context=context), matrix.astype(np.float64)
    if kind == "diagonal":
        return ng.DiagonalCurvature(u, weights=weights, context=context), np.diag(np.diag(f))
    if kind == "diagonal_values":
        d = np.diag(f).astype(u.dtype)
        return ng.DiagonalCurvature.from_values(d, context=context), np.diag(d.astype(np.float64))
    if kind == "block_diagonal":
        sizes = [1, p - 1] if p > 1 else [1]
        if p > 20:
            sizes = [7, 13, p - 20]
        mask = np.zeros((p, p), dtype=bool)
        start = 0
        for size in sizes:
            mask[start:start + size, start:start + size] = True
            start += size
        return ng.BlockDiagonalCurvature(u, sizes, weights=weights, context=context), np.where(mask, f, 0.0)
    raise AssertionError(kind)


KINDS = ["implicit", "dense", "dense_matrix", "diagonal", "diagonal_values", "block_diagonal"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_products_diagonal_trace(kind, shape, dtype, context, rng):
    m, p = shape
    u = rng.standard_normal(shape).astype(dtype)
    weights = rng.uniform(0.1, 2.0, m).astype(dtype) if kind in ("implicit", "dense", "block_diagonal") else None
    curvature, reference = build(kind, u, context, weights)
    assert curvature.shape == (p, p) and curvature.dtype == dtype
    tol = tolerance(dtype)
    damping = 0.31

    x = rng.standard_normal(p).astype(dtype)
    want = reference @ x.astype(np.float64) + damping * x
    assert relative_error(curvature.matvec(x, damping), want) < tol
    assert relative_error(curvature.apply(x, damping), want) < tol

    # Batched: k = 3 vectors as rows (apply), as C- and Fortran-ordered columns (matmat).
    rows = rng.standard_normal((3, p)).astype(dtype)
    want_rows = rows.astype(np.float64) @ reference.T + damping * rows
    assert relative_error(curvature.apply(rows, damping), want_rows) < tol
    assert relative_error(curvature.matmat(np.ascontiguousarray(rows.T), damping), want_rows.T) < tol
    assert relative_error(curvature.matmat(np.asfortranarray(rows.T), damping), want_rows.T) < tol

    assert relative_error(curvature.diagonal(), np.diag(reference)) < tol
    assert abs(curvature.trace() - np.trace(reference)) <= tol * max(1.0, abs(np.trace(reference)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_kronecker(dtype, context, rng):
    n = 9
    shapes = [(4, 7), (3, 5), (1, 1)]  # (outputs, inputs)
    layers = [
        (rng.standard_normal((n, inputs)).astype(dtype), rng.standard_normal((n, outputs)).astype(dtype))
        for outputs, inputs in shapes
    ]
    curvature = ng.KroneckerCurvature(layers, context=context)
    reference = kronecker_reference(layers)
    p = reference.shape[0]
    assert curvature.shape == (p, p)
    x = rng.standard_normal((2, p)).astype(dtype)
    tol = tolerance(dtype)
    assert relative_error(curvature.apply(x), x.astype(np.float64) @ reference.T) < tol
    assert relative_error(curvature.diagonal(), np.diag(reference)) < tol
    assert abs(curvature.trace() - np.trace(reference)) <= tol * abs(np.trace(reference))


def test_factor_round_trip(context, rng):
    u = rng.standard_normal((7, 33))
    factor = ng.Factor(u, samples=3, context=context)
    assert factor.shape == (7, 33) and factor.samples == 3 and factor.dtype == np.float64
    assert np.array_equal(factor.matrix(), u)
    # One factor, several representations; N = 3 samples, not 7 rows.
    x = rng.standard_normal(33)
    want = fisher(u, samples=3) @ x
    for curvature in (ng.ImplicitCurvature(factor), ng.DenseCurvature(factor)):
        assert relative_error(curvature.matvec(x), want) < 1e-12


def test_input_arrays_are_not_modified_and_outputs_are_fresh(context, rng):
    u = rng.standard_normal((7, 33))
    curvature = ng.ImplicitCurvature(u, context=context)
    x = rng.standard_normal(33)
    before = x.copy()
    y1 = curvature.matvec(x)
    y2 = curvature.matvec(x)
    assert np.array_equal(x, before)
    assert y1 is not y2 and np.array_equal(y1, y2)  # bitwise repeatable
