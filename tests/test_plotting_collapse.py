"""Chapter 7 figures and widget: each draws what it says and returns its axes / widget."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import vae_course as vc  # noqa: E402
from vae_course import collapse as C  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _sweep():
    rows = [{"lam": lam, "seed": s, "bound": -27 - lam - s / 10, "elbo": -28 - 2 * lam, "kl": 8 * lam, "kl_dims": [lam] * 8,
             "active": 8, "mi": 6 * lam, "gap": 5 * lam} for lam in (0.0, 0.5, 1.0) for s in (0, 1)]
    return {"settings": {"command": "test"}, "rows": rows}


def test_masks_and_receptive_field():
    axes = vc.plotting.mask_plot(3)
    assert axes[0].images[0].get_array().tolist() == vc.models.causal_mask(3, "A").tolist()
    torch.manual_seed(0)
    ax = vc.plotting.receptive_field_plot(vc.models.PixelCNN(1, 4, 0, first_kernel=3), (2, 2), size=(5, 5))
    seen = np.asarray(ax.images[0].get_array())
    assert seen.sum() == 4 and seen[1, 1:4].tolist() == [1, 1, 1] and seen[2, 1] == 1  # 3 above, 1 to the left


def test_kl_bars_warmup_and_shared_noise_grid():
    ax = vc.plotting.kl_dims_bars({"a": torch.tensor([0.1, 0.2]), "b": [0.3, 0.0]}, floor=0.25)
    assert len(ax.patches) == 4 and ax.lines[0].get_ydata()[0] == 0.25
    h = vc.history.History()
    for v in (1.0, 0.5):
        h.append("train", {"kl": v})
    axes = vc.plotting.warmup_plot(10, 20, histories={"linear warm-up": h}, steps_per_epoch=10, step=5)
    assert axes[0].lines[0].get_ydata()[-1] == 1.0 and axes[1].lines[0].get_ydata().tolist() == [1.0, 0.5]
    dep = C.SampleDependence(torch.zeros(2, 3, 1, 4, 4), 0.25, 0.5)
    ax = vc.plotting.shared_noise_grid(dep)
    assert "25%" in ax.get_title()


def test_sweep_plot_and_widget():
    sweep = _sweep()
    summary = C.summarize_sweep(sweep)
    assert list(summary) == [0.0, 0.5, 1.0] and summary[0.5]["bound"] == pytest.approx(-27.55) and summary[0.5]["n"] == 2
    axes = vc.plotting.free_bits_sweep_plot(sweep, 0.5)
    assert axes[0].patches[0].get_height() == pytest.approx(0.5)
    w = vc.widgets.free_bits_widget(sweep)
    assert w.children[0].value == 0.5


def test_the_stored_sweep_loads():
    sweep = C.load_sweep()
    assert {r["lam"] for r in sweep["rows"]} >= {0.0, 0.25} and "collapse-sweep" in sweep["settings"]["command"]
    with pytest.raises(ValueError, match="path"):
        C.load_sweep("/nonexistent/sweep.json")


def test_report_table_shows_every_model_as_a_row():
    r = C.CollapseReport(-27.8, -27.9, 0.04, 0, 0.03, 0.05, float("nan"), torch.zeros(8))
    table = C.report_table({"collapsed": r, "other": r._replace(active=8, changed=0.2)})
    html = table._repr_html_()
    assert html.count("<tr>") == 3 and "0 / 8" in html and "8 / 8" in html and "0.200" in html
    text = repr(table).splitlines()
    assert len(text) == 3 and text[1].startswith("collapsed") and text[1].rstrip().endswith("-")
