r"""Schematic diagrams of the book: the models drawn as boxes and arrows, saved as SVG files in ``book/figures/``.

Every other figure of the book is a plot of data; these show the structure of a model. Each function draws one
diagram on an axes (``ax=None`` makes a figure of the diagram's own size) and returns the axes;
:func:`write_diagrams` saves all of them as SVG, and ``vae-course diagrams --out book/figures`` is the command
that wrote the files the book includes (``--check`` only compares; a test fails when a file differs from what this
module draws). The conventions are those of stochastic computation graphs (Schulman et al., 2015): boxes are
deterministic functions, ellipses are random variables, black arrows run forward, red dashed arrows carry
gradients backward.

==============================  ===========================================================  ==========
file (``book/figures/*.svg``)   what it shows                                                chapter
==============================  ===========================================================  ==========
``probabilistic_generator``     deterministic vs probabilistic generator, the three steps     1
``graphical_model``             :math:`z\to x` in a plate, and the inference arrow             3
``reparameterised_vae``         encoder, sampler, decoder: the gradient paths with and         4, 5
                                without reparameterisation
``masked_convolution``          raster order, and how stacked masked convolutions see          7
                                the past (with the blind spot)
``vq_vae``                      quantiser, codebook, straight-through path, the prior          8
``coupling_layer``              an affine coupling layer and a flow as a composition           0, A
``hierarchical_vae``            a two-level VAE: top-down generation and inference             0, 9
==============================  ===========================================================  ==========
"""
from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch, Rectangle
from torch import Tensor

from ..models.masked import causal_mask

__all__ = ["probabilistic_generator_diagram", "graphical_model_diagram", "reparameterised_vae_diagram",
           "masked_convolution_diagram", "vq_vae_diagram", "coupling_layer_diagram", "hierarchical_vae_diagram",
           "stacked_receptive_field", "DIAGRAMS", "write_diagrams", "add_arguments", "run"]

# one colour per role, the same in every diagram
DATA, ENCODER, DECODER, NOISE, LOSS, PRIOR = "#e6e6e6", "#cfe2f3", "#d9ead3", "#fff2cc", "#ead1dc", "#fce5cd"
EDGE, GRAD, SCORE = "#333333", "#c0392b", "#7d3c98"
FONT_SCALE = 1.35  # the diagrams are 9-13 inches wide and shown about 7.5 inches wide


@dataclass
class _Node:
    x: float
    y: float
    patch: object


def _canvas(ax, size: tuple[float, float]):
    """Axes in inches: x in [0, width], y in [0, height], equal aspect, no frame."""
    if ax is None:
        fig = plt.figure(figsize=size)
        ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, size[0])
    ax.set_ylim(0, size[1])
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def _node(ax, x: float, y: float, text: str, *, w: float = 1.3, h: float = 0.6, fc: str = "white",
          shape: str = "box", fontsize: float = 11, ls: str = "-", ec: str = EDGE) -> _Node:
    """A labelled box (deterministic) or ellipse (random variable) centred at (x, y)."""
    if shape == "ellipse":
        patch = Ellipse((x, y), w, h, fc=fc, ec=ec, lw=1.3, ls=ls)
    else:
        patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.08",
                               fc=fc, ec=ec, lw=1.3, ls=ls)
    ax.add_patch(patch)
    _text(ax, x, y, text, ha="center", va="center", fontsize=fontsize)
    return _Node(x, y, patch)


def _arrow(ax, a, b, *, color: str = EDGE, ls: str = "-", lw: float = 1.4, rad: float = 0.0,
           label: str | None = None, at: float = 0.5, offset: tuple[float, float] = (0.0, 0.18),
           fontsize: float = 9.5, head: str = "-|>"):
    """An arrow from ``a`` to ``b`` (nodes are clipped at their outline), with an optional label near its middle."""
    pa, pb = (a.x, a.y) if isinstance(a, _Node) else a, (b.x, b.y) if isinstance(b, _Node) else b
    arrow = FancyArrowPatch(pa, pb, arrowstyle=head, mutation_scale=13, color=color, lw=lw, ls=ls,
                            connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2,
                            patchA=a.patch if isinstance(a, _Node) else None,
                            patchB=b.patch if isinstance(b, _Node) else None)
    ax.add_patch(arrow)
    if label:
        mx, my = pa[0] + at * (pb[0] - pa[0]), pa[1] + at * (pb[1] - pa[1])
        _text(ax, mx + offset[0], my + offset[1], label, ha="center", va="center", fontsize=fontsize, color=color)
    return arrow


