"""Appendix A widget: a 2-D coupling flow layer by layer, one slider for the number of blocks applied.

The static version is :func:`vae_course.plotting.flow_layers` at a few fixed depths (the HTML book shows that).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from torch import Tensor

from .. import plotting

__all__ = ["flow_layers_widget"]


def flow_layers_widget(flow, z: Tensor) -> widgets.interactive:
    """A slider for :math:`j`, the number of coupling blocks applied to the base points ``z`` ``(N, 2)``; shows the
    density of :math:`h_j` and the pushed points (:func:`vae_course.plotting.flow_layers` with one column). Returns the
    widget."""
    if flow.config.x_dim != 2:
        raise ValueError(f"flow: got a flow on {flow.config.x_dim} coordinates; the widget draws 2-D flows")
    if z.dim() != 2 or z.shape[1] != 2:
        raise ValueError(f"z: got shape {tuple(z.shape)}; need base points (N, 2)")

    def show(blocks: int = 0):
        _, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        plotting.flow_layers(flow, z, blocks=[blocks], axes=axes)
        plt.show()

    return widgets.interactive(show, blocks=widgets.IntSlider(value=0, min=0, max=flow.config.n_couplings,
                                                              description="blocks j", continuous_update=False))
