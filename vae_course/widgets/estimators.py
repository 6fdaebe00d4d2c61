"""Chapter 4 widget: how the score-function and reparameterisation estimators spread as the number
of samples, the dimension and the baseline change. The book's static figure comes from the same
function, :func:`vae_course.plotting.estimator_histograms`.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from ..plotting.estimators import estimator_histograms

__all__ = ["estimator_widget"]


def estimator_widget(name: str = "quadratic", *, repeats: int = 500, seed: int = 0):
    """Sliders for the number of samples per estimate (2 ... 256), the dimension d (1 ... 64), the
    problem, and a checkbox for the leave-one-out baseline; redraws the histograms of
    ``repeats`` estimates of :math:`\\partial\\,\\mathbb E[F]/\\partial\\mu_1` for each estimator.

    Returns: an ``ipywidgets.interactive``.
    """
    def draw(problem, n_samples, d, baseline):
        estimator_histograms(problem, d, n_samples, baseline, repeats=repeats, seed=seed)
        plt.show()

    return widgets.interactive(
        draw,
        problem=widgets.Dropdown(options=["quadratic", "quartic", "exponential"], value=name, description="F"),
        n_samples=widgets.SelectionSlider(options=[2, 4, 8, 16, 32, 64, 128, 256], value=16, description="samples n"),
        d=widgets.SelectionSlider(options=[1, 2, 4, 8, 16, 32, 64], value=4, description="dimension d"),
        baseline=widgets.Checkbox(value=True, description="leave-one-out baseline"),
    )
