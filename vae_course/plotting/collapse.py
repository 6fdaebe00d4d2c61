"""Figures of chapter 7 (posterior collapse): masks and receptive fields, KL per dimension, warm-up schedules,
decoding several latents with shared decoder noise, and the free-bits sweep."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from .. import collapse as C
from .. import objectives as O
from ..models.masked import PixelCNN, causal_mask
from .common import image_grid, new_axes

__all__ = ["mask_plot", "receptive_field_plot", "kl_dims_bars", "warmup_plot", "shared_noise_grid", "free_bits_sweep_plot"]


def mask_plot(kernel_size: int = 5, *, axes=None):
    """The two causal masks side by side: kept weights dark, the centre pixel outlined. Returns the axes."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(6, 3))
    c = kernel_size // 2
    for ax, kind in zip(axes, ("A", "B")):
        ax.imshow(causal_mask(kernel_size, kind).numpy(), cmap="Blues", vmin=0, vmax=1.4)
        ax.add_patch(plt.Rectangle((c - 0.5, c - 0.5), 1, 1, fill=False, color="crimson", lw=2.5))
        ax.set_xticks(np.arange(-0.5, kernel_size), minor=True)
        ax.set_yticks(np.arange(-0.5, kernel_size), minor=True)
        ax.grid(which="minor", color="white", lw=1.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"mask {kind}: centre {'excluded' if kind == 'A' else 'included'}")
    return axes


def receptive_field_plot(net: PixelCNN, pixel: tuple[int, int], size: tuple[int, int] = (8, 8), *, ax=None,
                         title: str | None = None, seed: int = 0):
    r"""Which input pixels the output at ``pixel`` depends on, measured by the gradient
    :math:`|\partial \ell_{r,c} / \partial x|` at a random binary input (the PixelCNN ``net`` as it is). Returns the axes."""
    ax = new_axes(ax, (3, 3))
    g = torch.Generator().manual_seed(seed)
    h, w = size
    x = torch.bernoulli(torch.full((1, net.in_channels, h, w), 0.5), generator=g).requires_grad_(True)
    cond = None
    if net.cond_dim is not None:
        cond = torch.randn(1, net.cond_dim, generator=g)
    net(x, cond)[0, :, pixel[0], pixel[1]].sum().backward()
    seen = (x.grad[0].abs().sum(0) > 0).float().numpy()  # (H, W)
    draw_dependencies(ax, seen, pixel)
    ax.set_title(title or f"pixel {pixel} sees {int(seen.sum())} pixels")
    return ax


def draw_dependencies(ax, seen: np.ndarray, pixel: tuple[int, int]):
    """Draw a 0/1 map ``seen`` ``(H, W)`` of the pixels an output depends on (blue) and that output's ``pixel``
    (red) on a white cell grid; the receptive-field pictures of chapter 7 and appendix A. Returns the axes."""
    h, w = seen.shape
    ax.imshow(np.where(seen > 0, 1.0, 0.0), cmap="Blues", vmin=0, vmax=1.4)
    ax.add_patch(plt.Rectangle((pixel[1] - 0.5, pixel[0] - 0.5), 1, 1, color="crimson"))
    ax.set_xticks(np.arange(-0.5, w), minor=True)
    ax.set_yticks(np.arange(-0.5, h), minor=True)
    ax.grid(which="minor", color="white", lw=1)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def kl_dims_bars(kl_dims: Mapping[str, Tensor | Sequence[float]], *, ax=None, floor: float | None = None,
                 title: str = "KL per latent dimension (test digits)"):
    """Grouped bars of the mean KL of each latent dimension, one colour per model; ``floor`` draws the free-bits line."""
    ax = new_axes(ax, (7, 3.2))
    names = list(kl_dims)
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        v = np.asarray(torch.as_tensor(kl_dims[name]).detach().cpu(), dtype=float)
        ax.bar(np.arange(len(v)) + (i - (len(names) - 1) / 2) * width, v, width=width, label=name)
    if floor is not None:
        ax.axhline(floor, color="k", ls="--", lw=1, label=f"floor lambda = {floor:g}")
    ax.set_xlabel("latent dimension j")
    ax.set_ylabel("mean KL (nats)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def warmup_plot(n_steps: int, total_steps: int, *, histories: Mapping[str, Any] | None = None, steps_per_epoch: int = 1,
                step: int | None = None, axes=None):
    """Left: the KL weight of the linear and sigmoid warm-ups over training (a marker at ``step``). Right, if
    ``histories`` (name -> :class:`~vae_course.history.History`) are given: their training KL per epoch."""
    if axes is None:
        _, axes = plt.subplots(1, 2 if histories else 1, figsize=(11 if histories else 5.5, 3.4), squeeze=False)
        axes = axes[0]
    t = np.arange(total_steps + 1)
    colour = {"linear": "C1", "sigmoid": "C2"}  # the same colours mark the runs with that warm-up on the right
    for kind in O.WARMUP_KINDS:
        beta = [O.warmup_beta(kind, s, n_steps) for s in t]
        axes[0].plot(t, beta, label=kind, color=colour[kind])
        if step is not None:
            axes[0].plot([step], [O.warmup_beta(kind, step, n_steps)], "o", color=colour[kind])
    axes[0].set_xlabel("optimiser step")
    axes[0].set_ylabel("KL weight beta")
    axes[0].set_title(f"KL warm-up over {n_steps} of {total_steps} steps")
    axes[0].legend()
    if histories:
        ax = axes[1]
        others = iter(["C0", "C3", "C4", "C5", "C6", "C7", "C8", "C9"])
        for name, h in histories.items():
            epochs = np.arange(1, len(h.train["kl"]) + 1) * steps_per_epoch
            c = next((colour[k] for k in colour if k in name), None) or next(others)
            ax.plot(epochs, h.train["kl"], marker=".", label=name, color=c)
        ax.axvline(n_steps, color="grey", ls=":", lw=1)
        if step is not None:
            ax.axvline(step, color="k", lw=1)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("KL (nats, training batches)")
        ax.set_yscale("log")
        ax.set_title("KL term during training")
        ax.legend(fontsize=8)
    return axes


