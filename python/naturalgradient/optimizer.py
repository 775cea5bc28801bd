"""The natural-gradient optimizer (``NaturalGradientOptimizer`` of the Swift library)."""

from __future__ import annotations

import ctypes
import json
import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from . import _library as L
from ._arrays import as_input, dtype_code, pointer
from ._context import Context, _Owned, default_context
from .curvature import METHOD_NAMES, STATUSES, ColumnReport, Factor
from .metrics import FamilyLike, Measure, MeasureLike, _family, _measure

__all__ = ["NaturalGradientOptimizerOptions", "NaturalGradientOptimizer", "StepReport"]


@dataclass
class NaturalGradientOptimizerOptions:
    """The optimizer's configuration (the Swift ``NaturalGradientOptimizerOptions``).

    Attributes:
        curvature: "empirical_fisher" (per-sample gradients), "exact_fisher" (output
            Jacobians with a metric or a similarity measure) or "kfac" (layer statistics).
        layers: K-FAC layer shapes ``[(outputs, inputs), ...]`` (bias column counted).
        representation: "implicit", "dense", "block_diagonal" or "diagonal" (not K-FAC).
        block_sizes: the blocks of "block_diagonal".
        method: "automatic", "cg", "pcg", "woodbury", "cholesky" or "kfac".
        tolerance, max_iterations, progress_rule, preconditioner, jacobi_exponent: CG's.
        damping: lambda (the initial one for Levenberg-Marquardt).
        damping_policy: "fixed" or "levenberg_marquardt" (needs ``loss_at`` in ``step``).
        damping_minimum, damping_maximum: Levenberg-Marquardt's clamp.
        step_size: "learning_rate" or "quadratic_model" (alpha minimising the local model).
        learning_rate, step_size_maximum: their parameters.
        momentum: heavy-ball mu in [0, 1).
        curvature_decay: moving-average beta in [0, 1) (not implicit).
        curvature_refresh_period, inverse_refresh_period: rebuild / re-invert every k steps.
        max_update_norm: clip the update's Euclidean norm (None: no clip).
    """

    curvature: str = "empirical_fisher"
    layers: list[tuple[int, int]] | None = None
    representation: str = "implicit"
    block_sizes: list[int] | None = None
    method: str = "automatic"
    tolerance: float = 1e-4
    max_iterations: int | None = 50
    progress_rule: bool = True
    preconditioner: str = "none"
    jacobi_exponent: float = 0.75
    damping: float = 1e-3
    damping_policy: str = "fixed"
    damping_minimum: float = 1e-8
    damping_maximum: float = 1e8
    step_size: str = "learning_rate"
    learning_rate: float = 1.0
    step_size_maximum: float = 1.0
    momentum: float = 0.0
    curvature_decay: float = 0.0
    curvature_refresh_period: int = 1
    inverse_refresh_period: int = 1
    max_update_norm: float | None = None

    def to_json(self) -> str:
        """The JSON object ``ng_optimizer_create`` takes."""
        values = {key: value for key, value in asdict(self).items() if value is not None or key == "max_iterations"}
        if values.get("layers") is not None:
            values["layers"] = [list(shape) for shape in values["layers"]]
        return json.dumps(values)


@dataclass(frozen=True)
class StepReport:
    """What one optimizer step did (absent values are None).

    Attributes:
        step: the step's index (0 for the first).
        damping: the lambda it solved with; next_damping: the lambda of the next step.
        step_size: alpha; update_norm: |delta|; clipped: whether max_update_norm scaled it.
        method: the solver that ran; solve: CG's report (None for direct methods).
        refreshed_curvature, refreshed_inverse: what this step rebuilt.
        predicted_change, actual_change, reduction_ratio: the quadratic model's and the
            loss's change, and their ratio rho (Levenberg-Marquardt).
    """

    step: int
    damping: float
    next_damping: float
    step_size: float
    update_norm: float
    clipped: bool
    method: str
    solve: ColumnReport | None
    refreshed_curvature: bool
    refreshed_inverse: bool
    predicted_change: float | None
    actual_change: float | None
    reduction_ratio: float | None


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value