def _title(ax, x: float, y: float, text: str, fontsize: float = 12, **kw) -> None:
    _text(ax, x, y, text, ha="left", va="center", fontsize=fontsize, weight="bold", **kw)


def _text(ax, x: float, y: float, text: str, fontsize: float = 10, **kw):
    """``ax.text`` with the font scaled by :data:`FONT_SCALE`: the diagrams are shown at the width of the page's text,
    about 7.5 inches, so their letters are drawn larger than a plot's."""
    return ax.text(x, y, text, fontsize=fontsize * FONT_SCALE, **kw)


def probabilistic_generator_diagram(ax=None):
    r"""Chapter 1: a deterministic generator :math:`x = G_\theta(z)` above a probabilistic one,
    :math:`z \to (\mu, L) = G_\theta(z) \to x = \mu + L\varepsilon`, with the three steps of the recipe."""
    ax = _canvas(ax, (11, 4.6))
    _title(ax, 0.2, 4.3, "deterministic generator (a GAN's)")
    z1 = _node(ax, 1.2, 3.4, r"$z \sim \mathcal{N}(0, I_m)$", w=1.9, h=0.7, fc=NOISE, shape="ellipse")
    g1 = _node(ax, 3.6, 3.4, r"network $G_\theta$", w=1.7, fc=DECODER)
    x1 = _node(ax, 6.0, 3.4, r"$x = G_\theta(z)$", w=1.7, fc=DATA)
    _arrow(ax, z1, g1)
    _arrow(ax, g1, x1)
    _text(ax, 7.1, 3.4, "every sample lies on the surface\n$\\{G_\\theta(z)\\}$: no density $p(x)$", va="center",
          fontsize=10)
    _title(ax, 0.2, 2.65, "probabilistic generator (a VAE's decoder)")
    z2 = _node(ax, 1.2, 1.35, r"$z \sim \mathcal{N}(0, I_m)$", w=1.9, h=0.7, fc=NOISE, shape="ellipse")
    g2 = _node(ax, 3.6, 1.35, r"network $G_\theta$", w=1.7, fc=DECODER)
    st = _node(ax, 5.9, 1.35, "statistics\n" r"$\mu_\theta(z),\ \Sigma_\theta(z) = LL^\top$", w=2.1, h=0.85, fc=DECODER)
    sm = _node(ax, 8.2, 1.35, r"$x = \mu + L\varepsilon$", w=1.6, fc="white")
    x2 = _node(ax, 10.1, 1.35, r"$x$", w=0.75, h=0.6, fc=DATA, shape="ellipse")
    eps = _node(ax, 8.2, 0.3, r"$\varepsilon \sim \mathcal{N}(0, I_d)$", w=1.9, h=0.5, fc=NOISE, shape="ellipse",
                fontsize=10)
    for a, b in ((z2, g2), (g2, st), (st, sm), (eps, sm), (sm, x2)):
        _arrow(ax, a, b)
    _text(ax, 1.2, 1.95, "1. draw a latent", ha="center", fontsize=10)
    _text(ax, 4.75, 2.05, "2. compute the statistics: one forward pass", ha="center", fontsize=10)
    _text(ax, 8.2, 1.95, "3. draw x", ha="center", fontsize=10)
    _text(ax, 10.1, 0.55, "$x \\sim p_\\theta(x\\mid z)$\n$= \\mathcal{N}(\\mu, \\Sigma)$", ha="center", va="center",
            fontsize=10)
    return ax


