r"""The KL term split in three: index-code mutual information, total correlation, dimension-wise KL (chapter 6).

Averaged over the data, the rate of a VAE with a factorised prior :math:`p(z) = \prod_j p(z_j)` splits exactly
(Chen et al., 2018, "Isolating sources of disentanglement", eq. 2):

.. math:: \mathbb E_{p(n)}\mathrm{KL}\big(q(z\mid n)\,\|\,p(z)\big)
          = \underbrace{I_q(z; n)}_{\text{index-code MI}}
          + \underbrace{\mathrm{KL}\Big(q(z)\,\Big\|\,\prod_j q(z_j)\Big)}_{\text{total correlation}}
          + \underbrace{\sum_j \mathrm{KL}\big(q(z_j)\,\|\,p(z_j)\big)}_{\text{dimension-wise KL}}

with :math:`n` the index of an image drawn uniformly from the :math:`N` of the data set, :math:`q(z) =
\frac1N\sum_n q(z\mid n)` the **aggregate posterior** (a finite mixture of Gaussians) and :math:`q(z_j)` its
marginals. Per draw :math:`z\sim q(z\mid n)` the three log-ratios telescope,

.. math:: \log\frac{q(z\mid n)}{p(z)} = \log\frac{q(z\mid n)}{q(z)} + \log\frac{q(z)}{\prod_j q(z_j)}
          + \sum_j\log\frac{q(z_j)}{p(z_j)},

so Monte-Carlo estimates from the same draws sum exactly to the Monte-Carlo rate. The total correlation is 0
exactly when the aggregate posterior factorises; penalising it alone is the **beta-TCVAE** (the loss option
``tc`` of every VAE, :func:`vae_course.objectives.beta_objective`), while the beta-VAE's weight on the whole KL
also squeezes the mutual information between image and code, which the reconstruction needs.

Two estimators of the densities :math:`q(z)` and :math:`q(z_j)` at the draws:

* :func:`kl_decomposition`: **exact sums** over a whole (small) data set, :math:`N` terms for every draw, for
  evaluating a trained model on the sprites grid;
* :func:`minibatch_kl_terms` / :func:`minibatch_tc`: from one training batch of :math:`M` images, with the
  weights of a stratified estimate (in the spirit of Chen et al.'s minibatch stratified sampling): the draw's own
  posterior counts :math:`1/N`, each of the :math:`M-1` others :math:`(N-1)/(N(M-1))`, which makes
  :math:`\hat q(z)` unbiased for :math:`q(z)` when the others are a uniform sample of the rest of the data.
  With ``dataset_size=None`` the batch is the data set (weights :math:`1/M`), and the estimate is exact for
  the batch's own aggregate posterior. The weights are constants, so they change the value, not the gradients'
  direction within a batch.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ._validate import tensor as _tensor
from .distributions import kl_normal_std, reparameterize
from .utils import check_positive_int

__all__ = ["log_density_matrix", "minibatch_log_weights", "minibatch_kl_terms", "minibatch_tc", "KLTerms",
           "aggregate_log_density", "KLDecomposition", "kl_decomposition"]

_LOG_2PI = math.log(2 * math.pi)
_CHUNK = 2**23  # elements of the (rows, N, m) density block computed at once (32 MB of float32)


def log_density_matrix(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    r"""Every draw against every posterior, per coordinate: :math:`\log\mathcal N(z_{id};\,\mu_{jd}, e^{\ell_{jd}})`.

    ``z`` ``(M, m)``, ``mu`` and ``logvar`` ``(N, m)`` -> ``(M, N, m)``. Summed over the last axis it is
    :math:`\log q(z_i\mid n_j)` of a diagonal Gaussian posterior."""
    diff = z.unsqueeze(1) - mu.unsqueeze(0)  # (M, N, m)
    return -0.5 * (_LOG_2PI + logvar.unsqueeze(0) + diff.pow(2) * torch.exp(-logvar).unsqueeze(0))


def _check_batch(z: Tensor, mu: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    mu = _tensor("mu", mu, min_dim=2)
    logvar = _tensor("logvar", logvar, min_dim=2)
    z = _tensor("z", z, min_dim=2)
    if mu.dim() != 2 or logvar.shape != mu.shape:
        raise ValueError(f"mu, logvar: got shapes {tuple(mu.shape)} and {tuple(logvar.shape)}; need the same (B, m)")
    if z.shape[-2:] != mu.shape or z.dim() > 3:
        raise ValueError(f"z: got shape {tuple(z.shape)}; need (B, m) = {tuple(mu.shape)} or (S, B, m), one draw "
                         "per posterior")
    return z, mu, logvar


def minibatch_log_weights(batch_size: int, dataset_size: int | None = None, *, device=None,
                          dtype: torch.dtype = torch.float32) -> Tensor:
    r"""``(M, M)`` log-weights :math:`\log w_{ij}` of posterior :math:`j` in the estimate of :math:`q(z_i)`:
    :math:`1/N` on the diagonal (the draw's own posterior), :math:`(N-1)/(N(M-1))` elsewhere; every row sums to 1.
    ``dataset_size=None`` means :math:`N = M` (all weights :math:`1/M`)."""
    m = check_positive_int("batch_size", batch_size)
    n = m if dataset_size is None else check_positive_int("dataset_size", dataset_size)
    if n < m:
        raise ValueError(f"dataset_size: got {n}; need at least the batch size {m}")
    if m == 1:
        return torch.zeros(1, 1, device=device, dtype=dtype)  # a single draw: its own posterior is the estimate
    off = math.log((n - 1) / (n * (m - 1)))
    w = torch.full((m, m), off, device=device, dtype=dtype)
    w.fill_diagonal_(-math.log(n))
    return w


class KLTerms(NamedTuple):
    r"""Per-example terms ``(B,)`` in nats, from one draw each: ``mi`` :math:`\log q(z\mid n) - \log\hat q(z)`,
    ``tc`` :math:`\log\hat q(z) - \sum_j\log\hat q(z_j)`, ``dim_kl`` :math:`\sum_j\log\hat q(z_j) - \log p(z_j)`;
    they sum to :math:`\log q(z\mid n) - \log p(z)`, the one-draw estimate of the KL to :math:`\mathcal N(0, I)`."""

    mi: Tensor
    tc: Tensor
    dim_kl: Tensor


def _minibatch_logs(z: Tensor, mu: Tensor, logvar: Tensor, dataset_size: int | None):
    """``(log q(z|n) (B,), log q^(z) (B,), log q^(z_j) (B, m))`` for one draw per posterior ``z`` ``(B, m)``."""
    logw = minibatch_log_weights(len(mu), dataset_size, device=mu.device, dtype=mu.dtype)  # (B, B)
    dens = log_density_matrix(z, mu, logvar)  # (B, B, m)
    log_qz = torch.logsumexp(logw + dens.sum(-1), dim=1)  # (B,): log sum_j w_ij q(z_i | n_j)
    log_qzj = torch.logsumexp(logw.unsqueeze(-1) + dens, dim=1)  # (B, m): the same, one coordinate at a time
    return dens.diagonal(dim1=0, dim2=1).sum(0), log_qz, log_qzj


def minibatch_kl_terms(z: Tensor, mu: Tensor, logvar: Tensor, *, dataset_size: int | None = None) -> KLTerms:
    r"""The three terms of the KL split per example, estimated from one batch (module doc), prior :math:`\mathcal N(0, I)`.

    Args:
        z: ``(B, m)`` one draw of each :math:`q(z\mid x_b)`, or ``(S, B, m)`` (the terms are averaged over S).
        mu, logvar: ``(B, m)`` the batch's posteriors.
        dataset_size: :math:`N`, the size of the data set the batch was drawn from; None: the batch itself.
    Returns: :class:`KLTerms` of shape ``(B,)``.
    """
    z, mu, logvar = _check_batch(z, mu, logvar)
    draws = z if z.dim() == 3 else z.unsqueeze(0)
    parts = []
    for zs in draws:
        log_q, log_qz, log_qzj = _minibatch_logs(zs, mu, logvar, dataset_size)
        log_pj = -0.5 * (_LOG_2PI + zs.pow(2))  # (B, m): log N(z_j; 0, 1)
        parts.append(torch.stack([log_q - log_qz, log_qz - log_qzj.sum(-1), (log_qzj - log_pj).sum(-1)]))
    mi, tc, dim_kl = torch.stack(parts).mean(0)
    return KLTerms(mi, tc, dim_kl)


def minibatch_tc(z: Tensor, mu: Tensor, logvar: Tensor, *, dataset_size: int | None = None,
                 validate: bool = True) -> Tensor:
    r"""Per-example total correlation :math:`\log\hat q(z) - \sum_j\log\hat q(z_j)` ``(B,)`` estimated from one batch
    (module doc); it needs no prior. Shapes as :func:`minibatch_kl_terms`. The penalty of the beta-TCVAE.
    ``validate=False`` skips the checks of the inputs (the training loss, which has checked them upstream)."""
    if validate:
        z, mu, logvar = _check_batch(z, mu, logvar)
    draws = z if z.dim() == 3 else z.unsqueeze(0)
    out = []
    for zs in draws:
        _, log_qz, log_qzj = _minibatch_logs(zs, mu, logvar, dataset_size)
        out.append(log_qz - log_qzj.sum(-1))
    return torch.stack(out).mean(0)


# ---------------------------------------------------------------- exact sums over a finite data set
def aggregate_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
    r"""The aggregate posterior of a finite data set at points ``z`` ``(M, m)``: :math:`\log q(z) = \log\frac1N\sum_n
    q(z\mid n)` ``(M,)`` and its marginals :math:`\log q(z_j)` ``(M, m)``, exact sums over the ``N`` posteriors
    ``mu``, ``logvar`` ``(N, m)`` (computed in blocks of rows)."""
    n, m = mu.shape
    rows = max(1, _CHUNK // (n * m))
    log_qz, log_qzj = [], []
    for i in range(0, len(z), rows):
        dens = log_density_matrix(z[i:i + rows], mu, logvar)  # (rows, N, m)
        log_qz.append(torch.logsumexp(dens.sum(-1), dim=1) - math.log(n))
        log_qzj.append(torch.logsumexp(dens, dim=1) - math.log(n))
    return torch.cat(log_qz), torch.cat(log_qzj)


class KLDecomposition(NamedTuple):
    r"""The KL split of a data set's posteriors, in nats per image: ``mi`` :math:`I_q(z; n)`, ``tc`` the total
    correlation, ``dim_kl`` ``(m,)`` :math:`\mathrm{KL}(q(z_j)\,\|\,\mathcal N(0, 1))` per latent, ``kl`` the mean
    closed-form KL (the rate), and ``se`` the Monte-Carlo standard error of ``mi + tc + dim_kl.sum()``."""

    mi: float
    tc: float
    dim_kl: Tensor
    kl: float
    se: float


@torch.no_grad()
def kl_decomposition(mu: Tensor, logvar: Tensor, *, n_samples: int = 1,
                     generator: torch.Generator | None = None) -> KLDecomposition:
    r"""Estimate index-code MI, total correlation and dimension-wise KL of the posteriors of a whole data set.

    Draws ``n_samples`` :math:`z\sim q(z\mid n)` for each of the :math:`N` images, evaluates the aggregate posterior
    and its marginals there exactly (:func:`aggregate_log_density`) and averages the three log-ratios of the module
    doc. The three estimates sum exactly to the Monte-Carlo rate, whose mean is the closed-form ``kl``.

    Args:
        mu, logvar: ``(N, m)`` the posteriors :math:`q(z\mid n) = \mathcal N(\mu_n, \mathrm{diag}\,e^{\ell_n})`.
        n_samples: draws per image. generator: seeds the draws (CPU).
    Returns: :class:`KLDecomposition`; ``mi`` is at most :math:`\log N`.
    """
    mu = _tensor("mu", mu, min_dim=2).double()
    logvar = _tensor("logvar", logvar, min_dim=2).double()
    if mu.dim() != 2 or logvar.shape != mu.shape:
        raise ValueError(f"mu, logvar: got shapes {tuple(mu.shape)} and {tuple(logvar.shape)}; need the same (N, m)")
    s = check_positive_int("n_samples", n_samples)
    eps = torch.randn((s, *mu.shape), generator=generator, dtype=torch.float64).to(mu.device)
    z = reparameterize(mu, logvar, eps=eps, validate=False).reshape(-1, mu.shape[1])  # (S N, m): z = mu + sigma * eps
    logvar_s = logvar.repeat(s, 1)  # (S N, m): the posterior variance of each draw
    log_q = (-0.5 * (_LOG_2PI + logvar_s + eps.reshape(-1, mu.shape[1]).pow(2))).sum(-1)  # log q(z | n)
    log_qz, log_qzj = aggregate_log_density(z, mu, logvar)
    log_pj = -0.5 * (_LOG_2PI + z.pow(2))  # (S N, m)
    mi, tc, dim = log_q - log_qz, log_qz - log_qzj.sum(-1), log_qzj - log_pj
    kl = kl_normal_std(mu, logvar, validate=False).mean()  # closed form, mean over the data set
    total = mi + tc + dim.sum(-1)
    return KLDecomposition(float(mi.mean()), float(tc.mean()), dim.mean(0).float(), float(kl),
                           float(total.std() / math.sqrt(len(total))))
