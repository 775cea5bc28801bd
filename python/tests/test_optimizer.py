"""The optimizer: steps against NumPy, every curvature kind, state round trip."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import fisher, relative_error

import naturalgradient as ng


def test_empirical_fisher_step_solves_the_damped_system(context, rng):
    p, n = 23, 9
    optimizer = ng.NaturalGradientOptimizer(p, context=context, representation="dense", damping=0.05,
                                            learning_rate=0.5)
    assert optimizer.needs_curvature and optimizer.step_count == 0
    theta = rng.standard_normal(p)
    g = rng.standard_normal(p)
    per_sample = rng.standard_normal((n, p))
    before = theta.copy()
    report = optimizer.step(theta, g, per_sample_gradients=per_sample)
    delta = (before - theta) / 0.5
    assert relative_error((fisher(per_sample) + 0.05 * np.eye(p)) @ delta, g) < 1e-10
    assert report.method == "cholesky" and report.step == 0 and report.refreshed_curvature
    assert optimizer.step_count == 1


@pytest.mark.parametrize("options", [
    dict(representation="implicit", method="woodbury"),
    dict(representation="implicit", method="pcg", max_iterations=200, tolerance=1e-10),
    dict(representation="diagonal", momentum=0.5, curvature_decay=0.5),
    dict(representation="block_diagonal", block_sizes=[10, 13], method="cg", tolerance=1e-10),
    dict(representation="dense", step_size="quadratic_model", momentum=0.9),
])
def test_state_round_trip(options, context, rng):
    p, n = 23, 9
    first = ng.NaturalGradientOptimizer(p, context=context, **options)
    theta = rng.standard_normal(p)
    batches = [(rng.standard_normal(p), rng.standard_normal((n, p))) for _ in range(3)]
    first.step(theta, batches[0][0], per_sample_gradients=batches[0][1])
    saved = first.state()
    assert isinstance(saved, bytes) and first.state_dict()["step"] == 1
    second = ng.NaturalGradientOptimizer(p, context=context, **options)
    second.restore(saved)
    assert second.step_count == 1
    a, b = theta.copy(), theta.copy()
    for g, u in batches[1:]:
        first.step(a, g, per_sample_gradients=u)
        second.step(b, g, per_sample_gradients=u)
    assert np.array_equal(a, b)  # bit for bit
    third = ng.NaturalGradientOptimizer(p, context=context, **options)
    third.restore(first.state_dict())
    assert third.step_count == 3


def test_update_does_not_apply(context, rng):
    p = 8
    optimizer = ng.NaturalGradientOptimizer(p, context=context, dtype=np.float32)
    theta = rng.standard_normal(p).astype(np.float32)
    before = theta.copy()
    update, report = optimizer.update(theta, rng.standard_normal(p).astype(np.float32),
                                      per_sample_gradients=rng.standard_normal((3, p)).astype(np.float32))
    assert np.array_equal(theta, before) and update.dtype == np.float32
    assert report.update_norm == pytest.approx(float(np.linalg.norm(update.astype(np.float64))), rel=1e-5)


def test_kfac_and_exact_fisher(context, rng):
    n = 6
    shapes = [(3, 5), (2, 4)]
    p = sum(o * i for o, i in shapes)
    kfac = ng.NaturalGradientOptimizer(p, context=context, curvature="kfac", layers=shapes, damping=0.1)
    theta = rng.standard_normal(p)
    layers = [(rng.standard_normal((n, i)), rng.standard_normal((n, o))) for o, i in shapes]
    report = kfac.step(theta, rng.standard_normal(p), layers=layers)
    assert report.method == "kfac" and report.refreshed_inverse
    with pytest.raises(ValueError, match="layers"):
        kfac.step(theta, rng.standard_normal(p), layers=layers[:1])

    exact = ng.NaturalGradientOptimizer(p, context=context, curvature="exact_fisher", representation="dense")
    jacobians = rng.standard_normal((n, 3, p))
    logits = rng.standard_normal((n, 3))
    g = rng.standard_normal(p)
    update, _ = exact.update(theta, g, output_jacobians=jacobians, outputs=logits, family="categorical",
                             measure="kl")
    q = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    f = np.einsum("nap,nab,nbq->pq", jacobians, np.stack([np.diag(r) - np.outer(r, r) for r in q]), jacobians) / n
    assert relative_error((f + 1e-3 * np.eye(p)) @ -update, g) < 1e-8


def test_levenberg_marquardt_uses_the_loss_callback(context, rng):
    p = 6
    optimizer = ng.NaturalGradientOptimizer(p, context=context, damping_policy="levenberg_marquardt", damping=1.0)
    theta = rng.standard_normal(p)
    calls = []

    def loss_at(candidate: np.ndarray) -> float:
        calls.append(candidate.copy())
        return float(candidate @ candidate)

    start = theta.copy()
    report = optimizer.step(theta, 2 * theta, per_sample_gradients=rng.standard_normal((4, p)),
                            loss=float(theta @ theta), loss_at=loss_at)
    assert np.array_equal(theta, calls[0])  # step applied the candidate it evaluated
    assert calls and report.reduction_ratio is not None
    rho = report.reduction_ratio
    assert rho == pytest.approx(report.actual_change / report.predicted_change)
    assert report.actual_change == pytest.approx(float(calls[0] @ calls[0]) - float(start @ start))
    factor = 1.5 if rho < 0.25 else (2 / 3 if rho > 0.75 else 1.0)
    assert report.next_damping == pytest.approx(factor * report.damping)
    with pytest.raises(ValueError, match="lossAt"):
        optimizer.step(theta, 2 * theta, per_sample_gradients=rng.standard_normal((4, p)))

    def broken(candidate: np.ndarray) -> float:
        raise KeyError("model exploded")

    with pytest.raises(KeyError, match="model exploded"):
        optimizer.step(theta, 2 * theta, per_sample_gradients=rng.standard_normal((4, p)), loss_at=broken)


def test_option_and_input_errors(context, rng):
    with pytest.raises(ValueError, match="momentum"):
        ng.NaturalGradientOptimizer(4, context=context, momentum=1.0)
    with pytest.raises(ValueError, match="curvatureDecay"):
        ng.NaturalGradientOptimizer(4, context=context, curvature_decay=0.5)  # implicit keeps no average
    with pytest.raises(TypeError):
        ng.NaturalGradientOptimizer(4, context=context, momentun=0.9)
    optimizer = ng.NaturalGradientOptimizer(4, context=context)
    with pytest.raises(ValueError, match="gradient"):
        optimizer.step(np.zeros(4), np.array([1.0, np.nan, 0, 0]), per_sample_gradients=np.ones((2, 4)))
    with pytest.raises(ValueError, match="parameters: 3 values"):
        optimizer.step(np.zeros(3), np.zeros(4), per_sample_gradients=np.ones((2, 4)))
    with pytest.raises(ValueError, match="state"):
        optimizer.restore(b'{"version": 1}')
    other = ng.NaturalGradientOptimizer(5, context=context)
    other.step(np.zeros(5), np.ones(5), per_sample_gradients=np.ones((2, 5)))
    with pytest.raises(ValueError, match="state"):
        optimizer.restore(other.state())
