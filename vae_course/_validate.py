"""Argument checks shared by the public functions: errors name the argument, what it got and what it needs.

Every public function checks its arguments here, once, at the boundary; the inner functions it calls trust them
(their ``validate=False`` paths). The rules that hold across the package:

* **finite values**: a NaN or inf entry is refused with a ValueError naming the argument (log-weights may hold
  ``-inf``, a zero weight). Meta tensors have no values: the value checks skip them, the shape checks still run.
* **pixels** are floats in [0, 1] for a Bernoulli likelihood (:func:`pixels`), finite for a Gaussian one.
* **dtypes**: a model converts a floating input to its own parameter dtype (:func:`like`): float64 data into a
  float32 model is cast to float32, not refused, since ``torch.from_numpy`` gives float64 by default. Pure math
  functions keep the dtype they are given. An input on another device than the model is refused.
* **empty** batches and data sets are refused (:func:`non_empty`), rather than failing inside ``torch.cat`` or
  dividing by zero.
* **inside fit**: :func:`vae_course.train.fit` checks its whole data set once, then runs its steps inside
  :func:`data_checked`, where the per-batch value scans (``per_batch=True``) are skipped; the shape and dtype checks
  still run, and the loss of every step is checked for finiteness by the loop itself.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
from typing import Iterator

import torch
from torch import Tensor, nn

_CHECKED = contextvars.ContextVar("vae_course_data_checked", default=False)


@contextlib.contextmanager
def data_checked() -> Iterator[None]:
    """Within this block the per-batch value checks are skipped: the caller has checked the whole data set."""
    token = _CHECKED.set(True)
    try:
        yield
    finally:
        _CHECKED.reset(token)


def in_checked_data() -> bool:
    """True inside :func:`data_checked`: the batches come from a data set already checked, on the model's device, in
    its dtype, so a model can skip its per-batch device, dtype and value checks."""
    return _CHECKED.get()


def should_scan(value: Tensor, per_batch: bool) -> bool:
    """Whether the values of ``value`` should be scanned: not for meta tensors, nor inside :func:`data_checked` when
    ``per_batch`` (a batch of data that fit has checked, or a value computed from one)."""
    return value.device.type != "meta" and not (per_batch and _CHECKED.get())


def _range(value: Tensor) -> str:
    finite = value[torch.isfinite(value)]
    bad = int((~torch.isfinite(value)).sum())
    span = f"values in [{finite.min().item():.4g}, {finite.max().item():.4g}]" if finite.numel() else ""
    return (f"{bad} NaN or inf value(s)" + (" and " if span else "") if bad else "") + span


def tensor(name: str, value: object, *, min_dim: int = 0, finite: bool = True, per_batch: bool = False) -> Tensor:
    """Check that ``value`` is a floating-point tensor with at least ``min_dim`` dims and finite entries."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: got {type(value).__name__}; need a torch.Tensor (use torch.as_tensor(...))")
    if not value.is_floating_point():
        raise TypeError(f"{name}: got dtype {value.dtype}; need a floating dtype such as torch.float32 (call .float())")
    if value.dim() < min_dim:
        raise ValueError(f"{name}: got shape {tuple(value.shape)}; need at least {min_dim} dimension(s)")
    if finite and should_scan(value, per_batch) and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name}: got {bad} non-finite value(s) (NaN or inf); need finite values")
    return value


def finite_tensor(name: str, value: object, *, min_dim: int = 0, per_batch: bool = False) -> Tensor:
    """:func:`tensor` with finite entries (the default), spelled out."""
    return tensor(name, value, min_dim=min_dim, finite=True, per_batch=per_batch)


def log_values(name: str, value: object, *, min_dim: int = 0) -> Tensor:
    """A floating tensor of log-values (log-weights, log-densities): NaN and ``+inf`` refused, ``-inf`` (a zero) allowed."""
    value = tensor(name, value, min_dim=min_dim, finite=False)
    if should_scan(value, False) and bool((torch.isnan(value) | (value == math.inf)).any()):
        bad = int((torch.isnan(value) | (value == math.inf)).sum())
        raise ValueError(f"{name}: got {bad} NaN or +inf value(s); need log-values that are finite or -inf")
    return value


def pixels(name: str, value: object, *, low: float = 0.0, high: float = 1.0, per_batch: bool = False) -> Tensor:
    """A floating tensor whose values lie in ``[low, high]`` (pixel intensities: [0, 1]); NaN and inf are outside."""
    value = tensor(name, value, finite=False)
    if value.numel() and should_scan(value, per_batch) and not bool(((value >= low) & (value <= high)).all()):
        raise ValueError(f"{name}: got {_range(value)}; need finite values in [{low:g}, {high:g}]")
    return value


def probabilities(name: str, value: object, *, dim: int = -1, atol: float = 1e-5) -> Tensor:
    """A floating tensor of probabilities: finite, non-negative, summing to 1 along ``dim``."""
    value = tensor(name, value, min_dim=1)
    if should_scan(value, False):
        if bool((value < 0).any()):
            raise ValueError(f"{name}: got {_range(value)}; need probabilities >= 0 that sum to 1")
        total = value.sum(dim)
        if not bool(((total - 1).abs() <= atol).all()):
            raise ValueError(f"{name}: got sums in [{total.min().item():.6g}, {total.max().item():.6g}]; need probabilities "
                             "that sum to 1")
    return value


