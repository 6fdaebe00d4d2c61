"""Chapter 2 figures: the threshold mixture, infinite mixtures, fitted densities, the naive estimator.

A "density" argument below may be a generator with a 1- or 2-D latent (its marginal is computed by
quadrature, :func:`vae_course.mixtures.log_marginal_quadrature`), a
:class:`~vae_course.mixtures.GaussianFit`, or a function from points to density values.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from .. import mixtures as M
from .common import new_axes

__all__ = ["threshold_histogram", "infinite_mixture", "fitted_density_1d", "fitted_density_2d",
           "generator_maps_1d", "marginal_fit_losses", "naive_estimator_curves"]

_FINE_GRID = {1: 2048, 2: 128}  # quadrature nodes per latent dimension for plotting a marginal (spacing 0.008 / 0.13)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _density_fn(obj) -> Callable[[Tensor], Tensor]:
    """Points ``(G, d)`` -> density ``(G,)`` for a generator, a GaussianFit or a function."""
    if isinstance(obj, M.GaussianFit):
        return lambda pts: obj.log_prob(pts).exp()
    if hasattr(obj, "statistics") and hasattr(obj, "z_dim"):
        if obj.z_dim not in _FINE_GRID:
            raise ValueError(f"density: got a generator with z_dim={obj.z_dim}; plots need z_dim 1 or 2 (quadrature)")

        def fn(pts: Tensor) -> Tensor:
            with torch.no_grad():
                return M.log_marginal_quadrature(obj, pts, _FINE_GRID[obj.z_dim]).exp()
        return fn
    if callable(obj):
        return obj
    raise TypeError(f"density: got {type(obj).__name__}; need a generator, a GaussianFit or a function")


def threshold_histogram(theta: float, *, n: int = 20_000, seed: int = 0, bins: int = 80,
                        x_range: tuple[float, float] = (-4.0, 5.0), ax=None):
    r"""Histogram of ``n`` draws of the threshold generator against its exact density
    :math:`\theta\,\mathcal N(0,1) + (1-\theta)\,\mathcal N(1,1)` and the two weighted components.
    The title gives the fraction of draws with :math:`\mu = 0` next to :math:`\theta`. Returns the axes."""
    gen = M.ThresholdGenerator(theta)
    x, z = gen.sample(n, generator=torch.Generator().manual_seed(seed), return_z=True)
    grid = torch.linspace(*x_range, 600, dtype=torch.float64)
    ax = new_axes(ax, figsize=(6.5, 3.6))
    ax.hist(_np(x), bins=bins, range=x_range, density=True, color="0.8", label=f"{n} draws through $G_\\theta$")
    ax.plot(_np(grid), _np(theta * M.mixture_density(grid, [1.0], [0.0], [1.0])), "--", color="tab:blue",
            label=r"$\theta\,\mathcal{N}(x;0,1)$")
    ax.plot(_np(grid), _np((1 - theta) * M.mixture_density(grid, [1.0], [1.0], [1.0])), "--", color="tab:orange",
            label=r"$(1-\theta)\,\mathcal{N}(x;1,1)$")
    ax.plot(_np(grid), _np(gen.density(grid)), color="black", lw=2, label=r"exact $P_\theta(x)$")
    frac0 = float((z < theta).double().mean())
    ax.set_title(f"theta = {theta:.2f}: {100 * frac0:.1f}% of the draws have mu = 0")
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    ax.set_ylim(0, 0.45)
    ax.legend(fontsize=8, loc="upper right")
    return ax


def infinite_mixture(model, n_components: int, *, x_range: tuple[float, float] = (-4.0, 4.0), ax=None,
                     show_total: bool = True):
    r"""A generator with a 1-D latent and 1-D output as a mixture: ``n_components`` equal-weight bumps
    :math:`\tfrac1K\mathcal N(x; G(z_k), s^2)` at the prior's quantiles :math:`z_k`, their sum, and the
    marginal :math:`P(x)` (2048-node quadrature). As K grows the sum becomes :math:`P(x)`. Returns the axes."""
    if getattr(model, "z_dim", None) != 1 or getattr(model, "x_dim", None) != 1:
        raise ValueError("model: need a generator with z_dim = 1 and x_dim = 1")
    grid = torch.linspace(*x_range, 600)
    nodes = M.latent_grid(n_components, rule="quantile")
    with torch.no_grad():
        comps = (M.log_likelihood_matrix(model, grid, nodes.z) + nodes.log_w).exp()  # (G, K)
        total = _density_fn(model)(grid)
    ax = new_axes(ax, figsize=(6.5, 3.6))
    colours = plt.cm.viridis(np.linspace(0, 1, n_components))
    for k in range(n_components):
        ax.plot(_np(grid), _np(comps[:, k]), color=colours[k], lw=1)
    ax.plot(_np(grid), _np(comps.sum(1)), color="tab:red", lw=2, label=f"sum of the {n_components} bumps")
    if show_total:
        ax.plot(_np(grid), _np(total), "k--", lw=1.5, label=r"$P(x)=\int \mathcal{N}(x;G(z),s^2)\,p(z)\,dz$")
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    ax.set_title(f"{n_components} latent values, each a Gaussian bump of weight 1/{n_components}")
    ax.legend(fontsize=8, loc="upper right")
    return ax


def fitted_density_1d(x: Tensor, densities: Mapping[str, object], *, target: Callable[[Tensor], Tensor] | None = None,
                      x_range: tuple[float, float] | None = None, bins: int = 60, ax=None, title: str | None = None):
    """Histogram of the data ``x`` ``(N,)`` with one curve per entry of ``densities`` (label -> density;
    a :class:`~vae_course.mixtures.GaussianFit` is drawn thick and pale red, below the others) and, if given,
    the target's exact density as a thick grey line. Returns the axes."""
    x = x.detach().reshape(-1)
    if x_range is None:
        lo, hi = float(x.min()), float(x.max())
        pad = 0.15 * (hi - lo)
        x_range = (lo - pad, hi + pad)
    grid = torch.linspace(*x_range, 500)
    ax = new_axes(ax, figsize=(5, 3.5))
    ax.hist(_np(x), bins=bins, range=x_range, density=True, color="0.85", label="data")
    if target is not None:
        ax.plot(_np(grid), _np(target(grid.double())), color="0.45", lw=4, alpha=0.6, label="target")
    # single Gaussians first, thick and pale, so a generator that reproduces one stays visible on top
    for label, obj in sorted(densities.items(), key=lambda kv: not isinstance(kv[1], M.GaussianFit)):
        style = dict(color="tab:red", lw=4, alpha=0.45) if isinstance(obj, M.GaussianFit) else dict(lw=1.6)
        ax.plot(_np(grid), _np(_density_fn(obj)(grid)), label=label, **style)
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    return ax


