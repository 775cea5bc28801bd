"""naturalgradient.torch behaviour: the import boundary, zero-copy tensors, what KFAC.step
writes into .grad under each option, unsupported layers, similarity measures through
the Jacobian path, the Monte-Carlo Fisher, and errors. References are float64 and built
independently (dense matrices, SciPy, torch.autograd.functional)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed (scripts/setup-python.sh installs it; pip install './python[torch]')")
scipy_linalg = pytest.importorskip("scipy.linalg")

from torch import nn  # noqa: E402

import naturalgradient as ng  # noqa: E402
import naturalgradient.torch as ngt  # noqa: E402
from naturalgradient.torch._tensors import host_array  # noqa: E402


def relative(value, reference) -> float:
    value = np.asarray(value, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    return float(np.linalg.norm(value - reference) / np.linalg.norm(reference))


def mlp(seed: int = 0, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).to(dtype)


def batch(seed: int, n: int = 11, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=generator, dtype=dtype), torch.randint(0, 3, (n,), generator=generator)


def kfac_reference(kfac: "ngt.KFAC", stats, damping: float, gradient: np.ndarray) -> np.ndarray:
    """(G + gG I) (x) (A + gA I) solved densely, factors from the rows in float64."""
    blocks = []
    for a_rows, g_rows in stats:
        a = a_rows.astype(np.float64).T @ a_rows.astype(np.float64) / a_rows.shape[0]
        g = g_rows.astype(np.float64).T @ g_rows.astype(np.float64) / g_rows.shape[0]
        pi = math.sqrt((np.trace(a) / len(a)) / (np.trace(g) / len(g)))
        blocks.append(np.kron(g + math.sqrt(damping) / pi * np.eye(len(g)), a + pi * math.sqrt(damping) * np.eye(len(a))))
    return scipy_linalg.solve(scipy_linalg.block_diag(*blocks), gradient, assume_a="pos")


def test_importing_the_package_does_not_import_torch():
    code = "import sys, naturalgradient; assert 'torch' not in sys.modules, 'torch was imported'; print('clean')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "clean"


def test_contiguous_cpu_tensors_reach_numpy_without_a_copy():
    t = torch.randn(4, 6, dtype=torch.float32)
    view = host_array(t, "t")
    assert np.shares_memory(view, t.numpy())
    transposed = t.T
    copied = host_array(transposed, "t")
    assert copied.flags.c_contiguous and not np.shares_memory(copied, t.numpy())
    np.testing.assert_array_equal(copied, transposed.numpy())
    with pytest.raises(ValueError, match="t: dtype torch.int64"):
        host_array(torch.ones(3, dtype=torch.int64), "t")


def test_kfac_step_writes_the_kfac_direction_into_grad(context):
    model = mlp()
    x, y = batch(1)
    damping = 0.02
    kfac = ngt.KFAC(model, damping=damping, context=context)
    kfac.backward(model(x), y)
    gradient = kfac.flat().numpy().copy()
    stats = kfac.statistics()
    expected = kfac_reference(kfac, stats, damping, gradient)
    report = kfac.step()
    assert report.method == "kfac" and report.refreshed_curvature
    assert relative(kfac.flat().numpy(), expected) <= 1e-10
    # Any torch optimizer then takes the step: SGD moves by -lr * direction.
    before = kfac.parameter_vector().numpy().copy()
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    assert relative(kfac.parameter_vector().numpy(), before - 0.5 * expected) <= 1e-12


@pytest.mark.parametrize("conv", ["expand", "reduce"])
def test_kfac_step_on_a_cnn_uses_the_padded_conv_rows(context, conv):
    torch.manual_seed(13)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3 * 3 * 3, 4)).double()
    x = torch.randn(5, 2, 6, 6, dtype=torch.float64)
    y = torch.randint(0, 4, (5,))
    kfac = ngt.KFAC(model, damping=0.1, conv=conv, context=context)
    kfac.backward(model(x), y)
    stats = kfac.statistics()
    rows = {a.shape[0] for a, _ in stats} | {g.shape[0] for _, g in stats}
    assert rows == {5 * 36 if conv == "expand" else 5}
    gradient = kfac.flat().numpy().copy()
    kfac.step()
    assert relative(kfac.flat().numpy(), kfac_reference(kfac, stats, 0.1, gradient)) <= 1e-10


def test_kfac_step_reuses_its_row_buffers_across_batch_sizes(context):
    """step() writes the rows into buffers kept between steps: batches of 5, 3, 5, 3 samples
    on a CNN in expand (the Linear layer's rows zero-padded) each give the direction of that
    batch's own rows (factor_decay 0: no averaging), so no stale row or ones column leaks."""
    torch.manual_seed(17)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3 * 3 * 3, 4)).double()
    kfac = ngt.KFAC(model, damping=0.1, context=context)
    generator = torch.Generator().manual_seed(3)
    for n in (5, 3, 5, 3):
        x = torch.randn(n, 2, 6, 6, dtype=torch.float64, generator=generator)
        y = torch.randint(0, 4, (n,), generator=generator)
        model.zero_grad()
        kfac.backward(model(x), y)
        stats = kfac.statistics()
        gradient = kfac.flat().numpy().copy()
        kfac.step()
        assert relative(kfac.flat().numpy(), kfac_reference(kfac, stats, 0.1, gradient)) <= 1e-10
    assert set(kfac.last_timings) == {"layout", "rows", "closure", "library", "write"}
    assert all(seconds >= 0 for seconds in kfac.last_timings.values())


