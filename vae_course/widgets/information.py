"""Chapter 0 widgets: move one distribution and watch entropy, cross-entropy and both KLs change.

The static figures in the book come from the same plotting functions
(:func:`vae_course.plotting.categorical_bars`, :func:`vae_course.plotting.gaussian_pair`).
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from ..plotting.information import categorical_bars, gaussian_pair

__all__ = ["categorical_kl_widget", "gaussian_kl_widget"]


def categorical_kl_widget(p: Sequence[float] = (0.5, 0.25, 0.15, 0.1), q: Sequence[float] | None = None,
                          *, base: float | None = None):
    """Sliders set the (unnormalised) weights of q; p stays fixed; the bar plot and its title
    (H(p), H(p,q), KL(p||q), KL(q||p)) are redrawn. A weight of 0 where p > 0 makes KL(p||q) infinite.

    Args:
        p: the fixed distribution (K probabilities); q: the initial weights (default uniform).
        base: ``None`` for nats, ``2`` for bits.
    Returns: an ``ipywidgets.interactive``.
    """
    p_t = torch.as_tensor(p, dtype=torch.float64)
    if p_t.dim() != 1 or p_t.numel() < 2:
        raise ValueError(f"p: got shape {tuple(p_t.shape)}; need a vector of at least 2 probabilities")
    k = p_t.numel()
    q0 = [1.0 / k] * k if q is None else list(q)
    if len(q0) != k:
        raise ValueError(f"q: got {len(q0)} weights; need K = {k} like p")
    sliders = {f"q{i}": widgets.FloatSlider(value=float(q0[i]), min=0.0, max=1.0, step=0.01, description=f"weight {i}")
               for i in range(k)}

    def draw(**weights):
        w = torch.tensor([weights[f"q{i}"] for i in range(k)], dtype=torch.float64)
        q_t = w / w.sum() if w.sum() > 0 else torch.full((k,), 1.0 / k, dtype=torch.float64)
        _, ax = plt.subplots(figsize=(6, 3.6))
        categorical_bars(p_t, q_t, base=base, ax=ax)
        plt.show()

    return widgets.interactive(draw, **sliders)


def gaussian_kl_widget(mu_p: float = 0.0, sigma_p: float = 1.0, mu_q: float = 1.0, sigma_q: float = 0.5):
    """Sliders for the means and standard deviations of two Gaussians p and q; redraws
    :func:`~vae_course.plotting.gaussian_pair` (differential entropies, KL both ways).

    Push a sigma below about 0.24 to see a negative differential entropy.
    Returns: an ``ipywidgets.interactive``.
    """
    def draw(mu_p, sigma_p, mu_q, sigma_q):
        _, ax = plt.subplots(figsize=(6, 3.6))
        gaussian_pair(mu_p, sigma_p, mu_q, sigma_q, ax=ax, x_range=(-6.0, 6.0))
        plt.show()

    mu = lambda v, name: widgets.FloatSlider(value=v, min=-3.0, max=3.0, step=0.1, description=name)  # noqa: E731
    sd = lambda v, name: widgets.FloatLogSlider(value=v, base=10, min=-1.5, max=0.5, step=0.02, description=name)  # noqa: E731
    return widgets.interactive(draw, mu_p=mu(mu_p, "mu_p"), sigma_p=sd(sigma_p, "sigma_p"),
                               mu_q=mu(mu_q, "mu_q"), sigma_q=sd(sigma_q, "sigma_q"))
