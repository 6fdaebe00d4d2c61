"""Chapter 9 figures: a planar layer bending a Gaussian, true and approximate posteriors in 2-D, the aggregate
posterior against the prior, and the stored two-level study."""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from ..distributions import log_normal_std
from ..flows import planar_invertible_u, planar_transform
from .common import new_axes

__all__ = ["planar_flow_plot", "posterior_contours", "aggregate_posterior_plot", "gap_bars", "hierarchy_study_plot"]


def planar_flow_plot(w: tuple[float, float] = (2.0, 0.0), u: tuple[float, float] = (1.0, 0.5), b: float = 0.0, *,
                     limit: float = 3.0, n: int = 161, ax=None, title: str | None = None):
    r"""The density of :math:`f(z_0)`, :math:`z_0\sim\mathcal N(0, I_2)`, for one planar layer
    :math:`f(z) = z + \hat u\tanh(w^\top z + b)` (``u`` made invertible), by change of variables:
    :math:`\log q(f(z_0)) = \log\mathcal N(z_0) - \log|\det\partial f/\partial z_0|`, drawn on the warped grid
    :math:`f(z_0)`. The dashed line is where :math:`w^\top z + b = 0` before the map. Returns the axes."""
    ax = new_axes(ax, figsize=(4.2, 4))
    wt, ut = torch.tensor(w, dtype=torch.float64), torch.tensor(u, dtype=torch.float64)
    uh = planar_invertible_u(wt, ut)
    reach = limit + float(uh.norm()) + 0.5  # z0 over a wider square, so that its image covers the view
    axis = torch.linspace(-reach, reach, n, dtype=torch.float64)
    z0 = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1)  # (n, n, 2)
    z, log_det = planar_transform(z0, wt, uh, torch.tensor(b, dtype=torch.float64))
    density = torch.exp(log_normal_std(z0, validate=False) - log_det)
    top = float(torch.quantile(density.flatten(), 0.995))  # a layer that contracts makes a thin, very high ridge
    ax.set_facecolor(plt.get_cmap("viridis")(0.0))
    ax.pcolormesh(z[..., 0].numpy(), z[..., 1].numpy(), density.numpy(), shading="gouraud", cmap="viridis",
                  vmin=0.0, vmax=top)
    if float(wt.norm()) > 0:
        t = np.linspace(-2 * limit, 2 * limit, 2)
        normal = wt.numpy() / float(wt.norm())
        base = -b * normal / float(wt.norm())
        ax.plot(base[0] - t * normal[1], base[1] + t * normal[0], "w--", lw=1)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title or f"one planar layer: w = ({w[0]:.2g}, {w[1]:.2g}), u = ({u[0]:.2g}, {u[1]:.2g}), b = {b:.2g}",
                 fontsize=9)
    return ax


def posterior_contours(axis: Tensor, log_density: Tensor, *, samples: Mapping[str, Tensor] | None = None, ax=None,
                       title: str | None = None, zoom: float = 1e-3, max_points: int = 400):
    r"""Contours of a (possibly unnormalised) 2-D log-density on the grid ``axis`` x ``axis`` (``log_density``
    ``(G*G,)`` or ``(G, G)``, row-major in :math:`(z_1, z_2)`, as :func:`vae_course.beyond.latent_grid` makes it), with
    draws of approximate posteriors on top (``samples``: name -> ``(S, 2)``). The view is cut to where the density
    exceeds ``zoom`` times its maximum. Returns the axes."""
    ax = new_axes(ax, figsize=(4.2, 4))
    g = len(axis)
    dens = torch.exp(log_density.reshape(g, g).double() - log_density.max()).T.numpy()  # rows: z_2, columns: z_1
    a = axis.numpy()
    ax.contour(a, a, dens, levels=[0.01, 0.1, 0.3, 0.6, 0.9], colors="k", linewidths=0.8)
    for (name, s), marker in zip((samples or {}).items(), ("o", "^", "s", "D")):
        s = s[:max_points].detach().cpu().numpy()
        ax.scatter(s[:, 0], s[:, 1], s=6, alpha=0.5, marker=marker, label=name)
    inside = dens > zoom
    if inside.any():
        cols, rows = np.where(inside.any(0))[0], np.where(inside.any(1))[0]
        pad = 0.15 * max(a[cols[-1]] - a[cols[0]], a[rows[-1]] - a[rows[0]], 1e-3)
        ax.set_xlim(a[cols[0]] - pad, a[cols[-1]] + pad)
        ax.set_ylim(a[rows[0]] - pad, a[rows[-1]] + pad)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if samples:
        ax.legend(fontsize=7, loc="upper right", markerscale=2)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def aggregate_posterior_plot(mu: Tensor, labels: Tensor, prior, *, limit: float = 4.0, ax=None, title: str | None = None):
    """The posterior means ``mu`` ``(N, 2)`` of encoded images, coloured by their ``labels`` ``(N,)``, over the contours of
    the 2-D ``prior`` (a module with ``log_prob``). Returns the axes."""
    ax = new_axes(ax, figsize=(4.4, 4))
    axis = torch.linspace(-limit, limit, 161)
    z = torch.cartesian_prod(axis, axis)
    device = next(iter(prior.parameters()), next(iter(prior.buffers()), z)).device
    with torch.no_grad():
        log_p = prior.log_prob(z.to(device)).cpu().reshape(161, 161).T  # rows: z_2
    dens = torch.exp(log_p - log_p.max()).numpy()
    ax.contourf(axis.numpy(), axis.numpy(), dens, levels=[0.02, 0.1, 0.3, 0.6, 1.0], cmap="Greys", alpha=0.6)
    m = mu.detach().cpu().numpy()
    sc = ax.scatter(m[:, 0], m[:, 1], c=labels.cpu().numpy(), cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title, fontsize=9)
    plt.colorbar(sc, ax=ax, ticks=range(10), fraction=0.046, pad=0.02, label="digit")
    return ax


