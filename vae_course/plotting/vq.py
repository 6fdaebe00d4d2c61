r"""Figures for chapter 8 (VQ-VAE): nearest-codeword cells in 2-D, codebook usage, code maps, editing one code.

Every function takes ``ax`` (or ``axes``) and returns what it drew on.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle
from torch import Tensor

from ..models.quantizer import nearest_code
from .common import image_grid, new_axes

__all__ = ["quantization_2d", "codebook_usage_bars", "code_map", "code_edit", "edit_codes"]


def quantization_2d(z: Tensor, codebook: Tensor, *, ax=None, title: str | None = None, lim: float | None = None,
                    resolution: int = 300):
    r"""2-D encoder outputs ``z`` ``(N, 2)`` and codewords ``codebook`` ``(K, 2)``: the background shows which codeword
    is nearest at every point (the cells of the quantiser), each point is drawn in the colour of its cell."""
    ax = new_axes(ax, (4.5, 4.5))
    z, codebook = z.detach().cpu().float(), codebook.detach().cpu().float()
    lim = lim or float(torch.cat([z, codebook]).abs().max()) * 1.1
    g = torch.linspace(-lim, lim, resolution)
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    cells = nearest_code(grid, codebook).reshape(resolution, resolution).numpy()
    cmap = plt.get_cmap("tab10" if len(codebook) <= 10 else "tab20")
    ax.imshow(cells, origin="lower", extent=(-lim, lim, -lim, lim), cmap=cmap, vmin=0, vmax=cmap.N - 1, alpha=0.25,
              interpolation="nearest")
    idx = nearest_code(z, codebook).numpy()
    ax.scatter(z[:, 0], z[:, 1], c=idx, cmap=cmap, vmin=0, vmax=cmap.N - 1, s=8, linewidths=0)
    ax.scatter(codebook[:, 0], codebook[:, 1], c=np.arange(len(codebook)), cmap=cmap, vmin=0, vmax=cmap.N - 1, s=140,
               marker="*", edgecolors="black", linewidths=0.8, label="codewords $e_k$")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$z_{e,1}$")
    ax.set_ylabel("$z_{e,2}$")
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def codebook_usage_bars(usage, *, ax=None, title: str | None = None, color: str = "C0"):
    r"""Code frequencies of a :class:`~vae_course.vq.CodebookUsage`, sorted from most to least used, with the
    uniform level :math:`1/K`; the title gives the perplexity and the fraction of dead codes."""
    ax = new_axes(ax, (5, 3))
    p = usage.probs.detach().cpu().sort(descending=True).values.numpy()
    k = len(p)
    ax.bar(np.arange(k), p, width=0.9, color=color)
    ax.axhline(1 / k, color="black", lw=1, ls="--", label=f"uniform 1/K = 1/{k}")
    ax.set_xlabel("codes, most used first")
    ax.set_ylabel("frequency")
    ax.set_xlim(-0.7, k - 0.3)
    ax.legend(fontsize=8)
    head = f"{title}\n" if title else ""
    ax.set_title(f"{head}perplexity {usage.perplexity:.1f} of K = {k}, dead {usage.dead_fraction:.0%}", fontsize=10)
    return ax


def code_map(codes: Tensor, *, n_codes: int | None = None, ax=None, title: str | None = None, highlight=None):
    """One code map ``(h, w)`` as coloured cells with the code index written in each; ``highlight``:
    ``(row, col, size)`` draws a box around an edited block."""
    ax = new_axes(ax, (3, 3))
    c = codes.detach().cpu().numpy()
    n_codes = n_codes or int(c.max()) + 1
    ax.imshow(c, cmap="tab20" if n_codes <= 20 else "viridis", vmin=0, vmax=max(n_codes - 1, 1), interpolation="nearest")
    for (r, col), v in np.ndenumerate(c):
        ax.text(col, r, str(v), ha="center", va="center", fontsize=7, color="white",
                bbox=dict(boxstyle="round,pad=0.1", fc="black", alpha=0.35, lw=0))
    if highlight is not None:
        r, col, size = highlight
        ax.add_patch(Rectangle((col - 0.5, r - 0.5), size, size, fill=False, ec="red", lw=2))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def edit_codes(codes: Tensor, row: int, col: int, code: int, size: int = 1) -> Tensor:
    """A copy of the code map ``codes`` ``(h, w)`` with the ``size x size`` block at ``(row, col)`` set to ``code``."""
    h, w = codes.shape
    if not (0 <= row <= h - size and 0 <= col <= w - size):
        raise ValueError(f"row, col: got ({row}, {col}) with size {size}; need the block inside the {h}x{w} map")
    out = codes.clone()
    out[row:row + size, col:col + size] = code
    return out


@torch.no_grad()
def code_edit(model, codes: Tensor, row: int, col: int, code: int, *, size: int = 1, axes=None):
    """Decode a code map ``(h, w)`` as it is and with the block at ``(row, col)`` replaced by ``code``:
    four panels (original image, original codes, edited codes, edited image). Returns the axes."""
    if axes is None:
        _, axes = plt.subplots(1, 4, figsize=(11, 3))
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    try:
        edited = edit_codes(codes, row, col, code, size)
        images = model.decode_codes(torch.stack([codes, edited]).to(device)).mean.cpu()
    finally:
        model.train(was)
    k = model.config.n_codes
    image_grid(images[:1], ax=axes[0], title="decoded codes")
    code_map(codes, n_codes=k, ax=axes[1], title="code map", highlight=(row, col, size))
    code_map(edited, n_codes=k, ax=axes[2], title=f"block set to code {code}", highlight=(row, col, size))
    image_grid(images[1:], ax=axes[3], title="decoded edit")
    return axes
