"""vae_course.plotting.stats (seaborn) and latent_grid_images: what each figure draws, and named errors."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import vae_course as vc  # noqa: E402
from vae_course.plotting import stats  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_set_theme_applies_the_course_style():
    stats.set_theme()
    assert matplotlib.rcParams["axes.grid"] is True
    assert matplotlib.rcParams["image.interpolation"] == "nearest"


def test_score_distributions_draws_one_histogram_per_group_with_its_mean(gen):
    scores = {"a": torch.full((100,), 5.0), "b": torch.tensor([-10.0] * 49 + [-1000.0])}
    ax = stats.score_distributions(scores, clip_quantile=0.01)
    labels = sorted(t.get_text() for t in ax.get_legend().get_texts())
    assert labels == ["a (mean 5)", "b (mean -30)"], labels  # the means of the unclipped scores
    assert ax.get_xlim()[0] > -100  # the outlier is drawn in the lowest bin, not at -1000
    with pytest.raises(ValueError, match="empty"):
        stats.score_distributions({})


def test_quality_bars_and_class_shares_show_the_numbers():
    q = vc.quality.SampleQuality(12.5, 9.0, 10, torch.full((10,), 50), 0.97, 500)
    worse = q._replace(frechet=250.0, class_counts=torch.tensor([500] + [0] * 9))
    ax = stats.quality_bars({"real": q, "model": worse}, floor="real")
    texts = [t.get_text().strip() for t in ax.texts]
    assert texts == ["12.5", "250.0"] and ax.get_xscale() == "log"
    ax = stats.class_shares({"real": q.class_counts, "model": worse.class_counts})
    heights = sorted(round(p.get_height(), 3) for p in ax.patches if p.get_height() > 0)
    assert heights[-1] == 1.0 and heights.count(0.1) == 10  # one bar of 100%, ten of 10%
    with pytest.raises(ValueError, match="results"):
        stats.quality_bars({})


def test_codes_against_prior_and_intensity_distributions(gen):
    mu = torch.randn(300, 2, generator=gen)
    ax = stats.codes_against_prior(mu, labels=torch.randint(10, (300,), generator=gen))
    assert len([p for p in ax.patches if isinstance(p, matplotlib.patches.Circle)]) == 3
    assert [t.get_text() for t in ax.texts] == ["39%", "86%", "99%"]  # 1 - exp(-r^2/2) for r = 1, 2, 3
    with pytest.raises(ValueError, match="2-D codes"):
        stats.codes_against_prior(torch.randn(10, 3))
    ax = stats.intensity_distributions({"sharp": torch.ones(5, 1, 4, 4), "grey": torch.full((5, 1, 4, 4), 0.5)})
    assert ax.get_xlim()[0] >= 0.0


def test_latent_grid_images_are_the_decoded_grid_in_reading_order():
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 8, 8), z_dim=2, hidden=8)
    grid = vc.plotting.latent_grid_images(model, n=3)
    assert grid.shape == (9, 1, 8, 8)
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([0.05, 0.5, 0.95]))
    first = torch.tensor([[q[0], q[2]]])  # top-left: lowest z1, highest z2
    assert torch.allclose(grid[0], model.decode(first).mean[0].clamp(0, 1), atol=1e-6)