def graphical_model_diagram(ax=None):
    r"""Chapter 3: the latent-variable model as a graphical model (plate over :math:`N` data points),
    :math:`p_\theta(x, z) = p(z)\,p_\theta(x\mid z)`, with the dashed inference arrow :math:`q_w(z\mid x)`."""
    ax = _canvas(ax, (9, 4.4))
    ax.add_patch(FancyBboxPatch((1.3, 0.45), 2.6, 3.6, boxstyle="round,pad=0,rounding_size=0.15", fc="none",
                                ec=EDGE, lw=1.2))
    _text(ax, 3.7, 0.65, r"$N$", fontsize=12, ha="right")
    z = _node(ax, 2.6, 3.0, r"$z$", w=0.8, h=0.8, fc="white", shape="ellipse", fontsize=14)
    x = _node(ax, 2.6, 1.3, r"$x$", w=0.8, h=0.8, fc="#bfbfbf", shape="ellipse", fontsize=14)
    theta = _node(ax, 4.7, 1.3, r"$\theta$", w=0.55, h=0.55, fc="white", shape="ellipse", fontsize=12)
    w = _node(ax, 0.5, 3.0, r"$w$", w=0.55, h=0.55, fc="white", shape="ellipse", fontsize=12)
    _arrow(ax, z, x, label=r"$p_\theta(x\mid z)$", offset=(0.62, 0))
    _arrow(ax, theta, x)
    _arrow(ax, x, z, ls="--", rad=-0.55, color="#1f5fa8", label=r"$q_w(z\mid x)$", offset=(-1.1, -0.25))
    _arrow(ax, w, (2.12, 2.2), ls="--", color="#1f5fa8")
    _text(ax, 2.6, 3.72, r"$p(z) = \mathcal{N}(0, I)$", ha="center", fontsize=10)
    _text(ax, 5.3, 3.5, "solid: the generative model", fontsize=10.5, weight="bold")
    _text(ax, 5.3, 3.1, r"$p_\theta(x, z) = p(z)\,p_\theta(x\mid z)$", fontsize=10.5)
    _text(ax, 5.3, 2.45, "dashed: inference", fontsize=10.5, weight="bold", color="#1f5fa8")
    _text(ax, 5.3, 2.05, r"$q_w(z\mid x) \approx p_\theta(z\mid x)$", fontsize=10.5, color="#1f5fa8")
    _text(ax, 5.3, 1.65, r"$= p_\theta(x\mid z)\,p(z)\,/\,p_\theta(x)$", fontsize=10.5, color="#1f5fa8")
    _text(ax, 5.3, 0.9, "shaded: observed; white: latent\nplate: repeated for each data point", fontsize=9.5)
    return ax


def _vae_chain(ax, y: float, reparameterised: bool):
    """One row of :func:`reparameterised_vae_diagram`; returns its nodes."""
    x = _node(ax, 0.7, y, r"$x$", w=0.7, h=0.6, fc=DATA, shape="ellipse", fontsize=13)
    enc = _node(ax, 2.2, y, "encoder\nweights $w$", w=1.45, h=0.75, fc=ENCODER, fontsize=10)
    stats = _node(ax, 4.0, y, r"$\mu,\ \log\sigma^2$", w=1.45, fc=ENCODER)
    if reparameterised:
        z = _node(ax, 6.1, y, r"$z = \mu + \sigma \odot \varepsilon$", w=2.0, fc="white")
        eps = _node(ax, 6.1, y - 1.5, r"$\varepsilon \sim \mathcal{N}(0, I)$", w=1.9, h=0.55, fc=NOISE, shape="ellipse",
                    fontsize=10)
        _arrow(ax, eps, z)
    else:
        z = _node(ax, 6.1, y, r"$z \sim q_w(z\mid x)$", w=2.0, h=0.7, fc=NOISE, shape="ellipse")
        eps = None
    dec = _node(ax, 8.2, y, "decoder\nweights $\\theta$", w=1.45, h=0.75, fc=DECODER, fontsize=10)
    rec = _node(ax, 10.2, y, r"$\log p_\theta(x\mid z)$", w=1.7, fc=DECODER)
    kl = _node(ax, 6.1, y + 1.1, r"$\mathrm{KL}(q_w\,\|\,p(z))$", w=1.9, fc=LOSS)
    loss = _node(ax, 12.1, y + 1.1, r"$-\mathrm{ELBO}$", w=1.2, fc=LOSS)
    for a, b in ((x, enc), (enc, stats), (stats, z), (z, dec), (dec, rec), (stats, kl), (kl, loss), (rec, loss)):
        _arrow(ax, a, b)
    return dict(x=x, enc=enc, stats=stats, z=z, eps=eps, dec=dec, rec=rec, kl=kl, loss=loss)


def _backward(ax, a: _Node, b: _Node, label: str | None = None, *, color: str = GRAD, ls: str = "--",
              depth: float = 0.5, lw: float = 1.4, label_dy: float = 0.0):
    """A gradient arrow from node ``a`` back to node ``b`` (to its left), bulging below the forward chain."""
    dist = abs(a.x - b.x)
    _arrow(ax, a, b, color=color, ls=ls, lw=lw, rad=-2 * depth / dist)
    if label:
        _text(ax, (a.x + b.x) / 2, a.y - depth - 0.1 + label_dy, label, ha="center", va="top", fontsize=9.5, color=color)


