r"""Figures for chapter 1 (probabilistic generators): Gaussian clouds, their ellipses, generator samples.

An ellipse of :math:`\mathcal N(\mu, \Sigma)` is drawn as the image of a circle under the Cholesky
factor: :math:`\{\mu + k L u : \|u\| = 1\}` is the set where the Mahalanobis distance
:math:`\sqrt{(x-\mu)^\top\Sigma^{-1}(x-\mu)}` equals :math:`k`. In 2-D a fraction
:math:`1 - e^{-k^2/2}` of the mass lies inside it (39.3% for k = 1, 86.5% for k = 2).
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from .. import distributions as D
from .. import generators as G
from .common import image_grid, new_axes

__all__ = ["gaussian_ellipse", "gaussian_cloud", "generator_samples", "generator_conditional",
           "marginal_vs_gaussian", "pixel_noise_grid", "latent_integrand"]


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _check_2d(name: str, t: Tensor) -> None:
    if t.shape[-1] != 2:
        raise ValueError(f"{name}: got last dimension {t.shape[-1]}; these figures need 2-D points (x_dim = 2)")


def gaussian_ellipse(mu: Tensor, scale_tril: Tensor, *, k: float = 1.0, ax=None, **style):
    r"""Draw :math:`\{\mu + kLu : \|u\|=1\}`, the k-standard-deviation ellipse of :math:`\mathcal N(\mu, LL^\top)`.

    ``mu`` ``(2,)``; ``scale_tril`` ``(2, 2)`` lower-triangular (e.g. ``vc.distributions.cholesky(cov)``).
    Returns the axes.
    """
    mu, L = torch.as_tensor(mu).detach().double(), torch.as_tensor(scale_tril).detach().double()
    if mu.shape != (2,) or L.shape != (2, 2):
        raise ValueError(f"mu / scale_tril: got shapes {tuple(mu.shape)} / {tuple(L.shape)}; need (2,) and (2, 2)")
    ax = new_axes(ax)
    t = torch.linspace(0, 2 * math.pi, 121, dtype=torch.float64)
    pts = mu[:, None] + k * L @ torch.stack([torch.cos(t), torch.sin(t)])  # (2, 121)
    ax.plot(pts[0].numpy(), pts[1].numpy(), **{"color": "k", "lw": 1.5, **style})
    return ax


def gaussian_cloud(mu: Tensor, cov: Tensor, *, n: int = 1000, eps: Tensor | None = None,
                   generator: torch.Generator | None = None, ks: Sequence[float] = (1.0, 2.0), ax=None,
                   title: str | None = None, lim: float | None = 4.0):
    r"""Samples :math:`x = \mu + L\varepsilon` of :math:`\mathcal N(\mu, \Sigma)` in 2-D with their 1- and 2-sigma ellipses.

    The legend gives the fraction of samples inside each ellipse next to the exact :math:`1 - e^{-k^2/2}`.

    Args:
        mu: ``(2,)``; cov: ``(2, 2)`` symmetric positive definite.
        n: number of samples (ignored if ``eps`` ``(n, 2)`` is given: reuse one ``eps`` to see the
            same noise reshaped by different covariances).
    Returns the axes.
    """
    mu, cov = torch.as_tensor(mu, dtype=torch.float64), torch.as_tensor(cov, dtype=torch.float64)
    _check_2d("mu", mu)
    L = D.cholesky(cov, name="cov")
    if eps is None:
        eps = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    x = G.sample_normal(mu, scale_tril=L, eps=eps.double())  # (n, 2)
    ax = new_axes(ax, figsize=(4.5, 4.5))
    ax.scatter(*_np(x).T, s=4, alpha=0.35, color="tab:blue", label=f"{len(x)} samples  x = mu + L eps")
    # squared Mahalanobis distance ||L^{-1}(x - mu)||^2 decides which ellipse a sample is in
    m2 = torch.linalg.solve_triangular(L, (x - mu).T, upper=False).pow(2).sum(0)
    for k, colour in zip(ks, ("k", "tab:red", "tab:green")):
        inside = float((m2 <= k**2).double().mean())
        gaussian_ellipse(mu, L, k=k, ax=ax, color=colour,
                         label=f"{k:g}-sigma ellipse: {100 * inside:.1f}% inside (exact {100 * (1 - math.exp(-k**2 / 2)):.1f}%)")
    ax.plot(*_np(mu), "k+", ms=12, mew=2)
    if lim:
        ax.set_xlim(float(mu[0]) - lim, float(mu[0]) + lim)
        ax.set_ylim(float(mu[1]) - lim, float(mu[1]) + lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    ax.set_title(title or rf"$\Sigma$ = [[{cov[0, 0]:.2f}, {cov[0, 1]:.2f}], [{cov[1, 0]:.2f}, {cov[1, 1]:.2f}]]")
    return ax


def generator_samples(gen, *, n: int = 2000, z_show: Tensor | None = None, k: float = 2.0,
                      generator: torch.Generator | None = None, ax=None, title: str | None = None,
                      colorbar: bool = True, cmap: str = "viridis"):
    r"""Draws of a 2-D generator coloured by their latent :math:`z_1`, with the conditional ellipses.

    For a :class:`~vae_course.generators.ProbabilisticGenerator` the k-sigma ellipse of
    :math:`\mathcal N(\mu(z), \Sigma(z))` and its centre :math:`\mu(z)` are drawn for each row of
    ``z_show`` (default: a few quantiles of the prior along :math:`z_1`); with ``z_dim = 1`` the
    mean curve :math:`z \mapsto \mu(z)` is drawn too. A
    :class:`~vae_course.generators.DeterministicGenerator` has no ellipse: its draws are on the curve.
    Returns the axes.
    """
    if gen.x_dim != 2:
        raise ValueError(f"gen: got x_dim = {gen.x_dim}; generator_samples needs x_dim = 2")
    ax = new_axes(ax, figsize=(5, 4.5))
    with torch.no_grad():
        x, z = gen.sample(n, generator=generator, return_z=True)
        sc = ax.scatter(*_np(x).T, c=_np(z[:, 0]), s=4, alpha=0.5, cmap=cmap, vmin=-2.5, vmax=2.5)
        if colorbar:
            plt.colorbar(sc, ax=ax, label="latent $z_1$")
        if gen.z_dim == 1:
            grid = torch.linspace(-2.5, 2.5, 300)[:, None]
            curve = gen.statistics(grid).mu if hasattr(gen, "statistics") else gen(grid)
            ax.plot(*_np(curve).T, color="k", lw=1, alpha=0.6, label=r"mean curve $\mu(z)$")
        if hasattr(gen, "statistics"):
            if z_show is None:
                z_show = torch.zeros(5, gen.z_dim)
                z_show[:, 0] = torch.tensor([-1.5, -0.75, 0.0, 0.75, 1.5])
            stats = gen.statistics(z_show)
            L = stats.scale()
            colours = plt.get_cmap(cmap)((_np(z_show[:, 0]) + 2.5) / 5.0)
            for i in range(len(z_show)):
                gaussian_ellipse(stats.mu[i], L[i], k=k, ax=ax, color="k", lw=2.6)
                gaussian_ellipse(stats.mu[i], L[i], k=k, ax=ax, color=colours[i], lw=1.6)
            ax.plot(*_np(stats.mu).T, "kx", ms=7, mew=2, label=rf"$\mu(z)$ and {k:g}-sigma ellipse of $p(x\mid z)$")
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.9)
    if title:
        ax.set_title(title)
    return ax


def generator_conditional(gen, z: float | Tensor, *, n: int = 400, eps: Tensor | None = None,
                          generator: torch.Generator | None = None, background: Tensor | None = None,
                          ax=None, lim: float = 2.2, title: str | None = None):
    r"""One latent value: the cloud :math:`x \sim p(x\mid z)` with its 1- and 2-sigma ellipses, over the marginal.

    Args:
        gen: a 2-D ProbabilisticGenerator; z: a number (``z_dim = 1``) or a ``(z_dim,)`` tensor.
        eps: ``(n, 2)`` noise to reuse (the cloud then moves smoothly as z changes).
        background: ``(N, 2)`` marginal draws shown in grey (e.g. ``gen.sample(3000)``).
    Returns the axes.
    """
    if gen.x_dim != 2:
        raise ValueError(f"gen: got x_dim = {gen.x_dim}; generator_conditional needs x_dim = 2")
    zt = torch.as_tensor(z, dtype=torch.float32).reshape(1, -1)
    ax = new_axes(ax, figsize=(4.5, 4.5))
    with torch.no_grad():
        if background is not None:
            ax.scatter(*_np(background).T, s=2, color="0.75", alpha=0.5, label="marginal $p(x)$")
        stats = gen.statistics(zt)
        if eps is None:
            eps = torch.randn(n, 2, generator=generator)
        x = gen.sample_conditional(zt.expand(len(eps), -1), eps=eps)
        ax.scatter(*_np(x).T, s=5, color="tab:blue", alpha=0.6, label=r"$x \sim p(x\mid z)$")
        L = stats.scale()[0]
        gaussian_ellipse(stats.mu[0], L, k=1, ax=ax, color="k", label="1 sigma")
        gaussian_ellipse(stats.mu[0], L, k=2, ax=ax, color="tab:red", label="2 sigma")
        ax.plot(*_np(stats.mu[0]), "k+", ms=12, mew=2)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.9)
    ax.set_title(title or f"z = {', '.join(f'{v:.2f}' for v in zt[0].tolist())}")
    return ax


def marginal_vs_gaussian(x: Tensor, *, ax=None, title: str | None = None, bins: int = 60):
    r"""Marginal draws next to the single Gaussian with the same mean and covariance.

    2-D ``x`` ``(N, 2)``: scatter plus the moment-matched Gaussian's 1- and 2-sigma ellipses;
    1-D ``x`` ``(N,)`` or ``(N, 1)``: histogram plus that Gaussian's density. Returns the axes.
    """
    x = torch.as_tensor(x).detach().double()
    if x.dim() == 2 and x.shape[1] == 1:
        x = x[:, 0]
    ax = new_axes(ax, figsize=(4.5, 4.5))
    if x.dim() == 1:
        m, s = x.mean(), x.std()
        ax.hist(_np(x), bins=bins, density=True, color="0.7", label="samples of $p(x)$")
        grid = torch.linspace(float(x.min()), float(x.max()), 400, dtype=torch.float64)
        pdf = torch.exp(-0.5 * ((grid - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
        ax.plot(_np(grid), _np(pdf), color="tab:red", lw=2, label="Gaussian with the same mean and variance")
        ax.set_xlabel("$x$")
        ax.set_ylabel("density")
    else:
        _check_2d("x", x)
        m, S = x.mean(0), torch.cov(x.T)
        ax.scatter(*_np(x).T, s=3, alpha=0.35, color="0.4", label="samples of $p(x)$")
        L = D.cholesky(S, name="cov(x)")
        gaussian_ellipse(m, L, k=1, ax=ax, color="tab:red", ls="--", label="same-moment Gaussian, 1 sigma")
        gaussian_ellipse(m, L, k=2, ax=ax, color="tab:red", ls=":", label="same-moment Gaussian, 2 sigma")
        ax.plot(*_np(m), "+", color="tab:red", ms=14, mew=2.5, label="its mean (= its mode)")
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=7, framealpha=0.9)
    if title:
        ax.set_title(title)
    return ax


def pixel_noise_grid(mu: Tensor, sigmas: Sequence[float] = (1.0, 0.3, 0.1, 0.0), *,
                     generator: torch.Generator | None = None, axes=None):
    r"""Rows of :math:`x = \mu + \sigma\varepsilon` for images ``mu`` ``(N, 1, H, W)`` in [0, 1], one row per sigma.

    Shows why an identity covariance (:math:`\sigma = 1`) gives noise, not digits: each pixel gets
    independent noise of standard deviation 1 on a [0, 1] scale (shown clipped to [0, 1]).
    ``sigma = 0`` shows the mean itself. Returns the array of axes.
    """
    mu = torch.as_tensor(mu).detach().float()
    if mu.dim() != 4 or mu.shape[1] != 1:
        raise ValueError(f"mu: got shape {tuple(mu.shape)}; need images (N, 1, H, W)")
    if axes is None:
        _, axes = plt.subplots(len(sigmas), 1, figsize=(min(1 + 0.6 * len(mu), 10), 1.1 * len(sigmas) + 0.3))
    axes = np.atleast_1d(axes)
    for ax, s in zip(axes, sigmas):
        if s < 0:
            raise ValueError(f"sigmas: got {s}; need standard deviations >= 0")
        flat = mu.flatten(1)  # (N, H*W): each image is one d-dimensional mean
        x = flat if s == 0 else G.sample_normal(flat, logvar=torch.full_like(flat, 2 * math.log(s)), generator=generator)
        image_grid(x.reshape(mu.shape).clamp(0, 1), nrow=len(mu), ax=ax)
        ax.set_ylabel(rf"$\sigma$ = {s:g}" if s > 0 else "mean", rotation=0, ha="right", va="center")
    return axes


def latent_integrand(gen, x_points: Tensor, *, z_range: tuple[float, float] = (-4.0, 4.0), n_grid: int = 2001,
                     ax=None, labels: Sequence[str] | None = None):
    r"""The integrand :math:`p_\theta(x\mid z)\,p(z)` of :math:`p_\theta(x) = \int p_\theta(x\mid z)\,p(z)\,dz` along a 1-D latent.

    One curve per row of ``x_points`` ``(K, x_dim)``; the legend gives the area under each curve
    (trapezoid rule on ``n_grid`` points of ``z_range``), i.e. :math:`p_\theta(x)`. Only possible because
    ``z_dim = 1``: a grid with 2001 points per axis would need :math:`2001^m` points in m latent
    dimensions. Returns the axes.
    """
    if gen.z_dim != 1:
        raise ValueError(f"gen: got z_dim = {gen.z_dim}; latent_integrand needs z_dim = 1 (a 1-D grid)")
    x_points = torch.as_tensor(x_points, dtype=torch.float32)
    if x_points.dim() != 2 or x_points.shape[1] != gen.x_dim:
        raise ValueError(f"x_points: got shape {tuple(x_points.shape)}; need (K, {gen.x_dim})")
    ax = new_axes(ax, figsize=(6, 3.5))
    z = torch.linspace(z_range[0], z_range[1], n_grid)[:, None]  # (n_grid, 1)
    log_prior = -0.5 * (z[:, 0] ** 2 + math.log(2 * math.pi))
    with torch.no_grad():
        for i, x in enumerate(x_points):
            integrand = torch.exp(gen.log_prob(x.expand(n_grid, -1), z) + log_prior)  # (n_grid,)
            area = float(torch.trapezoid(integrand, z[:, 0]))
            name = labels[i] if labels is not None else f"x = ({', '.join(f'{v:.2f}' for v in x.tolist())})"
            value = f"{area:.3g}" if area > 0 else "0 (underflows)"
            ax.plot(_np(z[:, 0]), _np(integrand), lw=2, label=f"{name}:  p(x) = area = {value}")
            ax.fill_between(_np(z[:, 0]), 0, _np(integrand), alpha=0.2)
    ax.set_xlabel("latent $z$")
    ax.set_ylabel(r"$p(x\mid z)\,p(z)$")
    ax.legend(fontsize=8)
    return ax
