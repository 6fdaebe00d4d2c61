r"""Figures for chapter 6 (beta-VAE and disentanglement): factor and latent traversals, KL per latent,
mutual information between latents and factors, the KL split, metrics over settings and seeds, the
rate-distortion plane.

A **latent traversal** decodes :math:`z` with one coordinate :math:`z_j` swept over a range while the
others stay fixed (at the encoder mean of one image, or at 0); one row per latent, ordered by the
latent's KL, so the informative latents come first (Higgins et al., 2017, fig. 7).
Sweep results are lists of dicts with keys such as ``objective``, ``beta``, ``tc``, ``seed``, ``rate``,
``distortion``, ``mig`` (:func:`vae_course.experiments.beta_sweep.sweep_beta` writes them).
Images stay matplotlib; the statistical pictures (MI tables, spreads over seeds) are drawn with seaborn in its
``whitegrid`` style, set per figure (:func:`_styled`), so no global state changes.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.patches import Rectangle
from torch import Tensor

from .. import sprites as S
from .common import image_grid, new_axes

__all__ = ["factor_traversals", "latent_traversal", "traversal_point", "kl_bars", "mi_heatmap",
           "metrics_vs_beta", "rate_distortion", "setting_name", "kl_split_bars", "sweep_points", "factor_gaps"]

SPLIT_COLOURS = {"index-code MI": "#4c72b0", "total correlation": "#dd8452", "dimension-wise KL": "#55a868"}


def factor_traversals(base: Sequence[int] = (0, 3, 2, 3, 4), *, levels: dict[str, int] | None = None, ax=None):
    """One row per generative factor of the sprites: ``base`` (5 level indices) with that factor run over
    all its levels (shorter rows are padded with blank images)."""
    sizes = S.factor_sizes(levels)
    width = max(sizes)
    rows = []
    for j in range(len(S.FACTORS)):
        imgs = S.render(S.traverse_factor(base, j, levels=levels), levels=levels)
        rows.append(torch.cat([imgs, torch.zeros(width - len(imgs), *imgs.shape[1:])]))
    ax = new_axes(ax, (0.75 * width + 1, 0.75 * len(rows) + 0.6))
    image_grid(torch.cat(rows), nrow=width, ax=ax)
    _row_labels(ax, list(S.FACTORS), imgs.shape[-1])
    return ax


def _row_labels(ax, labels: list[str], side: int, pad: int = 1) -> None:
    ax.set_yticks([pad + r * (side + pad) + side / 2 for r in range(len(labels))])
    ax.set_yticklabels(labels, fontsize=8)
    ax.tick_params(axis="y", length=0)


def _order(kl: Tensor | None, m: int) -> list[int]:
    if kl is None:
        return list(range(m))
    return [int(j) for j in torch.as_tensor(kl).argsort(descending=True)]


@torch.no_grad()
def _traversal_images(model, z0: Tensor, dims: list[int], values: Tensor) -> Tensor:
    device = next(model.parameters()).device
    z = z0.reshape(1, 1, -1).repeat(len(dims), len(values), 1)  # (rows, steps, m)
    for r, j in enumerate(dims):
        z[r, :, j] = values
    return model.decode(z.reshape(-1, z0.numel()).to(device)).mean.clamp(0, 1).cpu()


@torch.no_grad()
def latent_traversal(model, *, kl: Tensor | None = None, x: Tensor | None = None, z: Tensor | None = None,
                     n_steps: int = 9, lim: float = 2.5, n_rows: int | None = None, ax=None, title: str | None = None):
    r"""Decoder means with one latent swept over ``n_steps`` values in ``[-lim, lim]`` per row, the others fixed.

    Rows are latents in order of decreasing ``kl`` (``(m,)``, e.g. :func:`vae_course.disentangle.kl_per_latent`;
    None keeps index order), labelled with their KL; ``n_rows`` keeps the first rows only. The fixed point is
    ``z`` ``(m,)``, else the encoder mean of the single image ``x`` ``(1, C, H, W)``, else 0.
    """
    model.eval()
    m = model.config.z_dim
    if z is None:
        z = model.encode(x.to(next(model.parameters()).device)).mu[0].cpu() if x is not None else torch.zeros(m)
    z = torch.as_tensor(z, dtype=torch.float32).reshape(-1)
    if z.numel() != m:
        raise ValueError(f"z: got {z.numel()} values; need the model's z_dim = {m}")
    dims = _order(kl, m)[:n_rows]
    values = torch.linspace(-lim, lim, n_steps)
    images = _traversal_images(model, z, dims, values)
    ax = new_axes(ax, (0.55 * n_steps + 1.2, 0.55 * len(dims) + 0.6))
    image_grid(images, nrow=n_steps, ax=ax, title=title)
    labels = [f"$z_{{{j}}}$" + (f"  {float(kl[j]):.1f}" if kl is not None else "") for j in dims]
    _row_labels(ax, labels, images.shape[-1])
    side = images.shape[-1] + 1
    ax.set_xticks([1 + c * side + side / 2 - 0.5 for c in (0, n_steps // 2, n_steps - 1)])
    ax.set_xticklabels([f"{v:.1f}" for v in (-lim, 0.0, lim)], fontsize=8)
    return ax


@torch.no_grad()
def traversal_point(model, rank: int, value: float, *, kl: Tensor | None = None, z: Tensor | None = None,
                    n_steps: int = 9, lim: float = 2.5, axes=None):
    """Left: the decoder mean with the latent of KL rank ``rank`` (0 = largest KL) set to ``value``; right: the
    full :func:`latent_traversal` with that row framed. ``axes``: two axes."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9.5, 4.2), gridspec_kw={"width_ratios": [1, 2.2]})
    m = model.config.z_dim
    order = _order(kl, m)
    if not 0 <= rank < m:
        raise ValueError(f"rank: got {rank}; need 0 <= rank < z_dim = {m}")
    z0 = torch.zeros(m) if z is None else torch.as_tensor(z, dtype=torch.float32).reshape(-1)
    j = order[rank]
    image = _traversal_images(model, z0, [j], torch.tensor([float(value)]))
    image_grid(image, nrow=1, ax=axes[0], title=f"$z_{{{j}}}$ = {value:.2f} (KL rank {rank})")
    latent_traversal(model, kl=kl, z=z0, n_steps=n_steps, lim=lim, ax=axes[1], title="all latents, by KL")
    side = image.shape[-1] + 1
    axes[1].add_patch(Rectangle((0.5, 0.5 + rank * side), n_steps * side, side, fill=False, ec="tab:red", lw=2))
    return axes