def reparameterised_vae_diagram(ax=None):
    r"""Chapters 4 and 5: the VAE as a stochastic computation graph (Rezende et al., 2014; Schulman et al., 2015).
    Top: :math:`z` drawn from :math:`q_w(z\mid x)` is a random node, the pathwise gradient stops there (the naive
    zero); the KL term reaches :math:`w` through :math:`\mu, \log\sigma^2`, the reconstruction term only
    through the score-function path. Bottom: reparameterised, :math:`z = \mu + \sigma\odot
    \varepsilon`; the noise is a leaf, and backpropagation reaches both networks."""
    ax = _canvas(ax, (13, 8.6))
    _title(ax, 0.2, 8.35, "(a) sampling z directly: a random node between the networks")
    top = _vae_chain(ax, 6.5, reparameterised=False)
    _arrow(ax, top["loss"], top["rec"], color=GRAD, ls="--", rad=-0.3)
    _backward(ax, top["rec"], top["dec"], r"$\nabla_\theta$")
    _backward(ax, top["dec"], top["z"], r"$\nabla_z$")
    _backward(ax, top["z"], top["stats"], depth=0.45)
    _text(ax, 5.05, 6.05, r"$\times$", color=GRAD, fontsize=20, ha="center", va="center")
    _text(ax, 5.05, 5.7, r"$\partial z/\partial\mu = 0$: the naive zero", color=GRAD, fontsize=9.5, ha="center", va="center",
          bbox=dict(fc="white", ec="none", pad=1.0), zorder=5)
    # the closed-form KL term still differentiates through mu and log sigma^2 to w
    _arrow(ax, (top["kl"].x - 0.95, top["kl"].y - 0.1), (top["stats"].x - 0.25, top["stats"].y + 0.3), color=GRAD,
           ls="--", rad=0.25)
    _backward(ax, top["stats"], top["enc"])
    _text(ax, 3.3, 5.85, r"$\nabla_w$ (KL only)", ha="center", va="top", fontsize=9.5, color=GRAD)
    _backward(ax, top["z"], top["enc"], "score function: " r"$F(z)\,\nabla_w \log q_w(z\mid x)$", color=SCORE,
              ls=":", depth=1.9, lw=1.8, label_dy=0.05)
    _title(ax, 0.2, 3.6, "(b) reparameterised: the noise is a leaf, gradients reach both networks")
    bot = _vae_chain(ax, 1.95, reparameterised=True)
    _arrow(ax, bot["loss"], bot["rec"], color=GRAD, ls="--", rad=-0.3)
    _backward(ax, bot["rec"], bot["dec"], r"$\nabla_\theta$")
    _backward(ax, bot["dec"], bot["z"], r"$\nabla_z$")
    _backward(ax, bot["z"], bot["stats"], r"$\partial z/\partial\mu = 1$" "\n" r"$\partial z/\partial\sigma = \varepsilon$")
    _backward(ax, bot["stats"], bot["enc"], r"$\nabla_w$")
    _arrow(ax, (bot["kl"].x - 0.95, bot["kl"].y - 0.1), (bot["stats"].x - 0.25, bot["stats"].y + 0.3), color=GRAD,
           ls="--", rad=0.25)
    _text(ax, 7.3, 0.45, "no gradient to $\\varepsilon$:\nit depends on no weight", fontsize=9, color=GRAD, va="center")
    _text(ax, 12.9, 0.4, "boxes: deterministic     ellipses: random\nblack: forward     red dashed: gradient",
            fontsize=9, va="center", ha="right")
    return ax


