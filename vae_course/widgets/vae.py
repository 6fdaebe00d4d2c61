"""Chapter 5 widget: move a point through a 2-D latent space and watch the decoder's output.

The static version is :func:`vae_course.plotting.latent_point` at one fixed z (the HTML book shows that).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from torch import Tensor

from .. import plotting

__all__ = ["latent_explorer_widget"]


def latent_explorer_widget(model, x: Tensor, y: Tensor, *, lim: float = 3.0) -> widgets.interactive:
    r"""Sliders for :math:`(z_1, z_2)` of a VAE with ``z_dim = 2``: the encoded images ``x`` coloured by label ``y``
    with a cross at :math:`z`, next to the decoder mean :math:`\mathbb E[x\mid z]`. Returns the widget."""
    if model.config.z_dim != 2:
        raise ValueError(f"model: got z_dim = {model.config.z_dim}; the latent explorer needs z_dim = 2")
    x, y = x.detach(), y.detach()

    def show(z1: float = 0.0, z2: float = 0.0):
        plotting.latent_point(model, (z1, z2), x, y)
        plt.show()

    slider = dict(min=-lim, max=lim, step=0.05, continuous_update=False, readout_format=".2f")
    return widgets.interactive(show, z1=widgets.FloatSlider(value=0.0, description="z_1", **slider),
                               z2=widgets.FloatSlider(value=0.0, description="z_2", **slider))
