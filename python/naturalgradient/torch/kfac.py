"""K-FAC for torch models: hooks on nn.Linear and nn.Conv2d feeding the library's
Kronecker curvature and the natural-gradient optimizer.

Conventions (the library's, DESIGN.md section 2):

- Each supported layer's parameters form one ``outputs x inputs`` matrix ``[W | b]``
  (the bias is the appended column; its activation is the constant 1), flattened
  row-major, layers in model order. ``F_l ~ G_l (x) A_l``.
- ``nn.Linear``: ``a`` is the layer input (with the 1), ``g`` the gradient of the per-sample
  loss with respect to the layer output. Inputs with extra dimensions (sequences) are
  folded into rows, as the KFAC-expand convention does.
- ``nn.Conv2d``: the KFC expansion of Grosse & Martens (2016). ``a`` rows are the unfolded
  input patches (``torch.nn.functional.unfold``: channel-major, then kernel rows and
  columns, the order of ``weight.view(out, -1)``), one row per sample and output location,
  and ``g`` rows the output gradients at those locations. "expand":
  ``A = (1/(N S)) sum_{n,s} a a^T`` and ``G = (1/N) sum_{n,s} g g^T`` (S output locations);
  "reduce" (Eschenhagen et al. 2023): ``a_n = mean_s a``, ``g_n = sum_s g``,
  ``A = (1/N) sum a a^T``, ``G = (1/N) sum g g^T``. Both are curvlinops' conventions
  (``KFACLinearOperator(kfac_approx="expand" | "reduce", separate_weight_and_bias=False)``).
- Loss reduction: for "mean" the per-sample gradient is ``N`` times the captured one, so
  ``G = (1/N) sum g_n g_n^T`` over per-sample-loss gradients; for "sum", ``G = sum``.

The library's K-FAC input has one row count per step for all layers; layers with fewer rows
(a Linear after a Conv2d in "expand") are padded with zero rows and every layer's rows are
scaled so the factors are exactly the ones above. "reduce" never pads.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import KroneckerCurvature, NaturalGradientOptimizer, StepReport
from .._context import Context
from ._tensors import host_array, numpy_dtype, working_dtype

__all__ = ["KFAC", "KFACLayerInfo"]

_FISHER_TYPES = ("empirical", "mc")


@dataclass
class KFACLayerInfo:
    """One layer K-FAC handles: its name, module, and the (outputs, inputs) of ``[W | b]``."""

    name: str
    module: nn.Module
    outputs: int
    inputs: int
    activations: torch.Tensor | None = field(default=None, repr=False)
    output: torch.Tensor | None = field(default=None, repr=False)
    output_gradient: torch.Tensor | None = field(default=None, repr=False)

    @property
    def parameters(self) -> list[nn.Parameter]:
        return [p for p in (self.module.weight, getattr(self.module, "bias", None)) if p is not None]


class KFAC:
    """K-FAC preconditioning of a torch model's gradients with the library's kernels.

    After ``loss.backward()`` (or :meth:`backward`), :meth:`step` replaces the ``.grad`` of
    every ``nn.Linear`` / ``nn.Conv2d`` parameter in place with the K-FAC natural-gradient
    direction ``(F + damping)^-1 g`` (factored damping, as the library's K-FAC inverse), so
    any torch optimizer then takes the step (``torch.optim.SGD(model.parameters(), lr)``),
    or with ``step_size="quadratic_model"`` the direction is already scaled by the
    library's quadratic-model step size (use SGD with lr=1).

    Args:
        model: the torch module.
        damping: lambda (the initial one for Levenberg-Marquardt).
        damping_policy: "fixed" or "levenberg_marquardt" (needs ``closure`` in :meth:`step`).
        damping_minimum, damping_maximum: Levenberg-Marquardt's clamp.
        factor_decay: moving average of the factors, ``F <- beta F + (1-beta) F_batch``
            (the Swift optimizer's ``curvature_decay``; 0 keeps only the batch).
        factor_update_period, inverse_update_period: rebuild the factors / their inverse
            every k steps (the optimizer's refresh periods).
        step_size: "learning_rate" (direction unscaled) or "quadratic_model".
        step_size_maximum: the cap on the quadratic-model step size.
        kl_clip: kfac-pytorch's KL clipping: the direction is scaled by
            ``min(1, sqrt(kl_clip / (lr^2 |sum v.g|)))`` (None: no clipping); needs ``lr``.
        lr: the torch optimizer's learning rate (only for ``kl_clip``).
        conv: "expand" (KFC, the default) or "reduce".
        loss_reduction: "mean" (the loss averages over the batch) or "sum".
        fisher_type: "empirical" (the gradients of ``loss.backward()`` with the real labels)
            or "mc" (labels drawn from the model's categorical predictive distribution,
            needs :meth:`backward`).
        seed: the MC generator's seed (curvlinops' default).
        strict: raise ``ValueError`` at construction when the model has parameters outside
            supported layers (default: list them once, they keep their plain gradient).
        context: the device context.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        damping: float = 1e-3,
        damping_policy: str = "fixed",
        damping_minimum: float = 1e-8,
        damping_maximum: float = 1e8,
        factor_decay: float = 0.0,
        factor_update_period: int = 1,
        inverse_update_period: int = 1,
        step_size: str = "learning_rate",
        step_size_maximum: float = 1.0,
        kl_clip: float | None = None,
        lr: float | None = None,
        conv: str = "expand",
        loss_reduction: str = "mean",
        fisher_type: str = "empirical",
        seed: int = 2147483647,
        strict: bool = False,
        context: Context | None = None,
    ) -> None:
        self._attach(model, conv=conv, loss_reduction=loss_reduction, fisher_type=fisher_type, kl_clip=kl_clip,
                     lr=lr, seed=seed, strict=strict)
        self.optimizer = NaturalGradientOptimizer(
            self.dimension, dtype=numpy_dtype(self.dtype), context=context, curvature="kfac",
            layers=[(layer.outputs, layer.inputs) for layer in self.layers], method="kfac", damping=damping,
            damping_policy=damping_policy, damping_minimum=damping_minimum, damping_maximum=damping_maximum,
            step_size=step_size, learning_rate=1.0, step_size_maximum=step_size_maximum, momentum=0.0,
            curvature_decay=factor_decay, curvature_refresh_period=factor_update_period,
            inverse_refresh_period=inverse_update_period)
        self._context = context
        self.last_report: StepReport | None = None
        self.last_timings: dict[str, float] = {}
        """Seconds of the last :meth:`step`'s phases: "layout" (``.grad`` and the parameters
        into the ``[W | b]`` vectors), "rows" (the captured activations and output gradients
        into the library's row arrays), "closure" (the loss calls, when a closure is given),
        "library" (the C ABI call: factor accumulation, inversions when due, the solve),
        "write" (KL clipping and the direction into ``.grad``)."""
        self._step_vectors: tuple[torch.Tensor, torch.Tensor] | None = None
        self._row_buffers: dict[tuple[int, str], torch.Tensor] = {}
        self._row_buffer_state: dict[tuple[int, str], tuple[int, float]] = {}

    def _attach(self, model: nn.Module, *, conv: str, loss_reduction: str, fisher_type: str,
                kl_clip: float | None, lr: float | None, seed: int, strict: bool) -> None:
        """Checks the options, finds the supported layers (listing the others) and registers
        the hooks; shared by :class:`KFAC` and :class:`~naturalgradient.torch.EKFAC`."""
        if not isinstance(model, nn.Module):
            raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if conv not in ("expand", "reduce"):
            raise ValueError(f"conv: {conv!r} is not 'expand' or 'reduce'")
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(f"loss_reduction: {loss_reduction!r} is not 'mean' or 'sum'")
        if fisher_type not in _FISHER_TYPES:
            raise ValueError(f"fisher_type: {fisher_type!r} is not one of {', '.join(_FISHER_TYPES)}")
        if kl_clip is not None and (not math.isfinite(kl_clip) or kl_clip <= 0 or lr is None or lr <= 0):
            raise ValueError(f"kl_clip: {kl_clip} needs a positive finite kl_clip and a positive lr (got lr={lr})")
        self.model = model
        self.conv = conv
        self.loss_reduction = loss_reduction
        self.fisher_type = fisher_type
        self.kl_clip = kl_clip
        self.lr = lr
        self.seed = seed
        self._generator: torch.Generator | None = None
        self.layers: list[KFACLayerInfo] = []
        covered: set[int] = set()
        for name, module in model.named_modules():
            if type(module) in (nn.Linear, nn.Conv2d):
                weight = module.weight
                if not weight.requires_grad:
                    continue
                if isinstance(module, nn.Conv2d) and (module.groups != 1 or module.padding_mode != "zeros"
                                                      or isinstance(module.padding, str)):
                    continue  # listed below as unsupported
                bias = module.bias is not None
                inputs = weight[0].numel() + (1 if bias else 0)
                self.layers.append(KFACLayerInfo(name, module, weight.shape[0], inputs))
                covered.update(id(p) for p in self.layers[-1].parameters)
        self.unsupported = [(name, tuple(p.shape)) for name, p in model.named_parameters()
                            if p.requires_grad and id(p) not in covered]
        """Parameters outside supported layers ``(name, shape)``: they keep the plain gradient."""
        if self.unsupported:
            listing = ", ".join(f"{name} {list(shape)}" for name, shape in self.unsupported)
            message = (f"{type(self).__name__}: parameters outside nn.Linear / nn.Conv2d (groups=1, zero numeric padding) "
                       f"keep their plain gradient: {listing}")
            if strict:
                raise ValueError(message.replace("keep their plain gradient", "are not supported (strict=True)"))
            print(message)
        if not self.layers:
            raise ValueError("model: has no nn.Linear or nn.Conv2d layer with trainable parameters")
        params = [p for layer in self.layers for p in layer.parameters]
        self.dtype = working_dtype(params)
        self.dimension = sum(layer.outputs * layer.inputs for layer in self.layers)
        self._capturing_gradients = True
        self._handles = []
        for layer in self.layers:
            self._handles.append(layer.module.register_forward_hook(self._forward_hook(layer)))

    # Hooks ---------------------------------------------------------------------------

    def _forward_hook(self, layer: KFACLayerInfo) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if not torch.is_grad_enabled():
                return
            layer.activations = inputs[0].detach()
            layer.output = output
            layer.output_gradient = None
            if output.requires_grad:
                def tensor_hook(gradient: torch.Tensor) -> None:
                    if self._capturing_gradients:
                        layer.output_gradient = gradient.detach()
                # A tensor hook on the output, not a module backward hook: the latter breaks
                # when the output feeds an in-place activation.
                output.register_hook(tensor_hook)
        return hook

    def remove(self) -> None:
        """Removes the hooks (the object is unusable afterwards)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def backward(self, output: torch.Tensor, target: torch.Tensor,
                 loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """``loss = loss_function(output, target); loss.backward()`` with the curvature's
        gradients per ``fisher_type``: "empirical" from this backward; "mc" from a backward
        of the loss at labels drawn from ``softmax(output)`` (categorical outputs, with
        the seeded generator, curvlinops' draw). Returns the loss."""
        loss_function = loss_function or nn.CrossEntropyLoss(reduction=self.loss_reduction)
        loss = loss_function(output, target)
        if self.fisher_type == "mc":
            if self._generator is None:
                self._generator = torch.Generator(device=output.device)
                self._generator.manual_seed(self.seed)
            with torch.no_grad():
                labels = output.detach().softmax(dim=1).multinomial(1, generator=self._generator).squeeze(-1)
            sampled = loss_function(output, labels)
            outputs = [layer.output for layer in self.layers]
            if any(o is None for o in outputs):
                raise RuntimeError("KFAC.backward: run the model's forward pass (with gradients) first")
            gradients = torch.autograd.grad(sampled, outputs, retain_graph=True, allow_unused=True)
            for layer, gradient in zip(self.layers, gradients):
                layer.output_gradient = None if gradient is None else gradient.detach()
            self._capturing_gradients = False
            try:
                loss.backward()
            finally:
                self._capturing_gradients = True
        else:
            loss.backward()
        return loss

    # Statistics ----------------------------------------------------------------------

    def _rows(self, layer: KFACLayerInfo, append_bias: bool = True) -> tuple[torch.Tensor, torch.Tensor, float, float]:
        """The layer's a and g rows (unscaled) and the constants c_A, c_G with
        A = c_A sum a a^T and G = c_G sum g g^T; without ``append_bias`` the bias's column
        of ones is left to the caller."""
        if layer.activations is None or layer.output_gradient is None:
            raise RuntimeError(
                f"KFAC: layer {layer.name!r} has no captured activations/gradients; run forward and "
                "loss.backward() (or KFAC.backward) before step()")
        module = layer.module
        x = layer.activations
        g = layer.output_gradient
        batch = x.shape[0]
        bias = getattr(module, "bias", None) is not None
        if isinstance(module, nn.Conv2d):
            patches = F.unfold(x, module.kernel_size, dilation=module.dilation, padding=module.padding,
                               stride=module.stride)  # (N, C k k, S)
            locations = patches.shape[-1]
            g = g.reshape(batch, g.shape[1], -1)  # (N, out, S)
            if self.conv == "expand":
                a = patches.transpose(1, 2).reshape(batch * locations, -1)
                g = g.transpose(1, 2).reshape(batch * locations, -1)
                c_a = 1.0 / (batch * locations)
            else:
                a = patches.mean(dim=2)
                g = g.sum(dim=2)
                c_a = 1.0 / batch
        else:
            a = x.reshape(-1, x.shape[-1])
            g = g.reshape(-1, g.shape[-1])
            c_a = 1.0 / a.shape[0]
        if bias and append_bias:
            a = torch.cat([a, a.new_ones(a.shape[0], 1)], dim=1)
        c_g = float(batch) if self.loss_reduction == "mean" else 1.0
        return a, g, c_a, c_g

    def statistics(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every layer's ``(activations, output_gradients)`` rows as the library takes them:
        one row count M for all layers (zero rows pad the shorter ones) and each layer's
        rows scaled so that ``(1/M) sum a a^T`` and ``(1/M) sum g g^T`` are the factors of the
        module docstring. C-contiguous CPU arrays of the model's dtype."""
        rows = [self._rows(layer) for layer in self.layers]
        m = max(max(a.shape[0], g.shape[0]) for a, g, _, _ in rows)
        out = []
        for a, g, c_a, c_g in rows:
            out.append((self._padded(a, m, math.sqrt(m * c_a)), self._padded(g, m, math.sqrt(m * c_g))))
        return out

    def _padded(self, rows: torch.Tensor, count: int, scale: float) -> np.ndarray:
        rows = rows.to(dtype=self.dtype)
        if rows.shape[0] == count and scale == 1.0:
            return host_array(rows, "rows")
        out = torch.zeros(count, rows.shape[1], dtype=self.dtype)
        torch.mul(rows.to("cpu"), scale, out=out[:rows.shape[0]])
        return out.numpy()

    def _step_statistics(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`statistics` for :meth:`step`, written into row buffers kept between steps
        (the library copies the rows during the call, so they can be reused): one write per
        row block, the bias's ones written once into its column, no allocation per step."""
        rows = [(layer, *self._rows(layer, append_bias=False)) for layer in self.layers]
        m = max(max(a.shape[0], g.shape[0]) for _, a, g, _, _ in rows)
        out = []
        for index, (layer, a, g, c_a, c_g) in enumerate(rows):
            bias = layer.module.bias is not None
            out.append((self._into_buffer((index, "a"), a, m, math.sqrt(m * c_a), bias),
                        self._into_buffer((index, "g"), g, m, math.sqrt(m * c_g), False)))
        return out

    def _into_buffer(self, key: tuple[int, str], rows: torch.Tensor, count: int, scale: float,
                     bias: bool) -> np.ndarray:
        """``scale * [rows | 1]`` (the ones when ``bias``), zero-padded to ``count`` rows, in
        the persistent buffer ``key``; a view of ``rows`` when nothing needs changing."""
        if not bias and rows.shape[0] == count and scale == 1.0 and rows.dtype == self.dtype:
            return host_array(rows, "rows")
        columns = rows.shape[1] + (1 if bias else 0)
        buffer = self._row_buffers.get(key)
        if buffer is None or buffer.shape != (count, columns):
            buffer = torch.zeros(count, columns, dtype=self.dtype)
            self._row_buffers[key] = buffer
            self._row_buffer_state[key] = (0, 0.0)
        filled, bias_scale = self._row_buffer_state[key]
        n = rows.shape[0]
        if n < filled:
            buffer[n:filled].zero_()  # rows a larger batch left behind (the padding is zero)
        if bias and (bias_scale != scale or n != filled):
            buffer[:n, -1] = scale
        self._row_buffer_state[key] = (n, scale)
        target = buffer[:n, :rows.shape[1]]
        if scale == 1.0:
            target.copy_(rows)
        else:
            torch.mul(rows.to(device="cpu", dtype=self.dtype), scale, out=target)
        return buffer.numpy()

    def curvature(self) -> KroneckerCurvature:
        """The K-FAC curvature of the last captured batch (factors on the device)."""
        return KroneckerCurvature(self.statistics(), context=self._context)

    # Layouts -------------------------------------------------------------------------

    def flat(self, tensors: Sequence[torch.Tensor] | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        """Per-layer tensors (or the parameters' ``.grad``) in the K-FAC layout
        (``[W | b]`` row-major per layer), as one CPU vector of the model's dtype (written
        into ``out``, a contiguous CPU vector of that dtype and length, when given)."""
        pieces = []
        if out is not None and (out.shape != (self.dimension,) or out.dtype != self.dtype or not out.is_contiguous()
                                or out.device.type != "cpu"):
            raise ValueError(f"out: expected a contiguous CPU {self.dtype} vector of {self.dimension} values")
        start = 0
        for index, layer in enumerate(self.layers):
            if tensors is None:
                weight = layer.module.weight.grad
                bias = None if layer.module.bias is None else layer.module.bias.grad
                if weight is None or (layer.module.bias is not None and bias is None):
                    raise RuntimeError(f"KFAC: layer {layer.name!r} has no gradient; call loss.backward() first")
            else:
                weight, bias = tensors[2 * index], tensors[2 * index + 1]
            if out is not None:
                # One copy per tensor, straight into its place in the layout.
                block = out[start:start + layer.outputs * layer.inputs].view(layer.outputs, layer.inputs)
                start += layer.outputs * layer.inputs
                if bias is None:
                    block.copy_(weight.detach().reshape(layer.outputs, -1))
                else:
                    block[:, :-1].copy_(weight.detach().reshape(layer.outputs, -1))
                    block[:, -1].copy_(bias.detach().reshape(-1))
                continue
            block = weight.detach().reshape(layer.outputs, -1)
            if bias is not None:
                block = torch.cat([block, bias.detach().reshape(-1, 1)], dim=1)
            pieces.append(block.reshape(-1).to(device="cpu", dtype=self.dtype))
        return out if out is not None else torch.cat(pieces)

    def parameter_vector(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """The parameters in the K-FAC layout (into ``out`` when given, as :meth:`flat`)."""
        return self.flat([t for layer in self.layers for t in (layer.module.weight, layer.module.bias)], out=out)

    def split(self, vector: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """A K-FAC-layout vector as ``(weight, bias)`` tensors per layer (views)."""
        out, start = [], 0
        for layer in self.layers:
            block = vector[start:start + layer.outputs * layer.inputs].view(layer.outputs, layer.inputs)
            start += layer.outputs * layer.inputs
            if layer.module.bias is not None:
                out.append((block[:, :-1].reshape(layer.module.weight.shape), block[:, -1]))
            else:
                out.append((block.reshape(layer.module.weight.shape), None))
        return out

    # The step ------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor | float] | None = None,
             loss: float | torch.Tensor | None = None) -> StepReport:
        """Replaces each supported parameter's ``.grad`` with the K-FAC direction.

        ``closure()`` recomputes the loss (no backward) at the current parameters; it is
        required for Levenberg-Marquardt damping (called at candidate parameters, which
        are restored afterwards) and for the quadratic-model step size.
        """
        clock = time.perf_counter
        start = clock()
        if self._step_vectors is None:
            self._step_vectors = (torch.empty(self.dimension, dtype=self.dtype),
                                  torch.empty(self.dimension, dtype=self.dtype))
        gradient, theta = self._step_vectors
        self.flat(out=gradient)
        self.parameter_vector(out=theta)
        theta_np, gradient_np = theta.numpy(), gradient.numpy()
        layout = clock()
        curvature = {}
        if self.optimizer.needs_curvature:
            curvature["layers"] = self._step_statistics()
        rows = clock()
        loss_at = None
        if closure is not None:
            if loss is None:
                loss = closure()
            loss_at = self._loss_at(closure)
        value = None if loss is None else float(loss)
        library = clock()
        update, report = self.optimizer.update(theta_np, gradient_np, loss=value, loss_at=loss_at, **curvature)
        solved = clock()
        self._write_gradients(torch.from_numpy(update).neg_(), gradient)
        self.last_report = report
        self.last_timings = {"layout": layout - start, "rows": rows - layout, "closure": library - rows,
                             "library": solved - library, "write": clock() - solved}
        return report

    def _write_gradients(self, direction: torch.Tensor, gradient: torch.Tensor) -> None:
        """Copies a K-FAC-layout direction into the parameters' ``.grad`` after
        kfac-pytorch's KL clipping (when on) against the plain ``gradient``."""
        if self.kl_clip is not None:
            vg = float(torch.dot(direction.double(), gradient.double())) * self.lr ** 2
            nu = min(1.0, math.sqrt(self.kl_clip / abs(vg))) if vg != 0 else 1.0
            direction.mul_(nu)
        for layer, (weight, bias) in zip(self.layers, self.split(direction)):
            layer.module.weight.grad.copy_(weight)
            if bias is not None:
                layer.module.bias.grad.copy_(bias)

    def _loss_at(self, closure: Callable[[], torch.Tensor | float]) -> Callable[[np.ndarray], float]:
        def loss_at(candidate: np.ndarray) -> float:
            saved = [t.detach().clone() for layer in self.layers for t in layer.parameters]
            try:
                for layer, (weight, bias) in zip(self.layers, self.split(torch.from_numpy(candidate))):
                    layer.module.weight.copy_(weight)
                    if bias is not None:
                        layer.module.bias.copy_(bias)
                with torch.no_grad():
                    self._capturing_gradients = False
                    return float(closure())
            finally:
                self._capturing_gradients = True
                for target, value in zip([t for layer in self.layers for t in layer.parameters], saved):
                    target.copy_(value)
        return loss_at

    @property
    def damping(self) -> float:
        """The lambda the next step uses."""
        return self.optimizer.damping
