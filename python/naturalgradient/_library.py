"""Loading libNaturalGradientC and declaring the C ABI (naturalgradient.h) for ctypes.

Internal: the public API is in the other modules. Every C call goes through :func:`call`,
which turns a non-zero status into a Python exception carrying the library's message.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from ctypes import POINTER, c_char_p, c_double, c_int32, c_int64, c_size_t, c_uint64, c_void_p
from pathlib import Path

__all__ = ["lib", "call", "NaturalGradientError", "ArgumentError", "DeviceError", "library_path"]

ENVIRONMENT_VARIABLE = "NATURALGRADIENT_LIBRARY"
LIBRARY_NAME = "libNaturalGradientC.dylib" if sys.platform == "darwin" else "libNaturalGradientC.so"

# Status codes (naturalgradient.h).
OK = 0
ERROR_INVALID_ARGUMENT = 1
ERROR_NULL_POINTER = 2
ERROR_INVALID_HANDLE = 3
ERROR_INVALID_DTYPE = 4
ERROR_NON_FINITE = 5
ERROR_DEVICE = 6
ERROR_SOLVER = 7
ERROR_CALLBACK = 8
ERROR_INTERNAL = 9

FLOAT32 = 1
FLOAT64 = 2


class NaturalGradientError(Exception):
    """An error reported by the library; ``status`` is the C status code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ArgumentError(NaturalGradientError, ValueError):
    """Bad input: a shape, dtype, value, option or handle broke a rule (a ``ValueError``)."""


class DeviceError(NaturalGradientError, RuntimeError):
    """The OpenCL device or driver, or a host factorisation, failed."""


def library_path() -> Path:
    """The shared library to load: ``$NATURALGRADIENT_LIBRARY`` if set, else the copy
    installed inside this package."""
    override = os.environ.get(ENVIRONMENT_VARIABLE)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / LIBRARY_NAME


class ng_family(ctypes.Structure):
    _fields_ = [("kind", c_int32), ("parametrization", c_int32), ("dimension", c_int64)]


DIVERGENCE_CALLBACK = ctypes.CFUNCTYPE(c_double, POINTER(c_double), POINTER(c_double), c_int64, c_void_p)


class ng_measure(ctypes.Structure):
    _fields_ = [
        ("kind", c_int32),
        ("reserved", c_int32),
        ("f_second_derivative", c_double),
        ("divergence", DIVERGENCE_CALLBACK),
        ("user", c_void_p),
    ]


class ng_kfac_layer(ctypes.Structure):
    _fields_ = [
        ("activations", c_void_p),
        ("output_gradients", c_void_p),
        ("inputs", c_int64),
        ("outputs", c_int64),
    ]


class ng_solve_options(ctypes.Structure):
    _fields_ = [
        ("method", c_int32),
        ("preconditioner", c_int32),
        ("tolerance", c_double),
        ("max_iterations", c_int64),
        ("jacobi_exponent", c_double),
        ("progress_rule", c_int32),
        ("reserved", c_int32),
    ]


class ng_column_report(ctypes.Structure):
    _fields_ = [
        ("status", c_int32),
        ("reserved", c_int32),
        ("iterations", c_int64),
        ("relative_residual", c_double),
        ("objective", c_double),
    ]


class ng_solve_info(ctypes.Structure):
    _fields_ = [
        ("method", c_int32),
        ("dense_path", c_int32),
        ("dense_path_value", c_double),
        ("reciprocal_condition", c_double),
        ("seconds", c_double),
    ]


class ng_curvature_input(ctypes.Structure):
    _fields_ = [
        ("kind", c_int32),
        ("output_metric", c_int32),
        ("samples", c_int64),
        ("outputs", c_int64),
        ("data", c_void_p),
        ("values", c_void_p),
        ("sigma", c_double),
        ("family", ng_family),
        ("measure", ng_measure),
        ("layers", POINTER(ng_kfac_layer)),
        ("layer_count", c_int64),
        ("factor", c_uint64),
    ]


class ng_step_report(ctypes.Structure):
    _fields_ = [
        ("step", c_int64),
        ("damping", c_double),
        ("next_damping", c_double),
        ("step_size", c_double),
        ("update_norm", c_double),
        ("clipped", c_int32),
        ("method", c_int32),
        ("has_solve", c_int32),
        ("refreshed_curvature", c_int32),
        ("refreshed_inverse", c_int32),
        ("reserved", c_int32),
        ("solve", ng_column_report),
        ("predicted_change", c_double),
        ("actual_change", c_double),
        ("reduction_ratio", c_double),
    ]


LOSS_CALLBACK = ctypes.CFUNCTYPE(c_int32, c_void_p, c_int64, POINTER(c_double), c_void_p)

P = c_void_p
H = c_uint64
I64 = c_int64
PH = POINTER(c_uint64)
PSTR = POINTER(c_void_p)

