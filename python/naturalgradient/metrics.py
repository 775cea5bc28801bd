"""Output metrics of similarity measures and the exact-Fisher / GGN factor builders.

The formal natural gradient of a similarity measure D (Mallasto, Dela Haije, Feragen, 2019)
uses the output metric ``M(z) = Hessian of D(p_z, p_z') in z' at z' = z``; the parameter
metric is ``(1/N) sum_i J_i^T M(z_i) J_i``. See Docs/SimilarityMeasures.md for the layouts
of z per family and every formula.
"""

from __future__ import annotations

import ctypes
import math
from typing import Callable, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _library as L
from ._arrays import as_input, dtype_code, pointer
from ._context import Context, default_context
from .curvature import Factor

__all__ = ["Family", "Measure", "output_metric", "exact_fisher", "formal_metric_factor", "family_output_count"]

_FAMILIES = {"categorical": 1, "bernoulli": 2, "gaussian": 3, "gaussian_full": 4, "vector": 5}
_PARAMETRIZATIONS = {"sigma": 0, "log_sigma": 1, "variance": 2}
_MEASURES = {"kl": 1, "reverse_kl": 2, "hellinger": 3, "chi2": 4, "js": 5, "w2": 7, "euclidean": 8}


class Family:
    """A predictive family, the layout of one output z.

    Args:
        kind: "categorical" (``dimension`` logits), "bernoulli" (one logit), "gaussian"
            (``[mu_1..mu_d, s_1..s_d]``, s per ``parametrization``: "sigma", "log_sigma",
            "variance"), "gaussian_full" (``[mu, lower triangle of Sigma row by row]``,
            d <= 8) or "vector" (plain outputs).
        dimension: classes, d, or the vector length (ignored for "bernoulli").
        parametrization: the Gaussian scale's parametrization.
    """

    def __init__(self, kind: str, dimension: int = 1, parametrization: str = "sigma") -> None:
        if kind not in _FAMILIES:
            raise ValueError(f"family: {kind!r} is not one of {', '.join(_FAMILIES)}")
        if parametrization not in _PARAMETRIZATIONS:
            raise ValueError(f"parametrization: {parametrization!r} is not one of {', '.join(_PARAMETRIZATIONS)}")
        self.kind = kind
        self.dimension = int(dimension)
        self.parametrization = parametrization

    def _c(self) -> L.ng_family:
        return L.ng_family(_FAMILIES[self.kind], _PARAMETRIZATIONS[self.parametrization], self.dimension)

    @property
    def output_count(self) -> int:
        """The length of z."""
        out = ctypes.c_int64()
        L.call(L.lib().ng_family_output_count(ctypes.byref(self._c()), ctypes.byref(out)))
        return out.value

    def __repr__(self) -> str:
        return f"Family({self.kind!r}, {self.dimension}, {self.parametrization!r})"


class Measure:
    """A similarity measure D: "kl", "reverse_kl", "hellinger", "chi2", "js", "w2",
    "euclidean", any f-divergence by its f''(1) (``Measure.f_divergence(2.0)``), or your own
    D(z, z') (``Measure.custom(function)``, differentiated numerically)."""

    def __init__(self, kind: str, f_second_derivative: float = 0.0) -> None:
        if kind not in ("f_divergence", "custom") and kind not in _MEASURES:
            raise ValueError(f"measure: {kind!r} is not one of {', '.join(_MEASURES)}, f_divergence or custom")
        self.kind = kind
        self.f_second_derivative = float(f_second_derivative)
        self._callback = None
        self.errors: list[BaseException] = []

    @classmethod
    def custom(cls, divergence: Callable[[NDArray, NDArray], float]) -> "Measure":
        """A custom measure ``D(z, z')`` (two float64 arrays of the family's output count,
        at most 64), called many times during the call that uses it; its metric is the
        numerical Hessian in z' at z. An exception inside it makes D NaN there (the library
        then refuses the point, naming z) and is re-raised after the call."""
        measure = cls("custom")

        def trampoline(z: ctypes._Pointer, z_prime: ctypes._Pointer, length: int, _user: int) -> float:
            try:
                a = np.ctypeslib.as_array(z, shape=(length,)).copy()
                b = np.ctypeslib.as_array(z_prime, shape=(length,)).copy()
                return float(divergence(a, b))
            except BaseException as error:  # noqa: BLE001 - re-raised by _checked
                measure.errors.append(error)
                return math.nan

        measure._callback = L.DIVERGENCE_CALLBACK(trampoline)  # kept alive with the Measure
        return measure

    @classmethod
    def f_divergence(cls, second_derivative_at_one: float) -> "Measure":
        """The f-divergence with ``f''(1) = second_derivative_at_one`` (its metric is that
        multiple of the Fisher metric)."""
        return cls("f_divergence", second_derivative_at_one)

    def _c(self) -> L.ng_measure:
        if self.kind == "custom":
            return L.ng_measure(9, 0, 0.0, self._callback, None)
        return L.ng_measure(6 if self.kind == "f_divergence" else _MEASURES[self.kind], 0, self.f_second_derivative,
                            L.DIVERGENCE_CALLBACK(), None)

    def _raise_pending(self) -> None:
        """Re-raises the first exception the custom function raised during the last call."""
        if self.errors:
            error, self.errors = self.errors[0], []
            raise error

    def __repr__(self) -> str:
        return f"Measure({self.kind!r})"


