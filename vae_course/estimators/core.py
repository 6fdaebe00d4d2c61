r"""What every gradient estimator of chapter 4 shares: the named gradients it returns and its argument checks.

Every estimator takes ``F``: a function from ``(n, d)`` samples to ``(n,)`` values that acts on each row
separately (:func:`_apply_F` enforces it), and returns a :class:`GaussianGradient` (for
:math:`\mathcal N(\mu, \mathrm{diag}\,\sigma^2)`) or a :class:`CategoricalGradient` (for the logits of a
categorical), averaged over the ``n`` samples or, with ``per_sample=True``, one per sample.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Union

import torch
from torch import Tensor

from .. import _validate as check
from ..utils import check_positive_int

__all__ = ["GaussianGradient", "CategoricalGradient"]

Baseline = Union[None, str, float, Tensor]


class GaussianGradient(NamedTuple):
    """A gradient w.r.t. the parameters of :math:`\\mathcal N(\\mu, \\mathrm{diag}(e^{\\log\\sigma^2}))`."""

    mu: Tensor      # (d,) averaged, or (n, d) per sample
    logvar: Tensor  # same shape as mu


class CategoricalGradient(NamedTuple):
    """A gradient w.r.t. the logits :math:`\\theta` of :math:`\\mathrm{Cat}(\\mathrm{softmax}(\\theta))`."""

    logits: Tensor  # (K,) averaged, or (n, K) per sample


Gradient = Union[GaussianGradient, CategoricalGradient]


# ---------------------------------------------------------------- argument checks shared by the estimators
def _check_gaussian(mu: Tensor, logvar: Tensor) -> int:
    check.tensor("mu", mu, min_dim=1)
    check.tensor("logvar", logvar, min_dim=1)
    if mu.dim() != 1 or logvar.shape != mu.shape:
        raise ValueError(f"mu, logvar: got shapes {tuple(mu.shape)} and {tuple(logvar.shape)}; need two vectors of the same shape (d,)")
    return mu.shape[0]


def _noise(n_samples: int | None, noise: Tensor | None, name: str, width: int, draw: Callable[[int], Tensor]) -> Tensor:
    """The given noise (checked against n_samples) or ``draw(n)``."""
    if noise is None:
        if n_samples is None:
            raise ValueError(f"n_samples: got None and no {name}; give one of them")
        return draw(check_positive_int("n_samples", n_samples))
    check.tensor(name, noise)
    if noise.dim() != 2 or noise.shape[1] != width:
        raise ValueError(f"{name}: got shape {tuple(noise.shape)}; need (n_samples, {width})")
    if n_samples is not None and check_positive_int("n_samples", n_samples) != noise.shape[0]:
        raise ValueError(f"n_samples: got {n_samples} but {name} has {noise.shape[0]} rows; they must agree")
    return noise


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature: got {temperature!r}; need a number > 0")
    return float(temperature)


def _apply_F(F: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """``F`` on samples ``(..., n, d)`` -> ``(..., n)``: F itself only ever sees a 2-D batch ``(m, d)``."""
    if not callable(F):
        raise TypeError(f"F: got {type(F).__name__}; need a function from (n, d) samples to (n,) values")
    flat = z.reshape(-1, z.shape[-1])                                  # (m, d)
    f = F(flat)
    if not isinstance(f, Tensor) or tuple(f.shape) != (flat.shape[0],):
        got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
        raise ValueError(f"F: returned {got} for samples of shape {tuple(flat.shape)}; need one value per sample, shape ({flat.shape[0]},)")
    return f.reshape(z.shape[:-1])


def _centre(f: Tensor, baseline: Baseline) -> Tensor:
    r"""``f - b`` along the last (sample) axis for a constant, batch-mean or leave-one-out baseline.

    The batch mean contains :math:`F(z_i)` itself, so :math:`\mathbb E[(F_i-\bar F)\,s_i]=(1-\tfrac1n)\nabla`
    (biased). The leave-one-out mean :math:`b_i=\frac{1}{n-1}\sum_{j\ne i}F_j` is independent of
    :math:`z_i` (unbiased) and equals the batch-mean version times :math:`n/(n-1)`.
    """
    n = f.shape[-1]
    if baseline is None:
        return f
    if isinstance(baseline, str):
        if baseline == "mean":
            return f - f.mean(-1, keepdim=True)
        if baseline == "loo":
            if n < 2:
                raise ValueError("baseline: 'loo' needs n_samples >= 2 (the other samples form the baseline)")
            return f - (f.sum(-1, keepdim=True) - f) / (n - 1)
        raise ValueError(f"baseline: got {baseline!r}; need None, 'mean', 'loo' or a number")
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float, Tensor)):
        raise TypeError(f"baseline: got {type(baseline).__name__}; need None, 'mean', 'loo' or a number")
    b = torch.as_tensor(baseline, dtype=f.dtype)
    if b.numel() != 1:
        raise ValueError(f"baseline: got a tensor of shape {tuple(b.shape)}; need a single number")
    return f - b.reshape(())


def _reduce(grad, per_sample: bool):
    """Average the per-sample terms over the sample axis (-2), unless they are wanted one by one."""
    return grad if per_sample else type(grad)(*(g.mean(-2) for g in grad))
