"""Shared fixtures: one CPU context for the session, a seeded generator per test."""

from __future__ import annotations

import numpy as np
import pytest

import naturalgradient as ng


@pytest.fixture(scope="session")
def context() -> ng.Context:
    return ng.Context("cpu")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261202)


def tolerance(dtype: np.dtype) -> float:
    """Relative tolerance of a float32 / float64 result against a float64 reference."""
    return 2e-5 if np.dtype(dtype) == np.float32 else 1e-11


def relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    value = np.asarray(value, dtype=np.float64)
    denominator = np.linalg.norm(reference)
    return float(np.linalg.norm(value - reference) / (denominator if denominator > 0 else 1.0))


def fisher(u: np.ndarray, samples: int | None = None, weights: np.ndarray | None = None) -> np.ndarray:
    """F = (1/N) U^T diag(w) U in float64."""
    u = u.astype(np.float64)
    w = np.ones(u.shape[0]) if weights is None else weights.astype(np.float64)
    return (u * w[:, None]).T @ u / (u.shape[0] if samples is None else samples)


def kronecker_reference(layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The block-diagonal K-FAC matrix, blocks G (x) A under row-major vec."""
    blocks = []
    for a, g in layers:
        a64, g64 = a.astype(np.float64), g.astype(np.float64)
        n = a.shape[0]
        blocks.append(np.kron(g64.T @ g64 / n, a64.T @ a64 / n))
    return block_diagonal(blocks)


def block_diagonal(blocks: list[np.ndarray]) -> np.ndarray:
    """The square blocks on the diagonal of one matrix, zeros elsewhere."""
    size = sum(b.shape[0] for b in blocks)
    out = np.zeros((size, size))
    start = 0
    for b in blocks:
        out[start:start + b.shape[0], start:start + b.shape[0]] = b
        start += b.shape[0]
    return out
