"""Chapter 6 widget: move one latent of a trained (beta-)VAE and watch the decoded sprite.

The static version is :func:`vae_course.plotting.traversal_point` at one latent and value (the HTML book shows that).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import Tensor

from .. import plotting

__all__ = ["traversal_widget"]


def traversal_widget(model, *, kl: Tensor | None = None, z: Tensor | None = None, lim: float = 2.5,
                     n_steps: int = 9) -> widgets.interactive:
    r"""Sliders for the latent (by KL rank, 0 = largest KL) and its value in ``[-lim, lim]``; shows the decoder mean
    with that latent changed (the others at ``z``, default 0) next to the full traversal grid. Returns the widget."""
    m = model.config.z_dim
    kl = None if kl is None else torch.as_tensor(kl).detach().cpu()
    z = None if z is None else torch.as_tensor(z).detach().cpu()

    def show(rank: int = 0, value: float = 0.0):
        plotting.traversal_point(model, rank, value, kl=kl, z=z, lim=lim, n_steps=n_steps)
        plt.show()

    return widgets.interactive(
        show,
        rank=widgets.IntSlider(value=0, min=0, max=m - 1, description="latent rank", continuous_update=False),
        value=widgets.FloatSlider(value=0.0, min=-lim, max=lim, step=0.1, description="value",
                                  continuous_update=False, readout_format=".1f"))
