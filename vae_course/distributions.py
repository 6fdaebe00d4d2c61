r"""Log-densities and closed-form KL divergences used throughout the course.

Conventions (the book's notation):

* the **last** dimension of every tensor is the event dimension ``d``; everything before it is
  a batch, and results have the batch shape (the event dimension is summed);
* a diagonal Gaussian is given by its mean ``mu`` and log-variance ``logvar`` = :math:`\log\sigma^2`
  (unconstrained, so a network can output it);
* a full-covariance Gaussian is given by ``cov`` :math:`\Sigma` (symmetric positive definite) or
  by its Cholesky factor ``scale_tril`` :math:`L` with :math:`\Sigma = L L^\top`;
* Bernoulli pixels are given by ``logits`` :math:`\ell = \log\frac{p}{1-p}`.

All results are in nats. Chapter 0 introduces the Bernoulli likelihood, chapter 1 the Gaussians,
chapter 3 the KL terms of the ELBO, chapter 4 the reparameterised draw (:func:`reparameterize`), chapter 5
the importance-weighted average in log space (:func:`log_mean_exp`). Each formula is written once, here,
and every other module calls it.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _validate as check
from .utils import check_positive_int

__all__ = [
    "DiagonalGaussian",
    "reparameterize",
    "log_mean_exp",
    "log_normal_std",
    "log_normal_diag",
    "log_normal_full",
    "log_bernoulli",
    "kl_normal_diag",
    "kl_normal_std",
    "kl_normal_full",
    "cholesky",
]

LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian(NamedTuple):
    r"""A diagonal Gaussian :math:`\mathcal N(\mu, \mathrm{diag}\,\sigma^2)`, e.g. an encoder's :math:`q(z\mid x)`:
    ``mu`` and ``logvar`` :math:`=\log\sigma^2`, both ``(..., m)``."""

    mu: Tensor
    logvar: Tensor

    @property
    def std(self) -> Tensor:
        r""":math:`\sigma = e^{\ell/2}` (not :math:`e^{\ell}`, which is the variance)."""
        return torch.exp(0.5 * self.logvar)

    def sample(self, n_samples: int | None = None, *, eps: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Reparameterised draws: ``(..., m)``, or ``(n_samples, ..., m)``; see :func:`reparameterize`."""
        return reparameterize(self.mu, self.logvar, n_samples=n_samples, eps=eps, generator=generator, validate=False)

    def log_prob(self, z: Tensor) -> Tensor:
        r""":math:`\log\mathcal N(z;\mu,\mathrm{diag}\,\sigma^2)`, ``z`` ``(..., B, m)`` -> ``(..., B)``."""
        return log_normal_diag(z, self.mu, self.logvar, validate=False)


def reparameterize(mu: Tensor, logvar: Tensor, *, n_samples: int | None = None, eps: Tensor | None = None,
                   generator: torch.Generator | None = None, validate: bool = True) -> Tensor:
    r"""A draw of :math:`\mathcal N(\mu, \mathrm{diag}\,\sigma^2)` that gradients flow through (chapter 4).

    .. math:: z = \mu + \sigma\odot\varepsilon,\qquad \sigma = e^{\ell/2},\quad \varepsilon\sim\mathcal N(0, I)

    Args:
        mu, logvar: ``(..., m)``.
        n_samples: None for one draw ``(..., m)``; an int S for ``(S, ..., m)``.
        eps: the noise to use, a shape that broadcasts with ``mu`` (e.g. ``(S, ..., m)``); drawn with
            ``generator`` if None (on ``generator``'s device, then moved to ``mu``'s).
    Returns the broadcast shape of ``mu``, ``logvar`` and the noise. ``validate``: check that ``mu`` and
    ``logvar`` are finite and broadcast (the encoders' inner calls skip it).
    """
    if validate:
        check.tensor("mu", mu, min_dim=1)
        check.tensor("logvar", logvar, min_dim=1)
        check.broadcast(mu=mu, logvar=logvar)
        if n_samples is not None:
            check_positive_int("n_samples", n_samples)
    if eps is None:
        shape = mu.shape if n_samples is None else (n_samples, *mu.shape)
        dev = generator.device if generator is not None else mu.device
        eps = torch.randn(shape, generator=generator, dtype=mu.dtype, device=dev).to(mu.device)
    else:
        want = (n_samples, *mu.shape) if n_samples is not None else None
        try:
            torch.broadcast_shapes(eps.shape, mu.shape, logvar.shape)
            fits = want is None or tuple(eps.shape) == want
        except RuntimeError:
            fits = False
        if not fits:
            need = want if want is not None else f"a shape that broadcasts with {tuple(mu.shape)}, e.g. (S, *{tuple(mu.shape)})"
            raise ValueError(f"eps: got shape {tuple(eps.shape)}; need {need}")
    return mu + torch.exp(0.5 * logvar) * eps  # (..., m): the standard deviation is exp(logvar / 2)


