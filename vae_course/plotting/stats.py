"""Statistical pictures drawn with seaborn, and the one theme every chapter's figures share.

:func:`set_theme` sets seaborn's theme for the course (white background, light grid, the colour-blind palette,
sizes that read at the book's width); a chapter calls it once after its imports. Image grids stay matplotlib
(:func:`~vae_course.plotting.common.image_grid`); seaborn draws where a distribution is the point: scores per
group (:func:`score_distributions`), sample-quality numbers side by side (:func:`quality_bars`), how often each
digit is generated (:func:`class_shares`), the pixel intensities of image sets (:func:`intensity_distributions`)
and codes against the prior (:func:`codes_against_prior`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from torch import Tensor

from .common import new_axes

__all__ = ["set_theme", "score_distributions", "quality_bars", "class_shares", "intensity_distributions",
           "codes_against_prior"]

PALETTE = "colorblind"


def set_theme() -> None:
    """The course's figure style (seaborn's ``whitegrid`` with the colour-blind palette; no grid on image axes)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.9,
                  rc={"figure.dpi": 90, "axes.titlesize": 10, "image.interpolation": "nearest"})


def _frame(values: Mapping[str, Tensor], column: str) -> pd.DataFrame:
    if not values:
        raise ValueError(f"{column}: got an empty mapping; need at least one group name -> tensor")
    parts = [pd.DataFrame({column: torch.as_tensor(v).detach().double().cpu().flatten().numpy(), "set": name})
             for name, v in values.items()]
    return pd.concat(parts, ignore_index=True)


def score_distributions(scores: Mapping[str, Tensor], *, ax=None, bins: int = 40, xlabel: str = "log p(x)  [nats]",
                        clip_quantile: float | None = None):
    """Histograms of a per-image score for several groups (``{name: (N,) tensor}``) on shared bins, one colour per
    group, with each group's mean in the legend. ``clip_quantile``: scores below this quantile of all scores are
    drawn in the lowest bin, so a few extreme outliers do not squash the rest. Returns the axes."""
    df = _frame(scores, "score")
    means = df.groupby("set", sort=False)["score"].mean()  # of the scores as they are, before any clipping
    if clip_quantile is not None:
        df["score"] = df["score"].clip(lower=df["score"].quantile(clip_quantile))
    df["set"] = df["set"].map(lambda s: f"{s} (mean {means[s]:.0f})")
    ax = new_axes(ax, figsize=(6, 3.4))
    sns.histplot(df, x="score", hue="set", bins=bins, element="step", stat="count", common_bins=True, alpha=0.35,
                 ax=ax)
    ax.set_xlabel(xlabel)
    return ax


def quality_bars(results: Mapping[str, object], *, metric: str = "frechet", ax=None, floor: str | None = None,
                 log: bool = True):
    """One bar per image set for a field of :class:`~vae_course.quality.SampleQuality` (``metric``: ``"frechet"``,
    ``"classifier_score"`` or ``"classes_covered"``), values written on the bars; ``floor`` names the set drawn as
    a dashed reference line (e.g. ``"real digits"``). Returns the axes."""
    if not results:
        raise ValueError("results: got an empty mapping; need name -> SampleQuality")
    names = list(results)
    values = [float(getattr(results[n], metric)) for n in names]
    ax = new_axes(ax, figsize=(6, 0.45 * len(names) + 1))
    sns.barplot(x=values, y=names, hue=names, legend=False, orient="h", ax=ax)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.1f}" if metric != "classes_covered" else f" {v:.0f}", va="center", fontsize=8)
    if floor is not None:
        ax.axvline(float(getattr(results[floor], metric)), color="k", ls="--", lw=1)
    if log and metric == "frechet":
        ax.set_xscale("log")
    ax.set_xlabel({"frechet": "Frechet distance to held-out digits (lower is better)",
                   "classifier_score": "classifier score (higher is better, at most 10)",
                   "classes_covered": "digit classes covered"}.get(metric, metric))
    return ax


def class_shares(counts: Mapping[str, Tensor], *, ax=None):
    """How often each digit is the classifier's top class, as a share of each set (``{name: (10,) counts}``,
    e.g. ``SampleQuality.class_counts``): grouped bars, one colour per set. Returns the axes."""
    if not counts:
        raise ValueError("counts: got an empty mapping; need name -> (10,) class counts")
    rows = []
    for name, c in counts.items():
        c = torch.as_tensor(c).double()
        rows += [{"digit": d, "share": float(c[d] / c.sum()), "set": name} for d in range(len(c))]
    ax = new_axes(ax, figsize=(7, 3))
    sns.barplot(pd.DataFrame(rows), x="digit", y="share", hue="set", ax=ax)
    ax.axhline(0.1, color="k", ls=":", lw=1)
    ax.set_ylabel("share of the images")
    return ax


def intensity_distributions(images: Mapping[str, Tensor], *, ax=None, ink: float = 0.1, bins: int = 30):
    """The distribution of pixel intensities above ``ink`` (the inked pixels) for several image sets: real digits
    pile up near 1, blurry averages spread over the grey levels. Returns the axes."""
    df = _frame({k: v.flatten()[v.flatten() > ink] for k, v in images.items()}, "intensity")
    ax = new_axes(ax, figsize=(6, 3.2))
    sns.histplot(df, x="intensity", hue="set", bins=bins, binrange=(ink, 1.0), stat="density", common_norm=False,
                 element="step", fill=False, ax=ax)
    ax.set_yscale("log")  # real digits pile up in the last bin; a log scale keeps the grey levels readable
    ax.set_xlabel(f"pixel intensity of inked pixels (> {ink})")
    return ax


def codes_against_prior(mu: Tensor, *, ax=None, labels: Tensor | None = None, radii=(1.0, 2.0, 3.0), s: float = 5):
    """2-D codes ``mu`` ``(N, 2)`` (encoder means) as a density (seaborn's KDE) over their scatter, coloured by
    ``labels`` if given, with the circles holding 39%, 86% and 99% of the standard normal prior's mass
    (radii 1, 2, 3). Returns the axes."""
    if mu.dim() != 2 or mu.shape[1] != 2:
        raise ValueError(f"mu: got shape {tuple(mu.shape)}; need 2-D codes (N, 2)")
    z = mu.detach().double().cpu().numpy()
    ax = new_axes(ax, figsize=(5, 5))
    hue = None if labels is None else labels.cpu().numpy()
    sns.scatterplot(x=z[:, 0], y=z[:, 1], hue=hue, palette="tab10" if hue is not None else None, s=s, linewidth=0,
                    alpha=0.6, legend=hue is not None, ax=ax)
    sns.kdeplot(x=z[:, 0], y=z[:, 1], levels=6, color="k", linewidths=0.7, ax=ax)
    for r in radii:
        mass = 1 - math.exp(-r * r / 2)  # P(|z| < r) for a 2-D standard normal: chi-square with 2 degrees of freedom
        ax.add_patch(plt.Circle((0, 0), r, fill=False, color="C3", ls="--", lw=1.2))
        ax.text(r * 0.71, r * 0.71, f"{mass:.0%}", color="C3", fontsize=8)
    lim = max(3.5, float(abs(mu).max()) * 1.05)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if hue is not None:
        ax.legend(title="digit", fontsize=7, title_fontsize=7, markerscale=2, ncol=2, loc="upper right")
    return ax
