"""Chapter 9 widget: one planar flow layer bending a standard normal; move its parameters.

The static version is :func:`vae_course.plotting.planar_flow_plot` at one setting (the HTML book shows that). The
density is exact (change of variables), so the widget needs no training.
"""
from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt

from .. import plotting

__all__ = ["planar_flow_widget"]


def planar_flow_widget() -> widgets.interactive:
    """Sliders for the planar layer :math:`f(z) = z + u\\tanh(w^\\top z + b)`: the direction and length of ``w``, the
    two coordinates of ``u`` and the bias ``b``; returns the widget."""

    def show(angle: float = 0.0, w_norm: float = 2.0, u1: float = 1.0, u2: float = 0.5, b: float = 0.0):
        w = (w_norm * math.cos(math.radians(angle)), w_norm * math.sin(math.radians(angle)))
        plotting.planar_flow_plot(w, (u1, u2), b)
        plt.tight_layout()
        plt.show()

    def slider(lo: float, hi: float, value: float, step: float, name: str) -> widgets.FloatSlider:
        return widgets.FloatSlider(min=lo, max=hi, value=value, step=step, description=name, continuous_update=False)

    return widgets.interactive(show, angle=slider(0, 360, 0, 15, "angle of w"), w_norm=slider(0, 5, 2, 0.25, "|w|"),
                               u1=slider(-2, 2, 1, 0.1, "u1"), u2=slider(-2, 2, 0.5, 0.1, "u2"),
                               b=slider(-2, 2, 0, 0.1, "b"))
