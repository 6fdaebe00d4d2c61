"""Chapter 3 widget: move q's mean and log-variance and watch the ELBO, log p(x) and their gap."""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from torch import Tensor

from ..linear_gaussian import LinearGaussianModel
from ..plotting.inference import plot_q_vs_posterior

__all__ = ["q_posterior_widget"]


def q_posterior_widget(model: LinearGaussianModel, x: Tensor, *, mu_range: tuple[float, float] | None = None,
                       logvar_range: tuple[float, float] = (-5.0, 2.0)):
    """Sliders for ``mu_q`` and ``logvar_q`` of a 1-D q, redrawing
    :func:`~vae_course.plotting.plot_q_vs_posterior` for the observation ``x`` ``(d,)``.
    Returns the ``ipywidgets.interactive`` object."""
    if model.z_dim != 1:
        raise ValueError(f"model: got z_dim = {model.z_dim}; this widget needs a 1-D latent (z_dim = 1)")
    m0 = model.posterior(x).mu.item()
    lo, hi = mu_range if mu_range is not None else (m0 - 3.0, m0 + 3.0)

    def draw(mu_q: float, logvar_q: float):
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        plot_q_vs_posterior(model, x, mu_q, logvar_q, axes=axes, mu_range=(lo, hi), logvar_range=logvar_range)
        plt.tight_layout()
        plt.show()

    return widgets.interactive(
        draw,
        mu_q=widgets.FloatSlider(value=round(lo + 0.25 * (hi - lo), 2), min=lo, max=hi, step=0.05, description="mean of q",
                                 continuous_update=False, style={"description_width": "initial"}),
        logvar_q=widgets.FloatSlider(value=0.0, min=logvar_range[0], max=logvar_range[1], step=0.05,
                                     description="log-variance of q", continuous_update=False,
                                     style={"description_width": "initial"}),
    )
