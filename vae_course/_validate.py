"""Argument checks shared by the public functions: errors name the argument, what it got and what it needs."""
from __future__ import annotations

import torch
from torch import Tensor


def tensor(name: str, value: object, *, min_dim: int = 0, finite: bool = True) -> Tensor:
    """Check that ``value`` is a floating-point tensor with at least ``min_dim`` dims and finite entries."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: got {type(value).__name__}; need a torch.Tensor (use torch.as_tensor(...))")
    if not value.is_floating_point():
        raise TypeError(f"{name}: got dtype {value.dtype}; need a floating dtype such as torch.float32 (call .float())")
    if value.dim() < min_dim:
        raise ValueError(f"{name}: got shape {tuple(value.shape)}; need at least {min_dim} dimension(s)")
    if finite and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name}: got {bad} non-finite value(s) (NaN or inf); need finite values")
    return value


def broadcast(**named: Tensor) -> torch.Size:
    """The broadcast shape of the named tensors, or a ValueError listing every shape."""
    try:
        return torch.broadcast_shapes(*(t.shape for t in named.values()))
    except RuntimeError:
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in named.items())
        raise ValueError(f"shapes do not broadcast: {shapes}; need shapes that broadcast, with the event dimension last") from None


def same_last_dim(**named: Tensor) -> int:
    dims = {k: v.shape[-1] for k, v in named.items()}
    if len(set(dims.values())) != 1:
        raise ValueError(f"last (event) dimensions differ: {dims}; need the same size d for all")
    return next(iter(dims.values()))