# name: (argument types); every function returns ng_status unless listed in _RESTYPES.
_SIGNATURES = {
    "ng_last_error": [],
    "ng_version": [],
    "ng_abi_version": [],
    "ng_free": [P],
    "ng_release": [H],
    "ng_devices_json": [PSTR],
    "ng_context_create": [c_char_p, PH],
    "ng_context_device_json": [H, PSTR],
    "ng_kernels_json": [H, PSTR],
    "ng_factor_create": [H, c_int32, P, I64, I64, I64, P, PH],
    "ng_factor_exact_fisher": [H, c_int32, P, I64, I64, I64, c_int32, P, c_double, PH],
    "ng_factor_formal_metric": [H, c_int32, P, P, I64, I64, POINTER(ng_family), POINTER(ng_measure), PH],
    "ng_factor_info": [H, POINTER(c_int32), POINTER(I64), POINTER(I64), POINTER(I64)],
    "ng_factor_download": [H, c_int32, P, I64],
    "ng_curvature_implicit": [H, PH],
    "ng_curvature_dense": [H, PH],
    "ng_curvature_dense_from_matrix": [H, c_int32, P, I64, PH],
    "ng_curvature_block_diagonal": [H, POINTER(I64), I64, PH],
    "ng_curvature_diagonal": [H, PH],
    "ng_curvature_diagonal_from_values": [H, c_int32, P, I64, PH],
    "ng_curvature_kronecker": [H, c_int32, POINTER(ng_kfac_layer), I64, I64, P, PH],
    "ng_curvature_info": [H, POINTER(c_int32), POINTER(c_int32), POINTER(I64)],
    "ng_curvature_apply": [H, c_int32, P, I64, I64, c_double, P],
    "ng_curvature_diagonal_values": [H, c_int32, P, I64],
    "ng_curvature_trace": [H, POINTER(c_double)],
    "ng_solve_options_init": [POINTER(ng_solve_options)],
    "ng_solve": [
        H, c_int32, P, I64, I64, c_double, POINTER(ng_solve_options), P, POINTER(ng_column_report), I64,
        POINTER(ng_solve_info),
    ],
    "ng_family_output_count": [POINTER(ng_family), POINTER(I64)],
    "ng_output_metric": [POINTER(ng_family), POINTER(ng_measure), P, I64, c_int32, P, I64],
    "ng_optimizer_create": [H, c_int32, I64, c_char_p, PH],
    "ng_optimizer_info": [H, POINTER(I64), POINTER(c_double), POINTER(c_int32)],
    "ng_optimizer_update": [
        H, c_int32, P, P, I64, POINTER(ng_curvature_input), c_double, LOSS_CALLBACK, P, P, POINTER(ng_step_report),
    ],
    "ng_optimizer_step": [
        H, c_int32, P, P, I64, POINTER(ng_curvature_input), c_double, LOSS_CALLBACK, P, POINTER(ng_step_report),
    ],
    "ng_optimizer_state": [H, PSTR, POINTER(c_size_t)],
    "ng_optimizer_restore": [H, c_char_p, c_size_t],
}
_RESTYPES = {"ng_last_error": c_char_p, "ng_version": c_char_p, "ng_abi_version": c_int32, "ng_free": None}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None

ABI_VERSION = 1


def _load() -> ctypes.CDLL:
    path = library_path()
    if not path.exists():
        raise ImportError(
            f"naturalgradient: the shared library {path} is missing; reinstall with `pip install ./python` "
            f"from the repository (it builds it), or set {ENVIRONMENT_VARIABLE} to a built libNaturalGradientC"
        )
    library = ctypes.CDLL(str(path))
    for name, arguments in _SIGNATURES.items():
        function = getattr(library, name)
        function.argtypes = arguments
        function.restype = _RESTYPES.get(name, c_int32)
    if library.ng_abi_version() != ABI_VERSION:
        raise ImportError(
            f"naturalgradient: {path} has ABI version {library.ng_abi_version()}, this package needs {ABI_VERSION}"
        )
    return library


def lib() -> ctypes.CDLL:
    """The loaded library (loaded once, on first use)."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = _load()
    return _lib


def last_error() -> str:
    """This thread's last error message from the library."""
    message = lib().ng_last_error()
    return message.decode("utf-8", "replace") if message else ""


def call(status: int) -> None:
    """Raises the exception for a non-zero status (with the library's message)."""
    if status == OK:
        return
    message = last_error()
    if status in (ERROR_DEVICE, ERROR_SOLVER, ERROR_INTERNAL):
        raise DeviceError(message, status)
    raise ArgumentError(message, status)


def take_string(pointer: c_void_p) -> str:
    """The library-allocated NUL-terminated string at ``pointer``, freed after reading."""
    try:
        return ctypes.string_at(pointer.value).decode("utf-8") if pointer.value else ""
    finally:
        lib().ng_free(pointer)


def take_bytes(pointer: c_void_p, length: int) -> bytes:
    """The library-allocated block at ``pointer``, freed after reading."""
    try:
        return ctypes.string_at(pointer.value, length) if pointer.value else b""
    finally:
        lib().ng_free(pointer)
