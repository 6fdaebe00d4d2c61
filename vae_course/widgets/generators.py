"""Chapter 1 widgets: reshape a 2-D Gaussian by its covariance; move a generator's latent z.

Both reuse one fixed noise draw eps, so what moves on screen is only the transformation
x = mu + L eps (the Cholesky sampler), not fresh randomness.
"""
from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from .. import generators as G
from .. import plotting
from ..utils import check_positive_int, make_generator

__all__ = ["gaussian_covariance_widget", "generator_latent_widget"]


def gaussian_covariance_widget(*, n: int = 1000, seed: int = 0) -> widgets.interactive:
    r"""Sliders for :math:`\sigma_1, \sigma_2` and the correlation :math:`\rho` of a 2-D Gaussian.

    :math:`\Sigma = \begin{pmatrix}\sigma_1^2 & \rho\sigma_1\sigma_2\\ \rho\sigma_1\sigma_2 & \sigma_2^2\end{pmatrix}`;
    the plot is :func:`vae_course.plotting.gaussian_cloud` with one fixed ``eps``. Returns the widget.
    """
    n = check_positive_int("n", n)
    eps = torch.randn(n, 2, generator=make_generator(seed), dtype=torch.float64)

    def show(sigma1: float = 1.0, sigma2: float = 0.5, rho: float = 0.6):
        c = rho * sigma1 * sigma2
        cov = torch.tensor([[sigma1**2, c], [c, sigma2**2]], dtype=torch.float64)
        fig, ax = plt.subplots(figsize=(5, 5))
        plotting.gaussian_cloud(torch.zeros(2), cov, eps=eps, ax=ax)
        plt.show()

    slider = dict(continuous_update=False, readout_format=".2f")
    return widgets.interactive(
        show,
        sigma1=widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.05, description="sigma_1", **slider),
        sigma2=widgets.FloatSlider(value=0.5, min=0.1, max=2.0, step=0.05, description="sigma_2", **slider),
        rho=widgets.FloatSlider(value=0.6, min=-0.95, max=0.95, step=0.05, description="rho", **slider),
    )


def generator_latent_widget(gen: G.ProbabilisticGenerator | None = None, *, n: int = 300,
                            n_background: int = 3000, seed: int = 0) -> widgets.interactive:
    r"""A slider for the latent :math:`z` of a 2-D generator with ``z_dim = 1``: shows :math:`p(x\mid z)`.

    Default generator: ``vc.generators.toy_generator("ring")``. The grey background is the marginal
    :math:`p(x)`; the blue cloud and ellipses are the conditional Gaussian at the chosen ``z``
    (:func:`vae_course.plotting.generator_conditional`). Returns the widget.
    """
    gen = G.toy_generator("ring") if gen is None else gen
    if not isinstance(gen, G.ProbabilisticGenerator) or gen.z_dim != 1 or gen.x_dim != 2:
        raise ValueError("gen: need a ProbabilisticGenerator with z_dim = 1 and x_dim = 2")
    g = make_generator(seed)
    with torch.no_grad():
        background = gen.sample(check_positive_int("n_background", n_background), generator=g)
    eps = torch.randn(check_positive_int("n", n), 2, generator=g)
    lim = max(2.2, 1.1 * float(background.abs().max()))

    def show(z: float = 0.0):
        fig, ax = plt.subplots(figsize=(5, 5))
        plotting.generator_conditional(gen, z, eps=eps, background=background, ax=ax, lim=lim,
                                       title=f"z = {z:.2f}   (prior density {math.exp(-z * z / 2) / math.sqrt(2 * math.pi):.3f})")
        plt.show()

    return widgets.interactive(
        show, z=widgets.FloatSlider(value=0.0, min=-3.0, max=3.0, step=0.05, description="z",
                                    continuous_update=False, readout_format=".2f"))
