"""Chapter 5 figures and widget: each draws what it says on a tiny model and returns its axes / widget."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import vae_course as vc  # noqa: E402


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    data = vc.data.digits(binarize="static")
    return vc.models.VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16), data


def test_latent_figures(small):
    model, data = small
    x, y = data.x_test[:50], data.y_test[:50]
    ax = vc.plotting.latent_scatter(model, x, y)
    assert sum(len(c.get_offsets()) for c in ax.collections) == 50  # every image is one point
    ax = vc.plotting.latent_manifold(model, n=5)
    assert ax.images[0].get_array().shape == (5 * 9 + 1, 5 * 9 + 1)  # 5 x 5 tiles of 8 px + 1 px padding
    axes = vc.plotting.latent_point(model, (0.5, -0.5), x, y)
    assert axes[0].lines[0].get_xydata().tolist() == [[0.5, -0.5]]
    vc.plotting.interpolation(model, x[0], x[1], steps=4)
    vc.plotting.reconstructions(model, x[:3])
    vc.plotting.means_vs_samples(model, 3, generator=torch.Generator().manual_seed(0))
    plt.close("all")


def test_number_figures_and_std_map():
    ax = vc.plotting.latent_study({2: {"loss": 3.0, "recon": -2.0, "kl": 1.0}, 5: {"loss": 2.0, "recon": -1.0, "kl": 1.0}})
    assert len(ax.lines) == 3 and list(ax.lines[0].get_ydata()) == [3.0, 2.0]
    ax = vc.plotting.iwae_curve_plot({1: -5.0, 10: -4.0}, exact=-3.5)
    assert len(ax.lines) == 2
    ax = vc.plotting.score_histograms({"a": torch.randn(30), "b": torch.randn(30) - 3})
    assert len(ax.patches) > 0
    gauss = vc.models.VAE(x_shape=(1, 8, 8), z_dim=2, hidden=8, likelihood="gaussian", decoder_var="learned")
    vc.plotting.decoder_std_map(gauss, torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match="Gaussian"):
        vc.plotting.decoder_std_map(vc.models.VAE(x_shape=(1, 8, 8), z_dim=2), torch.rand(4, 1, 8, 8))
    plt.close("all")


def test_latent_explorer_widget(small):
    model, data = small
    w = vc.widgets.latent_explorer_widget(model, data.x_test[:20], data.y_test[:20])
    assert [c.description for c in w.children[:2]] == ["z_1", "z_2"]
    with pytest.raises(ValueError, match="z_dim = 2"):
        vc.widgets.latent_explorer_widget(vc.models.VAE(x_shape=(1, 8, 8), z_dim=3), data.x_test, data.y_test)
    plt.close("all")
