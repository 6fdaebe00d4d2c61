"""Chapter 2 widgets: the threshold mixture under a theta slider; a generator as a growing mixture.

The book's static figures come from the same plotting functions
(:func:`vae_course.plotting.threshold_histogram`, :func:`vae_course.plotting.infinite_mixture`).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from ..plotting.mixtures import infinite_mixture, threshold_histogram

__all__ = ["threshold_widget", "infinite_mixture_widget"]


def threshold_widget(theta: float = 0.5, *, n: int = 20_000, seed: int = 0) -> widgets.interactive:
    r"""A slider for :math:`\theta`; redraws ``n`` fresh draws of the threshold generator against the exact
    :math:`\theta\,\mathcal N(0,1) + (1-\theta)\,\mathcal N(1,1)`. Returns an ``ipywidgets.interactive``."""
    def draw(theta, seed):
        _, ax = plt.subplots(figsize=(6.5, 3.6))
        threshold_histogram(theta, n=n, seed=seed, ax=ax)
        plt.show()

    return widgets.interactive(
        draw,
        theta=widgets.FloatSlider(value=theta, min=0.0, max=1.0, step=0.05, description="theta"),
        seed=widgets.IntSlider(value=seed, min=0, max=20, description="seed"),
    )


def infinite_mixture_widget(model, *, max_components: int = 64) -> widgets.interactive:
    r"""A slider for the number K of latent values: the generator ``model`` (``z_dim = x_dim = 1``) drawn as
    K Gaussian bumps of weight 1/K, whose sum approaches the marginal :math:`P(x)`. Returns an
    ``ipywidgets.interactive``."""
    def draw(n_components):
        _, ax = plt.subplots(figsize=(6.5, 3.6))
        infinite_mixture(model, n_components, ax=ax)
        plt.show()

    return widgets.interactive(
        draw, n_components=widgets.IntSlider(value=4, min=1, max=max_components, description="K"),
    )