def test_kfac_flat_into_out_matches_and_checks(context):
    model = mlp(4)
    kfac = ngt.KFAC(model, context=context)
    x, y = batch(5)
    kfac.backward(model(x), y)
    out = torch.full((kfac.dimension,), float("nan"), dtype=torch.float64)
    assert kfac.flat(out=out) is out
    assert torch.equal(out, kfac.flat())
    assert torch.equal(kfac.parameter_vector(out=out), kfac.parameter_vector())
    with pytest.raises(ValueError, match="out: expected a contiguous CPU torch.float64 vector of"):
        kfac.flat(out=torch.empty(kfac.dimension, dtype=torch.float32))


def test_kfac_factor_decay_averages_each_factor(context):
    model = mlp(2)
    beta, damping = 0.6, 0.05
    kfac = ngt.KFAC(model, damping=damping, factor_decay=beta, context=context)
    x1, y1 = batch(3)
    kfac.backward(model(x1), y1)
    first = kfac.statistics()
    kfac.step()
    model.zero_grad()
    x2, y2 = batch(4)
    kfac.backward(model(x2), y2)
    second = kfac.statistics()
    gradient = kfac.flat().numpy().copy()
    kfac.step()
    # A <- beta A_1 + (1 - beta) A_2 (and G alike) as stacked, weighted rows.
    averaged = [(np.concatenate([math.sqrt(2 * beta) * a1, math.sqrt(2 * (1 - beta)) * a2]),
                 np.concatenate([math.sqrt(2 * beta) * g1, math.sqrt(2 * (1 - beta)) * g2]))
                for (a1, g1), (a2, g2) in zip(first, second)]
    assert relative(kfac.flat().numpy(), kfac_reference(kfac, averaged, damping, gradient)) <= 1e-10


def test_kfac_refresh_periods_reuse_the_factors(context):
    model = mlp(3)
    kfac = ngt.KFAC(model, damping=0.1, factor_update_period=2, inverse_update_period=2, context=context)
    x1, y1 = batch(5)
    kfac.backward(model(x1), y1)
    stats = kfac.statistics()
    assert kfac.step().refreshed_curvature
    model.zero_grad()
    x2, y2 = batch(6)
    kfac.backward(model(x2), y2)
    gradient = kfac.flat().numpy().copy()
    report = kfac.step()
    assert not report.refreshed_curvature and not report.refreshed_inverse
    assert relative(kfac.flat().numpy(), kfac_reference(kfac, stats, 0.1, gradient)) <= 1e-10