def gap_bars(gaps: Mapping[str, float], *, errors: Mapping[str, float] | None = None, ax=None,
             ylabel: str = "log p(x) - ELBO  [nats]", title: str | None = None):
    """One bar per posterior family: its gap in nats (``errors``: optional standard errors), the value written on top.
    Returns the axes."""
    ax = new_axes(ax, figsize=(5, 3.4))
    names = list(gaps)
    values = [gaps[n] for n in names]
    err = [errors.get(n, 0.0) for n in names] if errors else None
    bars = ax.bar(range(len(names)), values, yerr=err, color="tab:blue", capsize=3)
    for bar, v in zip(bars, values):
        ax.annotate(f"{v:.3f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=8)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, max(values) * 1.18 if max(values) > 0 else 1)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def hierarchy_study_plot(study: Mapping, *, axes=None, epochs: int | None = None):
    """The stored two-level study (:func:`vae_course.beyond.load_hierarchy_study`): the IWAE bound and the ELBO of each
    configuration (dots: seeds; bars: their mean), and the KL of the top and the bottom level. Rows with ``epochs``
    (default: the most common) only. Returns the two axes."""
    rows = study["rows"]
    if epochs is None:
        counts = {}
        for r in rows:
            counts[r["epochs"]] = counts.get(r["epochs"], 0) + 1
        epochs = max(counts, key=counts.get)
    rows = [r for r in rows if r["epochs"] == epochs]
    configs = list(dict.fromkeys(r["config"] for r in rows))
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    ax0, ax1 = axes
    for i, c in enumerate(configs):
        rs = [r for r in rows if r["config"] == c]
        for key, dx, colour in (("iwae", -0.18, "tab:blue"), ("elbo", 0.18, "tab:orange")):
            vals = [r[key] for r in rs]
            ax0.bar(i + dx, np.mean(vals) - min(r["elbo"] for r in rows) + 1, bottom=min(r["elbo"] for r in rows) - 1,
                    width=0.34, color=colour, alpha=0.5, label=("IWAE bound" if key == "iwae" else "ELBO") if i == 0 else None)
            ax0.scatter([i + dx] * len(vals), vals, color=colour, s=12, zorder=3)
        kb, kt = np.mean([r["kl_bottom"] for r in rs]), np.mean([r["kl_top"] for r in rs])
        ax1.bar(i, kb, color="tab:green", label="bottom level (or the one level)" if i == 0 else None)
        ax1.bar(i, kt, bottom=kb, color="tab:red", label="top level" if i == 0 else None)
    for ax in axes:
        ax.set_xticks(range(len(configs)), [c.replace(" + ", "\n+ ") for c in configs], fontsize=8)
    ax0.set_ylabel("nats per test digit")
    ax0.set_title(f"bounds on log p(x) ({epochs} epochs; dots: seeds)", fontsize=10)
    ax0.legend(fontsize=8)
    ax1.set_ylim(0, 1.12 * max(np.mean([r["kl_bottom"] + r["kl_top"] for r in rows if r["config"] == c]) for c in configs))
    ax1.set_ylabel("KL per test digit [nats]")
    ax1.set_title("where the KL goes: bottom and top level", fontsize=10)
    ax1.legend(fontsize=8)
    return axes

