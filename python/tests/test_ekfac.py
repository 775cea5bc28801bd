"""EKFAC against a NumPy float64 reference and, where installed, curvlinops' EKFACLinearOperator."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import relative_error, tolerance

import naturalgradient as ng

DTYPES = [np.float64, np.float32]
# (outputs, inputs without the bias): layers 5 x 7 and 3 x 4 once the bias column is added.
SHAPES = [(5, 6), (3, 3)]
SAMPLES = 13


def make_layers(rng: np.random.Generator, dtype, samples: int = SAMPLES):
    layers = []
    for outputs, inputs in SHAPES:
        a = np.hstack([rng.standard_normal((samples, inputs)), np.ones((samples, 1))]).astype(dtype)
        g = rng.standard_normal((samples, outputs)).astype(dtype)
        layers.append((a, g))
    return layers


def reference(layers, weights=None):
    """Block-diagonal float64 EKFAC from NumPy's eigh, the empirical Fisher blocks, and S."""
    blocks, fishers, values = [], [], []
    for a, g in layers:
        a64, g64 = a.astype(np.float64), g.astype(np.float64)
        n = a.shape[0]
        w = np.ones(n) if weights is None else weights.astype(np.float64)
        A = (a64 * w[:, None]).T @ a64 / n
        G = (g64 * w[:, None]).T @ g64 / n
        qa, qg = np.linalg.eigh(A)[1], np.linalg.eigh(G)[1]
        k = np.kron(qg, qa)  # basis vector (k, j) = Q_G[:, k] (x) Q_A[:, j], row-major vec
        u = np.einsum("no,ni->noi", g64, a64).reshape(n, -1)  # per-sample gradients vec(g a^T)
        fisher = (u * w[:, None]).T @ u / n
        s = np.einsum("pq,pr,rq->q", k, fisher, k)  # diag(K^T EF K)
        blocks.append(k @ np.diag(s) @ k.T)
        fishers.append(fisher)
        values.append(s.reshape(g.shape[1], a.shape[1]))
    size = sum(b.shape[0] for b in blocks)
    out = np.zeros((size, size))
    start = 0
    for b in blocks:
        out[start:start + b.shape[0], start:start + b.shape[0]] = b
        start += b.shape[0]
    return out, fishers, values


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_numpy_reference(context, rng, dtype):
    layers = make_layers(rng, dtype)
    weights = (np.abs(rng.standard_normal(SAMPLES)) + 0.2).astype(dtype)
    curvature = ng.EKFACCurvature(layers, weights=weights, context=context)
    assert curvature.representation == "ekfac"
    assert curvature.layer_shapes == [(5, 7), (3, 4)]
    f, fishers, values = reference(layers, weights)
    p = f.shape[0]
    assert curvature.shape == (p, p)
    tol = tolerance(dtype)
    damping = 0.07
    x = rng.standard_normal((2, p)).astype(dtype)
    assert relative_error(curvature.apply(x, damping=damping), x.astype(np.float64) @ (f + damping * np.eye(p))) < tol
    assert relative_error(curvature.diagonal(), np.diag(f)) < tol
    assert abs(curvature.trace() - np.trace(f)) < tol * np.trace(f)
    for index in range(len(SHAPES)):
        # S is basis-sign invariant; the eigenvalues of A, G are distinct, so it is unique.
        assert relative_error(curvature.eigenvalues(index), values[index]) < tol
        qa, qg = curvature.eigenbasis(index)
        np.testing.assert_allclose(qa.T @ qa, np.eye(qa.shape[0]), atol=1e-12)
        np.testing.assert_allclose(qg.T @ qg, np.eye(qg.shape[0]), atol=1e-12)
    solution, reports = ng.solve(curvature, x[0], damping=damping)
    expected = np.linalg.solve(f + damping * np.eye(p), x[0].astype(np.float64))
    assert relative_error(solution, expected) < 10 * tol
    assert reports[0].status == "converged"


def test_diagonal_is_optimal_in_the_kronecker_basis(context, rng):
    """In its basis K, EKFAC's diagonal is the projected empirical Fisher's, so it is no
    farther from the empirical Fisher than K-FAC (same basis, eigenvalue products)."""
    layers = make_layers(rng, np.float64)
    curvature = ng.EKFACCurvature(layers, context=context)
    kfac = ng.KroneckerCurvature(layers, context=context)
    f, fishers, _ = reference(layers)
    eye = np.eye(f.shape[0])
    ekfac_dense = curvature.apply(eye)
    kfac_dense = kfac.apply(eye)
    start = 0
    for fisher in fishers:
        block = slice(start, start + fisher.shape[0])
        start += fisher.shape[0]
        assert np.linalg.norm(ekfac_dense[block, block] - fisher) < np.linalg.norm(kfac_dense[block, block] - fisher)


def test_one_sample_is_exact(context, rng):
    """With one sample K-FAC, EKFAC and the empirical Fisher coincide: u u^T."""
    layers = make_layers(rng, np.float64, samples=1)
    curvature = ng.EKFACCurvature(layers, context=context)
    kfac = ng.KroneckerCurvature(layers, context=context)
    eye = np.eye(curvature.shape[0])
    assert relative_error(curvature.apply(eye), kfac.apply(eye)) < 1e-12


