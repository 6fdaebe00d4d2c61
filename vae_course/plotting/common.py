"""Plot helpers shared by all chapters."""
from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

__all__ = ["image_grid", "new_axes", "score_histograms", "history_curves"]


def new_axes(ax=None, figsize=(5, 4)):
    """Return ``ax`` or a fresh axes of the given size."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def image_grid(images: Tensor, *, nrow: int | None = None, ax=None, title: str | None = None,
               cmap: str = "gray_r", pad: int = 1, vmin: float = 0.0, vmax: float = 1.0):
    """Tile ``images`` (``(N, H, W)``, ``(N, 1, H, W)`` or ``(N, H*W)`` with square images) into one picture.

    Returns the axes. Values are shown on [vmin, vmax] (default [0, 1], ink dark on white).
    """
    if not isinstance(images, Tensor):
        images = torch.as_tensor(np.asarray(images))
    x = images.detach().to("cpu", torch.float32)
    if x.dim() == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ValueError(f"images: got flat vectors of length {x.shape[1]}; need a square number of pixels or (N, H, W)")
        x = x.reshape(-1, side, side)
    elif x.dim() == 4:
        if x.shape[1] != 1:
            raise ValueError(f"images: got {x.shape[1]} channels; need greyscale (N, 1, H, W)")
        x = x[:, 0]
    elif x.dim() != 3:
        raise ValueError(f"images: got shape {tuple(images.shape)}; need (N, H, W), (N, 1, H, W) or (N, H*W)")
    n, h, w = x.shape
    if n == 0:
        raise ValueError("images: got an empty batch; need at least one image")
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    canvas = torch.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad), float(vmin))
    for i in range(n):
        r, c = divmod(i, nrow)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = x[i]
    ax = new_axes(ax, figsize=(min(1 + 0.5 * nrow, 10), min(1 + 0.5 * ncol, 10)))
    ax.imshow(canvas.numpy(), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def score_histograms(scores: Mapping[str, Tensor], *, ax=None, bins: int = 40, xlabel: str = "log p(x)  [nats]",
                     clip_quantile: float | None = None):
    """Overlaid histograms of a per-input score (e.g. log p(x)) for several groups, on shared bins.

    Used where a density model separates real data from noise or shifted data (chapters 0 and 5).

    Args:
        scores: maps a group name to a ``(N,)`` tensor of scores.
        clip_quantile: if given, values below this quantile of all scores are drawn in the lowest bin,
            so a few extreme outliers do not squash the rest of the plot.
    Returns: the axes.
    """
    if not scores:
        raise ValueError("scores: got an empty mapping; need at least one group name -> (N,) tensor")
    values = {k: torch.as_tensor(v).detach().cpu().flatten().double() for k, v in scores.items()}
    allv = torch.cat(list(values.values()))
    lo = float(allv.quantile(clip_quantile)) if clip_quantile is not None else float(allv.min())
    edges = np.linspace(lo, float(allv.max()), bins + 1)
    ax = new_axes(ax, figsize=(6, 3.4))
    for name, v in values.items():
        ax.hist(v.clamp(min=lo).numpy(), bins=edges, alpha=0.6, label=f"{name} (mean {v.mean():.0f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    return ax


def history_curves(history, term: str = "loss", ax=None, *, label: str | None = None, logy: bool = False):
    """Train (solid) and test (dashed, markers) curves of ``term`` of a :class:`~vae_course.history.History`
    against the epoch. Returns the axes."""
    ax = new_axes(ax, figsize=(5, 3.5))
    name = label or term
    if term in history.train:
        line, = ax.plot(range(1, len(history.train[term]) + 1), history.train[term], label=f"{name} (train)")
        colour = line.get_color()
    else:
        colour = None
    if term in history.test:
        ax.plot(history.test_epochs, history.test[term], "o--", ms=3, color=colour, label=f"{name} (test)")
    if term not in history.train and term not in history.test:
        raise ValueError(f"term: got {term!r}; recorded terms: {sorted(set(history.train) | set(history.test))}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{term} (nats per example)")
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    return ax