def stacked_receptive_field(mask_types: Sequence[str], kernel_size: int = 3, shape: tuple[int, int] = (8, 8),
                            pixel: tuple[int, int] = (4, 4)) -> Tensor:
    r"""Which inputs a stack of masked convolutions lets the output at ``pixel`` see, and from which layer on.

    The output of layer :math:`\ell` at :math:`p` reads layer :math:`\ell - 1` at :math:`p + o` for every offset
    :math:`o` that the layer's :func:`~vae_course.models.masked.causal_mask` keeps, so the set of inputs it sees is
    :math:`R_\ell(p) = \bigcup_{o} R_{\ell-1}(p + o)`, :math:`R_0(p) = \{p\}`, cut at the image border (zero padding).
    Returns an ``(H, W)`` integer tensor: the first layer whose output at ``pixel`` sees each input, 0 if none.
    """
    h, w = shape
    offsets = []
    for kind in mask_types:
        m = causal_mask(kernel_size, kind)
        c = kernel_size // 2
        offsets.append([(int(i) - c, int(j) - c) for i, j in torch.nonzero(m)])
    first = torch.zeros(h, w, dtype=torch.long)
    for depth in range(1, len(offsets) + 1):
        reach = {pixel}  # positions of layer 0..depth, expanded from the output downwards
        for layer in reversed(offsets[:depth]):
            reach = {(r + dr, c + dc) for r, c in reach for dr, dc in layer if 0 <= r + dr < h and 0 <= c + dc < w}
        for r, c in reach:
            if first[r, c] == 0:
                first[r, c] = depth
    return first


