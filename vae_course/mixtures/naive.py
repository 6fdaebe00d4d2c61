r"""The naive Monte-Carlo estimate of the marginal, and how it collapses as the latent dimension grows (chapter 2).

:math:`\hat P(x) = \frac1K\sum_k p(x\mid z_k)`, :math:`z_k\sim P(z)`, is unbiased, but when the posterior
occupies a tiny part of the prior almost every draw misses it. Measured on the linear-Gaussian model, whose
:math:`P(x)` is exact (:meth:`vae_course.linear_gaussian.LinearGaussianModel.orthonormal`):
:func:`naive_marginal_estimate`, :func:`effective_sample_size` (Owen, 2013, ch. 9), :func:`naive_estimator_study`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .. import _validate as check
from ..distributions import log_mean_exp, log_normal_full
from ..linear_gaussian import LinearGaussianModel
from ..utils import check_positive_int, make_generator
from .marginal import _as_points, log_likelihood_matrix

__all__ = [
    "naive_relative_variance", "NaiveEstimate", "naive_marginal_estimate", "naive_marginal_repeats",
    "effective_sample_size", "relative_error", "NaiveStudy", "naive_estimator_study",
]


def naive_relative_variance(model: LinearGaussianModel, x: Tensor) -> Tensor:
    r"""Exact relative variance of one naive term, :math:`\mathrm{Var}[p(x\mid z)]/P(x)^2`, :math:`z\sim P(z)`.

    With :math:`K` terms, :math:`\mathrm{Var}[\hat P(x)]/P(x)^2` is this divided by :math:`K`. For the
    linear-Gaussian model,
    :math:`\mathcal N(x;\mu,\sigma^2 I_d)^2 = (4\pi\sigma^2)^{-d/2}\,\mathcal N(x;\mu,\tfrac{\sigma^2}{2}I_d)`, so

    .. math:: \frac{\mathbb E_z[p(x\mid z)^2]}{P(x)^2} = (4\pi\sigma^2)^{-d/2}\,
              \frac{\mathcal N(x;\, b,\, WW^\top + \tfrac{\sigma^2}{2}I)}{\mathcal N(x;\, b,\, WW^\top + \sigma^2 I)^2},

    and the relative variance is that minus 1. ``x`` ``(N, d)`` -> ``(N,)``.
    """
    x = _as_points(x, model.x_dim).to(model.W.dtype)
    d, s2 = model.x_dim, model.sigma**2
    cov_half = model.W @ model.W.T + 0.5 * s2 * torch.eye(d, dtype=model.W.dtype)
    log_ratio = (-0.5 * d * math.log(4 * math.pi * s2) + log_normal_full(x, model.b, cov_half)
                 - 2 * model.log_marginal(x))
    return torch.expm1(log_ratio)


def effective_sample_size(log_w: Tensor) -> Tensor:
    r"""Kish's effective sample size of importance weights given by their logs (last dimension):

    .. math:: \mathrm{ESS} = \frac{\big(\sum_k w_k\big)^2}{\sum_k w_k^2} = \frac{1}{\sum_k \bar w_k^2},
              \quad \bar w_k = \frac{w_k}{\sum_j w_j},
              \qquad \log\mathrm{ESS} = 2\operatorname{logsumexp}(\log w) - \operatorname{logsumexp}(2\log w).

    Between 1 (one weight dominates) and K (all equal). Scale-free: adding a constant to every
    log-weight leaves it unchanged, so unnormalised log-weights are fine, and no ``exp`` can overflow.

    Args:
        log_w: ``(..., K)`` log-weights. Returns: ``(...)``.
    """
    check.log_values("log_w", log_w, min_dim=1)  # -inf (a zero weight) is allowed, NaN and +inf are not
    return torch.exp(2 * torch.logsumexp(log_w, -1) - torch.logsumexp(2 * log_w, -1))


def relative_error(log_p_hat: Tensor, log_p: Tensor) -> Tensor:
    r""":math:`|\hat P/P - 1| = |e^{\log\hat P - \log P} - 1|`, elementwise; ``log_p_hat`` may be ``-inf`` (an estimate of 0),
    ``log_p`` must be finite; the two broadcast."""
    check.log_values("log_p_hat", log_p_hat)
    check.tensor("log_p", log_p)
    check.broadcast(log_p_hat=log_p_hat, log_p=log_p)
    return torch.expm1(log_p_hat - log_p).abs()


class NaiveEstimate(NamedTuple):
    """Result of :func:`naive_marginal_estimate` for N points."""

    log_p: Tensor  # (N,) log of the estimate P_hat(x) = mean_k p(x | z_k)
    ess: Tensor    # (N,) effective sample size of the weights p(x | z_k), in [1, K]
    max_weight: Tensor  # (N,) largest normalised weight: the share of P_hat owed to one sample


def naive_marginal_estimate(model, x: Tensor, n_samples: int, *, generator: torch.Generator | None = None,
                            batch_size: int = 4096) -> NaiveEstimate:
    r"""The naive Monte-Carlo estimate :math:`\hat P(x) = \frac1K\sum_{k=1}^K p(x\mid z_k)`, :math:`z_k\sim P(z)`,
    with its diagnostics, in chunks of ``batch_size`` latents (running log-sum-exps, so any K fits in memory).

    :math:`\hat P(x)` is unbiased, but when the posterior :math:`p(z\mid x)` occupies a tiny part of the
    prior, almost every :math:`z_k` misses it: a few weights carry the sum, the ESS falls towards 1 and the
    relative error explodes.

    Args:
        model: has ``z_dim`` and what :func:`log_likelihood_matrix` needs.
        x: ``(N, d)``; n_samples: K.
    """
    n_samples = check_positive_int("n_samples", n_samples)
    batch_size = check_positive_int("batch_size", batch_size)
    x = _as_points(x)
    lse1 = torch.full(x.shape[:1], -math.inf, dtype=x.dtype)  # logsumexp of log w, (N,)
    lse2 = lse1.clone()  # logsumexp of 2 log w
    top = lse1.clone()   # max log w
    done = 0
    while done < n_samples:
        k = min(batch_size, n_samples - done)
        z = torch.randn(k, model.z_dim, generator=generator).to(x)  # (k, m)
        lw = log_likelihood_matrix(model, x, z)  # (N, k)
        lse1 = torch.logaddexp(lse1, torch.logsumexp(lw, -1))
        lse2 = torch.logaddexp(lse2, torch.logsumexp(2 * lw, -1))
        top = torch.maximum(top, lw.max(-1).values)
        done += k
    return NaiveEstimate(lse1 - math.log(n_samples), torch.exp(2 * lse1 - lse2), torch.exp(top - lse1))


def naive_marginal_repeats(model, x: Tensor, n_samples: int, repeats: int, *,
                           generator: torch.Generator | None = None) -> Tensor:
    r"""``repeats`` independent naive estimates :math:`\log\hat P(x)`, each from its own ``n_samples`` prior draws.

    Their spread shows the estimator's variance; the mean of :math:`\hat P/P` tends to 1 (unbiased), the
    mean of :math:`\log\hat P - \log P` stays below 0 (Jensen). ``x`` ``(N, d)`` -> ``(N, repeats)``;
    memory ``N * repeats * n_samples``.
    """
    n_samples, repeats = check_positive_int("n_samples", n_samples), check_positive_int("repeats", repeats)
    x = _as_points(x)
    z = torch.randn(repeats * n_samples, model.z_dim, generator=generator).to(x)  # (R*K, m)
    lw = log_likelihood_matrix(model, x, z).reshape(x.shape[0], repeats, n_samples)  # (N, R, K)
    return log_mean_exp(lw, dim=-1, validate=False)  # (N, R)


class NaiveStudy(NamedTuple):
    """Naive-estimator accuracy for one (latent dimension, K) pair, over N data points drawn from the model."""

    z_dim: int
    n_samples: int
    rel_error: float       # median over points of |P_hat / P - 1|
    ess: float             # median ESS (between 1 and K)
    log_gap: float         # mean of log P_hat - log P (negative: Jensen)
    k_needed: float        # median K for a 10% relative standard error: Var[p(x|z)] / P(x)^2 / 0.1^2


def naive_estimator_study(z_dim: int, n_samples: int, *, n_points: int = 100, sigma: float = 0.5,
                          seed: int = 0) -> NaiveStudy:
    r"""Measure the naive estimator on :meth:`LinearGaussianModel.orthonormal
    <vae_course.linear_gaussian.LinearGaussianModel.orthonormal>` (``x_dim = z_dim``, noise ``sigma``) at
    ``n_points`` points drawn from the model itself, against the exact :math:`\log P(x)`."""
    model = LinearGaussianModel.orthonormal(z_dim, sigma=sigma, seed=seed)
    g = make_generator(seed + 1)
    x = model.sample(check_positive_int("n_points", n_points), generator=g)  # (N, d)
    est = naive_marginal_estimate(model, x, n_samples, generator=g)
    log_p = model.log_marginal(x)  # (N,)
    return NaiveStudy(z_dim, n_samples, float(relative_error(est.log_p, log_p).median()), float(est.ess.median()),
                      float((est.log_p - log_p).mean()), float(naive_relative_variance(model, x).median() / 0.1**2))
