"""Curvature factors, the five representations, and the solver.

Conventions (the library's, DESIGN.md section 2): a factor ``U`` (M x P, row-major) with
row weights ``w`` stands for ``F = (1/N) sum_m w_m u_m u_m^T``; the mean is over the N
samples, not the M rows. Every representation applies ``F + damping I`` to vectors.

Copies: arrays are handed to the library by pointer and uploaded to the device with one
copy straight from NumPy's memory; results are read back straight into a new NumPy array.
No host copy is made, except: ``matmat``/``solve`` of a C-ordered (P, k) matrix with k > 1
(transposed once into the library's k x P layout; pass a Fortran-ordered array, or use
``apply`` with (k, P), to avoid it), and array-likes that are not ndarrays.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from . import _library as L
from ._arrays import NAMES, as_input, dtype_code, pointer
from ._context import Context, _Owned, default_context

__all__ = [
    "Factor",
    "Curvature",
    "ImplicitCurvature",
    "DenseCurvature",
    "BlockDiagonalCurvature",
    "DiagonalCurvature",
    "KroneckerCurvature",
    "ColumnReport",
    "solve",
]

_KINDS = {1: "implicit", 2: "dense", 3: "block_diagonal", 4: "diagonal", 5: "kronecker"}
METHODS = {"auto": 0, "automatic": 0, "cg": 1, "pcg": 2, "woodbury": 3, "cholesky": 4, "kfac": 5}
METHOD_NAMES = {0: "automatic", 1: "cg", 2: "pcg", 3: "woodbury", 4: "cholesky", 5: "kfac"}
STATUSES = {
    0: "converged",
    1: "iteration cap",
    2: "progress stalled",
    3: "negative curvature",
    4: "non-finite",
    5: "stagnated",
    6: "perturbed",
    7: "inaccurate",
    8: "ill-conditioned",
}
PATHS = {0: None, 1: "cholesky", 2: "jitter", 3: "eigen"}


class Factor(_Owned):
    """A curvature factor on the device: ``F = (1/N) U^T diag(w) U``.

    Args:
        matrix: U, shape (M, P), float32 or float64, C-contiguous (uploaded once, no host copy).
        samples: N, the number of samples the mean is over (default M).
        weights: optional row weights w (M values, finite, >= 0), same dtype as U.
        context: the device context (default: :func:`default_context`).
    """

    _kind = "factor"

    def __init__(
        self,
        matrix: NDArray,
        samples: int | None = None,
        weights: NDArray | None = None,
        context: Context | None = None,
    ) -> None:
        context = context or default_context()
        u = as_input(matrix, "matrix", ndim=(2,))
        w = None if weights is None else as_input(weights, "weights", dtype=u.dtype, ndim=(1,))
        if w is not None and w.shape[0] != u.shape[0]:
            raise ValueError(f"weights: {w.shape[0]} values for {u.shape[0]} rows")
        handle = ctypes.c_uint64()
        L.call(
            L.lib().ng_factor_create(
                context.handle, dtype_code(u), pointer(u), u.shape[0], u.shape[1],
                u.shape[0] if samples is None else int(samples), pointer(w), ctypes.byref(handle),
            )
        )
        super().__init__(handle.value)

    @classmethod
    def _adopt(cls, handle: int) -> "Factor":
        factor = cls.__new__(cls)
        _Owned.__init__(factor, handle)
        return factor

    def _info(self) -> tuple[np.dtype, int, int, int]:
        dtype, rows, dimension, samples = ctypes.c_int32(), ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        L.call(
            L.lib().ng_factor_info(
                self.handle, ctypes.byref(dtype), ctypes.byref(rows), ctypes.byref(dimension), ctypes.byref(samples)
            )
        )
        return NAMES[dtype.value], rows.value, dimension.value, samples.value

    @property
    def dtype(self) -> np.dtype:
        """The element type (float32 or float64)."""
        return self._info()[0]

    @property
    def shape(self) -> tuple[int, int]:
        """(M, P)."""
        _, rows, dimension, _ = self._info()
        return rows, dimension

    @property
    def samples(self) -> int:
        """N."""
        return self._info()[3]

    def matrix(self) -> NDArray:
        """U read back from the device, shape (M, P)."""
        dtype, rows, dimension, _ = self._info()
        out = np.empty((rows, dimension), dtype=dtype)
        L.call(L.lib().ng_factor_download(self.handle, L.FLOAT32 if dtype == np.float32 else L.FLOAT64,
                                          pointer(out), out.size))
        return out


def _factor(source: Factor | NDArray, samples: int | None, weights: NDArray | None,
            context: Context | None) -> Factor:
    if isinstance(source, Factor):
        if samples is not None or weights is not None:
            raise ValueError("samples/weights: give them when building the Factor, not with one")
        return source
    return Factor(source, samples=samples, weights=weights, context=context)


@dataclass(frozen=True)
class ColumnReport:
    """How the solve of one right-hand side ended.

    Attributes:
        status: "converged", "iteration cap", "progress stalled", "negative curvature",
            "non-finite", "stagnated" (CG), or for direct methods "perturbed" (the
            factorisation added jitter), "inaccurate" (backward error above the working
            precision's bound) or "ill-conditioned" (solve in float64).
        iterations: CG iterations (0 for direct methods).
        relative_residual: ``|g - (F + lI)x| / |g|``, recomputed from x.
        objective: the quadratic model ``phi(x) = x^T(F + lI)x / 2 - g^T x``.
        method: the method that ran ("cg", "pcg", "woodbury", "cholesky", "kfac").
        path: the dense factorisation path ("cholesky", "jitter", "eigen") or None.
        reciprocal_condition: Cholesky/Woodbury condition estimate, else NaN.
    """

    status: str
    iterations: int
    relative_residual: float
    objective: float
    method: str
    path: str | None
    reciprocal_condition: float


class Curvature(_Owned):
    """A curvature representation: the operator ``F + damping I`` on the device.

    Vectors have length P = ``shape[0]``. ``apply`` takes k vectors as rows (k, P), the
    library's own layout; ``matvec``/``matmat`` follow SciPy (vectors as columns). Calls on
    one object are serialised; use one object per thread for parallel work.
    """

    _kind = "curvature"

    def __init__(self, handle: int) -> None:
        super().__init__(handle)
        kind, dtype, dimension = ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int64()
        L.call(L.lib().ng_curvature_info(handle, ctypes.byref(kind), ctypes.byref(dtype), ctypes.byref(dimension)))
        self._representation = _KINDS[kind.value]
        self._dtype = NAMES[dtype.value]
        self._dimension = dimension.value

    @property
    def dtype(self) -> np.dtype:
        """The working precision (that of the data it was built from)."""
        return self._dtype

    @property
    def shape(self) -> tuple[int, int]:
        """(P, P)."""
        return self._dimension, self._dimension

    @property
    def representation(self) -> str:
        """"implicit", "dense", "block_diagonal", "diagonal" or "kronecker"."""
        return self._representation

    def apply(self, vectors: NDArray, damping: float = 0.0) -> NDArray:
        """``(F + damping I) x`` for x of shape (P,) or each row of (k, P); same shape out.
        Zero-copy: ``vectors`` is uploaded from its own memory."""
        x = as_input(vectors, "vectors", dtype=self._dtype)
        if x.shape[-1] != self._dimension:
            raise ValueError(f"vectors: shape {x.shape}, the operator has dimension {self._dimension}")
        count = 1 if x.ndim == 1 else x.shape[0]
        y = np.empty_like(x)
        L.call(L.lib().ng_curvature_apply(self.handle, dtype_code(x), pointer(x), self._dimension, count,
                                          float(damping), pointer(y)))
        return y

    def matvec(self, x: NDArray, damping: float = 0.0) -> NDArray:
        """``(F + damping I) x`` for x of shape (P,) or (P, 1) (returned in the same shape)."""
        array = as_input(x, "x", dtype=self._dtype)
        if array.shape not in ((self._dimension,), (self._dimension, 1)):
            raise ValueError(f"x: shape {array.shape}, expected ({self._dimension},) or ({self._dimension}, 1)")
        return self.apply(array.reshape(self._dimension), damping).reshape(array.shape)

    def matmat(self, X: NDArray, damping: float = 0.0) -> NDArray:
        """``(F + damping I) X`` for X of shape (P, k), as SciPy's ``matmat``. A Fortran-ordered
        X is passed without a copy and the result is Fortran-ordered; a C-ordered X with
        k > 1 is transposed once."""
        rows = _columns(X, "X", self._dtype, self._dimension)
        return self.apply(rows, damping).T

    def diagonal(self) -> NDArray:
        """``diag F`` (without damping), P values."""
        out = np.empty(self._dimension, dtype=self._dtype)
        L.call(L.lib().ng_curvature_diagonal_values(self.handle, L.FLOAT32 if self._dtype == np.float32
                                                    else L.FLOAT64, pointer(out), self._dimension))
        return out

    def trace(self) -> float:
        """``tr F``, accumulated in float64."""
        out = ctypes.c_double()
        L.call(L.lib().ng_curvature_trace(self.handle, ctypes.byref(out)))
        return out.value

    def as_linear_operator(self, damping: float = 0.0) -> Any:
        """``F + damping I`` as a ``scipy.sparse.linalg.LinearOperator`` (curvlinops'
        convention), so SciPy's ``cg``, ``minres``, ``eigsh`` run on the library's products.
        The operator is symmetric (``rmatvec`` = ``matvec``). SciPy may hand over arrays of
        another dtype or layout; those are converted (one copy) to this operator's."""
        from scipy.sparse.linalg import LinearOperator

        dtype = self._dtype
        dimension = self._dimension

        def matvec(x: NDArray) -> NDArray:
            vector = np.ascontiguousarray(np.asarray(x).reshape(dimension), dtype=dtype)
            return self.apply(vector, damping)

        def matmat(X: NDArray) -> NDArray:
            rows = np.ascontiguousarray(np.asarray(X).T, dtype=dtype)
            return self.apply(rows, damping).T

        return LinearOperator(self.shape, matvec=matvec, rmatvec=matvec, matmat=matmat, rmatmat=matmat, dtype=dtype)

    def __repr__(self) -> str:
        state = f"P={self._dimension}, {self._dtype}" if self._handle else "released"
        return f"{type(self).__name__}({state})"


def _columns(X: NDArray, name: str, dtype: np.dtype, dimension: int) -> NDArray:
    """(P, k) columns as a (k, P) C-ordered array: a view for Fortran order, else one copy."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X, dtype=dtype)
    if X.ndim != 2 or X.shape[0] != dimension:
        raise ValueError(f"{name}: shape {X.shape}, expected ({dimension}, k)")
    if X.dtype != dtype:
        raise ValueError(f"{name}: dtype {X.dtype} differs from the operator's {dtype}")
    if X.flags.f_contiguous:
        return X.T
    if not X.flags.c_contiguous:
        raise ValueError(f"{name}: the array must be C- or Fortran-contiguous")
    return np.ascontiguousarray(X.T)


def _created(function: str, *arguments: Any) -> int:
    handle = ctypes.c_uint64()
    L.call(getattr(L.lib(), function)(*arguments, ctypes.byref(handle)))
    return handle.value


class ImplicitCurvature(Curvature):
    """F kept as its factor U, never formed: each product reads U once (fused kernel).
    Solvers: Woodbury (M <= P, damping > 0), CG, PCG.

    Args:
        factor: a :class:`Factor`, or U (M x P) to build one from.
        samples, weights, context: as for :class:`Factor` (when ``factor`` is an array).
    """

    def __init__(self, factor: Factor | NDArray, samples: int | None = None, weights: NDArray | None = None,
                 context: Context | None = None) -> None:
        source = _factor(factor, samples, weights, context)
        super().__init__(_created("ng_curvature_implicit", source.handle))


class DenseCurvature(Curvature):
    """F as a dense P x P matrix on the device (P up to ~16k). Solvers: Cholesky (float64
    LAPACK with jitter / eigen fallbacks), CG, PCG.

    Args:
        factor: a :class:`Factor`, or U (M x P); ``F = (1/N) U^T diag(w) U`` is accumulated.
        samples, weights, context: as for :class:`Factor`.
    """

    def __init__(self, factor: Factor | NDArray, samples: int | None = None, weights: NDArray | None = None,
                 context: Context | None = None) -> None:
        source = _factor(factor, samples, weights, context)
        super().__init__(_created("ng_curvature_dense", source.handle))

    @classmethod
    def from_matrix(cls, matrix: NDArray, context: Context | None = None) -> "DenseCurvature":
        """A dense curvature from a symmetric (P, P) matrix (uploaded without a host copy)."""
        context = context or default_context()
        f = as_input(matrix, "matrix", ndim=(2,))
        if f.shape[0] != f.shape[1]:
            raise ValueError(f"matrix: shape {f.shape} is not square")
        curvature = cls.__new__(cls)
        Curvature.__init__(curvature, _created("ng_curvature_dense_from_matrix", context.handle, dtype_code(f),
                                               pointer(f), f.shape[0]))
        return curvature


class BlockDiagonalCurvature(Curvature):
    """Dense blocks on the diagonal of F, one per group of consecutive parameters (per
    layer). Solvers: CG, PCG.

    Args:
        factor: a :class:`Factor`, or U (M x P).
        block_sizes: positive sizes summing to P.
        samples, weights, context: as for :class:`Factor`.
    """

    def __init__(self, factor: Factor | NDArray, block_sizes: Sequence[int], samples: int | None = None,
                 weights: NDArray | None = None, context: Context | None = None) -> None:
        source = _factor(factor, samples, weights, context)
        sizes = (ctypes.c_int64 * len(block_sizes))(*[int(size) for size in block_sizes])
        super().__init__(_created("ng_curvature_block_diagonal", source.handle, sizes, len(block_sizes)))


class DiagonalCurvature(Curvature):
    """diag F only: ``(F + lI) x = (d + l) x``. Solvers: CG, PCG (exact in one step).

    Args:
        factor: a :class:`Factor`, or U (M x P); ``d = (1/N) sum w u^2``.
        samples, weights, context: as for :class:`Factor`.
    """

    def __init__(self, factor: Factor | NDArray, samples: int | None = None, weights: NDArray | None = None,
                 context: Context | None = None) -> None:
        source = _factor(factor, samples, weights, context)
        super().__init__(_created("ng_curvature_diagonal", source.handle))

    @classmethod
    def from_values(cls, values: NDArray, context: Context | None = None) -> "DiagonalCurvature":
        """A diagonal curvature from its P diagonal values."""
        context = context or default_context()
        d = as_input(values, "values", ndim=(1,))
        curvature = cls.__new__(cls)
        Curvature.__init__(curvature, _created("ng_curvature_diagonal_from_values", context.handle, dtype_code(d),
                                               pointer(d), d.shape[0]))
        return curvature


class KroneckerCurvature(Curvature):
    """K-FAC: per dense layer ``F_l ~ G_l (x) A_l`` with ``A = (1/N) sum w a a^T`` (inputs,
    the bias 1 included) and ``G = (1/N) sum w g g^T`` (output gradients). Parameters are
    each layer's (outputs x inputs) matrix [W | b] flattened row-major, layers in order.
    ``apply`` uses the factored damping ``(G + sqrt(l)/pi I) (x) (A + pi sqrt(l) I)``.
    Solvers: K-FAC inverse, CG, PCG.

    Args:
        layers: per layer ``(activations, output_gradients)``: (N, inputs) and (N, outputs).
        weights: optional per-sample weights (N values).
        context: the device context.
    """

    def __init__(self, layers: Sequence[tuple[NDArray, NDArray]], weights: NDArray | None = None,
                 context: Context | None = None) -> None:
        context = context or default_context()
        table, arrays, samples, w, _ = _layer_table(layers, None, weights)
        super().__init__(_created("ng_curvature_kronecker", context.handle, dtype_code(arrays[0][0]), table,
                                  len(arrays), samples, pointer(w)))


def _layer_table(layers: Sequence[tuple[NDArray, NDArray]], dtype: np.dtype | None,
                 weights: NDArray | None) -> tuple[ctypes.Array, list, int, NDArray | None, np.dtype]:
    """Checked (activations, output_gradients) pairs as an ng_kfac_layer table (no copies),
    for K-FAC and EKFAC: the table, the arrays, the sample count, the weights and the dtype
    (``dtype`` when given, which every array must have, else layer 0's)."""
    if len(layers) == 0:
        raise ValueError("layers: is empty")
    arrays = []
    for index, layer in enumerate(layers):
        if len(layer) != 2:
            raise ValueError(f"layers[{index}]: expected (activations, output_gradients)")
        a = as_input(layer[0], f"layers[{index}].activations", dtype=dtype, ndim=(2,))
        g = as_input(layer[1], f"layers[{index}].output_gradients", dtype=a.dtype, ndim=(2,))
        arrays.append((a, g))
    dtype = arrays[0][0].dtype
    samples = arrays[0][0].shape[0]
    for index, (a, g) in enumerate(arrays):
        if a.dtype != dtype:
            raise ValueError(f"layers[{index}].activations: dtype {a.dtype}, layer 0 has {dtype}")
        if a.shape[0] != samples or g.shape[0] != samples:
            raise ValueError(f"layers[{index}]: {a.shape[0]} and {g.shape[0]} samples, layer 0 has {samples}")
    w = None if weights is None else as_input(weights, "weights", dtype=dtype, ndim=(1,))
    if w is not None and w.shape[0] != samples:
        raise ValueError(f"weights: {w.shape[0]} values for {samples} samples")
    table = (L.ng_kfac_layer * len(arrays))(
        *[L.ng_kfac_layer(pointer(a), pointer(g), a.shape[1], g.shape[1]) for a, g in arrays]
    )
    return table, arrays, samples, w, dtype


def solve(
    curvature: Curvature,
    g: NDArray,
    damping: float,
    method: str = "auto",
    tol: float = 1e-6,
    maxiter: int | None = None,
    preconditioner: str | None = None,
    jacobi_exponent: float = 0.75,
    progress_rule: bool = False,
) -> tuple[NDArray, list[ColumnReport]]:
    """Solves ``(F + damping I) x = g`` on the device.

    Args:
        curvature: any representation.
        g: shape (P,) or (P, k) (k right-hand sides as columns, as SciPy); same dtype as the
            curvature. A Fortran-ordered (P, k) is passed without a copy.
        damping: lambda, finite and >= 0.
        method: "auto" (Woodbury for implicit with M <= P and damping > 0, Cholesky for dense
            with P <= 4096, K-FAC for Kronecker, else CG), "cg", "pcg", "woodbury",
            "cholesky" or "kfac".
        tol: CG's relative-residual tolerance.
        maxiter: CG's iteration cap per column (None: P).
        preconditioner: None or "jacobi" (``(diag F + l)^-jacobi_exponent``; "pcg" uses it anyway).
        progress_rule: Martens' progress rule for CG.

    Returns:
        x in g's shape, and one :class:`ColumnReport` per right-hand side. A column that ends
        on negative curvature or a non-finite value says so in its status (no exception).
    """
    if not isinstance(curvature, Curvature):
        raise ValueError(f"curvature: expected a Curvature, got {type(curvature).__name__}")
    if method not in METHODS:
        raise ValueError(f"method: {method!r} is not one of {', '.join(sorted(METHODS))}")
    if preconditioner not in (None, "none", "jacobi"):
        raise ValueError(f"preconditioner: {preconditioner!r} is not None or 'jacobi'")
    dimension = curvature.shape[0]
    array = g if isinstance(g, np.ndarray) else np.asarray(g, dtype=curvature.dtype)
    if array.ndim == 1:
        rows = as_input(array, "g", dtype=curvature.dtype, ndim=(1,))
        if rows.shape[0] != dimension:
            raise ValueError(f"g: shape {rows.shape}, the curvature has dimension {dimension}")
        count = 1
    else:
        rows = _columns(array, "g", curvature.dtype, dimension)
        count = rows.shape[0]
    options = L.ng_solve_options()
    L.call(L.lib().ng_solve_options_init(ctypes.byref(options)))
    options.method = METHODS[method]
    options.tolerance = float(tol)
    options.max_iterations = 0 if maxiter is None else int(maxiter)
    options.preconditioner = 1 if preconditioner == "jacobi" else 0
    options.jacobi_exponent = float(jacobi_exponent)
    options.progress_rule = 1 if progress_rule else 0
    x = np.empty_like(rows, order="C")
    reports = (L.ng_column_report * count)()
    info = L.ng_solve_info()
    L.call(L.lib().ng_solve(curvature.handle, dtype_code(rows), pointer(rows), dimension, count, float(damping),
                            ctypes.byref(options), pointer(x), reports, count, ctypes.byref(info)))
    ran = METHOD_NAMES[info.method]
    path = PATHS.get(info.dense_path)
    columns = [
        ColumnReport(STATUSES[r.status], r.iterations, r.relative_residual, r.objective, ran, path,
                     info.reciprocal_condition)
        for r in reports
    ]
    return (x if array.ndim == 1 else x.T), columns
