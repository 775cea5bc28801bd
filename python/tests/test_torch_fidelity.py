"""naturalgradient.torch against curvlinops on real torch models, float32 and float64.

Models: a tanh MLP, a small CNN (Conv2d + ReLU + MaxPool2d + Linear) and a model with
LayerNorm. The reference is curvlinops run in float64 on the same model cast to float64,
so a float32 result is held to float32 rounding (relative <= 1e-5) and a float64 one to
<= 1e-10. Conventions matched (see naturalgradient/torch/kfac.py and fisher.py):

- K-FAC: ``KFACLinearOperator(fisher_type="empirical" | "mc", kfac_approx="expand" |
  "reduce", separate_weight_and_bias=False)`` with ``CrossEntropyLoss(reduction="mean")``:
  ``A = (1/(N S)) sum a a^T`` with the bias 1 appended, ``G = (1/N) sum g g^T`` of the
  per-sample-loss output gradients. Our layout is ``[W | b]`` row-major per layer,
  curvlinops' is (W flattened, b) per parameter; vectors are permuted between them.
- GGN: ``GGNLinearOperator`` with mean reduction, ``(1/N) sum J^T H J``.
- Empirical Fisher: ``EFLinearOperator``, ``(1/N) sum g_n g_n^T``.
- Damped K-FAC solves: the library's factored damping equals curvlinops'
  ``KFACInverseLinearOperator(use_heuristic_damping=True)``, and SciPy's dense solve on
  ``(G + I sqrt(l)/pi) (x) (A + pi sqrt(l) I)`` built from curvlinops' factors.
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

import naturalgradient as ng  # noqa: E402
import naturalgradient.torch as ngt  # noqa: E402
from torch_problems import (  # noqa: E402
    DTYPES, MODELS, TOLERANCE, dense, kfac_parameters, kfac_permutation, problem, relative)

def captured_kfac(model, x, y, context, **options) -> "ngt.KFAC":
    kfac = ngt.KFAC(model, context=context, **options)
    kfac.backward(model(x), y)
    return kfac


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name,conv,fisher", [
    ("tanh_mlp", "expand", "empirical"), ("tanh_mlp", "expand", "mc"), ("cnn", "expand", "empirical"),
    ("cnn", "reduce", "empirical"), ("cnn", "expand", "mc"), ("layer_norm", "expand", "empirical")])
def test_kfac_matrix_matches_curvlinops(context, name, conv, fisher, dtype):
    model, model64, x, x64, y = problem(name, dtype)
    kfac = captured_kfac(model, x, y, context, conv=conv, fisher_type=fisher)
    params64 = kfac_parameters(model64)
    reference = curvlinops.KFACLinearOperator(
        model64, nn.CrossEntropyLoss(), params64, [(x64, y)], fisher_type=fisher, kfac_approx=conv,
        separate_weight_and_bias=False, check_deterministic=False)
    order = kfac_permutation(kfac)
    expected = dense(reference, len(order))[np.ix_(order, order)]
    with kfac.curvature() as curvature:
        assert curvature.dtype == np.dtype(str(dtype).removeprefix("torch."))
        ours = curvature.apply(np.eye(len(order), dtype=curvature.dtype))  # rows of a symmetric matrix
        trace = curvature.trace()
    assert relative(ours, expected) <= TOLERANCE[dtype]
    assert abs(trace - np.trace(expected)) <= TOLERANCE[dtype] * abs(np.trace(expected))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", ["tanh_mlp", "cnn"])
def test_kfac_damped_solve_matches_curvlinops_and_scipy(context, name, dtype):
    model, model64, x, x64, y = problem(name, dtype, seed=1)
    damping = 0.3
    kfac = captured_kfac(model, x, y, context)
    params64 = kfac_parameters(model64)
    reference = curvlinops.KFACLinearOperator(
        model64, nn.CrossEntropyLoss(), params64, [(x64, y)], fisher_type="empirical",
        separate_weight_and_bias=False, check_deterministic=False)
    inverse = curvlinops.KFACInverseLinearOperator(reference, damping=damping, use_heuristic_damping=True)
    order = kfac_permutation(kfac)
    rng = np.random.default_rng(5)
    g_torch = rng.standard_normal(len(order))
    expected = (inverse @ torch.from_numpy(g_torch)).numpy()[order]
    # SciPy on curvlinops' own factors: the block-diagonal (G + gG I) (x) (A + gA I).
    blocks = []
    for module_name in reference._mapping:
        a, g = reference._input_covariances[module_name].numpy(), reference._gradient_covariances[module_name].numpy()
        pi = np.sqrt((np.trace(a) / a.shape[0]) / (np.trace(g) / g.shape[0]))
        blocks.append(np.kron(g + np.sqrt(damping) / pi * np.eye(len(g)), a + pi * np.sqrt(damping) * np.eye(len(a))))
    scipy_x = scipy_linalg.solve(scipy_linalg.block_diag(*blocks), g_torch[order], assume_a="pos")
    assert relative(expected, scipy_x) <= 1e-10
    with kfac.curvature() as curvature:
        x_ours, reports = ng.solve(curvature, g_torch[order].astype(curvature.dtype), damping, method="kfac")
    assert reports[0].method == "kfac"
    assert relative(x_ours, scipy_x) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_ggn_and_empirical_fisher_match_curvlinops(context, name, dtype):
    model, model64, x, x64, y = problem(name, dtype, seed=2)
    params64 = list(model64.parameters())
    dimension = sum(p.numel() for p in params64)
    loss = nn.CrossEntropyLoss()
    ggn = dense(curvlinops.GGNLinearOperator(model64, loss, params64, [(x64, y)], check_deterministic=False),
                dimension)
    ef = dense(curvlinops.EFLinearOperator(model64, loss, params64, [(x64, y)], check_deterministic=False),
               dimension)
    identity = np.eye(dimension, dtype=np.float32 if dtype == torch.float32 else np.float64)
    natural = ngt.GGN(model, loss, chunk_size=5, context=context)  # chunks of 5, 5, 3 samples
    with natural.curvature(x) as curvature:
        assert relative(curvature.apply(identity), ggn) <= TOLERANCE[dtype]
    with ngt.EmpiricalFisher(model, loss, chunk_size=4, context=context).curvature(x, y) as curvature:
        assert relative(curvature.apply(identity), ef) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("method", ["woodbury", "cg"])
def test_ggn_damped_solve_matches_scipy_on_curvlinops(context, method, dtype):
    model, model64, x, x64, y = problem("layer_norm", dtype, seed=3)
    params64 = list(model64.parameters())
    dimension = sum(p.numel() for p in params64)
    loss = nn.CrossEntropyLoss()
    operator = curvlinops.GGNLinearOperator(model64, loss, params64, [(x64, y)], check_deterministic=False)
    damping = 0.05
    model.zero_grad()
    loss(model(x), y).backward()
    gradient = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    expected = scipy_linalg.solve(dense(operator, dimension) + damping * np.eye(dimension),
                                  gradient.double().numpy(), assume_a="pos")
    natural = ngt.NaturalGradient(model, loss, method=method, tol=1e-12 if dtype == torch.float64 else 1e-6,
                                  maxiter=10 * dimension, context=context)
    before = [p.grad.clone() for p in model.parameters()]
    natural.step(x, damping=damping)
    ours = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()
    assert natural.last_reports[0].method == method
    # CG in float32 stops at its float32 residual; the direct solve is held to rounding.
    bound = TOLERANCE[dtype] * (10 if method == "cg" and dtype == torch.float32 else 1)
    assert relative(ours, expected) <= bound
    assert any(not torch.equal(a, p.grad) for a, p in zip(before, model.parameters()))