def kl_bars(kl: Tensor, *, ax=None, title: str | None = None, sort: bool = True):
    r"""Bar chart of the KL per latent (nats), largest first when ``sort``; the bars sum to the rate."""
    kl = torch.as_tensor(kl, dtype=torch.float32).cpu()
    order = _order(kl, len(kl)) if sort else list(range(len(kl)))
    ax = new_axes(ax, (4.5, 3))
    ax.bar(range(len(kl)), kl[order].numpy(), color="tab:blue")
    ax.set_xticks(range(len(kl)))
    ax.set_xticklabels([f"$z_{{{j}}}$" for j in order], fontsize=8)
    ax.set_ylabel("KL per latent (nats)")
    ax.set_title(title or f"rate = {float(kl.sum()):.1f} nats")
    return ax


def _styled(ax, figsize):
    """A fresh axes drawn in seaborn's ``whitegrid`` style (or ``ax`` with its grid and spines set the same way)."""
    if ax is None:
        with sns.axes_style("whitegrid"):
            ax = new_axes(None, figsize)
    else:
        ax.set_axisbelow(True)
        ax.grid(True, color="0.9")
    sns.despine(ax=ax, left=True)
    return ax


def mi_heatmap(mi: Tensor, entropy: Tensor, *, factor_names: Sequence[str], kl: Tensor | None = None, ax=None,
               title: str | None = None, n_rows: int | None = None, annotate: bool = True):
    r"""Normalised mutual information :math:`I(z_j; v_k)/H(v_k)` (rows: latents by decreasing ``kl``, the first
    ``n_rows``; columns: factors), the table the MIG is read from, drawn with seaborn on a white-to-dark scale with
    the value in each cell: a disentangled code has one dark cell per column."""
    norm = (torch.as_tensor(mi) / torch.as_tensor(entropy)).float()
    order = _order(kl, norm.shape[0])[:n_rows]
    ax = new_axes(ax, (0.7 * len(factor_names) + 1.8, 0.33 * len(order) + 1))
    labels = [f"$z_{{{j}}}$" + (f" ({float(kl[j]):.1f})" if kl is not None else "") for j in order]
    sns.heatmap(pd.DataFrame(norm[order].numpy(), index=labels, columns=list(factor_names)), vmin=0, vmax=1,
                cmap="rocket_r", annot=annotate, fmt=".2f", annot_kws={"fontsize": 7}, linewidths=0.5,
                linecolor="white", cbar_kws={"label": "$I(z_j; v_k) / H(v_k)$", "fraction": 0.06}, ax=ax)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.tick_params(axis="y", labelrotation=0, labelsize=8)
    if title:
        ax.set_title(title)
    return ax