def masked_convolution_diagram(ax=None, *, n_layers: int = 3, size: int = 9):
    r"""Chapter 7: the raster order and the past :math:`x_{<i}` of pixel :math:`i` (left); the 3x3 masks A and B
    (middle); what a stack of one mask-A and ``n_layers - 1`` mask-B layers sees, by layer, and the blind spot:
    earlier pixels that no stack of 3x3 masks reaches, however deep (right; computed by
    :func:`stacked_receptive_field`)."""
    ax = _canvas(ax, (13, 5.0))
    cell, top = 0.42, 4.35
    pixel = (size // 2, size // 2)
    field = stacked_receptive_field(["A"] + ["B"] * (n_layers - 1), 3, (size, size), pixel)
    ever = stacked_receptive_field(["A"] + ["B"] * (2 * size), 3, (size, size), pixel)  # as deep as it gets
    shades = ["#9ecae1", "#4292c6", "#08519c", "#08306b"]

    def grid(x0, n, colour_of, label):
        for r in range(n):
            for c in range(n):
                fc, hatch = colour_of(r, c)
                ax.add_patch(Rectangle((x0 + c * cell, top - (r + 1) * cell), cell, cell, fc=fc,
                                       ec="#a0a0a0" if hatch else "white", lw=1.2, hatch=hatch))
        _text(ax, x0 + n * cell / 2, top + 0.28, label, ha="center", fontsize=10.5, weight="bold")

    def past(r, c):
        if (r, c) == pixel:
            return GRAD, None
        return ("#c6dbef", None) if (r, c) < pixel else ("#f0f0f0", None)
    grid(0.3, size, past, "raster order: the past $x_{<i}$ of pixel $i$")
    _text(ax, 0.3 + size * cell / 2, top - size * cell - 0.35, "pixel $i$ (red) may depend on the blue ones only",
            ha="center", fontsize=9.5)
    for k, kind in enumerate("AB"):
        m = causal_mask(3, kind)
        x0 = 4.75 + k * 1.55
        for r in range(3):
            for c in range(3):
                fc = GRAD if (r, c) == (1, 1) and kind == "B" else ("#4292c6" if m[r, c] else "#f0f0f0")
                ax.add_patch(Rectangle((x0 + c * cell, 3.0 - r * cell), cell, cell, fc=fc, ec="white", lw=1.2))
        ax.add_patch(Rectangle((x0 + cell, 3.0 - cell), cell, cell, fc="none", ec=GRAD, lw=2))
        _text(ax, x0 + 1.5 * cell, 3.0 + cell + 0.2, f"mask {kind}", ha="center", fontsize=10.5, weight="bold")
        _text(ax, x0 + 1.5 * cell, 3.0 - 2 * cell - 0.3, "centre hidden" if kind == "A" else "centre kept",
                ha="center", fontsize=9)
    _text(ax, 5.9, 1.25, "layer 1: mask A (never sees $x_i$);\nlater layers: mask B", ha="center", fontsize=9.5)

    def reach(r, c):
        if (r, c) == pixel:
            return GRAD, None
        if field[r, c] > 0:
            return shades[min(int(field[r, c]) - 1, len(shades) - 1)], None
        if (r, c) > pixel:
            return "#f0f0f0", None
        return ("#deebf7", None) if ever[r, c] > 0 else ("white", "////")
    x0 = 8.4
    grid(x0, size, reach, f"what pixel $i$ sees after {n_layers} layers")
    for k in range(n_layers):
        ax.add_patch(Rectangle((x0 + k * 1.5, 0.25), 0.3, 0.3, fc=shades[k], ec="white"))
        _text(ax, x0 + k * 1.5 + 0.38, 0.4, f"layer {k + 1}", fontsize=9, va="center")
    ax.add_patch(Rectangle((x0, -0.15), 0.3, 0.3, fc="#deebf7", ec="white"))
    _text(ax, x0 + 0.38, 0.0, "past, reached by more layers", fontsize=9, va="center")
    ax.add_patch(Rectangle((x0, -0.55), 0.3, 0.3, fc="white", ec="#a0a0a0", hatch="////"))
    _text(ax, x0 + 0.38, -0.4, "blind spot: past, never reached however deep", fontsize=9, va="center")
    ax.set_ylim(-0.75, 5.0)
    return ax


def vq_vae_diagram(ax=None):
    r"""Chapter 8: the VQ-VAE (van den Oord et al., 2017). Top: encoder, nearest-codeword quantiser with its
    codebook, decoder, the straight-through gradient path around the quantiser and the three loss terms.
    Bottom: the second stage, an autoregressive prior over the code indices, sampled and decoded."""
    ax = _canvas(ax, (13, 6.6))
    _title(ax, 0.2, 6.35, "stage 1: a quantised autoencoder")
    y = 4.7
    x = _node(ax, 0.6, y, r"$x$", w=0.7, h=0.6, fc=DATA, shape="ellipse", fontsize=13)
    enc = _node(ax, 1.95, y, "encoder\n$E_w$", w=1.3, h=0.75, fc=ENCODER, fontsize=10)
    ze = _node(ax, 3.55, y, r"$z_e(x)$", w=1.2, fc=ENCODER)
    qz = _node(ax, 5.65, y, "nearest codeword\n" r"$k = \arg\min_j \|z_e - e_j\|$", w=2.5, h=0.8, fc="white",
               fontsize=10)
    zq = _node(ax, 7.85, y, r"$z_q(x) = e_k$", w=1.5, fc=PRIOR)
    dec = _node(ax, 9.6, y, "decoder\n$G_\\theta$", w=1.3, h=0.75, fc=DECODER, fontsize=10)
    xh = _node(ax, 11.5, y, r"$p_\theta(x\mid z_q)$", w=1.6, fc=DECODER)
    book = _node(ax, 5.65, y - 1.45, r"codebook $e_1, \dots, e_K$", w=2.4, fc=PRIOR)
    for a, b in ((x, enc), (enc, ze), (ze, qz), (qz, zq), (zq, dec), (dec, xh)):
        _arrow(ax, a, b)
    _arrow(ax, book, qz)
    _arrow(ax, zq, ze, color=GRAD, ls="--", rad=0.42, label="straight-through: the gradient at $z_q$ is copied to $z_e$",
           offset=(0, 1.12))
    _text(ax, 12.9, 3.55, "loss = reconstruction $-\\log p_\\theta(x\\mid z_q)$\n"
            "+ codebook $\\|\\mathrm{sg}[z_e] - e\\|^2$  (moves the codewords)\n"
            "+ commitment $\\beta\\|z_e - \\mathrm{sg}[e]\\|^2$  (holds the encoder)",
            ha="right", va="center", fontsize=9.5)
    _title(ax, 0.2, 2.25, "stage 2: learn the prior over code maps, then sample")
    y2 = 1.0
    codes = _node(ax, 1.4, y2, "codes of the\ntraining images", w=1.9, h=0.75, fc=PRIOR, fontsize=10)
    prior = _node(ax, 4.2, y2, "prior $P_\\phi(k)$\n(masked-conv PixelCNN)", w=2.6, h=0.8, fc=PRIOR, fontsize=10)
    kk = _node(ax, 7.0, y2, r"$k \sim P_\phi$", w=1.4, h=0.6, fc=NOISE, shape="ellipse")
    look = _node(ax, 8.9, y2, r"$z_q = e_k$", w=1.3, fc=PRIOR)
    dec2 = _node(ax, 10.6, y2, "decoder\n$G_\\theta$", w=1.3, h=0.75, fc=DECODER, fontsize=10)
    new = _node(ax, 12.3, y2, "new\nimage", w=1.0, h=0.75, fc=DATA, fontsize=10)
    _arrow(ax, codes, prior)
    for a, b in ((prior, kk), (kk, look), (look, dec2), (dec2, new)):
        _arrow(ax, a, b)
    return ax


def coupling_layer_diagram(ax=None):
    r"""Chapter 0 and appendix A: an affine coupling layer (Dinh et al., 2017), its inverse and log-determinant,
    and a flow as a composition of invertible layers (forward pass to sample, inverse pass for the density)."""
    ax = _canvas(ax, (12, 6.0))
    _title(ax, 0.2, 5.75, "one affine coupling layer")
    ha = _node(ax, 0.8, 4.6, r"$h_a$", w=0.8, h=0.6, fc=DATA, shape="ellipse", fontsize=12)
    hb = _node(ax, 0.8, 3.0, r"$h_b$", w=0.8, h=0.6, fc=DATA, shape="ellipse", fontsize=12)
    net = _node(ax, 2.75, 3.8, "network\n" r"$s(h_a),\ t(h_a)$", w=1.9, h=0.8, fc=DECODER, fontsize=10)
    op = _node(ax, 5.0, 3.0, r"$e^{s}\odot h_b + t$", w=1.75, fc="white")
    ya = _node(ax, 6.7, 4.6, r"$y_a = h_a$", w=1.3, h=0.6, fc=DATA, shape="ellipse", fontsize=11)
    yb = _node(ax, 6.7, 3.0, r"$y_b$", w=0.8, h=0.6, fc=DATA, shape="ellipse", fontsize=12)
    _arrow(ax, ha, ya, label="copied", offset=(0.4, 0.2))
    _arrow(ax, ha, net)
    _arrow(ax, net, op, label=r"$s,\ t$", offset=(0.35, 0.15))
    _arrow(ax, hb, op)
    _arrow(ax, op, yb)
    for k, (line, bold) in enumerate([("Jacobian triangular:", True), (r"$\log|\det J| = \sum_j s_j(h_a)$", False),
                                      ("inverse, no network inverted:", True), (r"$h_a = y_a$", False),
                                      (r"$h_b = (y_b - t(y_a)) \odot e^{-s(y_a)}$", False),
                                      ("then a permutation layer:", True), (r"swaps $a$ and $b$, $|\det| = 1$", False)]):
        _text(ax, 7.75, 5.0 - 0.42 * k, line, fontsize=10, va="center", weight="bold" if bold else "normal")
    _title(ax, 0.2, 1.95, "a flow: a composition of invertible layers")
    names = [r"$z = h_0$", r"$h_1$", r"$h_2$", r"$x = h_K$"]
    nodes = [_node(ax, 1.0 + 3.3 * k, 1.0, t, w=1.2, h=0.6, fc=NOISE if k == 0 else DATA, shape="ellipse")
             for k, t in enumerate(names)]
    labels = [r"$f_1$", r"$f_2$", r"$\cdots\ f_K$"]
    for k in range(3):
        _arrow(ax, nodes[k], nodes[k + 1], label=labels[k], offset=(0, 0.22), fontsize=11)
        _arrow(ax, (nodes[k + 1].x - 0.65, 0.55), (nodes[k].x + 0.65, 0.55), color=SCORE, ls="--", lw=1.1)
    _text(ax, 6.0, 1.55, r"sample: one forward pass, $x = f_K(\cdots f_1(z))$", ha="center", fontsize=10.5)
    _text(ax, 6.0, 0.15, r"density: inverse pass, $\log p(x) = \log\pi(f^{-1}(x)) - \sum_k \log|\det J_{f_k}(h_{k-1})|$",
            ha="center", fontsize=10.5, color=SCORE)
    return ax


def hierarchical_vae_diagram(ax=None):
    r"""Chapter 9 (and chapter 0's survey): a two-level VAE. Left, the generative model
    :math:`z_2 \to z_1 \to x`; right, inference with a bottom-up pass over :math:`x` and a top-down pass shared
    with the generative model, :math:`q_w(z_2\mid x)\,q_w(z_1\mid z_2, x)` (as in the ladder VAE and NVAE)."""
    ax = _canvas(ax, (10.8, 5.6))
    _title(ax, 0.3, 5.35, "generative model")
    z2 = _node(ax, 1.8, 4.3, r"$z_2 \sim \mathcal{N}(0, I)$", w=2.1, h=0.65, fc=NOISE, shape="ellipse")
    z1 = _node(ax, 1.8, 2.7, r"$z_1$", w=0.8, h=0.6, fc="white", shape="ellipse", fontsize=12)
    x = _node(ax, 1.8, 1.1, r"$x$", w=0.8, h=0.6, fc=DATA, shape="ellipse", fontsize=12)
    _arrow(ax, z2, z1, label=r"$p_\theta(z_1\mid z_2)$", offset=(0.85, 0))
    _arrow(ax, z1, x, label=r"$p_\theta(x\mid z_1)$", offset=(0.8, 0))
    _text(ax, 1.8, 0.35, "top-down: coarse ($z_2$) to fine", ha="center", fontsize=9.5)
    _title(ax, 4.6, 5.35, "inference model")
    xi = _node(ax, 5.5, 1.1, r"$x$", w=0.8, h=0.6, fc=DATA, shape="ellipse", fontsize=12)
    d1 = _node(ax, 5.5, 2.7, r"$d_1(x)$", w=1.1, fc=ENCODER)
    d2 = _node(ax, 5.5, 4.3, r"$d_2(x)$", w=1.1, fc=ENCODER)
    q2 = _node(ax, 8.0, 4.3, r"$z_2 \sim q_w(z_2\mid x)$", w=2.2, h=0.65, fc=NOISE, shape="ellipse")
    q1 = _node(ax, 8.0, 2.7, r"$z_1 \sim q_w(z_1\mid z_2, x)$", w=2.5, h=0.65, fc=NOISE, shape="ellipse")
    _arrow(ax, xi, d1, label="bottom-up", offset=(-0.65, 0))
    _arrow(ax, d1, d2)
    _arrow(ax, d2, q2)
    _arrow(ax, q2, q1, label="top-down\n(shared with $p_\\theta$)", offset=(1.25, 0))
    _arrow(ax, d1, q1)
    _text(ax, 8.0, 1.35, r"$\mathrm{ELBO} = \mathbb{E}_q[\log p_\theta(x\mid z_1)]$" "\n"
            r"$\ -\ \mathrm{KL}(q_w(z_2\mid x)\,\|\,p(z_2))$" "\n"
            r"$\ -\ \mathbb{E}_{q}\,\mathrm{KL}(q_w(z_1\mid z_2, x)\,\|\,p_\theta(z_1\mid z_2))$",
            ha="center", va="center", fontsize=10)
    return ax


DIAGRAMS: dict[str, Callable] = {
    "probabilistic_generator": probabilistic_generator_diagram,
    "graphical_model": graphical_model_diagram,
    "reparameterised_vae": reparameterised_vae_diagram,
    "masked_convolution": masked_convolution_diagram,
    "vq_vae": vq_vae_diagram,
    "coupling_layer": coupling_layer_diagram,
    "hierarchical_vae": hierarchical_vae_diagram,
}


def write_diagrams(folder: str | Path, names: Sequence[str] | None = None) -> list[Path]:
    """Save the diagrams ``names`` (default: all of :data:`DIAGRAMS`) as ``folder/<name>.svg``; returns the paths.

    The SVG is reproducible: no date in its metadata and a fixed salt for its element ids, so a file changes only
    when the drawing does.
    """
    names = list(DIAGRAMS) if names is None else list(names)
    unknown = [n for n in names if n not in DIAGRAMS]
    if unknown:
        raise ValueError(f"names: got {unknown}; need names from {sorted(DIAGRAMS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with plt.rc_context({"svg.hashsalt": "vae-course", "svg.fonttype": "path"}):
        for name in names:
            ax = DIAGRAMS[name]()
            path = folder / f"{name}.svg"
            ax.figure.savefig(path, format="svg", metadata={"Date": None, "Creator": "vae_course.plotting.diagrams"})
            plt.close(ax.figure)
            paths.append(path)
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="book/figures", help="folder for the SVG files (default: book/figures)")
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 if a file differs or is missing")
    parser.add_argument("names", nargs="*", help=f"diagrams to draw (default: all): {', '.join(DIAGRAMS)}")


def run(args: argparse.Namespace) -> int:
    """``vae-course diagrams``: write (or with ``--check`` compare) the SVG files of the book's diagrams."""
    names = args.names or None
    if not args.check:
        for path in write_diagrams(args.out, names):
            print(f"wrote {path}")
        return 0
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for fresh in write_diagrams(tmp, names):
            old = Path(args.out) / fresh.name
            if not old.is_file() or old.read_bytes() != fresh.read_bytes():
                stale.append(str(old))
    for path in stale:
        print(f"differs from what vae_course.plotting.diagrams draws: {path}")
    print("diagrams up to date" if not stale else "run `vae-course diagrams` to rewrite them")
    return 1 if stale else 0
