"""Moving torch tensors to the NumPy arrays the library takes, and parameter layouts.

Internal. A contiguous CPU tensor becomes a NumPy array with ``Tensor.numpy()`` (a view, no
copy: the library then reads torch's memory). A CUDA tensor (or one on any other device)
is staged through the host: one device-to-host copy of its bytes (PCIe time, ~N*4 bytes /
~10 GB/s), and the result is copied back to the device once. Non-contiguous tensors are
made contiguous first (one copy).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

_DTYPES = (torch.float32, torch.float64)


def host_array(tensor: torch.Tensor, name: str) -> np.ndarray:
    """``tensor`` as a C-contiguous NumPy array: a view for a contiguous CPU float32/float64
    tensor, else one copy (device staging, contiguity)."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype not in _DTYPES:
        raise ValueError(f"{name}: dtype {tensor.dtype} is not supported; use torch.float32 or torch.float64")
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.to("cpu")
    if not t.is_contiguous():
        t = t.contiguous()
    return t.numpy()


def to_tensor(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A NumPy result as a tensor on ``like``'s device (a view on the CPU)."""
    out = torch.from_numpy(np.ascontiguousarray(array))
    return out if like.device.type == "cpu" else out.to(like.device)


def working_dtype(parameters: Sequence[torch.Tensor], name: str = "model") -> torch.dtype:
    """The one floating dtype of ``parameters`` (float32 or float64)."""
    dtypes = {p.dtype for p in parameters}
    if len(dtypes) != 1:
        raise ValueError(f"{name}: parameters have dtypes {sorted(map(str, dtypes))}; use one of float32, float64")
    dtype = dtypes.pop()
    if dtype not in _DTYPES:
        raise ValueError(f"{name}: parameter dtype {dtype} is not supported; use float32 or float64")
    return dtype


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == torch.float32 else np.dtype(np.float64)
