"""naturalgradient.torch.EKFAC against curvlinops' EKFACLinearOperator, float32 and float64.

Conventions matched: ``EKFACLinearOperator(fisher_type="empirical" | "mc",
separate_weight_and_bias=False)`` with ``CrossEntropyLoss(reduction="mean")``; A and G are
K-FAC's, ``S = (1/N) sum_n (Q_G^T g_n a_n^T Q_A)^2`` with g_n the per-sample loss's output
gradient. The reference is curvlinops in float64 on the float64 twin of the model. Conv2d:
our per-row S differs from curvlinops' per-example (location-summed) one except with one
output location (see naturalgradient/torch/ekfac.py); both facts are tested.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed (scripts/setup-python.sh installs it; pip install './python[torch]')")
curvlinops = pytest.importorskip(
    "curvlinops", reason="curvlinops-for-pytorch is not installed (scripts/setup-python.sh installs it)")
scipy_linalg = pytest.importorskip("scipy.linalg")

from torch import nn  # noqa: E402

import naturalgradient.torch as ngt  # noqa: E402
from torch_problems import (  # noqa: E402
    DTYPES, TOLERANCE, dense, kfac_parameters, kfac_permutation, problem, relative)


def ekfac_reference(model64, x64, y, fisher="empirical"):
    return curvlinops.EKFACLinearOperator(
        model64, nn.CrossEntropyLoss(), kfac_parameters(model64), [(x64, y)], fisher_type=fisher,
        separate_weight_and_bias=False, check_deterministic=False)


def dense_ours(ekfac: "ngt.EKFAC") -> np.ndarray:
    """Our EKFAC of the last batch as a float64 matrix in our layout (block-diagonal over
    the row-count groups)."""
    sizes = [layer.outputs * layer.inputs for layer in ekfac.layers]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out = np.zeros((offsets[-1], offsets[-1]))
    for indices, curvature in ekfac.curvatures():
        with curvature:
            block = curvature.apply(np.eye(sum(sizes[i] for i in indices), dtype=curvature.dtype))
        where = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices])
        out[np.ix_(where, where)] = block
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("fisher", ["empirical", "mc"])
@pytest.mark.parametrize("name", ["tanh_mlp", "layer_norm"])
def test_ekfac_matrix_matches_curvlinops(context, name, fisher, dtype):
    model, model64, x, x64, y = problem(name, dtype)
    ekfac = ngt.EKFAC(model, fisher_type=fisher, context=context)
    ekfac.backward(model(x), y)
    order = kfac_permutation(ekfac)
    expected = dense(ekfac_reference(model64, x64, y, fisher), len(order))[np.ix_(order, order)]
    with ekfac.curvature() as curvature:
        assert curvature.dtype == np.dtype(str(dtype).removeprefix("torch."))
        ours = curvature.apply(np.eye(len(order), dtype=curvature.dtype))
    assert relative(ours, expected) <= TOLERANCE[dtype]
    # The eigenvalue correction moves the matrix away from K-FAC's: the match is not vacuous.
    kfac = ngt.KFAC(model, fisher_type=fisher, context=context)
    kfac.backward(model(x), y)
    with kfac.curvature() as curvature:
        assert relative(ours, curvature.apply(np.eye(len(order), dtype=curvature.dtype))) > 1e-3


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_ekfac_step_writes_damped_solve(context, dtype):
    """step() replaces .grad with (F_EKFAC + damping I)^-1 grad: against curvlinops' exact-damping
    inverse and SciPy's dense solve on curvlinops' matrix."""
    model, model64, x, x64, y = problem("tanh_mlp", dtype, seed=1)
    damping = 0.07
    ekfac = ngt.EKFAC(model, damping=damping, context=context)
    model.zero_grad()
    ekfac.backward(model(x), y)
    gradient = ekfac.flat().double().numpy()
    order = kfac_permutation(ekfac)
    reference = ekfac_reference(model64, x64, y)
    scipy_x = scipy_linalg.solve(dense(reference, len(order))[np.ix_(order, order)] + damping * np.eye(len(order)),
                                 gradient, assume_a="pos")
    inverse = curvlinops.KFACInverseLinearOperator(reference, damping=damping, use_exact_damping=True)
    in_torch_order = np.empty_like(gradient)
    in_torch_order[order] = gradient
    assert relative((inverse @ torch.from_numpy(in_torch_order)).numpy()[order], scipy_x) <= 1e-10
    reports = ekfac.step()
    assert [r.method for r in reports] == ["kfac"]
    assert relative(ekfac.flat().numpy(), scipy_x) <= TOLERANCE[dtype]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    before = ekfac.parameter_vector().double().numpy()
    optimizer.step()
    assert relative(ekfac.parameter_vector().double().numpy(), before - 0.5 * scipy_x) <= TOLERANCE[dtype]


def _ekfac_block(a: np.ndarray, g: np.ndarray, gradients: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """float64 EKFAC block in the eigenbases of (A, G): S = sum_k w_k mean_n (Q_G^T P_n Q_A)^2
    over weighted sets of per-sample gradient matrices P_n (outputs x inputs)."""
    qa, qg = np.linalg.eigh(a)[1], np.linalg.eigh(g)[1]
    s = sum(w * np.mean(np.einsum("ok,noi,ij->nkj", qg, p, qa) ** 2, axis=0) for w, p in gradients)
    k = np.kron(qg, qa)
    return (k * s.reshape(-1)) @ k.T


def _state_matrix(ekfac: "ngt.EKFAC") -> np.ndarray:
    [(indices, curvature)] = ekfac.state
    assert indices == list(range(len(ekfac.layers)))
    return curvature.apply(np.eye(ekfac.dimension, dtype=curvature.dtype))


def test_ekfac_schedule_ema_and_refresh(context):
    """factor_decay and the refresh periods against a float64 reference from per-sample
    gradients (torch.func) and curvlinops' K-FAC factors of each batch (parameters fixed):
    step 0 builds from batch 1; step 1 (eigenvalues due, basis not) keeps batch 1's basis and
    averages S; step 2 (basis due) decomposes the averaged factors and takes S from batch 3."""
    beta = 0.6
    model = problem("tanh_mlp", torch.float64)[1]
    ekfac = ngt.EKFAC(model, factor_decay=beta, eigenbasis_update_period=2, context=context)
    order = kfac_permutation(ekfac)
    sizes = [layer.outputs * layer.inputs for layer in ekfac.layers]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    generator = torch.Generator().manual_seed(3)
    factors, gradients, states = [], [], []
    for _ in range(3):
        x = torch.randn(11, 6, dtype=torch.float64, generator=generator)
        y = torch.randint(0, 4, (11,), generator=generator)
        model.zero_grad()
        ekfac.backward(model(x), y)
        ekfac.step()
        states.append(_state_matrix(ekfac))
        operator = curvlinops.KFACLinearOperator(
            model, nn.CrossEntropyLoss(), kfac_parameters(model), [(x, y)], fisher_type="empirical",
            separate_weight_and_bias=False, check_deterministic=False)
        operator.compute_kronecker_factors()
        factors.append([(operator._input_covariances[n].numpy(), operator._gradient_covariances[n].numpy())
                        for n in operator._mapping])
        rows = ngt.per_sample_gradients(model, nn.CrossEntropyLoss(), x, y)[:, order]
        gradients.append([rows[:, offsets[i]:offsets[i + 1]].reshape(-1, layer.outputs, layer.inputs)
                          for i, layer in enumerate(ekfac.layers)])
    first = [_ekfac_block(a, g, [(1.0, p)]) for (a, g), p in zip(factors[0], gradients[0])]
    second = [_ekfac_block(a, g, [(beta, p1), (1 - beta, p2)])
              for (a, g), p1, p2 in zip(factors[0], gradients[0], gradients[1])]
    third = [_ekfac_block(beta * (beta * a1 + (1 - beta) * a2) + (1 - beta) * a3,
                          beta * (beta * g1 + (1 - beta) * g2) + (1 - beta) * g3, [(1.0, p3)])
             for ((a1, g1), (a2, g2), (a3, g3)), p3 in zip(zip(*factors), gradients[2])]
    for state, blocks in zip(states, (first, second, third)):
        assert relative(state, scipy_linalg.block_diag(*blocks)) <= 1e-10


def test_ekfac_eigenvalue_period_reuses_the_curvature(context):
    model, _, x, _, y = problem("tanh_mlp", torch.float64)
    ekfac = ngt.EKFAC(model, eigenvalue_update_period=2, eigenbasis_update_period=4, context=context)
    states = []
    for rows in (slice(0, 7), slice(7, 13), slice(3, 10)):
        ekfac.backward(model(x[rows]), y[rows])
        ekfac.step()
        states.append(_state_matrix(ekfac))
    assert ekfac.steps == 3
    assert np.array_equal(states[0], states[1])  # step 1: nothing due
    assert relative(states[2], states[1]) > 1e-3  # step 2: eigenvalues re-estimated


def test_ekfac_conv2d_per_row_convention(context):
    """Conv2d: a kernel covering the whole input (one output location) is a Linear layer and
    matches curvlinops; with several locations our S is the per-row mean
    (1/N) sum_{n,s} (Q_G^T g_ns)^2 (Q_A^T a_ns)^2, not curvlinops' per-example one."""
    torch.manual_seed(4)
    for kernel, matches in ((4, True), (3, False)):
        model = nn.Sequential(nn.Conv2d(2, 3, kernel), nn.Tanh(), nn.Flatten(),
                              nn.Linear(3 * (5 - kernel) ** 2, 4)).double()
        x = torch.randn(9, 2, 4, 4, dtype=torch.float64)
        y = torch.randint(0, 4, (9,))
        ekfac = ngt.EKFAC(model, context=context)
        ekfac.backward(model(x), y)
        order = kfac_permutation(ekfac)
        ours = dense_ours(ekfac)
        theirs = dense(ekfac_reference(model, x, y), len(order))[np.ix_(order, order)]
        conv = slice(0, ekfac.layers[0].outputs * ekfac.layers[0].inputs)
        if matches:
            assert relative(ours, theirs) <= 1e-10
            continue
        # The Linear layer matches either way; the convolution follows the per-row formula.
        linear = slice(conv.stop, None)
        assert relative(ours[linear, linear], theirs[linear, linear]) <= 1e-10
        assert relative(ours[conv, conv], theirs[conv, conv]) > 1e-3
        patches = torch.nn.functional.unfold(x, kernel).transpose(1, 2)  # (N, S, C k k)
        a = torch.cat([patches, patches.new_ones(*patches.shape[:2], 1)], dim=2).reshape(-1, 2 * kernel ** 2 + 1)
        z = model[0](x)
        (g,) = torch.autograd.grad(nn.CrossEntropyLoss()(model[1:](z), y), z)
        g = (g * len(x)).permute(0, 2, 3, 1).reshape(-1, 3)  # per-sample loss gradients, rows (n, s)
        a, g = a.numpy(), g.numpy()
        rows = len(a)
        per_row = np.einsum("no,ni->noi", g, a)  # each row's g a^T
        # expand: A = (1/(N S)) sum a a^T, G = (1/N) sum g g^T, S = (1/N) sum over the N S rows.
        block = _ekfac_block(a.T @ a / rows, g.T @ g / len(x), [(rows / len(x), per_row)])
        assert relative(ours[conv, conv], block) <= 1e-10


def test_ekfac_rejects_bad_options(context):
    model = problem("tanh_mlp", torch.float64)[1]
    for options, words in (({"damping": -1.0}, "damping: -1.0"), ({"factor_decay": 1.0}, "factor_decay: 1.0"),
                           ({"eigenbasis_update_period": 0}, "eigenbasis_update_period: 0"),
                           ({"eigenvalue_update_period": 1.5}, "eigenvalue_update_period: 1.5"),
                           ({"conv": "sum"}, "conv: 'sum'")):
        with pytest.raises(ValueError, match=words):
            ngt.EKFAC(model, context=context, **options)
    ekfac = ngt.EKFAC(model, context=context)
    with pytest.raises(RuntimeError, match="no gradient"):
        ekfac.step()
    assert ekfac.steps == 0
    cnn = problem("cnn", torch.float64)[1]
    ekfac = ngt.EKFAC(cnn, context=context)
    ekfac.backward(cnn(torch.randn(3, 2, 6, 6, dtype=torch.float64)), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="3 row-count groups; use curvatures"):
        ekfac.curvature()
    built = ekfac.curvatures()
    assert [indices for indices, _ in built] == [[0], [1], [2]]
    for _, curvature in built:
        curvature.close()
