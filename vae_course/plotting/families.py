r"""Figures of appendix A (the other families): the context an autoregressive conditional reads, a 2-D flow's
density and samples layer by layer, the finite-memory sweep and the side-by-side comparison.

Every function takes ``ax`` (or ``axes``) and returns what it drew on.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from ..families.compare import FamilyResult
from ..families.coupling_flow import CouplingFlow
from .collapse import draw_dependencies
from .common import image_grid, new_axes

__all__ = ["context_plot", "flow_density", "flow_layers", "memory_curve", "family_bars", "sample_panels", "family_curves"]

Limits = tuple[tuple[float, float], tuple[float, float]]
MOONS_LIM: Limits = ((-1.6, 2.6), (-1.1, 1.6))  # the two-moons box, with a margin


def context_plot(model, pixel: tuple[int, int], *, ax=None, name: str | None = None, seed: int = 0):
    r"""The pixels that the conditional of ``pixel`` (row, column) reads, measured: :math:`|\partial\ell_i/\partial x_j| > 0`
    at a random binary image, for an autoregressive model with ``logits(x)`` over ``(B, D)`` (its config's
    ``x_shape`` is ``(1, H, W)``). The pixel itself is red; read pixels dark; the title counts them, after ``name``.
    Returns the axes."""
    _, h, w = model.config.x_shape
    i = pixel[0] * w + pixel[1]
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((1, h * w), 0.5), generator=g).to(next(model.parameters()).device).requires_grad_(True)
    model.logits(x)[0, i].backward()
    seen = (x.grad[0].abs() > 0).float().cpu().reshape(h, w).numpy()
    ax = draw_dependencies(new_axes(ax, (3, 3)), seen, pixel)
    ax.set_title(f"{name + ': ' if name else ''}pixel {tuple(pixel)} reads {int(seen.sum())} pixels", fontsize=9)
    return ax


def _grid(lim: Limits, resolution: int) -> tuple[Tensor, tuple[int, int]]:
    (x0, x1), (y0, y1) = lim
    nx, ny = resolution, max(2, int(resolution * (y1 - y0) / (x1 - x0)))
    gx, gy = torch.meshgrid(torch.linspace(x0, x1, nx), torch.linspace(y0, y1, ny), indexing="xy")
    return torch.stack([gx, gy], -1).reshape(-1, 2), (ny, nx)


@torch.no_grad()
def _density(flow: CouplingFlow, points: Tensor, blocks: int) -> Tensor:
    """The density of :math:`h_{blocks}` at ``points`` given in the data's axes (the permutations undone)."""
    upto = 2 * blocks
    order = flow.coordinate_order(upto)
    device = next(flow.parameters()).device
    return flow.log_density(points[:, order].to(device), upto=upto).exp().cpu()


