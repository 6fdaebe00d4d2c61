r"""Gradient estimators for a diagonal Gaussian :math:`Q_w=\mathcal N(\mu,\mathrm{diag}(e^{\log\sigma^2}))` (chapter 4).

The naive estimate (zero), the score function with an optional baseline, and the reparameterisation
(pathwise) estimate of :math:`\nabla_{(\mu,\log\sigma^2)}\,\mathbb E_{z\sim Q_w}[F(z)]`; see :mod:`vae_course.estimators`.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import _validate as check
from ..generators import sample_normal
from ..utils import check_positive_int
from .core import Baseline, GaussianGradient, _apply_F, _centre, _check_gaussian, _noise, _reduce

__all__ = ["gaussian_score", "score_function_terms", "reparam_terms", "naive_gradient", "score_function_gradient",
           "reparam_gradient"]


def gaussian_score(z: Tensor, mu: Tensor, logvar: Tensor, *, validate: bool = True) -> GaussianGradient:
    r"""The score :math:`\nabla_{(\mu,\log\sigma^2)}\log\mathcal N(z;\mu,\mathrm{diag}\,\sigma^2)` in closed form.

    .. math:: \frac{\partial \log Q}{\partial \mu_j} = \frac{z_j-\mu_j}{\sigma_j^2}, \qquad
              \frac{\partial \log Q}{\partial \log\sigma_j^2} = \frac12\Big(\frac{(z_j-\mu_j)^2}{\sigma_j^2}-1\Big)

    Both have mean zero under :math:`Q`; that is why subtracting a constant baseline keeps the
    score-function estimator unbiased. Args: z ``(..., d)``; mu, logvar ``(d,)``. Returns ``(..., d)`` each.
    """
    if validate:
        _check_samples("z", z, _check_gaussian(mu, logvar))
    inv_var = torch.exp(-logvar)                                       # 1 / sigma^2, (d,)
    diff = z - mu                                                      # (..., d)
    return GaussianGradient(mu=diff * inv_var, logvar=0.5 * (diff.pow(2) * inv_var - 1.0))


def _check_samples(name: str, z: Tensor, d: int) -> None:
    check.tensor(name, z, min_dim=1)
    if z.shape[-1] != d:
        raise ValueError(f"{name}: got shape {tuple(z.shape)}; need samples (..., {d}) like mu")


def score_function_terms(F, mu: Tensor, logvar: Tensor, eps: Tensor, baseline: Baseline) -> GaussianGradient:
    """Per-sample score-function terms ``(F(z_i) - b_i) * score(z_i)`` for noise ``eps`` ``(..., n, d)``: the
    summands of :func:`score_function_gradient`, before the average over the samples."""
    with torch.no_grad():
        z = sample_normal(mu, logvar=logvar, eps=eps)                  # (..., n, d) = mu + exp(0.5 logvar) eps
        weight = _centre(_apply_F(F, z), baseline).unsqueeze(-1)       # (..., n, 1)  F(z_i) - b_i
        score = gaussian_score(z, mu, logvar, validate=False)          # (..., n, d)
    return GaussianGradient(weight * score.mu, weight * score.logvar)


def reparam_terms(F, mu: Tensor, logvar: Tensor, eps: Tensor) -> GaussianGradient:
    """Per-sample pathwise gradients ``grad_w F(mu + sigma * eps_i)`` for noise ``eps`` ``(..., n, d)``: the
    summands of :func:`reparam_gradient`, before the average over the samples."""
    mu_rep = mu.detach().expand(eps.shape).clone().requires_grad_(True)          # one copy per sample
    logvar_rep = logvar.detach().expand(eps.shape).clone().requires_grad_(True)  # -> per-sample gradients
    with torch.enable_grad():
        z = sample_normal(mu_rep, logvar=logvar_rep, eps=eps)          # (..., n, d), a function of (mu, logvar)
        grads = torch.autograd.grad(_apply_F(F, z).sum(), (mu_rep, logvar_rep))
    return GaussianGradient(*grads)


def naive_gradient(F: Callable[[Tensor], Tensor], mu: Tensor, logvar: Tensor, n_samples: int,
                   *, generator: torch.Generator | None = None) -> GaussianGradient:
    r"""What autograd returns when the sample is drawn and then treated as a constant: zero.

    ``torch.normal(mu, sigma)`` accepts tensors that require grad, but PyTorch defines the derivative
    of a drawn number w.r.t. its mean and standard deviation as zero. So
    :math:`\nabla_w \frac1n\sum_i F(z_i) = 0` although :math:`\nabla_w\,\mathbb E[F]\ne0`.
    (``torch.distributions.Normal(...).sample()`` detaches instead; ``.rsample()`` reparameterises.)
    """
    d = _check_gaussian(mu, logvar)
    n = check_positive_int("n_samples", n_samples)
    mu_ = mu.detach().clone().requires_grad_(True)
    logvar_ = logvar.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        std = torch.exp(0.5 * logvar_)
        z = torch.normal(mu_.expand(n, d), std.expand(n, d), generator=generator)  # (n, d); dz/dw := 0
        loss = _apply_F(F, z).mean()
        g_mu, g_logvar = torch.autograd.grad(loss, (mu_, logvar_), allow_unused=True, materialize_grads=True)
    return GaussianGradient(g_mu, g_logvar)


def score_function_gradient(F: Callable[[Tensor], Tensor], mu: Tensor, logvar: Tensor, n_samples: int | None = None,
                            *, baseline: Baseline = None, generator: torch.Generator | None = None,
                            eps: Tensor | None = None, per_sample: bool = False) -> GaussianGradient:
    r"""Score-function (REINFORCE, likelihood-ratio) estimate of :math:`\nabla_{(\mu,\log\sigma^2)}\mathbb E_Q[F]`.

    .. math:: \widehat{\nabla} = \frac1n\sum_{i=1}^n \big(F(z_i)-b_i\big)\,\nabla_w\log Q_w(z_i),
              \qquad z_i=\mu+\sigma\odot\varepsilon_i\sim Q_w

    Only values of :math:`F` are needed (no derivative). Unbiased for ``baseline`` None, a number,
    or ``"loo"`` (leave-one-out mean); ``"mean"`` (the batch mean, which includes :math:`F(z_i)`)
    shrinks the expectation by the factor :math:`(n-1)/n`. In a deep-learning library the same
    estimate is the gradient of the surrogate :math:`\frac1n\sum_i (F_i-b_i)\log Q_w(z_i)` with
    :math:`F_i-b_i` detached.

    Args:
        F: ``(n, d) -> (n,)``, applied row by row. mu, logvar: ``(d,)``.
        n_samples: n (may be omitted when ``eps`` is given). eps: ``(n, d)`` standard normal noise
            (lets two estimators share their samples). generator: draws eps otherwise.
        baseline: None, a number, ``"mean"`` or ``"loo"``.
        per_sample: return the ``(n, d)`` per-sample terms instead of their mean ``(d,)``.
    Reference: Williams (1992); Mohamed et al. (2020), section 4.
    """
    d = _check_gaussian(mu, logvar)
    eps = _noise(n_samples, eps, "eps", d, lambda n: torch.randn(n, d, generator=generator, dtype=mu.dtype))
    return _reduce(score_function_terms(F, mu.detach(), logvar.detach(), eps, baseline), per_sample)


def reparam_gradient(F: Callable[[Tensor], Tensor], mu: Tensor, logvar: Tensor, n_samples: int | None = None,
                     *, generator: torch.Generator | None = None, eps: Tensor | None = None,
                     per_sample: bool = False) -> GaussianGradient:
    r"""Reparameterisation (pathwise) estimate of :math:`\nabla_{(\mu,\log\sigma^2)}\mathbb E_Q[F]`.

    .. math:: \widehat{\nabla} = \frac1n\sum_{i=1}^n \nabla_w F(\mu+\sigma\odot\varepsilon_i),\qquad
              \frac{\partial z}{\partial\mu}=1,\quad \frac{\partial z}{\partial\log\sigma^2}=\tfrac12\sigma\odot\varepsilon

    Needs :math:`F` differentiable in :math:`z` (autograd does the chain rule). Arguments as in
    :func:`score_function_gradient`. Reference: Kingma & Welling (2014); Rezende et al. (2014).
    """
    d = _check_gaussian(mu, logvar)
    eps = _noise(n_samples, eps, "eps", d, lambda n: torch.randn(n, d, generator=generator, dtype=mu.dtype))
    return _reduce(reparam_terms(F, mu, logvar, eps), per_sample)