def log_mean_exp(a: Tensor, dim: int = 0, *, log_weights: Tensor | None = None, validate: bool = True) -> Tensor:
    r"""The log of an average of exponentials, stable for any scale of ``a``, along ``dim``.

    .. math:: \log\frac1n\sum_i e^{a_i} = \operatorname{logsumexp}_i(a_i) - \log n,
              \qquad \log\sum_i w_i e^{a_i} = \operatorname{logsumexp}_i(\log w_i + a_i)

    the second form with normalised ``log_weights`` (same size as ``a`` along ``dim``, summing to 1 in
    probability). Never ``log(exp(a).mean())``: :math:`e^{a}` underflows to 0 for :math:`a \lesssim -100` in float32
    (an MNIST digit's :math:`\log p(x\mid z)` is about -100 nats). The IWAE bound (chapter 5), the Monte-Carlo
    marginal and the quadrature of chapter 2 and the aggregate posterior of chapter 7 all use it.
    ``a`` may hold ``-inf`` (a zero term), not NaN or ``+inf``; it needs at least one entry along ``dim``.
    """
    if validate:
        _check_log_mean_exp(a, dim, log_weights)
    if log_weights is None:
        return torch.logsumexp(a, dim=dim) - math.log(a.shape[dim])
    shape = [1] * a.dim()
    shape[dim] = -1
    return torch.logsumexp(a + log_weights.reshape(shape), dim=dim)


def _check_log_mean_exp(a: Tensor, dim: int, log_weights: Tensor | None) -> None:
    check.log_values("a", a, min_dim=1)
    if isinstance(dim, bool) or not isinstance(dim, int) or not -a.dim() <= dim < a.dim():
        raise ValueError(f"dim: got {dim!r}; need an int in [{-a.dim()}, {a.dim()}) for a of shape {tuple(a.shape)}")
    if a.shape[dim] == 0:
        raise ValueError(f"a: got shape {tuple(a.shape)}, no entry along dim {dim}; need at least one to average")
    if log_weights is not None:
        check.log_values("log_weights", log_weights, min_dim=1)
        if log_weights.numel() != a.shape[dim]:
            raise ValueError(f"log_weights: got shape {tuple(log_weights.shape)}; need {a.shape[dim]} entries, "
                             f"one per entry of a along dim {dim}")


def log_normal_std(x: Tensor, *, validate: bool = True) -> Tensor:
    r"""Log-density of :math:`\mathcal N(0, I)`: :math:`-\tfrac12\big(d\log 2\pi + \|x\|^2\big)`.

    Args:
        x: ``(..., d)`` points.
    Returns:
        ``(...)`` log-densities.
    """
    if validate:
        check.tensor("x", x, min_dim=1)
    return -0.5 * (x.shape[-1] * LOG_2PI + x.pow(2).sum(-1))