def shared_noise_grid(dep: C.SampleDependence, *, ax=None, title: str | None = None):
    """The images of :func:`vae_course.collapse.sample_dependence`: a row per decoder noise, a column per latent."""
    n_noise, n_z = dep.images.shape[:2]
    ax = image_grid(dep.images.reshape(n_noise * n_z, *dep.images.shape[2:]), nrow=n_z, ax=ax)
    ax.set_title(title or f"same noise along a row, new z per column: {100 * dep.changed_z:.0f}% of pixels change")
    return ax


def free_bits_sweep_plot(sweep: dict[str, Any], lam: float | None = None, *, axes=None):
    """Chapter 7's free-bits sweep: left, the KL per dimension at floor ``lam`` (mean over seeds); right, the test
    bound and the information in z (KL and I(x; z)) against the floor, with ``lam`` marked."""
    summary = C.summarize_sweep(sweep)
    lams = list(summary)
    lam = lams[len(lams) // 2] if lam is None else min(lams, key=lambda v: abs(v - lam))
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(15, 3.6))
    s = summary[lam]
    kl_dims_bars({f"lambda = {lam:g}": s["kl_dims"]}, ax=axes[0], floor=lam if lam else None,
                 title=f"KL per dimension, floor {lam:g} (mean of {s['n']} seeds)")
    axes[0].set_ylim(0, max(1.1 * max(max(v["kl_dims"]) for v in summary.values()), 0.1))
    x = np.arange(len(lams))
    labels = [f"{v:g}" for v in lams]
    bound = [summary[v]["bound"] for v in lams]
    axes[1].errorbar(x, bound, yerr=[summary[v]["bound_sd"] for v in lams], marker="o", capsize=3,
                     label="IWAE bound L_50 (closer to log p(x))")
    axes[1].plot(x, [summary[v]["elbo"] for v in lams], marker="s", ls="--", label="ELBO")
    axes[1].plot([lams.index(lam)], [s["bound"]], "o", ms=12, mfc="none", mec="crimson", mew=2)
    axes[1].set_ylabel("nats per test image (higher is better)")
    axes[1].set_title("what the floor costs")
    axes[1].legend(fontsize=8)
    for key, label in (("kl", "KL term"), ("mi", "I(x; z)"), ("gap", "swap-test gap")):
        axes[2].plot(x, [summary[v][key] for v in lams], marker="o", label=label)
    axes[2].axvline(lams.index(lam), color="crimson", lw=1.5)
    axes[2].set_ylabel("nats")
    axes[2].set_title("what the floor buys")
    axes[2].legend(fontsize=8)
    for ax in axes[1:]:
        ax.set_xticks(x, labels)
        ax.set_xlabel("free-bits floor lambda (nats per dimension)")
    return axes
