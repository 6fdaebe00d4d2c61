"""Chapter 7 widget: move the free-bits floor and see what it buys (information in z) and costs (the bound).

The static version is :func:`vae_course.plotting.free_bits_sweep_plot` at one floor (the HTML book shows that).
The numbers come from a stored sweep (:func:`vae_course.collapse.load_sweep`), so the widget needs no training.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt

from .. import collapse as C
from .. import plotting

__all__ = ["free_bits_widget"]


def free_bits_widget(sweep: dict[str, Any] | None = None) -> widgets.interactive:
    """A slider over the free-bits floors of ``sweep`` (default: the book's stored sweep); returns the widget."""
    sweep = sweep if sweep is not None else C.load_sweep()
    lams = list(C.summarize_sweep(sweep))

    def show(lam: float = lams[len(lams) // 2]):
        plotting.free_bits_sweep_plot(sweep, lam)
        plt.tight_layout()
        plt.show()

    slider = widgets.SelectionSlider(options=[(f"{v:g}", v) for v in lams], value=lams[len(lams) // 2],
                                     description="floor", continuous_update=False)
    return widgets.interactive(show, lam=slider)