def log_normal_diag(x: Tensor, mu: Tensor, logvar: Tensor, *, validate: bool = True) -> Tensor:
    r"""Log-density of a diagonal Gaussian :math:`\mathcal N(\mu, \mathrm{diag}(\sigma^2))`.

    .. math:: \log \mathcal N(x;\mu,\sigma^2) = -\tfrac12 \sum_{j=1}^d
              \Big(\log 2\pi + \log\sigma_j^2 + \frac{(x_j-\mu_j)^2}{\sigma_j^2}\Big)

    Args:
        x: ``(..., d)`` points.
        mu: ``(..., d)`` means (broadcast against ``x``).
        logvar: ``(..., d)`` log-variances :math:`\log\sigma^2` (not standard deviations).
    Returns:
        ``(...)`` log-densities, the event dimension summed.
    """
    if validate:
        for name, t in (("x", x), ("mu", mu), ("logvar", logvar)):
            check.tensor(name, t, min_dim=1)
        check.broadcast(x=x, mu=mu, logvar=logvar)
    return -0.5 * (LOG_2PI + logvar + (x - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def cholesky(cov: Tensor, *, name: str = "cov") -> Tensor:
    r"""Lower Cholesky factor :math:`L` of a symmetric positive-definite ``cov`` (``(..., d, d)``).

    Raises a ValueError naming ``name`` if ``cov`` is not square, not symmetric, or not positive definite.
    """
    check.tensor(name, cov, min_dim=2)
    if cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name}: got shape {tuple(cov.shape)}; need square (..., d, d) matrices")
    if not torch.allclose(cov, cov.transpose(-1, -2), rtol=1e-5, atol=1e-6):
        raise ValueError(f"{name}: got a matrix that is not symmetric; need a symmetric positive-definite covariance")
    L, info = torch.linalg.cholesky_ex(cov)
    if bool((info != 0).any()):
        eig = torch.linalg.eigvalsh(cov).min().item()
        raise ValueError(
            f"{name}: got a matrix that is not positive definite (smallest eigenvalue {eig:.3g}); "
            "need a symmetric positive-definite covariance, e.g. A @ A.T + eps * I"
        )
    return L


def log_normal_full(
    x: Tensor, mu: Tensor, cov: Tensor | None = None, *, scale_tril: Tensor | None = None, validate: bool = True
) -> Tensor:
    r"""Log-density of :math:`\mathcal N(\mu, \Sigma)` with a full covariance.

    .. math:: \log \mathcal N(x;\mu,\Sigma) = -\tfrac12\Big(d\log 2\pi + \log|\Sigma|
              + (x-\mu)^\top\Sigma^{-1}(x-\mu)\Big)

    The normaliser is :math:`(2\pi)^{d/2}|\Sigma|^{1/2}`; computed stably through the Cholesky factor
    :math:`L`: :math:`\log|\Sigma| = 2\sum_j \log L_{jj}` and the quadratic form is
    :math:`\|L^{-1}(x-\mu)\|^2` (a triangular solve, never an explicit inverse).

    Args:
        x: ``(..., d)``; mu: ``(..., d)``.
        cov: ``(..., d, d)`` symmetric positive definite; or give ``scale_tril`` ``(..., d, d)`` instead.
    Returns:
        ``(...)`` log-densities.
    """
    if (cov is None) == (scale_tril is None):
        raise ValueError("cov / scale_tril: need exactly one of them; got " + ("both" if cov is not None else "neither"))
    if validate:
        check.tensor("x", x, min_dim=1)
        check.tensor("mu", mu, min_dim=1)
    L = cholesky(cov) if cov is not None else check.tensor("scale_tril", scale_tril, min_dim=2)
    if validate:
        check.same_last_dim(x=x, mu=mu, scale_tril=L)
        if cov is None:
            check.positive_diagonal("scale_tril", L)
    diff = x - mu  # (..., d)
    batch = torch.broadcast_shapes(diff.shape[:-1], L.shape[:-2])
    d = diff.shape[-1]
    diff = diff.expand(*batch, d)
    L = L.expand(*batch, d, d)
    # Solve L u = (x - mu): the Mahalanobis term is ||u||^2.
    u = torch.linalg.solve_triangular(L, diff.unsqueeze(-1), upper=False).squeeze(-1)
    log_det = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (d * LOG_2PI + log_det + u.pow(2).sum(-1))


def log_bernoulli(x: Tensor, logits: Tensor, *, event_dims: int = 1, validate: bool = True) -> Tensor:
    r"""Log-likelihood of pixels under independent Bernoullis with the given logits.

    .. math:: \log p(x\mid\ell) = \sum_j x_j\log\sigma(\ell_j) + (1-x_j)\log(1-\sigma(\ell_j))
              = \sum_j x_j\ell_j - \operatorname{softplus}(\ell_j)

    computed from logits (never from probabilities, whose logs overflow at 0 and 1). ``x`` may hold
    grey levels in [0, 1] (the "continuous Bernoulli" shortcut used for non-binarised MNIST; it is
    then a cross-entropy, not a normalised log-likelihood).

    Args:
        x: ``(..., *event)`` targets in [0, 1].
        logits: same shape as ``x`` (broadcastable).
        event_dims: how many trailing dimensions form one observation (1 for flat vectors,
            3 for ``(C, H, W)`` images); they are summed.
    Returns:
        log-likelihoods with the batch shape.
    """
    if validate:
        check.tensor("x", x, min_dim=event_dims)
        check.tensor("logits", logits, min_dim=event_dims)
        check.broadcast(x=x, logits=logits)
        if bool(((x < 0) | (x > 1)).any()):
            raise ValueError(f"x: got values in [{x.min().item():.3g}, {x.max().item():.3g}]; need pixel values in [0, 1]")
    if isinstance(event_dims, bool) or not isinstance(event_dims, int) or event_dims < 1:
        raise ValueError(f"event_dims: got {event_dims!r}; need an int >= 1")
    x, logits = torch.broadcast_tensors(x, logits)
    ll = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return ll.sum(dim=tuple(range(-event_dims, 0)))


def kl_normal_diag(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor, *, validate: bool = True) -> Tensor:
    r""":math:`\mathrm{KL}(\mathcal N(\mu_q,\sigma_q^2)\,\|\,\mathcal N(\mu_p,\sigma_p^2))` for diagonal Gaussians.

    .. math:: \mathrm{KL} = \tfrac12\sum_j\Big(\log\frac{\sigma_{p,j}^2}{\sigma_{q,j}^2}
              + \frac{\sigma_{q,j}^2 + (\mu_{q,j}-\mu_{p,j})^2}{\sigma_{p,j}^2} - 1\Big)

    Args: all ``(..., d)`` (broadcastable). Returns: ``(...)``, always >= 0.
    """
    if validate:
        for name, t in (("mu_q", mu_q), ("logvar_q", logvar_q), ("mu_p", mu_p), ("logvar_p", logvar_p)):
            check.tensor(name, t, min_dim=1)
        check.broadcast(mu_q=mu_q, logvar_q=logvar_q, mu_p=mu_p, logvar_p=logvar_p)
    var_ratio = torch.exp(logvar_q - logvar_p)
    return 0.5 * (-(logvar_q - logvar_p) + var_ratio + (mu_q - mu_p).pow(2) * torch.exp(-logvar_p) - 1).sum(-1)


def kl_normal_std(mu: Tensor, logvar: Tensor, *, per_dimension: bool = False, validate: bool = True) -> Tensor:
    r""":math:`\mathrm{KL}(\mathcal N(\mu,\sigma^2)\,\|\,\mathcal N(0,I))`, the VAE's regulariser.

    .. math:: \mathrm{KL} = \tfrac12\sum_j\big(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2\big)

    Note the minus sign in front of :math:`\log\sigma_j^2`: each term is
    :math:`\tfrac12(\sigma^2 - 1 - \log\sigma^2) + \tfrac12\mu^2 \ge 0`, zero only at
    :math:`\mu = 0, \sigma = 1`.

    Args: ``mu``, ``logvar``: ``(..., d)``; ``per_dimension``: return the ``d`` terms of the sum (one KL per
    coordinate, ``(..., d)``; chapter 7 reads collapse from them) instead of their sum ``(...)``.
    """
    if validate:
        check.tensor("mu", mu, min_dim=1)
        check.tensor("logvar", logvar, min_dim=1)
        check.broadcast(mu=mu, logvar=logvar)
    terms = 0.5 * (torch.exp(logvar) + mu.pow(2) - 1 - logvar)  # (..., d): KL of each coordinate
    return terms if per_dimension else terms.sum(-1)


def kl_normal_full(mu_q: Tensor, cov_q: Tensor, mu_p: Tensor, cov_p: Tensor) -> Tensor:
    r"""KL between two full-covariance Gaussians in :math:`d` dimensions.

    .. math:: \mathrm{KL}(q\|p) = \tfrac12\Big(\operatorname{tr}(\Sigma_p^{-1}\Sigma_q)
              + (\mu_p-\mu_q)^\top\Sigma_p^{-1}(\mu_p-\mu_q) - d + \log\frac{|\Sigma_p|}{|\Sigma_q|}\Big)

    Args: ``mu_*``: ``(..., d)``; ``cov_*``: ``(..., d, d)`` symmetric positive definite. Returns ``(...)``.
    """
    Lq, Lp = cholesky(cov_q, name="cov_q"), cholesky(cov_p, name="cov_p")
    check.tensor("mu_q", mu_q, min_dim=1)
    check.tensor("mu_p", mu_p, min_dim=1)
    d = check.same_last_dim(mu_q=mu_q, mu_p=mu_p, cov_q=cov_q, cov_p=cov_p)
    batch = torch.broadcast_shapes(mu_q.shape[:-1], mu_p.shape[:-1], Lq.shape[:-2], Lp.shape[:-2])
    Lq, Lp = Lq.expand(*batch, d, d), Lp.expand(*batch, d, d)
    diff = (mu_p - mu_q).expand(*batch, d).unsqueeze(-1)
    # tr(Sp^-1 Sq) = ||Lp^-1 Lq||_F^2 ; Mahalanobis = ||Lp^-1 (mu_p - mu_q)||^2
    M = torch.linalg.solve_triangular(Lp, Lq, upper=False)
    u = torch.linalg.solve_triangular(Lp, diff, upper=False).squeeze(-1)
    log_det_p = 2 * torch.log(torch.diagonal(Lp, dim1=-2, dim2=-1)).sum(-1)
    log_det_q = 2 * torch.log(torch.diagonal(Lq, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (M.pow(2).sum((-2, -1)) + u.pow(2).sum(-1) - d + log_det_p - log_det_q)
