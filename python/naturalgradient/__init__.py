"""naturalgradient: natural-gradient curvature, solvers and optimizer on OpenCL devices,
from NumPy and SciPy (ctypes over the library's C ABI, naturalgradient.h).

Quick start::

    import numpy as np
    import naturalgradient as ng

    U = np.random.default_rng(0).standard_normal((64, 1000))   # per-sample gradients
    F = ng.ImplicitCurvature(U)                                  # F = U^T U / 64, never formed
    g = U.mean(axis=0)
    x, reports = ng.solve(F, g, damping=1e-3)                    # Woodbury here
"""

from ._context import Context, default_context, devices, kernels
from ._library import ArgumentError, DeviceError, NaturalGradientError
from .curvature import (
    BlockDiagonalCurvature,
    ColumnReport,
    Curvature,
    DenseCurvature,
    DiagonalCurvature,
    Factor,
    ImplicitCurvature,
    KroneckerCurvature,
    solve,
)
from .ekfac import EKFACCurvature
from .metrics import Family, Measure, exact_fisher, family_output_count, formal_metric_factor, output_metric
from .optimizer import NaturalGradientOptimizer, NaturalGradientOptimizerOptions, StepReport


def version() -> str:
    """The version of the loaded native library."""
    from . import _library

    return _library.lib().ng_version().decode()


__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "BlockDiagonalCurvature",
    "ColumnReport",
    "Context",
    "Curvature",
    "DenseCurvature",
    "DeviceError",
    "DiagonalCurvature",
    "EKFACCurvature",
    "Factor",
    "Family",
    "ImplicitCurvature",
    "KroneckerCurvature",
    "Measure",
    "NaturalGradientError",
    "NaturalGradientOptimizer",
    "NaturalGradientOptimizerOptions",
    "StepReport",
    "default_context",
    "devices",
    "exact_fisher",
    "family_output_count",
    "formal_metric_factor",
    "kernels",
    "output_metric",
    "solve",
    "version",
]
