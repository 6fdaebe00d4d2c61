"""Chapter 9 figures and widget: each function draws on the axes it is given and returns them; the planar-flow
figure draws the density that the change-of-variables formula gives (it integrates to about 1 over the view)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import vae_course as vc  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_planar_flow_plot_draws_a_normalised_density_on_the_given_axes():
    """The plotted density, integrated over the warped grid with each cell's area from its corners (the shoelace
    formula, not the log-determinant), is 1 within 1 %: the change-of-variables density is normalised."""
    fig, ax = plt.subplots()
    assert vc.plotting.planar_flow_plot((2.0, 0.0), (1.0, 0.5), 0.0, ax=ax, n=241) is ax
    mesh = ax.collections[0]
    xy = np.asarray(mesh.get_coordinates(), dtype=np.float64)  # (n, n, 2): the points f(z0)
    q = np.asarray(mesh.get_array(), dtype=np.float64).reshape(xy.shape[:2])
    a, b, c, d = xy[:-1, :-1], xy[:-1, 1:], xy[1:, 1:], xy[1:, :-1]  # the four corners of every cell
    cross = lambda u, v: u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]  # noqa: E731
    area = 0.5 * np.abs(cross(a, b) + cross(b, c) + cross(c, d) + cross(d, a))
    mean_q = 0.25 * (q[:-1, :-1] + q[:-1, 1:] + q[1:, 1:] + q[1:, :-1])
    assert abs((mean_q * area).sum() - 1) < 0.01


def test_posterior_contours_and_gap_bars_return_their_axes():
    axis = torch.linspace(-3, 3, 41)
    z = torch.cartesian_prod(axis, axis)
    log_density = -0.5 * (z**2).sum(-1) / 0.1  # a narrow posterior: the view zooms in on it
    fig, (a, b) = plt.subplots(1, 2)
    assert vc.plotting.posterior_contours(axis, log_density, samples={"q": torch.randn(50, 2)}, ax=a, title="t") is a
    assert -2.0 < a.get_xlim()[0] < -1.0 and a.get_legend() is not None
    assert vc.plotting.gap_bars({"diagonal": 0.9, "flow": 0.01}, errors={"flow": 0.001}, ax=b) is b
    assert [t.get_text() for t in b.get_xticklabels()] == ["diagonal", "flow"]


def test_aggregate_posterior_plot_draws_the_codes_over_the_prior():
    fig, ax = plt.subplots()
    mu, labels = torch.randn(30, 2), torch.randint(10, (30,))
    assert vc.plotting.aggregate_posterior_plot(mu, labels, vc.models.StandardNormalPrior(2), ax=ax) is ax
    assert ax.collections[-1].get_offsets().shape == (30, 2)


def test_hierarchy_study_plot_reads_the_stored_study():
    axes = vc.plotting.hierarchy_study_plot(vc.beyond.load_hierarchy_study())
    assert len(axes) == 2 and len(axes[0].get_xticklabels()) == 5


def test_the_planar_flow_widget_builds():
    w = vc.widgets.planar_flow_widget()
    assert [c.description for c in w.children[:5]] == ["angle of w", "|w|", "u1", "u2", "b"]
