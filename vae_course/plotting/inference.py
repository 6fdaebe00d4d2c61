"""Figures for chapter 3: the ELBO against the exact log-likelihood, q against the true posterior,
the diagonal-Gaussian KL against Monte Carlo, the approximation and amortisation gaps, and EM's steps."""
from __future__ import annotations

import math
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from ..em import EMFit
from ..inference import AmortizedFit, BoundGap, InferenceGaps, PerSampleFit, bound_gap
from ..information import MonteCarloEstimate
from ..linear_gaussian import LinearGaussianModel
from .common import new_axes

__all__ = ["plot_bound_gap", "plot_q_vs_posterior", "plot_kl_comparison", "plot_inference_gaps", "plot_em_steps"]

C_LOGP, C_ELBO, C_GAP, C_KL, C_Q = "black", "tab:blue", "tab:red", "tab:orange", "tab:green"


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy() if isinstance(t, Tensor) else np.asarray(t, dtype=float)


def plot_bound_gap(param: Tensor, result: BoundGap, *, xlabel: str = "q parameter", axes=None,
                   mark: float | None = None, title: str | None = None):
    """Two stacked panels over a one-parameter family of q's: log p(x) and the ELBO (top); the gap
    log p(x) - ELBO and KL(q || p(z|x)) computed separately (bottom). ``param`` ``(K,)`` is the
    x-axis, ``result`` a :class:`~vae_course.inference.BoundGap` with ``(K,)`` fields; ``mark``
    draws a dashed line where q is the true posterior. Returns the two axes."""
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(5, 5), sharex=True)
    top, bottom = axes
    p = _np(param)
    top.plot(p, _np(result.log_px), color=C_LOGP, lw=2, label=r"$\log p(x)$ (exact)")
    top.plot(p, _np(result.elbo), color=C_ELBO, lw=2, label="ELBO (exact)")
    top.fill_between(p, _np(result.elbo), _np(result.log_px), color=C_GAP, alpha=0.15, label="gap")
    top.set_ylabel("nats")
    top.legend(fontsize=8, loc="lower left")
    bottom.plot(p, _np(result.gap), color=C_GAP, lw=2, label=r"gap $=\log p(x)-$ELBO")
    step = max(1, len(p) // 15)
    bottom.plot(p[::step], _np(result.kl_posterior)[::step], "o", color=C_KL, ms=5,
                label=r"KL$(q\,\|\,p(z\mid x))$, separately")
    bottom.axhline(0, color="grey", lw=0.8)
    bottom.set_ylabel("nats")
    bottom.set_xlabel(xlabel)
    bottom.legend(fontsize=8, loc="upper center")
    if mark is not None:
        for ax in axes:
            ax.axvline(mark, color="grey", ls="--", lw=1)
        top.annotate("q = posterior", (mark, top.get_ylim()[0]), xytext=(4, 4), textcoords="offset points", fontsize=8, color="grey")
    if title:
        top.set_title(title)
    return axes


def plot_q_vs_posterior(model: LinearGaussianModel, x: Tensor, mu_q: float, logvar_q: float, *, axes=None,
                        mu_range: tuple[float, float] | None = None, logvar_range: tuple[float, float] = (-5.0, 2.0)):
    """For a model with a 1-D latent and one observation ``x`` ``(d,)``: left, the exact posterior
    density against q = N(mu_q, exp(logvar_q)); right, the gap log p(x) - ELBO = KL(q || posterior)
    as a map over (mu_q, logvar_q), with this q and the posterior marked. Returns the two axes."""
    if model.z_dim != 1:
        raise ValueError(f"model: got z_dim = {model.z_dim}; this figure needs a 1-D latent (z_dim = 1)")
    if x.dim() != 1:
        raise ValueError(f"x: got shape {tuple(x.shape)}; need one observation of shape (d,)")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    left, right = axes
    post = model.posterior(x)
    m0, v0 = post.mu.item(), post.cov.item()
    if mu_range is None:
        mu_range = (m0 - 3.0, m0 + 3.0)
    dtype = model.W.dtype
    # left: densities on a grid
    z = torch.linspace(mu_range[0], mu_range[1], 400, dtype=dtype)
    dens_post = model.log_posterior(z[:, None], x).exp()
    q_std = math.exp(0.5 * logvar_q)
    dens_q = torch.exp(-0.5 * ((z - mu_q) / q_std) ** 2) / (q_std * math.sqrt(2 * math.pi))
    left.plot(_np(z), _np(dens_post), color=C_LOGP, lw=2, label=r"true posterior $p(z\mid x)$")
    left.plot(_np(z), _np(dens_q), color=C_Q, lw=2, label=r"$q(z)$")
    left.fill_between(_np(z), _np(dens_q), color=C_Q, alpha=0.15)
    left.set_xlim(*mu_range)
    left.set_ylim(0, max(1.15 * dens_post.max().item(), min(1.15 * dens_q.max().item(), 4 * dens_post.max().item())))
    left.set_xlabel("z")
    left.set_ylabel("density")
    left.legend(fontsize=8, loc="upper right")
    one = bound_gap(model, x, torch.tensor([mu_q], dtype=dtype), torch.tensor([logvar_q], dtype=dtype))
    left.set_title(f"log p(x) = {one.log_px.item():.3f}   ELBO = {one.elbo.item():.3f}\n"
                   f"gap = {one.gap.item():.4f}   KL(q || posterior) = {one.kl_posterior.item():.4f}", fontsize=9)
    # right: gap landscape over (mu_q, logvar_q), closed form
    mus = torch.linspace(mu_range[0], mu_range[1], 90, dtype=dtype)
    lvs = torch.linspace(logvar_range[0], logvar_range[1], 90, dtype=dtype)
    MU, LV = torch.meshgrid(mus, lvs, indexing="xy")  # (90, 90): rows logvar, cols mu
    gap = bound_gap(model, x, MU[..., None], LV[..., None]).gap.clamp_min(1e-6)
    cs = right.contourf(_np(MU), _np(LV), np.log10(_np(gap)), levels=np.linspace(-3, 2, 21), cmap="viridis", extend="both")
    plt.colorbar(cs, ax=right, label=r"$\log_{10}$ gap (nats)")
    right.plot([m0], [math.log(v0)], "*", color="white", ms=14, mec="black", label="posterior")
    right.plot([mu_q], [logvar_q], "o", color=C_Q, ms=9, mec="black", label="q")
    right.set_xlabel(r"$\mu_q$")
    right.set_ylabel(r"$\log\sigma_q^2$")
    right.set_title("gap = KL(q || posterior) over q's parameters", fontsize=9)
    right.legend(fontsize=8, loc="lower left")
    return axes


def plot_kl_comparison(logvar: Tensor, curves: Mapping[str, Tensor], *, mc: MonteCarloEstimate | None = None,
                       ax=None, title: str | None = None):
    """KL of a 1-D Gaussian to N(0, 1) against ``logvar`` ``(K,)``: one line per entry of ``curves``
    (name -> ``(K,)`` values; a name containing "wrong" is drawn dashed red) and, if given, the
    Monte-Carlo estimate as points with 2-standard-error bars. Returns the axes."""
    ax = new_axes(ax, figsize=(5.5, 4))
    lv = _np(logvar)
    styles = [dict(color=C_ELBO, lw=2.5), dict(color="black", ls=":", lw=2), dict(color=C_KL, lw=1.5)]
    for i, (name, values) in enumerate(curves.items()):
        style = dict(color=C_GAP, ls="--", lw=2) if "wrong" in name else styles[i % len(styles)]
        ax.plot(lv, _np(values), label=name, **style)
    if mc is not None:
        step = max(1, len(lv) // 12)
        ax.errorbar(lv[::step], _np(mc.value)[::step], yerr=2 * _np(mc.std_error)[::step], fmt="o", color=C_Q,
                    ms=5, capsize=3, label="Monte Carlo (±2 s.e.)")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel(r"$\log\sigma^2$")
    ax.set_ylabel("KL (nats)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_inference_gaps(per_sample: PerSampleFit, amortized: AmortizedFit, log_px: Tensor, *,
                        optimum_elbo: Tensor | None = None, gaps: Mapping[str, InferenceGaps] | None = None, axes=None):
    """Left: the mean ELBO over the data against optimisation step, for the per-sample loop and the
    amortised encoder, with the exact mean log p(x) (and, if given, the mean ELBO of the best diagonal
    q) as horizontal lines, and an inset zoomed on the end. Right: the mean gap to log p(x) split into
    the approximation and amortisation gaps, one stacked bar per entry of ``gaps`` (name ->
    :class:`~vae_course.inference.InferenceGaps`; default: the training data). Returns the two axes."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw=dict(width_ratios=[2.2, 1]))
    ax, bars = axes
    lp = log_px.mean().item()
    h1, h2 = _np(per_sample.history), _np(amortized.history)
    e1, e2 = per_sample.elbo.mean().item(), amortized.elbo.mean().item()
    curves = ((h1, C_KL, "per-sample loop (one q per x)"), (h2, C_ELBO, "amortised encoder (one net for all x)"))
    for h, colour, label in curves:
        ax.plot(np.arange(1, len(h) + 1), h, color=colour, lw=2, label=label)
    ax.axhline(lp, color=C_LOGP, lw=1.5, label=r"mean $\log p(x)$ (exact)")
    if optimum_elbo is not None:
        ax.axhline(optimum_elbo.mean().item(), color=C_GAP, ls=":", lw=1.5, label="best diagonal q (analytic)")
    spread = max(lp - e2, 1e-3)
    ax.set_ylim(e2 - 1.5 * spread, lp + 0.9 * spread)
    ax.set_xlabel("gradient step")
    ax.set_ylabel("mean ELBO over the data (nats)")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    # inset: the last half of training, where the two curves separate by the amortisation gap
    n = max(len(h1), len(h2))
    tail = np.concatenate([h1[len(h1) // 2:], h2[len(h2) // 2:]])
    lo, hi = min(tail.min(), e2), max(tail.max(), e1)
    pad = 0.3 * max(hi - lo, 1e-3)
    ins = ax.inset_axes([0.36, 0.06, 0.6, 0.3])
    for h, colour, _ in curves:
        ins.plot(np.arange(1, len(h) + 1), h, color=colour, lw=1.5)
        ins.axhline(h[-1], color=colour, lw=1, ls="--")  # where each run ended
    if optimum_elbo is not None:
        ins.axhline(optimum_elbo.mean().item(), color=C_GAP, ls=":", lw=1.2)
    ins.set_xlim(n // 2, n)
    ins.set_ylim(lo - pad, hi + pad)
    ins.tick_params(labelsize=7)
    ins.set_title("zoom on the second half (dashed: where each run ended)", fontsize=8)
    # right: stacked gaps
    if gaps is None:
        gaps = {"training data": InferenceGaps(lp - e1, e1 - e2, lp - e2)}
    names = list(gaps)
    approx = np.array([gaps[k].approximation for k in names])
    amort = np.array([gaps[k].amortization for k in names])
    pos = np.arange(len(names))
    bars.bar(pos, approx, color=C_GAP, alpha=0.6, label="approximation gap")
    bars.bar(pos, amort, bottom=approx, color=C_ELBO, alpha=0.8, label="amortisation gap")
    for i in range(len(names)):
        bars.text(pos[i], approx[i] / 2, f"{approx[i]:.3f}", ha="center", fontsize=8)
        bars.text(pos[i], approx[i] + amort[i], f"+{amort[i]:.3f}", ha="center", va="bottom", fontsize=8)
    bars.set_xticks(pos, names, fontsize=8)
    bars.set_ylabel(r"mean $\log p(x) - $ELBO (nats)")
    bars.set_ylim(0, 1.25 * float((approx + amort).max()))
    bars.legend(fontsize=8, loc="upper right")
    return axes


def plot_em_steps(fit: EMFit, best_log_px: float, *, steps_shown: int = 6, axes=None):
    r"""EM on two scales. Left, the ELBO along the first ``steps_shown`` steps: each E-step lifts the ELBO onto
    :math:`\log p(x)` (circles), each M-step raises the ELBO with q held fixed (triangles), and :math:`\log p(x)`
    under the new parameters lies above it; the dashed line is ``best_log_px``, the maximum-likelihood value.
    Right, the distance :math:`\log p_\text{ML} - \log p(x)` after every step, on a log scale. Returns the axes."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    left, right = axes
    n = min(steps_shown, len(fit.log_px))
    lp = list(fit.log_px) + [fit.final_log_px]
    xs, ys = [], []
    for k in range(n):
        xs += [k, k + 0.5]
        ys += [fit.elbo_e[k], fit.elbo_m[k]]
    xs.append(n)
    ys.append(lp[n])
    left.plot(xs, ys, color=C_ELBO, lw=1.5, label="ELBO(q, theta) along EM")
    left.plot(range(n + 1), lp[: n + 1], "o", color=C_LOGP, label="log p(x) = ELBO after the E-step")
    left.plot([k + 0.5 for k in range(n)], fit.elbo_m[:n], "^", color=C_KL, label="ELBO after the M-step (q fixed)")
    left.axhline(best_log_px, color="gray", ls="--", lw=1, label="maximum likelihood (closed form)")
    left.set_xlabel("EM step")
    left.set_ylabel("mean over the data (nats)")
    left.set_title(f"the first {n} steps")
    left.legend(fontsize=8, loc="lower right")
    gap = np.maximum(best_log_px - np.asarray(lp), 1e-16)
    right.semilogy(range(len(lp)), gap, "o-", ms=3, color=C_GAP)
    right.set_xlabel("EM step")
    right.set_ylabel(r"$\log p_\mathrm{ML} - \log p(x)$ (nats)")
    right.set_title("distance to the maximum likelihood")
    return axes
