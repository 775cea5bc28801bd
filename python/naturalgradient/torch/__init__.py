"""naturalgradient.torch: the library's curvature and solvers on torch models.

Import it explicitly (``import naturalgradient.torch as ngt``); ``import naturalgradient``
never imports torch. Needs torch (``pip install ./python[torch]``).

- :class:`KFAC`: forward/backward hooks on ``nn.Linear`` and ``nn.Conv2d`` feed the
  library's K-FAC curvature and optimizer; ``step()`` replaces each parameter's ``.grad``
  with the natural-gradient direction, so any torch optimizer takes the step.
- :class:`EKFAC`: the same hooks feeding the library's eigenvalue-corrected K-FAC
  (eigenbasis refresh and eigenvalue re-estimation periods, EMA); ``step()`` writes the
  damped EKFAC direction into ``.grad``.
- :class:`NaturalGradient` / :class:`GGN`: the exact Fisher / GGN, or the metric of any
  similarity measure, from per-sample output Jacobians (``torch.func``), for any layer.
- :class:`EmpiricalFisher`, :class:`MonteCarloFisher`, :func:`per_sample_gradients`.

Tensors: a contiguous CPU float32/float64 tensor reaches the library without a copy
(``Tensor.numpy()`` views its memory); CUDA tensors are staged through the host, one copy
each way (the device's PCIe transfer time, about 0.1 ms per MB).
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        "naturalgradient.torch needs PyTorch: pip install './python[torch]' (or scripts/setup-python.sh)"
    ) from error

from .fisher import GGN, EmpiricalFisher, MonteCarloFisher, NaturalGradient, per_sample_gradients
from .ekfac import EKFAC
from .kfac import KFAC, KFACLayerInfo

__all__ = ["KFAC", "KFACLayerInfo", "EKFAC", "NaturalGradient", "GGN", "EmpiricalFisher", "MonteCarloFisher",
           "per_sample_gradients"]
