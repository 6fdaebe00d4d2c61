r"""Expectation-maximisation on the linear-Gaussian model: the ELBO as EM's objective (chapter 3).

EM (Dempster, Laird & Rubin, 1977) maximises :math:`\log p_\theta(x)` by climbing the ELBO in both of its arguments
in turn (Neal & Hinton, 1998). Since :math:`\log p_\theta(x) = \mathrm{ELBO}(q, \theta) +
\mathrm{KL}(q\,\|\,p_\theta(z\mid x))`:

* **E-step**: :math:`q \leftarrow p_{\theta}(z\mid x)`, the exact posterior. The KL becomes 0, so
  :math:`\mathrm{ELBO}(q, \theta) = \log p_\theta(x)`: the bound touches the likelihood.
* **M-step**: :math:`\theta' = \arg\max_{\theta'}\mathrm{ELBO}(q, \theta')` with :math:`q` fixed; only
  :math:`\mathbb E_q\log p_{\theta'}(x, z)` depends on :math:`\theta'`.

Together, :math:`\log p_{\theta'}(x) \ge \mathrm{ELBO}(q, \theta') \ge \mathrm{ELBO}(q, \theta) = \log p_\theta(x)`:
the log-likelihood never decreases. In the linear-Gaussian model :math:`x\mid z \sim \mathcal N(Wz + b, \sigma^2 I)`
both steps are closed form (Tipping & Bishop, 1999; Bishop, 2006, sec. 12.2.2). The posterior of data point
:math:`n` has mean :math:`m_n` and covariance :math:`S` (the same for all :math:`n`); with :math:`\tilde W = [W, b]`
and :math:`\tilde z = (z, 1)`, the M-step is

.. math:: \tilde W \leftarrow \Big(\sum_n x_n\,\mathbb E[\tilde z_n]^\top\Big)\Big(\sum_n \mathbb E[\tilde z_n\tilde z_n^\top]\Big)^{-1},
          \qquad \sigma^2 \leftarrow \frac{1}{Nd}\sum_n\Big(\|x_n - W m_n - b\|^2 + \operatorname{tr}(W S W^\top)\Big),

the second with the new :math:`W, b`. (A VAE cannot do an exact E-step, because its posterior is intractable: it
takes gradient steps on the same ELBO in :math:`q` and :math:`\theta` together.)
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from . import _validate as check
from .inference import elbo_closed_form
from .linear_gaussian import LinearGaussianModel
from .utils import check_positive_int

__all__ = ["EMStep", "EMFit", "em_step", "fit_em", "ppca_maximum_likelihood"]


class EMStep(NamedTuple):
    """One EM step: the ``model`` after the M-step and three mean values over the data, in nats per point:
    ``log_px`` (before the step), ``elbo_e`` (after the E-step: equal to ``log_px``) and ``elbo_m`` (after the
    M-step, with the same q: at least ``elbo_e``)."""

    model: LinearGaussianModel
    log_px: float
    elbo_e: float
    elbo_m: float


class EMFit(NamedTuple):
    """``steps`` EM steps: the final ``model`` and, per step, the mean ``log_px`` before it, ``elbo_e`` and
    ``elbo_m`` (lists of ``steps`` floats), plus ``final_log_px`` after the last step."""

    model: LinearGaussianModel
    log_px: list[float]
    elbo_e: list[float]
    elbo_m: list[float]
    final_log_px: float


def _data(model: object, x: Tensor) -> tuple[LinearGaussianModel, Tensor]:
    if not isinstance(model, LinearGaussianModel):
        raise TypeError(f"model: got {type(model).__name__}; need a vae_course.linear_gaussian.LinearGaussianModel")
    check.tensor("x", x, min_dim=2)
    if x.dim() != 2 or x.shape[1] != model.x_dim:
        raise ValueError(f"x: got shape {tuple(x.shape)}; need (N, x_dim) = (N, {model.x_dim})")
    return model, x.to(model.W.dtype)


def em_step(model: LinearGaussianModel, x: Tensor) -> EMStep:
    r"""One EM step for the linear-Gaussian model on data ``x`` ``(N, d)``: E-step (exact posterior), then the
    closed-form M-step for :math:`W`, :math:`b` and :math:`\sigma` (the module docstring has the equations).
    Returns an :class:`EMStep`; the input model is not changed."""
    model, x = _data(model, x)
    n, d, m = x.shape[0], model.x_dim, model.z_dim
    post = model.posterior(x)  # E-step: q(z | x_n) = N(m_n, S)
    log_px = model.log_marginal(x).mean().item()
    elbo_e = elbo_closed_form(model, x, post.mu, cov_q=post.cov).elbo.mean().item()
    z_aug = torch.cat([post.mu, torch.ones(n, 1, dtype=x.dtype)], dim=1)  # (N, m + 1): E[z~_n]
    second = z_aug.T @ z_aug  # (m + 1, m + 1): sum_n E[z~_n] E[z~_n]^T ...
    second[:m, :m] += n * post.cov  # ... + sum_n Cov[z~_n], which is S in the z block and 0 elsewhere
    W_aug = torch.linalg.solve(second, z_aug.T @ x).T  # (d, m + 1): sum_n x_n E[z~_n]^T (sum E[z~ z~^T])^-1
    W, b = W_aug[:, :m].contiguous(), W_aug[:, m].contiguous()
    resid = (x - post.mu @ W.T - b).pow(2).sum()  # sum_n ||x_n - W m_n - b||^2
    sigma2 = (resid + n * torch.trace(W @ post.cov @ W.T)) / (n * d)
    new = LinearGaussianModel(W, b, float(sigma2.sqrt()))
    elbo_m = elbo_closed_form(new, x, post.mu, cov_q=post.cov).elbo.mean().item()
    return EMStep(new, log_px, elbo_e, elbo_m)


def fit_em(model: LinearGaussianModel, x: Tensor, steps: int = 50) -> EMFit:
    """Run :func:`em_step` ``steps`` times from ``model`` on data ``x`` ``(N, d)``; returns an :class:`EMFit`."""
    model, x = _data(model, x)
    steps = check_positive_int("steps", steps)
    log_px, elbo_e, elbo_m = [], [], []
    for _ in range(steps):
        step = em_step(model, x)
        model = step.model
        log_px.append(step.log_px)
        elbo_e.append(step.elbo_e)
        elbo_m.append(step.elbo_m)
    return EMFit(model, log_px, elbo_e, elbo_m, model.log_marginal(x).mean().item())


def ppca_maximum_likelihood(x: Tensor, z_dim: int) -> LinearGaussianModel:
    r"""The maximum-likelihood linear-Gaussian model of data ``x`` ``(N, d)`` in closed form (Tipping & Bishop, 1999).

    With the sample covariance :math:`S = \frac1N\sum_n (x_n - \bar x)(x_n - \bar x)^\top`, its eigenvalues
    :math:`\lambda_1\ge\dots\ge\lambda_d` and the eigenvectors :math:`U_m` of the largest :math:`m`:

    .. math:: b = \bar x, \qquad \sigma^2 = \frac{1}{d-m}\sum_{j>m}\lambda_j, \qquad
              W = U_m\big(\operatorname{diag}(\lambda_1..\lambda_m) - \sigma^2 I\big)^{1/2},

    unique up to a rotation of the latent space (:math:`W` and :math:`WR` give the same :math:`p(x)`). The target
    that EM (:func:`fit_em`) climbs towards. Needs ``z_dim < d``.
    """
    check.tensor("x", x, min_dim=2)
    z_dim = check_positive_int("z_dim", z_dim)
    if x.dim() != 2 or not z_dim < x.shape[1]:
        raise ValueError(f"x, z_dim: got x of shape {tuple(x.shape)} and z_dim={z_dim}; need x (N, d) with z_dim < d")
    mean = x.mean(0)
    cov = (x - mean).T @ (x - mean) / x.shape[0]  # (d, d), divisor N: the maximum-likelihood estimate
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    evals, evecs = evals.flip(0), evecs.flip(1)
    sigma2 = evals[z_dim:].mean()
    W = evecs[:, :z_dim] * (evals[:z_dim] - sigma2).clamp_min(0).sqrt()  # (d, m)
    return LinearGaussianModel(W, mean, float(sigma2.sqrt()))
