"""EKFAC, eigenvalue-corrected K-FAC (George et al. 2018; curvlinops' ``EKFACLinearOperator``).

Per dense layer ``F_l ~ (Q_G (x) Q_A) diag(vec S) (Q_G (x) Q_A)^T``: Q_A, Q_G are the
eigenbases of the K-FAC factors ``A = (1/N) sum w a a^T`` and ``G = (1/N) sum w g g^T``
(float64 LAPACK on the host), and ``S`` (outputs x inputs) holds the per-sample gradients'
second moments in that basis, ``S_kj = (1/N) sum_n w_n ((Q_G^T g_n a_n^T Q_A)_kj)^2``.

Conventions as :class:`~naturalgradient.KroneckerCurvature`'s: parameters are each layer's
(outputs x inputs) matrix ``[W | b]`` flattened row-major, the bias as an appended 1 in the
activations. Reduction: the mean over the N samples, so ``g_n`` is the output gradient of
sample n's own loss; for a loss averaged over the batch pass N times autograd's gradients
(curvlinops' ``loss_average="batch"``, ``fisher_type="empirical"`` builds the same operator).

``apply`` is exactly ``F + damping I``; ``solve`` (method "kfac" or "auto") divides by
``S + damping`` in the eigenbasis, which needs every ``S_kj + damping > 0``.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from . import _library as L
from . import curvature as _curvature
from ._arrays import dtype_code, pointer
from ._context import Context, default_context

__all__ = ["EKFACCurvature"]

KIND = 6  # NG_CURVATURE_EKFAC
_curvature._KINDS.setdefault(KIND, "ekfac")

_P, _H, _I64 = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int64
_PD = ctypes.POINTER(ctypes.c_double)
_SIGNATURES = {
    "ng_curvature_ekfac": [_H, ctypes.c_int32, ctypes.POINTER(L.ng_kfac_layer), _I64, _I64, _P, ctypes.POINTER(_H)],
    "ng_ekfac_eigenvalues": [_H, _I64, _PD, _I64],
    "ng_ekfac_eigenbasis": [_H, _I64, _PD, _I64, _PD, _I64],
    "ng_ekfac_accumulate": [
        _H, ctypes.POINTER(L.ng_kfac_layer), _I64, _I64, _P, ctypes.c_double, ctypes.c_double, ctypes.c_int32,
    ],
}
_declared = False
_lock = threading.Lock()


def _lib() -> ctypes.CDLL:
    """The library with this module's functions declared (once)."""
    global _declared
    library = L.lib()
    if not _declared:
        with _lock:
            if not _declared:
                for name, arguments in _SIGNATURES.items():
                    function = getattr(library, name)
                    function.argtypes = arguments
                    function.restype = ctypes.c_int32
                _declared = True
    return library


class EKFACCurvature(_curvature.Curvature):
    """EKFAC over dense layers (see the module's docstring for the definition).

    Solvers: the eigenbasis inverse (method "kfac", chosen by "auto"), CG, PCG.

    Args:
        layers: per layer ``(activations, output_gradients)``: (N, inputs), the bias 1
            included, and (N, outputs); float32 or float64, C-contiguous (no host copy).
        weights: optional per-sample weights (N values, >= 0).
        context: the device context.
    """

    def __init__(self, layers: Sequence[tuple[NDArray, NDArray]], weights: NDArray | None = None,
                 context: Context | None = None) -> None:
        context = context or default_context()
        table, arrays, samples, w, dtype = _curvature._layer_table(layers, None, weights)
        self._shapes = [(g.shape[1], a.shape[1]) for a, g in arrays]
        handle = ctypes.c_uint64()
        L.call(_lib().ng_curvature_ekfac(context.handle, dtype_code(arrays[0][0]), table, len(arrays), samples,
                                         pointer(w), ctypes.byref(handle)))
        super().__init__(handle.value)

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """Each layer's (outputs, inputs), the bias column counted in inputs."""
        return list(self._shapes)

    def _layer(self, layer: int) -> tuple[int, int]:
        if not 0 <= layer < len(self._shapes):
            raise ValueError(f"layer: {layer} is not one of {len(self._shapes)} layers")
        return self._shapes[layer]

    def eigenvalues(self, layer: int) -> NDArray:
        """Layer ``layer``'s corrected eigenvalues S, float64 (outputs, inputs): entry (k, j)
        belongs to the basis vector ``Q_G[:, k] (x) Q_A[:, j]``."""
        outputs, inputs = self._layer(layer)
        values = np.empty((outputs, inputs), dtype=np.float64)
        L.call(_lib().ng_ekfac_eigenvalues(self.handle, layer, values.ctypes.data_as(_PD), values.size))
        return values

    def eigenbasis(self, layer: int) -> tuple[NDArray, NDArray]:
        """Layer ``layer``'s orthonormal eigenbases ``(Q_A, Q_G)``, float64, eigenvectors in
        the columns (ascending eigenvalues of A and G)."""
        outputs, inputs = self._layer(layer)
        qa = np.empty((inputs, inputs), dtype=np.float64)
        qg = np.empty((outputs, outputs), dtype=np.float64)
        L.call(_lib().ng_ekfac_eigenbasis(self.handle, layer, qa.ctypes.data_as(_PD), qa.size,
                                          qg.ctypes.data_as(_PD), qg.size))
        return qa, qg

    def accumulate(self, layers: Sequence[tuple[NDArray, NDArray]], weights: NDArray | None = None,
                   alpha: float | None = None, beta: float = 1.0, refresh_basis: bool = False) -> None:
        """A training step's update: ``A, G <- beta (A, G) + alpha sum w (a a^T, g g^T)`` and
        ``S <- beta S + alpha sum w (Q_G^T g a^T Q_A)^2`` in the current basis (``alpha``
        None: 1/N). With ``refresh_basis`` the averaged factors are decomposed again and S
        re-estimated from this batch alone in the new basis."""
        table, arrays, samples, w, _ = _curvature._layer_table(layers, self.dtype, weights)
        if len(arrays) != len(self._shapes):
            raise ValueError(f"layers: {len(arrays)} layers, the curvature has {len(self._shapes)}")
        L.call(_lib().ng_ekfac_accumulate(self.handle, table, len(arrays), samples, pointer(w),
                                          float("nan") if alpha is None else float(alpha), float(beta),
                                          1 if refresh_basis else 0))