class NaturalGradientOptimizer(_Owned):
    """A natural-gradient optimizer that a training loop calls once per step.

    Each step takes the parameters theta, the mini-batch gradient g and, when
    :attr:`needs_curvature`, the curvature data of the configured kind; it solves
    ``(F + lambda I) delta = g``, picks the step size, adds momentum, clips, and returns
    (:meth:`update`) or applies (:meth:`step`) ``delta``.

    Args:
        dimension: P, the number of parameters.
        options: a :class:`NaturalGradientOptimizerOptions` (default: its defaults).
        dtype: float32 or float64, the working precision (the arrays' dtype).
        context: the device context.
        **overrides: option fields to set on (a copy of) ``options``.
    """

    _kind = "optimizer"

    def __init__(self, dimension: int, options: NaturalGradientOptimizerOptions | None = None,
                 dtype: type | np.dtype = np.float64, context: Context | None = None, **overrides: object) -> None:
        context = context or default_context()
        options = NaturalGradientOptimizerOptions(**{**asdict(options or NaturalGradientOptimizerOptions()),
                                                     **overrides})
        self._dtype = np.dtype(dtype)
        if self._dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype: {self._dtype} is not float32 or float64")
        self.options = options
        self.dimension = int(dimension)
        handle = ctypes.c_uint64()
        L.call(L.lib().ng_optimizer_create(context.handle, L.FLOAT32 if self._dtype == np.float32 else L.FLOAT64,
                                           self.dimension, options.to_json().encode(), ctypes.byref(handle)))
        super().__init__(handle.value)

    def _info(self) -> tuple[int, float, bool]:
        step, damping, needs = ctypes.c_int64(), ctypes.c_double(), ctypes.c_int32()
        L.call(L.lib().ng_optimizer_info(self.handle, ctypes.byref(step), ctypes.byref(damping), ctypes.byref(needs)))
        return step.value, damping.value, bool(needs.value)

    @property
    def step_count(self) -> int:
        """Steps taken so far."""
        return self._info()[0]

    @property
    def damping(self) -> float:
        """The lambda the next step uses."""
        return self._info()[1]

    @property
    def needs_curvature(self) -> bool:
        """Whether the next step needs curvature data."""
        return self._info()[2]

    def _input(
        self,
        per_sample_gradients: NDArray | None,
        output_jacobians: NDArray | None,
        metric: str | None,
        probabilities: NDArray | None,
        sigma: float | None,
        outputs: NDArray | None,
        family: FamilyLike | None,
        measure: MeasureLike | None,
        layers: Sequence[tuple[NDArray, NDArray]] | None,
        factor: Factor | None,
        keep: list,
    ) -> L.ng_curvature_input | None:
        given = [value is not None for value in (per_sample_gradients, output_jacobians, layers, factor)]
        if sum(given) > 1:
            raise ValueError("curvature input: give one of per_sample_gradients, output_jacobians, layers, factor")
        data = L.ng_curvature_input()
        if per_sample_gradients is not None:
            u = as_input(per_sample_gradients, "per_sample_gradients", dtype=self._dtype, ndim=(2,))
            if u.shape[1] != self.dimension:
                raise ValueError(f"per_sample_gradients: shape {u.shape}, expected (N, {self.dimension})")
            keep.append(u)
            data.kind, data.samples, data.data = 1, u.shape[0], pointer(u)
        elif output_jacobians is not None:
            j = as_input(output_jacobians, "output_jacobians", dtype=self._dtype, ndim=(3,))
            if j.shape[2] != self.dimension:
                raise ValueError(f"output_jacobians: shape {j.shape}, expected (N, O, {self.dimension})")
            keep.append(j)
            data.kind, data.samples, data.outputs, data.data = 2, j.shape[0], j.shape[1], pointer(j)
            if outputs is not None or family is not None or measure is not None:
                if outputs is None or family is None or measure is None:
                    raise ValueError("outputs, family, measure: a similarity measure needs all three")
                z = as_input(outputs, "outputs", dtype=self._dtype, ndim=(2,))
                keep.append(z)
                data.output_metric, data.values = 4, pointer(z)
                chosen = _measure(measure)
                keep.append(chosen)  # a custom measure's callback must outlive the call
                data.family, data.measure = _family(family, z.shape[1])._c(), chosen._c()
            else:
                codes = {"softmax_cross_entropy": 1, "bernoulli": 2, "gaussian_mean": 3}
                name = metric or "softmax_cross_entropy"
                if name not in codes:
                    raise ValueError(f"metric: {name!r} is not one of {', '.join(codes)}")
                data.output_metric = codes[name]
                if name == "gaussian_mean":
                    if sigma is None:
                        raise ValueError("sigma: required for gaussian_mean")
                    data.sigma = float(sigma)
                else:
                    if probabilities is None:
                        raise ValueError(f"probabilities: required for {name}")
                    p = as_input(probabilities, "probabilities", dtype=self._dtype)
                    keep.append(p)
                    data.values = pointer(p)
        elif layers is not None:
            table = (L.ng_kfac_layer * len(layers))()
            samples = None
            for index, layer in enumerate(layers):
                a = as_input(layer[0], f"layers[{index}].activations", dtype=self._dtype, ndim=(2,))
                g = as_input(layer[1], f"layers[{index}].output_gradients", dtype=self._dtype, ndim=(2,))
                if samples is None:
                    samples = a.shape[0]
                if a.shape[0] != samples or g.shape[0] != samples:
                    raise ValueError(f"layers[{index}]: {a.shape[0]} and {g.shape[0]} samples, expected {samples}")
                keep.extend([a, g])
                table[index] = L.ng_kfac_layer(pointer(a), pointer(g), a.shape[1], g.shape[1])
            keep.append(table)
            data.kind, data.samples, data.layers, data.layer_count = 3, samples or 0, table, len(layers)
        elif factor is not None:
            if not isinstance(factor, Factor):
                raise ValueError(f"factor: expected a Factor, got {type(factor).__name__}")
            data.kind, data.factor = 4, factor.handle
        else:
            return None
        return data

    def _run(self, apply: bool, parameters: NDArray, gradient: NDArray, loss: float | None,
             loss_at: Callable[[NDArray], float] | None, curvature: dict) -> tuple[NDArray | None, StepReport]:
        theta = as_input(parameters, "parameters", dtype=self._dtype, ndim=(1,))
        if apply and not theta.flags.writeable:
            raise ValueError("parameters: the array is read-only; step() updates it in place")
        g = as_input(gradient, "gradient", dtype=self._dtype, ndim=(1,))
        for name, array in (("parameters", theta), ("gradient", g)):
            if array.shape[0] != self.dimension:
                raise ValueError(f"{name}: {array.shape[0]} values, the optimizer has {self.dimension}")
        keep: list = []
        data = self._input(keep=keep, **curvature)
        callback_error: list[BaseException] = []

        def trampoline(candidate: int, dimension: int, out: ctypes._Pointer, _user: int) -> int:
            try:
                view = np.ctypeslib.as_array(ctypes.cast(candidate, ctypes.POINTER(
                    ctypes.c_float if self._dtype == np.float32 else ctypes.c_double)), shape=(dimension,))
                out[0] = float(loss_at(view.copy()))  # type: ignore[misc]
                return 0
            except BaseException as error:  # noqa: BLE001 - re-raised after the C call returns
                callback_error.append(error)
                return 1

        callback = L.LOSS_CALLBACK(trampoline) if loss_at is not None else L.LOSS_CALLBACK()
        report = L.ng_step_report()
        update = None if apply else np.empty(self.dimension, dtype=self._dtype)
        arguments = (self.handle, dtype_code(theta), pointer(theta), pointer(g), self.dimension,
                     None if data is None else ctypes.byref(data), math.nan if loss is None else float(loss),
                     callback, None)
        if apply:
            status = L.lib().ng_optimizer_step(*arguments, ctypes.byref(report))
        else:
            status = L.lib().ng_optimizer_update(*arguments, pointer(update), ctypes.byref(report))
        if callback_error:
            raise callback_error[0]
        for item in keep:
            if isinstance(item, Measure):
                item._raise_pending()
        L.call(status)
        solve = None
        if report.has_solve:
            r = report.solve
            solve = ColumnReport(STATUSES[r.status], r.iterations, r.relative_residual, r.objective,
                                 METHOD_NAMES[report.method], None, math.nan)
        return update, StepReport(
            step=report.step, damping=report.damping, next_damping=report.next_damping, step_size=report.step_size,
            update_norm=report.update_norm, clipped=bool(report.clipped), method=METHOD_NAMES[report.method],
            solve=solve, refreshed_curvature=bool(report.refreshed_curvature),
            refreshed_inverse=bool(report.refreshed_inverse), predicted_change=_optional(report.predicted_change),
            actual_change=_optional(report.actual_change), reduction_ratio=_optional(report.reduction_ratio),
        )

    def update(
        self,
        parameters: NDArray,
        gradient: NDArray,
        *,
        per_sample_gradients: NDArray | None = None,
        output_jacobians: NDArray | None = None,
        metric: str | None = None,
        probabilities: NDArray | None = None,
        sigma: float | None = None,
        outputs: NDArray | None = None,
        family: FamilyLike | None = None,
        measure: MeasureLike | None = None,
        layers: Sequence[tuple[NDArray, NDArray]] | None = None,
        factor: Factor | None = None,
        loss: float | None = None,
        loss_at: Callable[[NDArray], float] | None = None,
    ) -> tuple[NDArray, StepReport]:
        """Computes the update delta (not applied) and advances the optimizer's state.

        Curvature data (needed when :attr:`needs_curvature`; give one kind):
        ``per_sample_gradients`` (N, P) for the empirical Fisher; ``output_jacobians``
        (N, O, P) with ``metric`` ("softmax_cross_entropy" + ``probabilities`` (N, O),
        "bernoulli" + ``probabilities`` (N, 1), "gaussian_mean" + ``sigma``) or with
        ``outputs`` (N, O), ``family`` and ``measure`` (any similarity measure); ``layers``
        ``[(activations, output_gradients), ...]`` for K-FAC; or a device ``factor``.
        ``loss`` is the loss at ``parameters``; ``loss_at(candidate) -> float`` is required
        for Levenberg-Marquardt damping. Arrays are copied once (the Swift optimizer takes
        host arrays). Returns delta and a :class:`StepReport`.
        """
        update, report = self._run(False, parameters, gradient, loss, loss_at, dict(
            per_sample_gradients=per_sample_gradients, output_jacobians=output_jacobians, metric=metric,
            probabilities=probabilities, sigma=sigma, outputs=outputs, family=family, measure=measure,
            layers=layers, factor=factor))
        assert update is not None
        return update, report

    def step(self, parameters: NDArray, gradient: NDArray, **curvature: object) -> StepReport:
        """As :meth:`update`, then ``parameters += delta`` in place (a writable C-contiguous
        array of the optimizer's dtype). Keyword arguments as for :meth:`update`."""
        loss = curvature.pop("loss", None)
        loss_at = curvature.pop("loss_at", None)
        known = {"per_sample_gradients", "output_jacobians", "metric", "probabilities", "sigma", "outputs",
                 "family", "measure", "layers", "factor"}
        unknown = set(curvature) - known
        if unknown:
            raise TypeError(f"step() got unexpected keyword arguments {sorted(unknown)}")
        arguments = {name: curvature.get(name) for name in known}
        _, report = self._run(True, parameters, gradient, loss, loss_at, arguments)  # type: ignore[arg-type]
        return report

    def state(self) -> bytes:
        """The state (step count, lambda, momentum, curvature, cached inverse) as bytes
        (JSON); :meth:`restore` it into an optimizer with the same options."""
        out, length = ctypes.c_void_p(), ctypes.c_size_t()
        L.call(L.lib().ng_optimizer_state(self.handle, ctypes.byref(out), ctypes.byref(length)))
        return L.take_bytes(out, length.value)

    def state_dict(self) -> dict:
        """The state as a dict (the parsed JSON of :meth:`state`)."""
        return json.loads(self.state())

    def restore(self, state: bytes | dict) -> None:
        """Restores a state from :meth:`state` (or :meth:`state_dict`); the next step is the
        one the saved optimizer would have taken."""
        data = json.dumps(state).encode() if isinstance(state, dict) else bytes(state)
        if not data:
            raise ValueError("state: is empty")
        L.call(L.lib().ng_optimizer_restore(self.handle, data, len(data)))