FamilyLike = Union[Family, str]
MeasureLike = Union[Measure, str, float]


def _family(family: FamilyLike, length: int | None = None, parametrization: str = "sigma") -> Family:
    """A Family; a bare name takes its dimension from the length of one output."""
    if isinstance(family, Family):
        return family
    if not isinstance(family, str):
        raise ValueError(f"family: expected a Family or a name, got {type(family).__name__}")
    if length is None:
        raise ValueError(f"family: give Family({family!r}, dimension) when the output length is not known")
    if family == "gaussian":
        return Family("gaussian", max(1, length // 2), parametrization)
    if family == "gaussian_full":
        d = next((d for d in range(1, 9) if d + d * (d + 1) // 2 == length), 0)
        return Family("gaussian_full", d)
    return Family(family, length, parametrization)


def _measure(measure: MeasureLike) -> Measure:
    if isinstance(measure, Measure):
        return measure
    if isinstance(measure, (int, float)) and not isinstance(measure, bool):
        return Measure.f_divergence(float(measure))
    if isinstance(measure, str):
        return Measure(measure)
    raise ValueError(f"measure: expected a Measure, a name or f''(1), got {type(measure).__name__}")


def family_output_count(family: FamilyLike) -> int:
    """The length of one output z of ``family``."""
    return _family(family).output_count


def output_metric(family: FamilyLike, measure: MeasureLike, z: ArrayLike, square_root: bool = False,
                  parametrization: str = "sigma") -> NDArray:
    """The output metric ``M(z)`` (O x O, float64) of ``measure`` for ``family`` at ``z``,
    or with ``square_root=True`` a root B with ``B^T B = M``.

    ``z`` is one output (O values) or a batch (N, O), which gives (N, O, O). A family name
    takes its dimension from z's length (``"gaussian"``: d = O/2, with ``parametrization``).
    Computed on the host in float64 (z is copied to float64).
    """
    values = np.array(z, dtype=np.float64, copy=True, order="C")
    if values.ndim not in (1, 2) or values.size == 0:
        raise ValueError(f"z: expected one output (O,) or a batch (N, O), got shape {values.shape}")
    fam = _family(family, values.shape[-1], parametrization)
    chosen = _measure(measure)
    c_family, c_measure = fam._c(), chosen._c()
    o = values.shape[-1]
    rows = values.reshape(-1, o)
    out = np.empty((rows.shape[0], o, o), dtype=np.float64)
    for index, row in enumerate(rows):
        status = L.lib().ng_output_metric(ctypes.byref(c_family), ctypes.byref(c_measure), pointer(row), o,
                                          1 if square_root else 0, pointer(out[index]), o * o)
        chosen._raise_pending()
        L.call(status)
    return out[0] if values.ndim == 1 else out


def _jacobians(jacobians: NDArray, samples: int | None, outputs: int | None) -> tuple[NDArray, int, int]:
    """(N, O, P) or (N*O, P) Jacobians, with N and O."""
    j = as_input(jacobians, "jacobians", ndim=(2, 3))
    if j.ndim == 3:
        return j, j.shape[0], j.shape[1]
    if samples is None and outputs is None:
        raise ValueError("jacobians: a 2-D (N*O, P) array needs samples or outputs")
    if outputs is None:
        outputs = j.shape[0] // int(samples)
    samples = j.shape[0] // int(outputs) if samples is None else int(samples)
    if samples * outputs != j.shape[0]:
        raise ValueError(f"jacobians: {j.shape[0]} rows are not {samples} samples x {outputs} outputs")
    return j, samples, int(outputs)


def exact_fisher(
    jacobians: NDArray,
    metric: str = "softmax_cross_entropy",
    probabilities: NDArray | None = None,
    sigma: float | None = None,
    samples: int | None = None,
    outputs: int | None = None,
    context: Context | None = None,
) -> Factor:
    """The exact Fisher / GGN factor (rows ``B_i J_i``) from per-sample output Jacobians and
    a built-in output metric with an analytic root.

    Args:
        jacobians: J, (N, O, P), or (N*O, P) with ``samples``/``outputs``.
        metric: "softmax_cross_entropy" (``probabilities`` (N, O), rows summing to 1),
            "bernoulli" (O = 1, ``probabilities`` (N,)), or "gaussian_mean" (``sigma``).
        context: the device context.
    """
    context = context or default_context()
    j, n, o = _jacobians(jacobians, samples, outputs)
    codes = {"softmax_cross_entropy": 1, "bernoulli": 2, "gaussian_mean": 3}
    if metric not in codes:
        raise ValueError(f"metric: {metric!r} is not one of {', '.join(codes)}")
    values = None
    if metric != "gaussian_mean":
        if probabilities is None:
            raise ValueError(f"probabilities: required for {metric}")
        values = as_input(probabilities, "probabilities", dtype=j.dtype)
        if values.size != n * o:
            raise ValueError(f"probabilities: shape {values.shape}, expected ({n}, {o})")
    elif sigma is None:
        raise ValueError("sigma: required for gaussian_mean")
    handle = ctypes.c_uint64()
    L.call(L.lib().ng_factor_exact_fisher(context.handle, dtype_code(j), pointer(j), n, o, j.shape[-1],
                                          codes[metric], pointer(values), float(sigma or 0.0),
                                          ctypes.byref(handle)))
    return Factor._adopt(handle.value)


def formal_metric_factor(
    jacobians: NDArray,
    outputs: NDArray,
    family: FamilyLike,
    measure: MeasureLike,
    parametrization: str = "sigma",
    context: Context | None = None,
) -> Factor:
    """The formal natural-gradient factor of any similarity measure: rows ``B(z_i) J_i`` with
    ``B^T B = M(z_i)``, so ``F = (1/N) sum J_i^T M(z_i) J_i`` (KL on logits is the exact Fisher).

    Args:
        jacobians: (N, O, P) or (N*O, P), O the family's output count.
        outputs: the model outputs z, (N, O), same dtype.
        family: a :class:`Family` or a name (dimension from O).
        measure: a :class:`Measure`, a name, or f''(1).
        context: the device context.
    """
    context = context or default_context()
    z = as_input(outputs, "outputs", ndim=(1, 2))
    o = z.shape[-1] if z.ndim == 2 else 1
    n = z.shape[0]
    j, n_j, _ = _jacobians(jacobians, n, o)
    if z.dtype != j.dtype:
        raise ValueError(f"outputs: dtype {z.dtype} differs from the Jacobians' {j.dtype}")
    chosen = _measure(measure)
    c_family, c_measure = _family(family, o, parametrization)._c(), chosen._c()
    handle = ctypes.c_uint64()
    status = L.lib().ng_factor_formal_metric(context.handle, dtype_code(j), pointer(j), pointer(z), n, j.shape[-1],
                                             ctypes.byref(c_family), ctypes.byref(c_measure), ctypes.byref(handle))
    chosen._raise_pending()
    L.call(status)
    return Factor._adopt(handle.value)