def fitted_density_2d(density, *, data: Tensor | None = None, xlim: tuple[float, float] = (-1.5, 2.5),
                      ylim: tuple[float, float] = (-1.0, 1.5), n_grid: int = 100, curve=None, ax=None,
                      title: str | None = None):
    """The density on a grid as an image, the data on top (small dots) and, for a generator with a
    1-D latent passed as ``curve``, the curve :math:`z \\mapsto G(z)`, :math:`z\\in[-3, 3]`. Returns the axes."""
    xs, ys = torch.linspace(*xlim, n_grid), torch.linspace(*ylim, n_grid)
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)  # (G*G, 2)
    dens = _density_fn(density)(pts).reshape(n_grid, n_grid)
    ax = new_axes(ax, figsize=(4.5, 3.5))
    ax.imshow(_np(dens), origin="lower", extent=(*xlim, *ylim), cmap="magma", aspect="auto", interpolation="bilinear")
    if data is not None:
        ax.scatter(*_np(data).T, s=1, color="white", alpha=0.35)
    if curve is not None:
        with torch.no_grad():
            mu = curve.statistics(torch.linspace(-3, 3, 400)[:, None]).mu
        ax.plot(*_np(mu).T, color="cyan", lw=1, label="$G_\\theta(z)$, $z\\in[-3,3]$")
        ax.legend(fontsize=7, loc="lower left")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def generator_maps_1d(models: Mapping[str, object], *, ideal: Tensor | None = None, z_range=(-3.0, 3.0), ax=None):
    r"""The learned maps :math:`z\mapsto G_\theta(z)` of 1-D generators (label -> model), and ``ideal``: values of
    :math:`F^{-1}(\Phi(z))` on the same 300-point z grid (see :func:`vae_course.mixtures.quantile_generator_1d`).

    The prior is symmetric, so :math:`G(-z)` fits exactly as well as :math:`G(z)`: if the last model is
    decreasing, the ideal map is drawn mirrored, :math:`F^{-1}(\Phi(-z))`. Returns the axes."""
    z = torch.linspace(*z_range, 300)[:, None]
    ax = new_axes(ax, figsize=(4.5, 3.5))
    with torch.no_grad():
        maps = {label: model.statistics(z).mu[:, 0] for label, model in models.items()}
    if ideal is not None:
        ideal = ideal.reshape(-1)
        label = r"$F^{-1}(\Phi(z))$"
        if maps and float(list(maps.values())[-1][-1] - list(maps.values())[-1][0]) < 0:
            ideal, label = ideal.flip(0), r"$F^{-1}(\Phi(-z))$"
        ax.plot(_np(z[:, 0]), _np(ideal), color="0.45", lw=4, alpha=0.6, label=label)
    for label, mu in maps.items():
        ax.plot(_np(z[:, 0]), _np(mu), lw=1.6, label=label)
    ax.set_xlabel("latent $z$")
    ax.set_ylabel(r"$\mu = G_\theta(z)$")
    ax.legend(fontsize=7)
    return ax