def flow_density(flow: CouplingFlow, *, blocks: int | None = None, lim: Limits = MOONS_LIM, resolution: int = 160,
                 data: Tensor | None = None, ax=None, title: str | None = None):
    r"""The density of a 2-D flow on a grid: of :math:`x` (default), or of the state after ``blocks`` coupling blocks,
    with ``data`` ``(N, 2)`` as dots if given. Returns the axes."""
    if flow.config.x_dim != 2:
        raise ValueError(f"flow: got a flow on {flow.config.x_dim} coordinates; flow_density draws 2-D flows")
    blocks = flow.config.n_couplings if blocks is None else blocks
    points, shape = _grid(lim, resolution)
    p = _density(flow, points, blocks).reshape(shape).numpy()
    ax = new_axes(ax, (4.5, 3.2))
    (x0, x1), (y0, y1) = lim
    ax.imshow(p, origin="lower", extent=(x0, x1, y0, y1), cmap="magma", aspect="auto")
    if data is not None:
        d = data.detach().cpu()
        ax.scatter(d[:, 0], d[:, 1], s=1, c="white", alpha=0.3, linewidths=0)
    ax.set_title(title or f"density after {blocks} coupling blocks", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


@torch.no_grad()
def flow_layers(flow: CouplingFlow, z: Tensor, *, blocks: Sequence[int] | None = None, lim: Limits = MOONS_LIM,
                resolution: int = 120, axes=None):
    r"""A 2-D flow layer by layer: for each number of coupling blocks :math:`j` in ``blocks``, the density of
    :math:`h_j` (top row) and the base points ``z`` ``(N, 2)`` pushed through the first :math:`j` blocks (bottom row),
    coloured by the angle of :math:`z` so one can follow them. Every panel is drawn in the data's axes (the
    permutations undone) on the box ``lim``. Returns the ``(2, len(blocks))`` axes."""
    if flow.config.x_dim != 2:
        raise ValueError(f"flow: got a flow on {flow.config.x_dim} coordinates; flow_layers draws 2-D flows")
    blocks = list(range(0, flow.config.n_couplings + 1, 2)) if blocks is None else list(blocks)
    if axes is None:
        _, axes = plt.subplots(2, len(blocks), figsize=(2.4 * len(blocks), 4.4), squeeze=False)
    axes = np.asarray(axes).reshape(2, len(blocks))
    z = z.detach().to(next(flow.parameters()).device)
    states = flow.trajectory(z)
    hue = torch.atan2(z[:, 1], z[:, 0]).cpu().numpy()
    (x0, x1), (y0, y1) = lim
    for col, j in enumerate(blocks):
        flow_density(flow, blocks=j, lim=lim, resolution=resolution, ax=axes[0, col],
                     title="base $z$" if j == 0 else f"after {j} coupling block{'s' if j > 1 else ''}")
        h = states[j][:, torch.argsort(flow.coordinate_order(2 * j)).to(z.device)].cpu()  # in the data's axes
        axes[1, col].scatter(h[:, 0], h[:, 1], c=hue, cmap="twilight", s=2, linewidths=0)
        axes[1, col].set_xlim(x0, x1)
        axes[1, col].set_ylim(y0, y1)
        axes[1, col].set_xticks([])
        axes[1, col].set_yticks([])
    axes[0, 0].set_ylabel("density")
    axes[1, 0].set_ylabel("samples")
    return axes


def memory_curve(memories: Sequence[int], log_px: Sequence[float], *, references: Mapping[str, float] | None = None,
                 ax=None):
    """Test log-likelihood (nats per image) of finite-memory models against their memory :math:`k`, with horizontal
    lines for ``references`` (name -> nats per image, e.g. the GRU). Returns the axes."""
    if len(memories) != len(log_px) or not memories:
        raise ValueError(f"memories, log_px: got {len(memories)} and {len(log_px)} values; need the same number, >= 1")
    ax = new_axes(ax, (5, 3.4))
    ax.plot(list(memories), list(log_px), "o-", label="finite memory")
    for i, (name, value) in enumerate((references or {}).items()):
        ax.axhline(value, ls="--", color=f"C{i + 1}", label=name)
    ax.set_xlabel("memory $k$ (previous pixels read)")
    ax.set_ylabel("test log p(x)  [nats per image]")
    ax.legend(fontsize=8)
    return ax


def family_bars(results: Sequence[FamilyResult], *, axes=None):
    """Three panels, one bar per family: the test log-likelihood (nats per image; hatched where it is a lower bound),
    the training time and the time to draw the samples (log scale). Returns the axes."""
    if not results:
        raise ValueError("results: got none; need a list of FamilyResult")
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    names = [r.family for r in results]
    colours = [f"C{i}" for i in range(len(results))]
    y = np.arange(len(results))
    bars = axes[0].barh(y, [r.log_px for r in results], color=colours)
    for bar, r in zip(bars, results):
        if "bound" in r.kind:
            bar.set_hatch("//")
    axes[0].set_xlim(min(r.log_px for r in results) * 1.1, 0)
    axes[0].set_xlabel("test log p(x)  [nats per image]; hatched: a lower bound")
    axes[1].barh(y, [r.train_seconds for r in results], color=colours)
    axes[1].set_xlabel("training time [s]")
    axes[2].barh(y, [1000 * r.sample_seconds for r in results], color=colours)
    axes[2].set_xscale("log")
    axes[2].set_xlabel(f"time to draw {results[0].n_samples} images [ms], log scale")
    for ax in axes:
        ax.set_yticks(y)
        ax.set_yticklabels(names if ax is axes[0] else [])
        ax.invert_yaxis()
    return axes


def sample_panels(images: Mapping[str, Tensor], *, nrow: int = 4, axes=None):
    """One tiled panel per entry of ``images`` (name -> ``(N, 1, H, W)``), side by side, titled by the name. Returns
    the axes."""
    if not images:
        raise ValueError("images: got an empty mapping; need name -> (N, 1, H, W) images")
    if axes is None:
        _, axes = plt.subplots(1, len(images), figsize=(2.8 * len(images), 3.3), squeeze=False)
    axes = np.asarray(axes).reshape(-1)
    for ax, (name, x) in zip(axes, images.items()):
        image_grid(x, nrow=nrow, ax=ax, title=name)
    return axes


def family_curves(histories: Mapping[str, object], term: str = "loss", *, ax=None):
    """The test values of ``term`` against the epoch for several :class:`~vae_course.history.History` objects (name ->
    history), one line each. Returns the axes."""
    if not histories:
        raise ValueError("histories: got an empty mapping; need name -> History")
    ax = new_axes(ax, (6.5, 3.6))
    for name, history in histories.items():
        if term not in history.test:
            raise ValueError(f"term: {name!r} has no test values of {term!r}; recorded: {sorted(history.test)}")
        ax.plot(history.test_epochs, history.test[term], "o-", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test {term}  [nats per image]")
    ax.legend(fontsize=8)
    return ax