def test_kfac_kl_clip_scales_as_kfac_pytorch(context):
    model = mlp(4)
    x, y = batch(7)
    lr, clip = 0.3, 1e-4
    unclipped = ngt.KFAC(model, damping=0.05, context=context)
    unclipped.backward(model(x), y)
    gradient = unclipped.flat().clone()
    unclipped.step()
    direction = unclipped.flat().clone()
    model.zero_grad()
    clipped = ngt.KFAC(model, damping=0.05, kl_clip=clip, lr=lr, context=context)
    unclipped.remove()
    clipped.backward(model(x), y)
    clipped.step()
    nu = min(1.0, math.sqrt(clip / abs(lr ** 2 * float(direction @ gradient))))
    assert nu < 1
    assert relative(clipped.flat().numpy(), nu * direction.numpy()) <= 1e-12


def test_kfac_levenberg_marquardt_evaluates_candidates_and_restores_parameters(context):
    model = mlp(5)
    x, y = batch(8)
    loss_function = nn.CrossEntropyLoss()
    kfac = ngt.KFAC(model, damping=1.0, damping_policy="levenberg_marquardt", step_size="quadratic_model",
                    context=context)
    calls = []

    def closure():
        calls.append(1)
        return loss_function(model(x), y).detach()

    initial = float(closure())

    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    for _ in range(3):
        optimizer.zero_grad()
        kfac.backward(model(x), y)
        before = kfac.parameter_vector().clone()
        report = kfac.step(closure)
        assert torch.equal(kfac.parameter_vector(), before)  # candidates were undone
        assert report.reduction_ratio is not None and report.step_size > 0
        optimizer.step()
    assert len(calls) >= 7 and kfac.damping != 1.0
    assert float(closure()) < 0.9 * initial


def test_unsupported_layers_are_listed_once_and_keep_the_plain_gradient(context, capsys):
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Tanh(), nn.Linear(6, 3)).double()
    kfac = ngt.KFAC(model, context=context)
    printed = capsys.readouterr().out
    assert printed.count("KFAC:") == 1 and "1.weight [6]" in printed and "1.bias [6]" in printed
    assert [name for name, _ in kfac.unsupported] == ["1.weight", "1.bias"]
    x = torch.randn(9, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (9,))
    kfac.backward(model(x), y)
    plain = [model[1].weight.grad.clone(), model[1].bias.grad.clone()]
    linear = model[0].weight.grad.clone()
    kfac.step()
    assert torch.equal(model[1].weight.grad, plain[0]) and torch.equal(model[1].bias.grad, plain[1])
    assert not torch.equal(model[0].weight.grad, linear)
    with pytest.raises(ValueError, match=r"strict=True\): 1\.weight \[6\], 1\.bias \[6\]"):
        ngt.KFAC(model, strict=True, context=context)


def test_kfac_errors_name_the_problem(context):
    with pytest.raises(ValueError, match="model: has no nn.Linear or nn.Conv2d"):
        ngt.KFAC(nn.Sequential(nn.Tanh()), context=context)
    with pytest.raises(ValueError, match="kl_clip"):
        ngt.KFAC(mlp(), kl_clip=1e-3, context=context)
    with pytest.raises(ValueError, match="conv: 'same'"):
        ngt.KFAC(mlp(), conv="same", context=context)
    kfac = ngt.KFAC(mlp(), context=context)
    with pytest.raises(RuntimeError, match="layer '0' has no gradient"):
        kfac.step()


def test_kl_measure_on_logits_is_the_cross_entropy_ggn(context):
    model = mlp(7)
    x, _ = batch(9)
    identity = np.eye(sum(p.numel() for p in model.parameters()))
    with ngt.GGN(model, nn.CrossEntropyLoss(), context=context).curvature(x) as ggn:
        expected = ggn.apply(identity)
    kl = ngt.NaturalGradient(model, family="categorical", measure="kl", chunk_size=3, context=context)
    with kl.curvature(x) as curvature:
        assert relative(curvature.apply(identity), expected) <= 1e-10