def marginal_fit_losses(histories: Mapping[str, "M.FitHistory"], *, reference: Mapping[str, float] | None = None,
                        ax=None, title: str | None = None):
    """Training curves (negative log-likelihood per point) and horizontal reference levels
    (label -> value, e.g. the single Gaussian's and the target's). Returns the axes."""
    ax = new_axes(ax, figsize=(5, 3.5))
    for label, h in histories.items():
        ax.plot(np.arange(1, len(h.losses) + 1), h.losses, lw=1.4, label=label)
    for i, (label, value) in enumerate((reference or {}).items()):
        ax.axhline(value, color=f"{0.2 + 0.3 * i:.1f}", ls="--", lw=1, label=label)
    finals = [h.final_loss for h in histories.values()] + list((reference or {}).values())
    lo, hi = min(finals), max(finals)
    ax.set_ylim(lo - 0.1 * (hi - lo) - 0.05, hi + 0.5 * (hi - lo) + 0.2)
    ax.set_xlabel("Adam step")
    ax.set_ylabel("negative log-likelihood (nats per point)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return ax


def naive_estimator_curves(rows: Sequence["M.NaiveStudy"], *, against: str = "z_dim", axes=None):
    """Two panels from :func:`vae_course.mixtures.naive_estimator_study` rows: the median relative error
    :math:`|\\hat P/P-1|` and the median effective sample size (with K for reference), against the latent
    dimension (``against="z_dim"``) or the number of samples K (``"n_samples"``). Returns the two axes."""
    if against not in ("z_dim", "n_samples"):
        raise ValueError(f"against: got {against!r}; need 'z_dim' or 'n_samples'")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    xs = [getattr(r, against) for r in rows]
    xlabel = "latent dimension $m$" if against == "z_dim" else "number of prior samples $K$"
    axes[0].plot(xs, [r.rel_error for r in rows], "o-", color="tab:red")
    axes[0].set_yscale("log")
    axes[0].set_ylabel(r"median $|\hat P(x)/P(x) - 1|$")
    axes[1].plot(xs, [r.ess for r in rows], "o-", color="tab:blue", label="effective sample size")
    axes[1].plot(xs, [r.n_samples for r in rows], "k--", lw=1, label="K (all samples count)")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("median ESS")
    axes[1].legend(fontsize=8)
    for a in axes:
        a.set_xlabel(xlabel)
        a.set_xscale("log", base=2 if against == "z_dim" else 10)
    return axes
