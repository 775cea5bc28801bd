"""Bad input at the Python and C boundaries: a ValueError naming the argument, never a crash."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import naturalgradient as ng
from naturalgradient import _library


@pytest.fixture
def curvature(context, rng):
    return ng.ImplicitCurvature(rng.standard_normal((7, 33)), context=context)


def test_dtype(curvature, context):
    with pytest.raises(ValueError, match="x: dtype int64"):
        curvature.matvec(np.arange(33))
    with pytest.raises(ValueError, match="differs"):
        curvature.matvec(np.ones(33, dtype=np.float32))
    with pytest.raises(ValueError, match="matrix: dtype complex128"):
        ng.Factor(np.ones((2, 3), dtype=complex), context=context)


def test_order_and_contiguity(curvature, rng, context):
    strided = rng.standard_normal(66)[::2]
    with pytest.raises(ValueError, match="vectors: the array must be C-contiguous"):
        curvature.apply(strided)
    with pytest.raises(ValueError, match="matrix: the array must be C-contiguous"):
        ng.Factor(np.asfortranarray(rng.standard_normal((4, 5))), context=context)
    with pytest.raises(ValueError, match="X: the array must be C- or Fortran-contiguous"):
        curvature.matmat(rng.standard_normal((33, 6))[:, ::2])


def test_shape(curvature, rng):
    with pytest.raises(ValueError, match=r"x: shape \(32,\)"):
        curvature.matvec(np.ones(32))
    with pytest.raises(ValueError, match="X: shape"):
        curvature.matmat(np.ones((32, 2)))
    with pytest.raises(ValueError, match="g: shape"):
        ng.solve(curvature, np.ones(34), 0.1)
    with pytest.raises(ValueError, match="blockSizes"):
        ng.BlockDiagonalCurvature(rng.standard_normal((3, 10)), [3, 3])


def test_nan(curvature, context, rng):
    u = rng.standard_normal((4, 5))
    u[2, 3] = np.nan
    with pytest.raises(ValueError, match="'matrix' holds 1 non-finite value"):
        ng.Factor(u, context=context)
    x = np.ones(33)
    x[0] = np.inf
    with pytest.raises(ValueError, match="'x' holds 1 non-finite"):
        curvature.matvec(x)
    with pytest.raises(ValueError, match="'g' holds"):
        ng.solve(curvature, x, 0.1)


def test_negative_or_nan_damping(curvature):
    for damping in (-1e-3, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="damping"):
            curvature.matvec(np.ones(33), damping)
        with pytest.raises(ValueError, match="damping"):
            ng.solve(curvature, np.ones(33), damping)


def test_method_and_options(curvature):
    with pytest.raises(ValueError, match="cholesky does not fit ImplicitCurvature"):
        ng.solve(curvature, np.ones(33), 0.1, method="cholesky")
    with pytest.raises(ValueError, match="method"):
        ng.solve(curvature, np.ones(33), 0.1, method="newton")


def test_released_object(context, rng):
    curvature = ng.DenseCurvature(rng.standard_normal((3, 4)), context=context)
    handle = curvature.handle
    curvature.close()
    with pytest.raises(ValueError, match="released"):
        curvature.matvec(np.ones(4))
    curvature.close()  # idempotent
    # The C side detects the stale handle too (generation check), and a forged one.
    y = np.empty(4)
    x = np.ones(4)
    for stale in (handle, handle ^ (1 << 40), 987654321):
        status = _library.lib().ng_curvature_apply(stale, 2, x.ctypes.data, 4, 1, 0.0, y.ctypes.data)
        assert status == _library.ERROR_INVALID_HANDLE
        assert "handle" in _library.last_error()
    assert _library.lib().ng_release(handle) == _library.ERROR_INVALID_HANDLE


def test_objects_outlive_released_dependencies(rng):
    context = ng.Context("cpu")
    u = rng.standard_normal((5, 6))
    factor = ng.Factor(u, context=context)
    curvature = ng.ImplicitCurvature(factor)
    factor.close()
    context.close()
    x = rng.standard_normal(6)
    assert np.allclose(curvature.matvec(x), u.T @ (u @ x) / 5, rtol=1e-12)


def test_c_level_errors_name_the_argument(context):
    lib = _library.lib()
    out = ctypes.c_uint64()
    u = np.ones((2, 3))
    assert lib.ng_factor_create(context.handle, 9, u.ctypes.data, 2, 3, 2, None, ctypes.byref(out)) == \
        _library.ERROR_INVALID_DTYPE
    assert "dtype" in _library.last_error()
    assert lib.ng_factor_create(context.handle, 2, None, 2, 3, 2, None, ctypes.byref(out)) == \
        _library.ERROR_NULL_POINTER
    assert "matrix" in _library.last_error()
    assert lib.ng_factor_create(context.handle, 2, u.ctypes.data, 2, -3, 2, None, ctypes.byref(out)) == \
        _library.ERROR_INVALID_ARGUMENT
    assert "dimension" in _library.last_error()


def test_unknown_device():
    with pytest.raises(ng.DeviceError, match="no-such-device"):
        ng.Context("no-such-device")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_count_per_dtype(context, dtype):
    # The boundary counts non-finite values by their exponent bits: NaN (also a negative,
    # payload-carrying one), +inf and -inf count; the largest finite value, subnormals and -0
    # do not.
    info = np.finfo(dtype)
    u = np.ones((3, 7), dtype=dtype)
    u.flat[[0, 4, 9, 13]] = [np.nan, np.inf, -np.inf, -np.nan]
    u.flat[[1, 2, 3, 5]] = [info.max, -info.max, info.smallest_subnormal, -0.0]
    with pytest.raises(ValueError, match="'matrix' holds 4 non-finite values"):
        ng.Factor(u, context=context)
    u.flat[[0, 4, 9, 13]] = 1
    assert ng.Factor(u, context=context).shape == (3, 7)