def setting_name(row: Mapping) -> str:
    """A short name for a row's training objective: ``"β-VAE β=4"`` or ``"β-TCVAE λ=6"`` (λ: the weight ``tc``)."""
    if row.get("objective", "beta-vae") == "beta-tcvae":
        return f"β-TCVAE λ={float(row['tc']):g}"
    return f"β-VAE β={float(row['beta']):g}"


def _settings(rows: Sequence[Mapping]) -> list[str]:
    keyed = {setting_name(r): (r.get("objective", "beta-vae") == "beta-tcvae", float(r["beta"]), float(r.get("tc", 0)))
             for r in rows}
    return sorted(keyed, key=keyed.get)  # beta-VAEs by beta, then beta-TCVAEs by tc


def kl_split_bars(splits: Mapping[str, object], *, ax=None, title: str | None = None):
    r"""Stacked horizontal bars, one per model: the rate split into index-code MI, total correlation and dimension-wise
    KL (nats). ``splits`` maps a name to a :class:`~vae_course.tc.KLDecomposition` or a dict with ``mi``,
    ``total_correlation`` and ``dim_kl`` (e.g. a row of the stored sweep)."""
    def parts(v):
        if isinstance(v, Mapping):
            return float(v["mi"]), float(v["total_correlation"]), float(v["dim_kl"])
        return float(v.mi), float(v.tc), float(torch.as_tensor(v.dim_kl).sum())

    names = list(splits)
    values = np.array([parts(splits[n]) for n in names])  # (models, 3)
    ax = _styled(ax, (6.5, 0.45 * len(names) + 1.2))
    left = np.zeros(len(names))
    for k, (label, colour) in enumerate(SPLIT_COLOURS.items()):
        ax.barh(range(len(names)), values[:, k], left=left, color=colour, label=label, height=0.65)
        left += values[:, k]
    for i, total in enumerate(left):
        ax.text(total, i, f"  {total:.1f}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15 * left.max())
    ax.set_xlabel("nats per image (the bars add up to the rate)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18 - 0.6 / (len(names) + 1)), ncol=3,
              frameon=False)
    if title:
        ax.set_title(title)
    return ax


def sweep_points(rows: Sequence[Mapping], *, metric: str = "mig", ax=None, ylabel: str | None = None):
    """One dot per seed and the mean (a black bar) of ``metric`` for each setting of a sweep (seaborn strip plot):
    beta-VAEs by beta, then beta-TCVAEs by their total-correlation weight."""
    df = pd.DataFrame({"setting": [setting_name(r) for r in rows], metric: [float(r[metric]) for r in rows],
                       "objective": [r.get("objective", "beta-vae") for r in rows]})
    order = _settings(rows)
    ax = _styled(ax, (6.5, 3.6))
    sns.stripplot(df, x="setting", y=metric, hue="objective", order=order, size=6, jitter=0.12, alpha=0.8, ax=ax)
    means = df.groupby("setting")[metric].mean()
    for i, name in enumerate(order):
        ax.plot([i - 0.3, i + 0.3], [means[name]] * 2, color="k", lw=2)
    ax.set_xlabel("")
    ax.set_ylabel(ylabel or metric)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8, title=None)
    return ax


