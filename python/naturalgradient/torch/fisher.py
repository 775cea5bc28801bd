"""Exact Fisher / GGN and formal natural gradients of any similarity measure for torch
models, from per-sample output Jacobians; empirical and Monte-Carlo Fisher from per-sample
gradients. Any layer torch can differentiate works (LayerNorm, attention, embeddings):
the Jacobians come from ``torch.func.jacrev`` + ``vmap`` over ``functional_call``.

Parameter order: torch's (``model.named_parameters()`` with ``requires_grad``, each
flattened row-major), curvlinops' order too. Memory: the Jacobians are computed
``chunk_size`` samples at a time into one (N, O, P) host array that the library reads
without a copy; the peak beyond it is one chunk's autograd graph.

Scales (curvlinops' ``GGNLinearOperator`` / ``EFLinearOperator`` conventions):
``loss="cross_entropy"`` with reduction "mean": ``G = (1/N) sum J^T (diag p - p p^T) J``;
"mse" (mean over N and the C outputs): ``G = (2/(N C)) sum J^T J``; "bce" (one logit):
``(1/N) sum J^T p(1-p) J``; reduction "sum" multiplies by N. The empirical Fisher is
``c sum grad l_n grad l_n^T`` with c = 1/N ("mean") or 1 ("sum").
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

from .. import ColumnReport, Factor, ImplicitCurvature, solve
from .._context import Context
from ..metrics import FamilyLike, MeasureLike, exact_fisher, formal_metric_factor
from ._tensors import host_array, numpy_dtype, to_tensor, working_dtype

__all__ = ["NaturalGradient", "GGN", "per_sample_gradients", "EmpiricalFisher", "MonteCarloFisher"]

_LOSSES = ("cross_entropy", "mse", "bce")


def _parameters(model: nn.Module, params: Sequence[nn.Parameter] | None) -> dict[str, torch.Tensor]:
    named = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if params is None:
        return named
    wanted = {id(p) for p in params}
    chosen = {name: p for name, p in named.items() if id(p) in wanted}
    if len(chosen) != len(wanted):
        raise ValueError("params: some are not trainable parameters of the model")
    return chosen


def _loss_name(loss: str | nn.Module) -> tuple[str, str]:
    """("cross_entropy" | "mse" | "bce", reduction) of a loss module or name."""
    if isinstance(loss, nn.CrossEntropyLoss):
        return "cross_entropy", loss.reduction
    if isinstance(loss, nn.MSELoss):
        return "mse", loss.reduction
    if isinstance(loss, nn.BCEWithLogitsLoss):
        return "bce", loss.reduction
    if isinstance(loss, str) and loss in _LOSSES:
        return loss, "mean"
    raise ValueError(f"loss: {loss!r} is not nn.CrossEntropyLoss, nn.MSELoss, nn.BCEWithLogitsLoss or one of "
                     f"{', '.join(_LOSSES)}")


# The default Jacobian chunk's size in bytes (NaturalGradient's chunk_size=None).
_CHUNK_BYTES = 64 << 20


class _Functional:
    """The model as a function of its parameters, per sample."""

    def __init__(self, model: nn.Module, params: Sequence[nn.Parameter] | None) -> None:
        self.model = model
        self.params = _parameters(model, params)
        if not self.params:
            raise ValueError("model: has no trainable parameters")
        self.dtype = working_dtype(list(self.params.values()))
        self.names = list(self.params)
        self.shapes = [p.shape for p in self.params.values()]
        self.dimension = sum(p.numel() for p in self.params.values())
        others = {name: b for name, b in model.named_buffers()}
        frozen = {name: p for name, p in model.named_parameters() if name not in self.params}
        self.constants = {**others, **frozen}

    def detached(self) -> dict[str, torch.Tensor]:
        return {name: p.detach() for name, p in self.params.items()}

    def output(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The model's output for one sample (x without its batch dimension), flattened."""
        return functional_call(self.model, {**self.constants, **params}, (x.unsqueeze(0),)).reshape(-1)

    def write_rows(self, tree: dict[str, torch.Tensor], out: torch.Tensor) -> None:
        """A dict of (leading..., *shape) tensors into ``out`` (leading..., P), each
        parameter's block copied straight into its columns (no concatenated temporary: the
        Jacobians are the largest arrays of the step, N O P values)."""
        start = 0
        for name in self.names:
            piece = tree[name].reshape(*out.shape[:-1], -1)
            out[..., start:start + piece.shape[-1]].copy_(piece)
            start += piece.shape[-1]

    def unflatten(self, vector: torch.Tensor) -> list[torch.Tensor]:
        out, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape)) if len(shape) else 1
            out.append(vector[start:start + size].view(shape))
            start += size
        return out


