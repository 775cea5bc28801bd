"""Torch models and helpers shared by the torch fidelity tests (test_torch_fidelity.py,
test_torch_ekfac.py); import it only after ``pytest.importorskip("torch")``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
DTYPES = [torch.float32, torch.float64]
SAMPLES = 13


def relative(value, reference) -> float:
    value = np.asarray(value, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    return float(np.linalg.norm(value - reference) / np.linalg.norm(reference))


def tanh_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 9), nn.Tanh(), nn.Linear(9, 7), nn.Tanh(), nn.Linear(7, 4))


def small_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 2, 2, bias=False),
                         nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 4))


def layer_norm_model() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 4))


MODELS = {"tanh_mlp": (tanh_mlp, (6,)), "cnn": (small_cnn, (2, 6, 6)), "layer_norm": (layer_norm_model, (6,))}


def problem(name: str, dtype: torch.dtype, seed: int = 0):
    """(model in dtype, its float64 twin, X, X64, y): one seed, the same parameters."""
    build, shape = MODELS[name]
    torch.manual_seed(seed)
    model64 = build().double()
    x64 = torch.randn(SAMPLES, *shape, dtype=torch.float64)
    y = torch.randint(0, 4, (SAMPLES,))
    model = build().to(dtype)
    model.load_state_dict(model64.state_dict())
    return model, model64, x64.to(dtype), x64, y


def kfac_parameters(model: nn.Module) -> list:
    """The parameters of the model's nn.Linear / nn.Conv2d layers (curvlinops' params)."""
    return [p for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)) for p in m.parameters()]


def dense(operator, dimension: int) -> np.ndarray:
    """A curvlinops operator as a float64 matrix."""
    return (operator @ torch.eye(dimension, dtype=torch.float64)).numpy()


def kfac_permutation(kfac) -> np.ndarray:
    """Index array p with ours = torch_order[p] (our [W | b] layout from curvlinops'), for a
    :class:`naturalgradient.torch.KFAC` or ``EKFAC``."""
    params = [t for layer in kfac.layers for t in layer.parameters]
    total = sum(p.numel() for p in params)
    index = torch.arange(total, dtype=torch.float64)
    pieces, start = [], 0
    for p in params:
        pieces.append(index[start:start + p.numel()].view(p.shape))
        start += p.numel()
    tensors = []
    for layer in kfac.layers:
        weight = pieces.pop(0)
        bias = pieces.pop(0) if layer.module.bias is not None else None
        tensors += [weight, bias]
    return kfac.flat(tensors).numpy().astype(np.int64)
