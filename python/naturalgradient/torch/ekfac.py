"""EKFAC for torch models: the K-FAC hooks feeding the library's eigenvalue-corrected
Kronecker curvature (:class:`naturalgradient.EKFACCurvature`, George et al. 2018).

Per supported layer ``F_l ~ (Q_G (x) Q_A) diag(vec S) (Q_G (x) Q_A)^T``: Q_A, Q_G are the
eigenbases of the K-FAC factors of :mod:`naturalgradient.torch.kfac` (same layers, same
``[W | b]`` layout, same Conv2d expansions and loss reductions), and ``S`` the second
moments of the per-row gradients ``g a^T`` in that basis.

Rows and scales: the library's EKFAC takes the mean over its rows, ``A = (1/M) sum a a^T``,
``G = (1/M) sum g g^T``, ``S = (1/M) sum (Q_G^T g a^T Q_A)^2``. Each layer's rows are
scaled by ``sqrt(M c_A)`` and ``sqrt(M c_G)`` (the constants of :meth:`KFAC._rows`), so A
and G are K-FAC's and, for ``nn.Linear`` on (N, features) inputs,
``S = (1/N) sum_n (Q_G^T g_n a_n^T Q_A)^2`` with ``g_n`` the output gradient of sample n's
own loss (N times autograd's for ``reduction="mean"``): curvlinops'
``EKFACLinearOperator(separate_weight_and_bias=False)`` for ``fisher_type`` "empirical" and
"mc". Padding rows would change S, so layers are grouped by row count, one curvature each
(an MLP is one group; a CNN in "expand" has one group for the convolutions' N S rows per
location count and one for the Linear layers' N rows).

Conv2d: S is taken per row, i.e. per (sample, output location) in "expand",
``S = (1/N) sum_{n,s} (Q_G^T g_ns)^2 (Q_A^T a_ns)^2``, and per sample of the reduced rows in
"reduce". curvlinops instead squares the per-example gradient summed over locations,
``(1/N) sum_n (Q_G^T (sum_s g_ns a_ns^T) Q_A)^2`` (its weight-sharing correction). That is
not a sum of rank-one terms, so the library's row input cannot express it; for a Conv2d
with one output location the two agree (tested), otherwise they differ
(``tests/test_torch_ekfac.py`` checks ours against the per-row formula and that the
difference is real).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..curvature import ColumnReport, solve
from ..ekfac import EKFACCurvature
from .._context import Context
from .kfac import KFAC

__all__ = ["EKFAC"]


class EKFAC(KFAC):
    """EKFAC preconditioning of a torch model's gradients with the library's kernels.

    After ``loss.backward()`` (or :meth:`backward`), :meth:`step` replaces the ``.grad`` of
    every ``nn.Linear`` / ``nn.Conv2d`` parameter in place with the damped EKFAC direction
    ``(F_EKFAC + damping I)^-1 g``, i.e. ``Q (Q^T g Q / (S + damping)) Q^T`` per layer (the
    curvature's own eigenbasis inverse through :func:`naturalgradient.solve`, method
    "kfac"), so any torch optimizer then takes the step.

    Schedule (step t counts calls of :meth:`step` from 0): step 0 builds the curvature
    from its batch; on later steps with ``t % eigenbasis_update_period == 0`` the factors
    are averaged in and decomposed again and S is re-estimated from the batch in the new
    basis; on the other steps with ``t % eigenvalue_update_period == 0`` the factors and S
    are averaged in, the basis kept; on the remaining steps the curvature is reused as is.

    Args:
        model: the torch module.
        damping: lambda, added to every corrected eigenvalue (``S + damping > 0`` needed).
        factor_decay: moving average ``X <- beta X + (1-beta) X_batch`` of A, G and S
            (0 keeps only the batch).
        eigenbasis_update_period: decompose the factors again every k steps.
        eigenvalue_update_period: re-estimate S (and average in the factors) every k steps.
        kl_clip, lr: kfac-pytorch's KL clipping, as in :class:`KFAC`.
        conv: "expand" (KFC, default) or "reduce"; see the module's docstring for S.
        loss_reduction: "mean" or "sum".
        fisher_type: "empirical" or "mc" (labels drawn by :meth:`backward`).
        seed: the MC generator's seed.
        strict: raise at construction when parameters lie outside supported layers.
        context: the device context.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        damping: float = 1e-3,
        factor_decay: float = 0.0,
        eigenbasis_update_period: int = 1,
        eigenvalue_update_period: int = 1,
        kl_clip: float | None = None,
        lr: float | None = None,
        conv: str = "expand",
        loss_reduction: str = "mean",
        fisher_type: str = "empirical",
        seed: int = 2147483647,
        strict: bool = False,
        context: Context | None = None,
    ) -> None:
        if not (math.isfinite(damping) and damping >= 0):
            raise ValueError(f"damping: {damping} must be finite and >= 0")
        if not (math.isfinite(factor_decay) and 0 <= factor_decay < 1):
            raise ValueError(f"factor_decay: {factor_decay} must lie in [0, 1)")
        for name, period in (("eigenbasis_update_period", eigenbasis_update_period),
                             ("eigenvalue_update_period", eigenvalue_update_period)):
            if not isinstance(period, int) or isinstance(period, bool) or period < 1:
                raise ValueError(f"{name}: {period!r} must be an integer >= 1")
        self._attach(model, conv=conv, loss_reduction=loss_reduction, fisher_type=fisher_type, kl_clip=kl_clip,
                     lr=lr, seed=seed, strict=strict)
        self._damping = float(damping)
        self.factor_decay = float(factor_decay)
        self.eigenbasis_update_period = eigenbasis_update_period
        self.eigenvalue_update_period = eigenvalue_update_period
        self._context = context
        self.steps = 0
        """Calls of :meth:`step` so far."""
        self._groups: list[list[int]] | None = None
        self._state: list[EKFACCurvature] = []
        self.last_reports: list[ColumnReport] = []
        self.last_report = None

    # Statistics ----------------------------------------------------------------------

    def grouped_statistics(self) -> list[tuple[list[int], list[tuple[np.ndarray, np.ndarray]]]]:
        """The last batch's rows per group of layers with one row count M:
        ``(layer indices, [(a, g), ...])``, each layer's rows scaled by ``sqrt(M c_A)``,
        ``sqrt(M c_G)`` (see the module's docstring), C-contiguous CPU arrays."""
        rows = [self._rows(layer) for layer in self.layers]
        groups: dict[int, list[int]] = {}
        for index, (a, _, _, _) in enumerate(rows):
            groups.setdefault(a.shape[0], []).append(index)
        out = []
        for m, indices in groups.items():
            out.append((indices, [(self._padded(rows[i][0], m, math.sqrt(m * rows[i][2])),
                                   self._padded(rows[i][1], m, math.sqrt(m * rows[i][3]))) for i in indices]))
        return out

    def curvatures(self) -> list[tuple[list[int], EKFACCurvature]]:
        """EKFAC of the last captured batch alone, one :class:`~naturalgradient.EKFACCurvature`
        per row-count group ``(layer indices, curvature)``; the caller closes them."""
        return [(indices, EKFACCurvature(layers, context=self._context))
                for indices, layers in self.grouped_statistics()]

    def curvature(self) -> EKFACCurvature:
        """EKFAC of the last captured batch when all layers share one row count (an MLP);
        otherwise use :meth:`curvatures`. The caller closes it."""
        built = self.curvatures()
        if len(built) != 1:
            for _, curvature in built:
                curvature.close()
            raise ValueError(f"EKFAC.curvature: the layers form {len(built)} row-count groups; use curvatures()")
        return built[0][1]

    @property
    def state(self) -> list[tuple[list[int], EKFACCurvature]]:
        """The running curvatures :meth:`step` solves with (empty before the first step)."""
        return list(zip(self._groups or [], self._state))

    def _update_state(self) -> None:
        t = self.steps
        if t == 0:
            built = self.curvatures()
            self._groups = [indices for indices, _ in built]
            self._state = [curvature for _, curvature in built]
            return
        refresh = t % self.eigenbasis_update_period == 0
        if not (refresh or t % self.eigenvalue_update_period == 0):
            return
        beta = self.factor_decay
        grouped = self.grouped_statistics()
        if [indices for indices, _ in grouped] != self._groups:
            raise RuntimeError(
                f"EKFAC: the layers' row counts regroup the layers as {[i for i, _ in grouped]} "
                f"(the curvature has {self._groups}); keep the input shape fixed between steps")
        for curvature, (_, layers) in zip(self._state, grouped):
            m = layers[0][0].shape[0]
            curvature.accumulate(layers, alpha=(1.0 - beta) / m, beta=beta, refresh_basis=refresh)

    # The step ------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor | float] | None = None,
             loss: float | torch.Tensor | None = None) -> list[ColumnReport]:
        """Updates the curvature on the schedule and replaces each supported parameter's
        ``.grad`` with ``(F_EKFAC + damping I)^-1 grad`` (then KL clipping, when on).
        ``closure`` and ``loss`` are accepted for :class:`KFAC`'s signature and unused
        (the damping is fixed). Returns the solver's reports, one per group."""
        gradient = self.flat()
        self._update_state()
        self.steps += 1
        sizes = [layer.outputs * layer.inputs for layer in self.layers]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        direction = torch.empty_like(gradient)
        gradient_np, direction_np = gradient.numpy(), direction.numpy()
        reports: list[ColumnReport] = []
        for indices, curvature in self.state:
            block = np.concatenate([gradient_np[offsets[i]:offsets[i + 1]] for i in indices])
            x, column_reports = solve(curvature, block, self._damping, method="kfac")
            reports += column_reports
            start = 0
            for i in indices:
                direction_np[offsets[i]:offsets[i + 1]] = x[start:start + sizes[i]]
                start += sizes[i]
        self._write_gradients(direction, gradient)
        self.last_reports = reports
        return reports

    @property
    def damping(self) -> float:
        """The lambda every step uses."""
        return self._damping

    def close(self) -> None:
        """Releases the running curvatures (the hooks stay; see :meth:`remove`)."""
        for curvature in self._state:
            curvature.close()
        self._state = []
        self._groups = None
        self.steps = 0
