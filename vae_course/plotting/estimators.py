"""Figures for chapter 4 (gradient estimators): histograms of repeated estimates against the true
gradient, variance against the number of samples or the dimension (log-log), standardised bias,
and the categorical estimators' mean gradients against the exact one."""
from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import estimators as est
from .common import new_axes

__all__ = ["gradient_histograms", "estimator_histograms", "variance_plot", "standardized_bias_plot",
           "categorical_gradient_bars"]

COLOURS = {
    "score function": "tab:red", "score + baseline E[F]": "tab:orange", "score + leave-one-out": "tab:purple",
    "reparameterisation": "tab:blue", "straight-through": "tab:green", "straight-through Gumbel": "tab:olive",
    "Gumbel-softmax (relaxed)": "tab:cyan", "exact": "black",
}


def _colour(name: str, i: int) -> str:
    return COLOURS.get(name, f"C{i % 10}")


def gradient_histograms(results: Mapping[str, est.EstimatorStats], truth, *, field: str = "mu", index: int = 0,
                        axes=None, bins: int = 50, title: str | None = None):
    """One histogram per estimator (stacked panels, shared x axis) of its repeated estimates of one
    gradient component, with the true value (black) and the estimates' mean (dashed).

    Args:
        results: method name -> :class:`~vae_course.estimators.EstimatorStats` made with ``keep_samples=True``.
        truth: the exact gradient (a ``GaussianGradient`` / ``CategoricalGradient``).
        field, index: which component (0-based index), e.g. ``"mu", 0`` for :math:`\\partial/\\partial\\mu_1`.
        axes: a sequence of ``len(results)`` axes, or None for a new figure.
    Returns: the array of axes.
    """
    if not results:
        raise ValueError("results: got an empty mapping; need at least one estimator")
    names = list(results)
    if any(results[m].samples is None for m in names):
        raise ValueError("results: made without samples; call compare_estimators(..., keep_samples=True)")
    if field not in type(truth)._fields:
        raise ValueError(f"field: got {field!r}; need one of {type(truth)._fields}")
    values = {m: getattr(results[m].samples, field)[:, index].numpy() for m in names}
    t = float(getattr(truth, field)[index])
    if axes is None:
        _, axes = plt.subplots(len(names), 1, figsize=(6.4, 1.35 * len(names) + 0.8), sharex=True, squeeze=False)
        axes = axes[:, 0]
    axes = np.atleast_1d(axes)
    if len(axes) != len(names):
        raise ValueError(f"axes: got {len(axes)} axes; need one per estimator ({len(names)})")
    everything = np.concatenate(list(values.values()))
    lo, hi = np.percentile(everything, [0.5, 99.5])
    lo, hi = min(lo, t), max(hi, t)
    pad = 0.05 * (hi - lo + 1e-12)
    edges = np.linspace(lo - pad, hi + pad, bins + 1)
    for i, (m, ax) in enumerate(zip(names, axes)):
        v = values[m]
        ax.hist(np.clip(v, edges[0], edges[-1]), bins=edges, color=_colour(m, i), alpha=0.75)
        ax.axvline(t, color="black", lw=2)
        ax.axvline(float(v.mean()), color="0.3", lw=1.2, ls="--")
        ax.set_yticks([])
        ax.text(0.99, 0.92, f"{m}\nvariance {v.var(ddof=1):.3g}", transform=ax.transAxes, ha="right", va="top", fontsize=9,
                bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"))
    axes[-1].set_xlabel(f"estimate of d E[F] / d {field}_{index + 1}   (black: true value {t:.3g}; dashed: mean of the estimates)")
    axes[0].set_title(title or f"{results[names[0]].repeats} repeated estimates per method")
    return axes


def estimator_histograms(name: str = "quadratic", d: int = 4, n_samples: int = 16, baseline: bool = True, *,
                         field: str = "mu", index: int = 0, repeats: int = 1000, seed: int = 0, axes=None):
    """Draw :func:`gradient_histograms` for the score function (with the leave-one-out baseline
    too, if ``baseline`` and ``n_samples >= 2``) and the reparameterisation trick on
    ``make_setup(name, d)``. Used for the static figure and by the chapter's widget.
    Returns: the axes."""
    setup = est.make_setup(name, d)
    methods = ["score function"]
    if baseline and n_samples >= 2:
        methods.append("score + leave-one-out")
    methods.append("reparameterisation")
    results = est.compare_estimators(setup, n_samples, repeats, methods=methods, seed=seed, keep_samples=True)
    return gradient_histograms(results, setup.problem.gradient(setup.mu, setup.logvar), field=field, index=index,
                               axes=axes, title=f"{name} problem, d = {d}, n = {n_samples} samples per estimate")


def variance_plot(sweep: est.VarianceSweep, *, ax=None, title: str | None = None):
    """Log-log plot of each method's variance against ``sweep.values``. The legend gives the slope
    fitted through the last ``min(3, len)`` points (the large-n or large-d regime): -1 in n means
    variance ~ 1/n; 0 in d means no growth with the dimension, 2 means ~ d^2. Returns the axes."""
    ax = new_axes(ax, figsize=(5.5, 4))
    x = np.asarray(sweep.values, dtype=float)
    if len(x) < 2:
        raise ValueError(f"sweep: got {len(x)} value(s); need at least 2 points for a log-log plot")
    tail = slice(-min(3, len(x)), None)
    for i, (m, v) in enumerate(sweep.variance.items()):
        v = np.asarray(v, dtype=float)
        slope = np.polyfit(np.log(x[tail]), np.log(v[tail]), 1)[0]
        ax.loglog(x, v, "o-", color=_colour(m, i), label=f"{m} (slope {slope:+.2f})")
    ax.set_xlabel("number of samples n" if sweep.varied == "n_samples" else "dimension d")
    ax.set_ylabel("variance of one estimate\n(mean over gradient components)")
    ax.set_xticks(x, [str(int(v)) for v in x])
    ax.minorticks_off()
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, title="log-log slope over the last 3 points", title_fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def standardized_bias_plot(zs: Mapping[str, object], *, limit: float = 4.0, ax=None):
    """Each row: one (problem, estimator) pair; dots: ``(mean - truth) / stderr`` for every gradient
    component. An unbiased estimator stays inside the grey band ``|z| < limit``. Returns the axes."""
    labels = list(zs)
    ax = new_axes(ax, figsize=(6.4, 0.35 * len(labels) + 1.2))
    ax.axvspan(-limit, limit, color="0.9")
    ax.axvline(0, color="0.5", lw=1)
    biggest = limit
    for row, lab in enumerate(labels):
        z = torch.cat([v.reshape(-1) for v in zs[lab]]).numpy()
        biggest = max(biggest, float(np.abs(z).max()))
        inside = np.abs(z) < limit
        ax.plot(z[inside], np.full(inside.sum(), row), "o", color="tab:blue", ms=5)
        ax.plot(z[~inside], np.full((~inside).sum(), row), "x", color="tab:red", ms=7, mew=2)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    if biggest > 5 * limit:
        ax.set_xscale("symlog", linthresh=limit)
    ax.set_xlabel(f"(mean of estimates - true gradient) / standard error   (grey: |z| < {limit:g})")
    return ax


def categorical_gradient_bars(results: Mapping[str, est.EstimatorStats], exact: est.CategoricalGradient, *,
                              ax=None, title: str | None = None):
    """Grouped bars per logit: the exact gradient (black) and each estimator's mean with a +-2 standard-error
    bar. A bar that misses the black one by more than its error bar is a bias. Returns the axes."""
    names = list(results)
    ax = new_axes(ax, figsize=(7, 3.8))
    K = exact.logits.shape[0]
    width = 0.8 / (len(names) + 1)
    pos = np.arange(K)
    ax.bar(pos - 0.4 + width / 2, exact.logits.numpy(), width, color="black", label="exact")
    for i, m in enumerate(names):
        s = results[m]
        ax.bar(pos - 0.4 + width * (i + 1.5), s.mean.logits.numpy(), width, yerr=2 * s.stderr.logits.numpy(),
               color=_colour(m, i), label=m, capsize=2)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xticks(pos, [f"logit {k}" for k in range(K)])
    ax.set_ylabel("d E[F] / d logit_k")
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title)
    return ax