class NaturalGradient:
    """The exact Fisher / GGN of a torch model, or the metric of any similarity measure,
    through the library's implicit operator (Woodbury or CG), never forming P x P.

    Args:
        model: the torch module (its per-sample output is flattened to O values).
        loss: ``nn.CrossEntropyLoss`` / ``nn.MSELoss`` / ``nn.BCEWithLogitsLoss`` (or
            "cross_entropy", "mse", "bce" with mean reduction): the GGN of that loss.
        family, measure: instead of ``loss``, the output family (``ng.Family`` or a name)
            and similarity measure (``"kl"``, ``"hellinger"``, ``"w2"``, an f''(1),
            ``ng.Measure.custom(...)``): ``F = (1/N) sum J^T M(z) J``, the formal natural
            gradient (Mallasto et al. 2019). KL on categorical logits is the exact Fisher.
        params: the parameters (default: every trainable one).
        chunk_size: samples per ``vmap`` chunk of the Jacobian (bounds the graph memory);
            None: as many as keep one chunk's Jacobians within 64 MiB (at least 1, at most
            64). Large chunks of large models are slower, not faster: torch's temporaries
            of the chunk (its O x P Jacobian per sample) are fresh allocations each time.
        method: the solver ("auto": Woodbury when N*O <= P, else CG; "cg", "pcg", "woodbury").
        tol, maxiter: CG's.
        context: the device context.
    """

    def __init__(self, model: nn.Module, loss: str | nn.Module | None = None, *, family: FamilyLike | None = None,
                 measure: MeasureLike | None = None, params: Sequence[nn.Parameter] | None = None,
                 chunk_size: int | None = None, method: str = "auto", tol: float = 1e-8, maxiter: int | None = None,
                 context: Context | None = None) -> None:
        if (loss is None) == (family is None or measure is None):
            raise ValueError("loss / family, measure: give a loss, or a family and a measure")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size: {chunk_size} must be >= 1 (or None)")
        self.functional = _Functional(model, params)
        self.loss, self.reduction = _loss_name(loss) if loss is not None else (None, "mean")
        self.family, self.measure = family, measure
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        self.method, self.tol, self.maxiter = method, tol, maxiter
        self.context = context
        self.last_reports: list[ColumnReport] = []

    @property
    def dimension(self) -> int:
        """P."""
        return self.functional.dimension

    def jacobians(self, inputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample output Jacobians (N, O, P) and outputs (N, O), host arrays of the
        model's dtype, computed ``chunk_size`` samples at a time."""
        f = self.functional
        params = f.detached()
        x = inputs.detach()
        count = x.shape[0]
        with torch.no_grad():
            first = f.output(params, x[0])
        outputs = first.numel()
        np_dtype = numpy_dtype(f.dtype)
        jac = np.empty((count, outputs, f.dimension), dtype=np_dtype)
        z = np.empty((count, outputs), dtype=np_dtype)
        jac_t, z_t = torch.from_numpy(jac), torch.from_numpy(z)

        def one(p: dict[str, torch.Tensor], sample: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
            out = f.output(p, sample)
            return out, out

        per_sample = vmap(jacrev(one, has_aux=True), in_dims=(None, 0))
        chunk_size = self.chunk_size or max(1, min(64, _CHUNK_BYTES // (outputs * f.dimension * jac.itemsize)))
        for start in range(0, count, chunk_size):
            chunk = x[start:start + chunk_size]
            tree, values = per_sample(params, chunk)
            f.write_rows(tree, jac_t[start:start + chunk.shape[0]])
            z_t[start:start + chunk.shape[0]].copy_(values.detach())
        return jac, z

    def factor(self, inputs: torch.Tensor) -> Factor:
        """The curvature factor on the device: rows ``B(z_i) J_i`` with ``B^T B`` the output
        metric (GGN of the loss, or of the similarity measure)."""
        jac, z = self.jacobians(inputs)
        count, outputs = z.shape
        if self.loss is None:
            return formal_metric_factor(jac, z, self.family, self.measure, context=self.context)
        scale = 1.0 if self.reduction == "mean" else float(count)
        if self.loss == "cross_entropy":
            probabilities = torch.from_numpy(z).softmax(dim=1).numpy()
            if scale != 1.0:
                jac *= np.sqrt(scale)
            return exact_fisher(jac, "softmax_cross_entropy", probabilities=probabilities, context=self.context)
        if self.loss == "bce":
            if outputs != 1:
                raise ValueError(f"loss: bce needs one logit per sample, the model has {outputs} outputs")
            probabilities = torch.from_numpy(z).sigmoid().numpy().reshape(count)
            if scale != 1.0:
                jac *= np.sqrt(scale)
            return exact_fisher(jac, "bernoulli", probabilities=probabilities, context=self.context)
        # MSE (mean over N*C): Hessian 2/(N C) I, i.e. the Gaussian-mean metric 1/sigma^2
        # with sigma^2 = C/2 under the library's 1/N.
        if self.reduction == "mean":
            return exact_fisher(jac, "gaussian_mean", sigma=float(np.sqrt(outputs / 2.0)), context=self.context)
        return exact_fisher(jac, "gaussian_mean", sigma=float(np.sqrt(0.5 / count)), context=self.context)

    def curvature(self, inputs: torch.Tensor) -> ImplicitCurvature:
        """The implicit operator of the factor (products read the rows, never P x P)."""
        return ImplicitCurvature(self.factor(inputs), context=self.context)

    def direction(self, inputs: torch.Tensor, gradient: torch.Tensor | None = None,
                  damping: float = 1e-3) -> torch.Tensor:
        """``(F + damping I)^-1 g`` for the parameters' ``.grad`` (or a flat ``gradient``),
        a flat tensor on the parameters' device."""
        f = self.functional
        if gradient is None:
            missing = [name for name, p in f.params.items() if p.grad is None]
            if missing:
                raise RuntimeError(f"NaturalGradient: no .grad for {missing}; call loss.backward() first")
            gradient = torch.cat([p.grad.reshape(-1) for p in f.params.values()])
        if gradient.numel() != f.dimension:
            raise ValueError(f"gradient: {gradient.numel()} values, the parameters have {f.dimension}")
        g = host_array(gradient.to(f.dtype), "gradient")
        with self.curvature(inputs) as curvature:
            x, reports = solve(curvature, g, damping, method=self.method, tol=self.tol, maxiter=self.maxiter)
        self.last_reports = reports
        return to_tensor(x, gradient)

    @torch.no_grad()
    def step(self, inputs: torch.Tensor, damping: float = 1e-3) -> list[ColumnReport]:
        """Replaces every parameter's ``.grad`` with the natural-gradient direction."""
        direction = self.direction(inputs, damping=damping)
        for p, value in zip(self.functional.params.values(), self.functional.unflatten(direction)):
            p.grad.copy_(value)
        return self.last_reports


GGN = NaturalGradient
"""The generalised Gauss-Newton of a loss: ``NaturalGradient(model, loss)``."""


def per_sample_gradients(model: nn.Module, loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         inputs: torch.Tensor, targets: torch.Tensor, params: Sequence[nn.Parameter] | None = None,
                         chunk_size: int = 256) -> np.ndarray:
    """Per-sample gradients ``grad l(f(x_n), y_n)`` as an (N, P) host array (model dtype),
    with ``torch.func.grad`` + ``vmap``, ``chunk_size`` samples at a time.
    ``loss_function(output, target)`` is called on one sample with its batch dimension
    of 1 (so an ``nn.CrossEntropyLoss()`` gives that sample's loss)."""
    f = _Functional(model, params)
    params_now = f.detached()

    def loss_one(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**f.constants, **p}, (x.unsqueeze(0),))
        return loss_function(out, y.unsqueeze(0))

    per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))
    count = inputs.shape[0]
    out = np.empty((count, f.dimension), dtype=numpy_dtype(f.dtype))
    out_t = torch.from_numpy(out)
    for start in range(0, count, chunk_size):
        stop = min(count, start + chunk_size)
        tree = per_sample(params_now, inputs[start:stop].detach(), targets[start:stop].detach())
        f.write_rows(tree, out_t[start:stop])
    return out


class EmpiricalFisher:
    """The empirical Fisher ``c sum g_n g_n^T`` (c = 1/N for "mean", 1 for "sum") of the
    per-sample gradients, as the library's implicit operator.

    Args:
        model, loss: the model and an ``nn.CrossEntropyLoss`` / ``nn.MSELoss`` /
            ``nn.BCEWithLogitsLoss`` (its reduction sets c; per-sample losses use it on one
            sample).
        params, chunk_size, context: as for :class:`NaturalGradient`.
    """

    def __init__(self, model: nn.Module, loss: nn.Module, *, params: Sequence[nn.Parameter] | None = None,
                 chunk_size: int = 256, context: Context | None = None) -> None:
        _loss_name(loss)
        self.model, self.loss, self.params = model, loss, params
        self.chunk_size, self.context = chunk_size, context

    def gradients(self, inputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
        """The per-sample gradient rows (N, P)."""
        return per_sample_gradients(self.model, self.loss, inputs, targets, self.params, self.chunk_size)

    def curvature(self, inputs: torch.Tensor, targets: torch.Tensor) -> ImplicitCurvature:
        """The operator (Woodbury solves for N <= P)."""
        rows = self.gradients(inputs, targets)
        samples = rows.shape[0] if self.loss.reduction == "mean" else 1
        return ImplicitCurvature(Factor(rows, samples=samples, context=self.context))


class MonteCarloFisher(EmpiricalFisher):
    """The Monte-Carlo Fisher: per-sample gradients at labels drawn from the model's
    predictive distribution (categorical for cross-entropy, Bernoulli for BCE, Gaussian
    with variance 1/2 for MSE, curvlinops' draws), ``samples`` draws per input, from a
    ``torch.Generator`` seeded with ``seed`` (the same seed gives the same labels)."""

    def __init__(self, model: nn.Module, loss: nn.Module, *, samples: int = 1, seed: int = 2147483647,
                 params: Sequence[nn.Parameter] | None = None, chunk_size: int = 256,
                 context: Context | None = None) -> None:
        super().__init__(model, loss, params=params, chunk_size=chunk_size, context=context)
        if samples < 1:
            raise ValueError(f"samples: {samples} must be >= 1")
        self.samples = int(samples)
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    @torch.no_grad()
    def draw(self, inputs: torch.Tensor) -> torch.Tensor:
        """Labels drawn from the predictive distribution at ``inputs``."""
        output = self.model(inputs)
        kind, _ = _loss_name(self.loss)
        if kind == "cross_entropy":
            return output.softmax(dim=1).multinomial(1, generator=self.generator).squeeze(-1)
        if kind == "bce":
            return output.sigmoid().bernoulli(generator=self.generator)
        noise = torch.randn(output.shape, generator=self.generator, dtype=output.dtype)
        return output + noise * np.sqrt(0.5)

    def gradients(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> np.ndarray:
        """Rows for ``samples`` draws per input, (samples*N, P) (draw-major), scaled by
        1/sqrt(samples) so the operator averages the draws; one vmapped pass over all."""
        repeated = inputs if self.samples == 1 else inputs.repeat(self.samples, *([1] * (inputs.ndim - 1)))
        out = per_sample_gradients(self.model, self.loss, repeated, self.draw(repeated), self.params,
                                   self.chunk_size)
        if self.samples > 1:
            out *= 1.0 / np.sqrt(self.samples)
        return out

    def curvature(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> ImplicitCurvature:
        rows = self.gradients(inputs)
        samples = inputs.shape[0] if self.loss.reduction == "mean" else 1
        return ImplicitCurvature(Factor(rows, samples=samples, context=self.context))