def test_accumulate_refresh_reproduces_the_batch(context, rng):
    layers = make_layers(rng, np.float64)
    other = make_layers(rng, np.float64)
    curvature = ng.EKFACCurvature(layers, context=context)
    s = curvature.eigenvalues(0)
    curvature.accumulate(other, beta=0.5, alpha=0.5)
    assert relative_error(curvature.eigenvalues(0), s) > 1e-3
    curvature.accumulate(layers, beta=0.0, refresh_basis=True)
    assert relative_error(curvature.eigenvalues(0), s) < 1e-10


def test_errors(context, rng):
    layers = make_layers(rng, np.float64)
    with pytest.raises(ValueError, match="layers: is empty"):
        ng.EKFACCurvature([], context=context)
    bad = [(layers[0][0], layers[0][1][:5])]
    with pytest.raises(ValueError, match="layers\\[0\\]"):
        ng.EKFACCurvature(bad, context=context)
    poisoned = layers[0][0].copy()
    poisoned[2, 1] = np.nan
    with pytest.raises(ng.ArgumentError, match="activations"):
        ng.EKFACCurvature([(poisoned, layers[0][1])], context=context)
    curvature = ng.EKFACCurvature(layers, context=context)
    with pytest.raises(ValueError, match="layer: 2"):
        curvature.eigenvalues(2)
    with pytest.raises(ng.ArgumentError, match="beta"):
        curvature.accumulate(layers, beta=-1.0)
    with pytest.raises(ValueError, match="dtype"):
        curvature.accumulate([(a.astype(np.float32), g.astype(np.float32)) for a, g in layers])
    single = ng.EKFACCurvature(make_layers(rng, np.float64, samples=1), context=context)
    with pytest.raises(ng.ArgumentError, match="damping"):
        ng.solve(single, np.ones(single.shape[0]), damping=0.0, method="kfac")


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_curvlinops(context, dtype):
    """Our EKFAC equals curvlinops' EKFACLinearOperator (fisher_type="empirical", mean
    reduction, weight and bias as one [W | b] block) on a tiny nn.Linear model: our per-sample output
    gradients are N times autograd's gradients of the batch-mean loss."""
    torch = pytest.importorskip("torch", reason="torch is not installed (the curvlinops comparison needs it)")
    curvlinops = pytest.importorskip("curvlinops", reason="curvlinops-for-pytorch is not installed")
    EKFACLinearOperator = curvlinops.EKFACLinearOperator

    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    generator = torch.Generator().manual_seed(7)
    n, d_in, d_out = 13, 6, 4
    model = torch.nn.Linear(d_in, d_out).to(torch_dtype)
    with torch.no_grad():
        model.weight.copy_(torch.randn(d_out, d_in, generator=generator, dtype=torch_dtype))
        model.bias.copy_(torch.randn(d_out, generator=generator, dtype=torch_dtype))
    X = torch.randn(n, d_in, generator=generator, dtype=torch_dtype)
    y = torch.randn(n, d_out, generator=generator, dtype=torch_dtype)
    loss_function = torch.nn.MSELoss(reduction="mean")
    params = [model.weight, model.bias]
    theirs = EKFACLinearOperator(
        model, loss_function, params, [(X, y)], fisher_type="empirical", check_deterministic=False,
        separate_weight_and_bias=False,
    )
    # Our inputs: activations with the bias 1, per-sample output gradients of the per-sample
    # losses. MSELoss(mean) averages over N * d_out entries; curvlinops multiplies that loss
    # by sqrt(d_out) before its empirical backward pass (`_maybe_adjust_loss_scale`) and
    # rescales the covariances by N, so its per-sample output gradient is
    # N * sqrt(d_out) * 2 (f - y) / (N d_out) = 2 (f - y) / sqrt(d_out).
    a = torch.cat([X, torch.ones(n, 1, dtype=torch_dtype)], dim=1).numpy()
    with torch.no_grad():
        g = (2.0 / d_out**0.5 * (model(X) - y)).numpy()
    ours = ng.EKFACCurvature([(np.ascontiguousarray(a), np.ascontiguousarray(g))], context=context)
    # Their parameter order: weight (d_out x d_in, row-major), then bias; ours [W | b] row-major.
    p = d_out * (d_in + 1)
    rng = np.random.default_rng(3)
    v_ours = rng.standard_normal(p).astype(dtype)
    w_block = v_ours.reshape(d_out, d_in + 1)
    v_theirs = np.concatenate([w_block[:, :d_in].ravel(), w_block[:, d_in]])
    out_theirs = (theirs @ torch.from_numpy(v_theirs.astype(dtype))).detach().numpy().astype(np.float64)
    theirs_as_ours = np.hstack([out_theirs[: d_out * d_in].reshape(d_out, d_in), out_theirs[d_out * d_in:, None]]).ravel()
    out_ours = ours.apply(v_ours)
    assert relative_error(out_ours, theirs_as_ours) < (1e-5 if dtype == np.float32 else 1e-10)
