r"""Finite Gaussian mixtures and the threshold generator whose marginal is one (chapter 2, first section).

:class:`ThresholdGenerator` draws :math:`z\sim U[0,1]`, sets :math:`\mu = \mathbb 1[z\ge\theta]` and samples
:math:`x\sim\mathcal N(\mu, 1)`; its marginal is exactly :math:`\theta\,\mathcal N(x;0,1) + (1-\theta)\,\mathcal N(x;1,1)`
(:func:`threshold_density`), a two-component case of :func:`mixture_density`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .. import _validate as check
from ..utils import check_positive_int

__all__ = ["ThresholdGenerator", "threshold_density", "mixture_density", "mixture_log_density", "FunctionNet"]

LOG_2PI = math.log(2 * math.pi)


def mixture_log_density(x: Tensor, weights: Sequence[float] | Tensor, means: Sequence[float] | Tensor,
                        stds: Sequence[float] | Tensor) -> Tensor:
    r"""Log-density of a 1-D Gaussian mixture, elementwise in ``x``.

    .. math:: \log \sum_k \pi_k\, \mathcal N(x;\, m_k, s_k^2)
              = \operatorname{logsumexp}_k\Big(\log\pi_k - \tfrac12\log 2\pi - \log s_k
              - \frac{(x-m_k)^2}{2 s_k^2}\Big)

    Args:
        x: points, any shape (each entry is one point).
        weights: ``(K,)`` mixing weights, non-negative, summing to 1.
        means: ``(K,)`` component means; stds: ``(K,)`` component standard deviations (> 0).
    Returns:
        log-densities with the shape of ``x``.
    """
    check.tensor("x", x)
    w, m, s = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (weights, means, stds))
    if not (w.dim() == m.dim() == s.dim() == 1 and w.shape == m.shape == s.shape):
        raise ValueError(f"weights, means, stds: got shapes {tuple(w.shape)}, {tuple(m.shape)}, {tuple(s.shape)}; "
                         "need three 1-D sequences of the same length K")
    for name, t in (("weights", w), ("means", m), ("stds", s)):
        check.tensor(name, t)  # NaN or inf parameters would give NaN densities
    if bool((w < 0).any()) or abs(float(w.sum()) - 1.0) > 1e-5:
        raise ValueError(f"weights: got {w.tolist()}; need non-negative weights that sum to 1")
    if bool((s <= 0).any()):
        raise ValueError(f"stds: got {s.tolist()}; need standard deviations > 0")
    z = (x.unsqueeze(-1) - m) / s  # (..., K)
    log_comp = -0.5 * LOG_2PI - torch.log(s) - 0.5 * z.pow(2)  # (..., K)
    return torch.logsumexp(torch.log(w) + log_comp, dim=-1)  # log 0 = -inf drops a zero-weight component


def mixture_density(x: Tensor, weights: Sequence[float] | Tensor, means: Sequence[float] | Tensor,
                    stds: Sequence[float] | Tensor) -> Tensor:
    r"""Density :math:`\sum_k \pi_k\,\mathcal N(x; m_k, s_k^2)` of a 1-D Gaussian mixture
    (see :func:`mixture_log_density`)."""
    return mixture_log_density(x, weights, means, stds).exp()


def _check_theta(theta: float) -> float:
    if isinstance(theta, bool) or not isinstance(theta, (int, float, np.floating, np.integer)):
        raise TypeError(f"theta: got {theta!r} of type {type(theta).__name__}; need a float in [0, 1]")
    if not 0.0 <= float(theta) <= 1.0:
        raise ValueError(f"theta: got {theta}; need a threshold in [0, 1]")
    return float(theta)


def threshold_density(x: Tensor, theta: float) -> Tensor:
    r"""Exact marginal density of the threshold generator, elementwise in ``x``.

    .. math:: P_\theta(x) = \int_0^1 \mathcal N\big(x;\, \mathbb 1[z\ge\theta], 1\big)\,dz
              = \theta\,\mathcal N(x; 0, 1) + (1-\theta)\,\mathcal N(x; 1, 1)

    since :math:`\mu = 0` on :math:`[0, \theta)` (length :math:`\theta`) and :math:`\mu = 1` on
    :math:`[\theta, 1]` (length :math:`1-\theta`).
    """
    theta = _check_theta(theta)
    return mixture_density(x, [theta, 1.0 - theta], [0.0, 1.0], [1.0, 1.0])


@dataclass(frozen=True)
class ThresholdGenerator:
    r"""The threshold generator: :math:`z\sim U[0,1]`, :math:`\mu=G_\theta(z)=\mathbb 1[z\ge\theta]`,
    :math:`x\sim\mathcal N(\mu, 1)`. Samples and densities are 1-D: ``x`` has shape ``(n,)``."""

    theta: float = 0.5  # threshold in [0, 1]; P(mu = 0) = theta

    def __post_init__(self) -> None:
        _check_theta(self.theta)

    def mean(self, z: Tensor) -> Tensor:
        """:math:`G_\\theta(z) = 1[z \\ge \\theta]` (float, shape of ``z``)."""
        check.tensor("z", z)
        return (z >= self.theta).to(z.dtype)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``(n,)`` latents from U[0, 1]."""
        n = check_positive_int("n", n)
        return torch.rand(n, generator=generator)

    def sample(self, n: int, generator: torch.Generator | None = None, return_z: bool = False):
        """``(n,)`` samples by the three steps z -> mu = G(z) -> x ~ N(mu, 1); ``(x, z)`` if ``return_z``."""
        z = self.sample_latent(n, generator)  # (n,)
        x = self.mean(z) + torch.randn(z.shape, generator=generator)  # (n,)
        return (x, z) if return_z else x

    def density(self, x: Tensor) -> Tensor:
        """Exact :math:`P_\\theta(x)` (see :func:`threshold_density`), shape of ``x``."""
        return threshold_density(x, self.theta)

    def log_density(self, x: Tensor) -> Tensor:
        """Exact :math:`\\log P_\\theta(x)`, shape of ``x``."""
        return mixture_log_density(x, [self.theta, 1.0 - self.theta], [0.0, 1.0], [1.0, 1.0])


class FunctionNet(torch.nn.Module):
    """Wrap a fixed function ``z (..., m) -> mu (..., d)`` as the network of a ``ProbabilisticGenerator``
    (``net=FunctionNet(lambda z: 2 * torch.tanh(3 * z))``): a hand-set :math:`G` to look at before any training."""

    def __init__(self, fn):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn: got {type(fn).__name__}; need a function from z (..., m) to mu (..., d)")
        self.fn = fn

    def forward(self, z: Tensor) -> Tensor:
        return self.fn(z)
