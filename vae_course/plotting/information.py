"""Figures for chapter 0: two distributions and the information quantities between them, and the
"why p(x)?" pictures (a classifier's confident predictions on non-digits, log p(x) histograms)."""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from .. import information as info
from ..distributions import kl_normal_diag
from .common import new_axes

__all__ = ["categorical_bars", "gaussian_pair", "prediction_grid"]

_P_COLOUR, _Q_COLOUR = "tab:blue", "tab:orange"


def _fmt(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3f}"


def categorical_bars(p: Tensor, q: Tensor, *, labels: Sequence[str] | None = None, base: float | None = None,
                     ax=None, names: tuple[str, str] = ("p", "q")):
    """Bars of two categorical distributions side by side; the title gives H(p), H(p,q), KL(p||q) and KL(q||p).

    Args:
        p, q: ``(K,)`` probability vectors.
        labels: the K outcome names (default 0..K-1).
        base: ``None`` for nats, ``2`` for bits (the unit is written in the title).
    Returns: the axes.
    """
    p, q = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
    if p.dim() != 1 or q.shape != p.shape:
        raise ValueError(f"p, q: got shapes {tuple(p.shape)} and {tuple(q.shape)}; need two vectors of the same length K")
    k = p.shape[0]
    labels = [str(i) for i in range(k)] if labels is None else list(labels)
    if len(labels) != k:
        raise ValueError(f"labels: got {len(labels)} names; need K = {k}")
    h_p, h_pq = info.entropy(p, base=base).item(), info.cross_entropy(p, q, base=base).item()
    kl_pq, kl_qp = info.kl_divergence(p, q, base=base).item(), info.kl_divergence(q, p, base=base).item()
    ax = new_axes(ax, figsize=(6, 3.6))
    pos, width = np.arange(k), 0.4
    ax.bar(pos - width / 2, p.numpy(), width, color=_P_COLOUR, label=names[0])
    ax.bar(pos + width / 2, q.numpy(), width, color=_Q_COLOUR, label=names[1])
    ax.set_xticks(pos, labels)
    ax.set_ylim(0, max(1.0, float(torch.maximum(p, q).max()) * 1.1))
    ax.set_ylabel("probability")
    ax.legend(loc="upper right")
    a, b = names
    unit = "nats" if base is None else ("bits" if base == 2 else f"log base {base:g}")
    ax.set_title(f"H({a})={_fmt(h_p)}  H({a},{b})={_fmt(h_pq)}  [{unit}]\n"
                 f"KL({a}||{b})={_fmt(kl_pq)}  KL({b}||{a})={_fmt(kl_qp)}", fontsize=10)
    return ax


def gaussian_pair(mu_p: float, sigma_p: float, mu_q: float, sigma_q: float, *, ax=None, x_range: tuple[float, float] | None = None):
    """Densities of p = N(mu_p, sigma_p^2) and q = N(mu_q, sigma_q^2), with their differential entropies
    h = 1/2 log(2 pi e sigma^2) (negative when sigma < 0.242) and the closed-form KL both ways, in nats.

    A dashed line marks density 1: where a density rises above it, -log p(x) < 0 there.
    Returns: the axes.
    """
    for name, s in (("sigma_p", sigma_p), ("sigma_q", sigma_q)):
        if not s > 0:
            raise ValueError(f"{name}: got {s!r}; need a positive standard deviation")
    h = lambda s: 0.5 * math.log(2 * math.pi * math.e * s**2)  # noqa: E731
    t = lambda v: torch.tensor([float(v)], dtype=torch.float64)  # noqa: E731
    kl = lambda m1, s1, m2, s2: kl_normal_diag(t(m1), t(2 * math.log(s1)), t(m2), t(2 * math.log(s2))).item()  # noqa: E731
    if x_range is None:
        lo = min(mu_p - 4 * sigma_p, mu_q - 4 * sigma_q)
        hi = max(mu_p + 4 * sigma_p, mu_q + 4 * sigma_q)
    else:
        lo, hi = x_range
    x = np.linspace(lo, hi, 600)
    pdf = lambda m, s: np.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))  # noqa: E731
    ax = new_axes(ax, figsize=(6, 3.6))
    ax.plot(x, pdf(mu_p, sigma_p), color=_P_COLOUR, lw=2, label=f"p = N({mu_p:.2g}, {sigma_p:.2g}²)")
    ax.plot(x, pdf(mu_q, sigma_q), color=_Q_COLOUR, lw=2, label=f"q = N({mu_q:.2g}, {sigma_q:.2g}²)")
    ax.axhline(1.0, color="grey", ls="--", lw=1)
    ax.text(lo, 1.0, " density 1", va="bottom", ha="left", color="grey", fontsize=8)
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, max(1.1, 1.1 / (min(sigma_p, sigma_q) * math.sqrt(2 * math.pi))))
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"h(p)={h(sigma_p):.3f}  h(q)={h(sigma_q):.3f}  [nats]\n"
                 f"KL(p||q)={kl(mu_p, sigma_p, mu_q, sigma_q):.3f}  KL(q||p)={kl(mu_q, sigma_q, mu_p, sigma_p):.3f}",
                 fontsize=10)
    return ax


def prediction_grid(images: Tensor, probs: Tensor, *, true_labels: Tensor | None = None, ncol: int = 8,
                    axes=None, title: str | None = None):
    """Images with the classifier's verdict above each: predicted class and its probability.

    Args:
        images: ``(N, 1, H, W)`` or ``(N, H, W)`` in [0, 1].
        probs: ``(N, C)`` class probabilities (``vc.discriminative.predict(model, images).probs``).
        true_labels: optional ``(N,)``; a wrong prediction is then written in red.
        axes: an array of at least N axes (default: a new figure with ``ncol`` columns).
    Returns: the array of axes.
    """
    imgs = images.detach().cpu().reshape(len(images), *images.shape[-2:])
    probs = probs.detach().cpu()
    if probs.shape[0] != len(imgs):
        raise ValueError(f"probs: got {probs.shape[0]} rows for {len(imgs)} images; need one row per image")
    n = len(imgs)
    fig = None
    if axes is None:
        nrow = math.ceil(n / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(1.3 * ncol, 1.5 * nrow + (0.3 if title else 0)), squeeze=False)
        if title:
            fig.suptitle(title, fontsize=11)
    flat = np.asarray(axes).ravel()
    conf, label = probs.max(-1)
    for i, ax in enumerate(flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(imgs[i].numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        wrong = true_labels is not None and int(true_labels[i]) != int(label[i])
        ax.set_title(f"{int(label[i])}: {conf[i].item():.0%}", fontsize=9, color="tab:red" if wrong else "black")
    if fig is not None:
        fig.tight_layout()
    return axes