def factor_gaps(rows: Sequence[Mapping], *, ax=None):
    """The MIG's normalised gap of each factor (columns ``gap_<factor>`` of a sweep), one dot per seed, for each
    setting (seaborn strip plot, dodged by setting): which factors a setting separates, and how reliably."""
    records = [{"factor": name, "gap": float(r[f"gap_{name}"]), "setting": setting_name(r)}
               for r in rows for name in S.FACTORS if not math.isnan(float(r[f"gap_{name}"]))]
    df = pd.DataFrame(records)
    ax = _styled(ax, (7, 3.6))
    sns.stripplot(df, x="factor", y="gap", hue="setting", hue_order=_settings(rows), dodge=True, size=5, jitter=0.1,
                  alpha=0.85, palette="colorblind", ax=ax)
    ax.set_xlabel("")
    ax.set_ylabel(r"gap $(I_1 - I_2) / H(v_k)$")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7, ncol=2, title=None)
    return ax


def _by_beta(rows: Sequence[Mapping], key: str) -> dict[float, list[float]]:
    out: dict[float, list[float]] = {}
    for r in rows:
        out.setdefault(float(r["beta"]), []).append(float(r[key]))
    return dict(sorted(out.items()))


def metrics_vs_beta(rows: Sequence[Mapping], *, metrics: Sequence[str] = ("mig", "dci_d"), ax=None,
                    labels: Mapping[str, str] | None = None):
    r"""Each metric against :math:`\beta` (log axis): one dot per seed, a line through the means."""
    ax = new_axes(ax, (5, 3.6))
    labels = {"mig": "MIG", "dci_d": "DCI disentanglement", "dci_c": "DCI completeness",
              "dci_i": "DCI informativeness", **(labels or {})}
    for i, key in enumerate(metrics):
        groups = _by_beta(rows, key)
        betas = list(groups)
        colour = plt.cm.tab10(i)
        for b, vals in groups.items():
            ax.scatter([b] * len(vals), vals, s=14, color=colour, alpha=0.6, linewidths=0)
        ax.plot(betas, [np.mean(v) for v in groups.values()], "-o", color=colour, ms=4, label=labels.get(key, key))
    ax.set_xscale("log", base=2)
    all_betas = sorted({float(r["beta"]) for r in rows})
    ax.set_xticks(all_betas)
    ax.set_xticklabels([f"{b:g}" for b in all_betas])
    ax.minorticks_off()
    ax.set_xlabel(r"$\beta$")
    ax.set_ylabel("score")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return ax


def rate_distortion(rows: Sequence[Mapping], *, ax=None, annotate: bool = True):
    r"""Distortion :math:`-\mathbb E\log p(x\mid z)` against rate :math:`\mathrm{KL}` (nats), one dot per run, one colour
    per setting (beta-VAEs by beta, then beta-TCVAEs as squares); each setting's mean is the large marker. Lines of
    slope :math:`-\beta` are where :math:`D + \beta R` is constant."""
    ax = _styled(ax, (5.5, 3.8))
    order = _settings(rows)
    colours = dict(zip(order, sns.color_palette("colorblind", len(order))))
    beta_vae = [setting_name(r) for r in rows if r.get("objective", "beta-vae") != "beta-tcvae"]
    for name in order:
        sel = [r for r in rows if setting_name(r) == name]
        rate, dist = [float(r["rate"]) for r in sel], [float(r["distortion"]) for r in sel]
        marker = "o" if name in beta_vae else "s"
        ax.scatter(rate, dist, s=16, color=colours[name], alpha=0.7, linewidths=0, marker=marker)
        ax.plot(np.mean(rate), np.mean(dist), marker, color=colours[name], ms=8, mec="k", label=name)
        if annotate:
            ax.annotate(name.split(" ")[-1], (np.mean(rate), np.mean(dist)), textcoords="offset points",
                        xytext=(5, 4), fontsize=7)
    means = [(np.mean([float(r["rate"]) for r in rows if setting_name(r) == n]),
              np.mean([float(r["distortion"]) for r in rows if setting_name(r) == n])) for n in order if n in beta_vae]
    if len(means) > 1:
        ax.plot(*zip(*means), "-", color="0.6", lw=1, zorder=0)
    ax.set_xlabel("rate R = KL (nats per image)")
    ax.set_ylabel(r"distortion D = $-\mathbb{E}\log p(x\mid z)$ (nats)")
    ax.legend(fontsize=7, ncol=1)
    return ax
