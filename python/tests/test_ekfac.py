"""EKFAC against a NumPy float64 reference and, where installed, curvlinops' EKFACLinearOperator."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import block_diagonal, relative_error, tolerance

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
    return block_diagonal(blocks), fishers, values


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
    reduction, weight and bias as one [W | b] block) on a tiny tanh MLP of two nn.Linear
    layers, and our damped solve equals NumPy's on their operator made dense."""
    torch = pytest.importorskip("torch", reason="torch is not installed (the curvlinops comparison needs it)")
    curvlinops = pytest.importorskip("curvlinops", reason="curvlinops-for-pytorch is not installed")

    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    generator = torch.Generator().manual_seed(7)
    n, sizes = 13, [6, 5, 3]
    model = torch.nn.Sequential(
        torch.nn.Linear(sizes[0], sizes[1]), torch.nn.Tanh(), torch.nn.Linear(sizes[1], sizes[2])
    ).to(torch_dtype)
    linears = [model[0], model[2]]
    with torch.no_grad():
        for layer in linears:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator, dtype=torch_dtype))
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator, dtype=torch_dtype))
    X = torch.randn(n, sizes[0], generator=generator, dtype=torch_dtype)
    y = torch.randn(n, sizes[2], generator=generator, dtype=torch_dtype)
    loss_function = torch.nn.MSELoss(reduction="mean")
    params = [p for layer in linears for p in (layer.weight, layer.bias)]
    theirs = curvlinops.EKFACLinearOperator(
        model, loss_function, params, [(X, y)], fisher_type="empirical", check_deterministic=False,
        separate_weight_and_bias=False,
    )
    # Our inputs: each layer's activations with the bias 1 and per-sample output gradients
    # of the per-sample losses. MSELoss(mean) averages over N * C entries; curvlinops
    # multiplies that loss by sqrt(C) before its empirical backward pass
    # (`_maybe_adjust_loss_scale`) and rescales the covariances by N, so its per-sample
    # output gradient is N * d(sqrt(C) * loss)/dz.
    z1 = model[0](X)
    h = torch.tanh(z1)
    z2 = model[2](h)
    loss = loss_function(z2, y) * sizes[2] ** 0.5
    g1, g2 = torch.autograd.grad(loss, [z1, z2])
    ones = torch.ones(n, 1, dtype=torch_dtype)
    layers = [
        (torch.cat([X, ones], dim=1).detach().numpy(), (n * g1).detach().numpy()),
        (torch.cat([h, ones], dim=1).detach().numpy(), (n * g2).detach().numpy()),
    ]
    ours = ng.EKFACCurvature([(np.ascontiguousarray(a), np.ascontiguousarray(g)) for a, g in layers],
                             context=context)
    # Their vector: W1, b1, W2, b2 (each row-major); ours: [W1 | b1], [W2 | b2] row-major.
    blocks = [(sizes[i + 1], sizes[i]) for i in range(2)]

    def theirs_from_ours(v):
        parts, start = [], 0
        for outputs, inputs in blocks:
            block = v[start:start + outputs * (inputs + 1)].reshape(outputs, inputs + 1)
            parts += [block[:, :inputs].ravel(), block[:, inputs]]
            start += outputs * (inputs + 1)
        return np.concatenate(parts)

    def ours_from_theirs(v):
        parts, start = [], 0
        for outputs, inputs in blocks:
            weight = v[start:start + outputs * inputs].reshape(outputs, inputs)
            bias = v[start + outputs * inputs:start + outputs * (inputs + 1)]
            parts.append(np.hstack([weight, bias[:, None]]).ravel())
            start += outputs * (inputs + 1)
        return np.concatenate(parts)

    p = ours.shape[0]
    tol = 1e-5 if dtype == np.float32 else 1e-10
    rng = np.random.default_rng(3)
    v = rng.standard_normal(p).astype(dtype)
    out_theirs = (theirs @ torch.from_numpy(theirs_from_ours(v))).detach().numpy().astype(np.float64)
    assert relative_error(ours.apply(v), ours_from_theirs(out_theirs)) < tol
    # Damped solve against NumPy on their operator as a dense float64 matrix.
    eye = torch.eye(p, dtype=torch_dtype)
    dense_theirs = (theirs @ eye).detach().numpy().astype(np.float64)
    permutation = np.array([int(i) for i in ours_from_theirs(np.arange(p, dtype=np.float64))])
    dense = dense_theirs[np.ix_(permutation, permutation)]
    damping = 0.1
    x, _ = ng.solve(ours, v, damping=damping)
    expected = np.linalg.solve(dense + damping * np.eye(p), v.astype(np.float64))
    assert relative_error(x, expected) < 10 * tol