def positive_diagonal(name: str, value: Tensor) -> Tensor:
    """Square matrices ``(..., d, d)`` (Cholesky factors) whose diagonal entries are all > 0."""
    if value.dim() < 2 or value.shape[-1] != value.shape[-2]:
        raise ValueError(f"{name}: got shape {tuple(value.shape)}; need square (..., d, d) matrices")
    diag = torch.diagonal(value, dim1=-2, dim2=-1)
    if should_scan(value, False) and diag.numel() and not bool((diag > 0).all()):
        raise ValueError(f"{name}: got a diagonal entry of {diag.min().item():.4g}; need a lower-triangular factor with "
                         "a positive diagonal (Sigma = L L^T is then positive definite)")
    return value


def non_empty(name: str, value: Tensor, what: str = "row") -> Tensor:
    """A tensor with at least one entry along its first dimension."""
    if value.dim() == 0 or value.shape[0] == 0:
        raise ValueError(f"{name}: got shape {tuple(value.shape)}, which is empty; need at least one {what}")
    return value


def index_tensor(name: str, value: object, high: int, *, low: int = 0, per_batch: bool = False) -> Tensor:
    """An integer tensor whose entries lie in ``[low, high)`` (indices of codes, categories, levels)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: got {type(value).__name__}; need an integer torch.Tensor of indices")
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name}: got dtype {value.dtype}; need an integer dtype such as torch.long")
    if value.numel() and should_scan(value, per_batch):
        lo, hi = int(value.min()), int(value.max())
        if lo < low or hi >= high:
            raise ValueError(f"{name}: got indices in [{lo}, {hi}]; need indices in [{low}, {high})")
    return value


def number(name: str, value: object, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """A real number (not a bool, not NaN) in the given interval; returned as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or isinstance(value, Tensor):
        if isinstance(value, Tensor) and value.numel() == 1 and value.is_floating_point():
            value = value.item()
        else:
            raise TypeError(f"{name}: got {value!r} of type {type(value).__name__}; need a number")
    v = float(value)
    lo_ok = low is None or (v > low if low_open else v >= low)
    hi_ok = high is None or (v < high if high_open else v <= high)
    if math.isnan(v) or (finite and math.isinf(v)) or not (lo_ok and hi_ok):
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        need = ("a finite number" if finite else "a number") + (" " + " and ".join(parts) if parts else "")
        raise ValueError(f"{name}: got {value!r}; need {need}")
    return v


def positive_float(name: str, value: object, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (or >= 0 with ``allow_zero``): learning rates, norms, temperatures, weights."""
    return number(name, value, low=0.0, low_open=not allow_zero)


def seed(name: str, value: object) -> int:
    """An int seed in [0, 2**64) (what ``torch.Generator.manual_seed`` takes without wrapping)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: got {value!r} of type {type(value).__name__}; need an int >= 0")
    if not 0 <= int(value) < 2**64:
        raise ValueError(f"{name}: got {value}; need an int in [0, 2**64)")
    return int(value)


def existing_file(name: str, path: object):
    """A str or ``os.PathLike`` naming an existing file: TypeError for anything else (e.g. None), else FileNotFoundError."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: got {type(path).__name__}; need the path of an existing file (str or os.PathLike)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: got {os.fspath(path)!r}, which is not a file; need the path of an existing file")
    return path


def generator(name: str, value: object) -> torch.Generator | None:
    """None or a ``torch.Generator``."""
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"{name}: got {type(value).__name__}; need None or a torch.Generator")
    return value


def like(name: str, value: Tensor, reference: Tensor | None) -> Tensor:
    """The float policy of the models: ``value`` on ``reference``'s device (else a ValueError) and cast to its dtype."""
    if reference is None:
        return value
    if value.device != reference.device:
        raise ValueError(f"{name}: got a tensor on {value.device}; need one on {reference.device}, where the model's "
                         f"weights are (call .to({str(reference.device)!r}))")
    if value.dtype != reference.dtype and value.is_floating_point() and reference.is_floating_point():
        return value.to(reference.dtype)
    return value


def first_parameter(module: nn.Module) -> Tensor | None:
    """The module's first parameter (or buffer): where and in which dtype it computes; None if it has none."""
    for t in module.parameters():
        return t
    for t in module.buffers():
        return t
    return None


def nonfinite_weights(module: nn.Module) -> list[str]:
    """Names of the floating parameters and buffers of ``module`` that hold a NaN or inf (one device sync)."""
    named = [(k, v) for k, v in module.state_dict().items()
             if isinstance(v, Tensor) and v.is_floating_point() and v.device.type != "meta" and v.numel()]
    if not named:
        return []
    ok = torch.stack([torch.isfinite(v).all() for _, v in named])
    if bool(ok.all()):
        return []
    return [k for (k, _), good in zip(named, ok.tolist()) if not good]


def finite_weights(name: str, module: nn.Module) -> nn.Module:
    """A module whose weights are all finite, else a ValueError naming the first bad ones."""
    bad = nonfinite_weights(module)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValueError(f"{name}: got non-finite weights (NaN or inf) in {shown}; need a model with finite weights")
    return module


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