@pytest.mark.parametrize("measure", ["w2", "hellinger"])
def test_gaussian_head_metric_through_the_jacobians(context, measure):
    torch.manual_seed(8)

    class GaussianHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))

        def forward(self, x):
            out = self.body(x)
            return torch.stack([out[:, 0], nn.functional.softplus(out[:, 1]) + 0.1], dim=1)  # [mu, sigma]

    model = GaussianHead().double()
    x = torch.randn(7, 3, dtype=torch.float64)
    params = dict(model.named_parameters())
    names = list(params)
    expected = 0
    for sample in x:
        def f(*values):
            return torch.func.functional_call(model, dict(zip(names, values)), (sample[None],)).reshape(-1)

        jac = torch.autograd.functional.jacobian(f, tuple(p.detach() for p in params.values()))
        j = torch.cat([block.reshape(2, -1) for block in jac], dim=1).numpy()
        z = model(sample[None]).detach().numpy().reshape(-1)
        expected = expected + j.T @ ng.output_metric(ng.Family("gaussian", 1), measure, z) @ j
    expected = expected / len(x)
    natural = ngt.NaturalGradient(model, family=ng.Family("gaussian", 1), measure=measure, context=context)
    with natural.curvature(x) as curvature:
        assert relative(curvature.apply(np.eye(len(expected))), expected) <= 1e-10


def test_monte_carlo_fisher_is_seeded_and_averages_to_the_ggn(context):
    model = mlp(9)
    x, _ = batch(10, n=6)
    loss = nn.CrossEntropyLoss()
    first = ngt.MonteCarloFisher(model, loss, seed=3, context=context).draw(x)
    again = ngt.MonteCarloFisher(model, loss, seed=3, context=context).draw(x)
    assert torch.equal(first, again)
    rows = ngt.MonteCarloFisher(model, loss, seed=3, context=context).gradients(x)
    np.testing.assert_allclose(rows, ngt.per_sample_gradients(model, loss, x, first), rtol=1e-13, atol=1e-15)
    identity = np.eye(sum(p.numel() for p in model.parameters()))
    with ngt.GGN(model, loss, context=context).curvature(x) as ggn:
        expected = ggn.apply(identity)
    with ngt.MonteCarloFisher(model, loss, samples=1000, seed=4, context=context).curvature(x) as mc:
        assert relative(mc.apply(identity), expected) <= 0.05  # ~1/sqrt(1000 * 6); observed 0.022


def test_kfac_trains_a_classifier_faster_than_plain_sgd(context):
    torch.manual_seed(11)
    x = torch.randn(256, 5)
    y = (x[:, 0] * x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()
    losses = {}
    for name in ("kfac", "sgd"):
        torch.manual_seed(12)
        model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
        kfac = ngt.KFAC(model, damping=1e-2, context=context) if name == "kfac" else None
        for _ in range(30):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            if kfac is not None:
                kfac.step()
            optimizer.step()
        losses[name] = float(nn.functional.cross_entropy(model(x), y).detach())
    assert losses["kfac"] < 0.8 * losses["sgd"]


def test_natural_gradient_errors_name_the_problem(context):
    model = mlp()
    with pytest.raises(ValueError, match="give a loss, or a family and a measure"):
        ngt.NaturalGradient(model, context=context)
    with pytest.raises(ValueError, match="give a loss, or a family and a measure"):
        ngt.NaturalGradient(model, nn.CrossEntropyLoss(), family="categorical", measure="kl", context=context)
    with pytest.raises(ValueError, match="loss: .*NLLLoss"):
        ngt.NaturalGradient(model, nn.NLLLoss(), context=context)
    with pytest.raises(ValueError, match="chunk_size: 0"):
        ngt.NaturalGradient(model, "cross_entropy", chunk_size=0, context=context)
    natural = ngt.NaturalGradient(model, "cross_entropy", context=context)
    x, _ = batch(12)
    with pytest.raises(RuntimeError, match=r"no \.grad for \['0.weight', '0.bias'"):
        natural.direction(x)
    with pytest.raises(ValueError, match="gradient: 3 values, the parameters have 66"):
        natural.direction(x, gradient=torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="model: parameters have dtypes"):
        ngt.NaturalGradient(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double()), "mse", context=context)
    with pytest.raises(ValueError, match="samples: 0"):
        ngt.MonteCarloFisher(model, nn.CrossEntropyLoss(), samples=0, context=context)
