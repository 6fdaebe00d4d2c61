"""Appendix A figures and widget: each draws what it says on tiny models and returns its axes / widget."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import vae_course as vc  # noqa: E402
from vae_course.families import CouplingFlow, FamilyResult, FiniteMemoryAR, GRUAR  # noqa: E402


def test_context_plot_shows_the_measured_context():
    ax = vc.plotting.context_plot(FiniteMemoryAR(memory=5, hidden=8), (2, 3))
    assert ax.images[0].get_array().sum() == 5 and "reads 5 pixels" in ax.get_title()
    ax = vc.plotting.context_plot(GRUAR(hidden=8), (2, 3), name="GRU")
    assert ax.images[0].get_array().sum() == 2 * 8 + 3 and ax.get_title() == "GRU: pixel (2, 3) reads 19 pixels"
    plt.close("all")


def test_flow_figures_draw_densities_and_points():
    flow = CouplingFlow(n_couplings=2, hidden=(8,))
    ax = vc.plotting.flow_density(flow, resolution=20, data=torch.randn(10, 2))
    assert ax.images[0].get_array().shape == (12, 20) and len(ax.collections[0].get_offsets()) == 10
    axes = vc.plotting.flow_layers(flow, torch.randn(30, 2), resolution=20)
    assert axes.shape == (2, 2) and len(axes[1, 1].collections[0].get_offsets()) == 30  # blocks 0 and 2
    with pytest.raises(ValueError, match="2-D"):
        vc.plotting.flow_density(CouplingFlow(x_shape=(4,)))
    plt.close("all")


def test_number_figures():
    ax = vc.plotting.memory_curve([0, 2, 8], [-40.0, -30.0, -25.0], references={"GRU": -24.0})
    assert list(ax.lines[0].get_ydata()) == [-40.0, -30.0, -25.0] and len(ax.lines) == 2
    with pytest.raises(ValueError, match="same number"):
        vc.plotting.memory_curve([0, 2], [-40.0])
    rows = [FamilyResult("a", -24.0, 0.5, "exact log p(x)", 0.5, 3.0, 0.1, 100, 64, 10),
            FamilyResult("b", -30.0, 0.5, "lower bound (IWAE, k=10)", 0.6, 1.0, 0.001, 100, 1, 10)]
    axes = vc.plotting.family_bars(rows)
    assert [b.get_width() for b in axes[0].patches] == [-24.0, -30.0] and axes[0].patches[1].get_hatch() == "//"
    plt.close("all")


def test_flow_layers_widget():
    w = vc.widgets.flow_layers_widget(CouplingFlow(n_couplings=3, hidden=(8,)), torch.randn(20, 2))
    assert w.children[0].max == 3
    with pytest.raises(ValueError, match="z: got shape"):
        vc.widgets.flow_layers_widget(CouplingFlow(), torch.randn(5, 3))
    plt.close("all")


def test_sample_panels_and_family_curves():
    axes = vc.plotting.sample_panels({"a": torch.zeros(4, 1, 8, 8), "b": torch.ones(6, 1, 8, 8)}, nrow=2)
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    h = vc.history.History()
    h.test_epochs.extend([1, 2])
    h.append("test", {"loss": 3.0})
    h.append("test", {"loss": 2.0})
    ax = vc.plotting.family_curves({"m": h})
    assert list(ax.lines[0].get_ydata()) == [3.0, 2.0]
    with pytest.raises(ValueError, match="no test values of 'elbo'"):
        vc.plotting.family_curves({"m": h}, "elbo")
    plt.close("all")
