"""Checks that turn NumPy arrays into pointers for the C ABI, without copying.

Internal. Every check raises ``ValueError`` naming the argument, so a wrong dtype, order or
shape never reaches the library (which would also refuse it, with a status).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _library as L

DTYPES = {np.dtype(np.float32): L.FLOAT32, np.dtype(np.float64): L.FLOAT64}
NAMES = {L.FLOAT32: np.dtype(np.float32), L.FLOAT64: np.dtype(np.float64)}


def as_input(value: Any, name: str, dtype: np.dtype | None = None, ndim: tuple[int, ...] = (1, 2)) -> NDArray:
    """``value`` as a C-contiguous float32/float64 ndarray, never copied.

    Lists and other array-likes are converted once (that is their copy). An ndarray must
    already be C-contiguous, float32 or float64 (or ``dtype`` when given), finite is checked
    by the library.
    """
    if not isinstance(value, np.ndarray):
        if isinstance(value, (list, tuple)) or np.isscalar(value):
            value = np.asarray(value, dtype=dtype if dtype is not None else np.float64)
        else:
            raise ValueError(f"{name}: expected a NumPy array, got {type(value).__name__}")
    if value.dtype not in DTYPES:
        raise ValueError(f"{name}: dtype {value.dtype} is not supported; use float32 or float64")
    if dtype is not None and value.dtype != dtype:
        raise ValueError(f"{name}: dtype {value.dtype} differs from the object's {np.dtype(dtype)}")
    if value.ndim not in ndim:
        raise ValueError(f"{name}: expected {' or '.join(f'{n}-D' for n in ndim)}, got shape {value.shape}")
    if not value.flags.c_contiguous:
        raise ValueError(f"{name}: the array must be C-contiguous (np.ascontiguousarray makes a copy)")
    if value.size == 0:
        raise ValueError(f"{name}: the array is empty (shape {value.shape})")
    return value


def pointer(array: NDArray | None) -> int | None:
    """The data pointer of ``array`` (None for None)."""
    return None if array is None else array.ctypes.data


def dtype_code(array: NDArray) -> int:
    """The ng_dtype of ``array``."""
    return DTYPES[array.dtype]
