"""The book's schematic diagrams (vae_course.plotting.diagrams): the SVG files in book/figures are what the code
draws, `vae-course diagrams --check` notices a stale file, and what the masked-convolution diagram claims about
receptive fields is what masked convolutions compute (their gradients)."""
import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from pathlib import Path  # noqa: E402

from vae_course.models.masked import MaskedConv2d  # noqa: E402
from vae_course.plotting import diagrams as D  # noqa: E402

FIGURES = Path(__file__).resolve().parents[1] / "book" / "figures"


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_committed_svg_files_are_what_the_code_draws(tmp_path):
    fresh = {p.name: p.read_bytes() for p in D.write_diagrams(tmp_path)}
    committed = {p.name: p.read_bytes() for p in FIGURES.glob("*.svg")}
    assert set(fresh) <= set(committed), f"run `vae-course diagrams`: missing {sorted(set(fresh) - set(committed))}"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"run `vae-course diagrams`: these differ from what the code draws: {stale}"


def test_svg_output_is_reproducible(tmp_path):
    a = D.write_diagrams(tmp_path / "a", ["graphical_model"])[0].read_bytes()
    b = D.write_diagrams(tmp_path / "b", ["graphical_model"])[0].read_bytes()
    assert a == b and b"<svg" in a and b"Date" not in a


@pytest.mark.parametrize("name", sorted(D.DIAGRAMS))
def test_each_diagram_draws_on_the_axes_it_is_given(name):
    _, ax = plt.subplots()
    out = D.DIAGRAMS[name](ax)
    assert out is ax and len(ax.patches) >= 5 and len(ax.texts) >= 3


def test_unknown_diagram_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="names"):
        D.write_diagrams(tmp_path, ["no_such_diagram"])


def test_cli_check_finds_a_stale_file_and_writing_fixes_it(tmp_path, capsys):
    args = argparse.Namespace(out=str(tmp_path), check=True, names=["vq_vae"])
    assert D.run(args) == 1 and "vq_vae.svg" in capsys.readouterr().out  # missing
    assert D.run(argparse.Namespace(out=str(tmp_path), check=False, names=["vq_vae"])) == 0
    assert D.run(args) == 0
    (tmp_path / "vq_vae.svg").write_text("<svg/>")
    assert D.run(args) == 1


def _gradient_field(mask_types, shape, pixel):
    """Inputs with a non-zero gradient of the output at ``pixel``, for a random stack of masked 3x3 convolutions."""
    torch.manual_seed(0)
    layers = [MaskedConv2d(1 if i == 0 else 4, 4, 3, kind) for i, kind in enumerate(mask_types)]
    for layer in layers:  # positive weights: no accidental cancellation of paths
        layer.weight.data = layer.weight.data.abs() + 0.1
    x = torch.rand(1, 1, *shape).requires_grad_(True)
    h = x
    for layer in layers:
        h = layer(h)
    h[0, :, pixel[0], pixel[1]].sum().backward()
    return x.grad[0, 0] != 0


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_stacked_receptive_field_matches_the_gradients_of_masked_convolutions(depth):
    kinds = ["A"] + ["B"] * (depth - 1)
    field = D.stacked_receptive_field(kinds, 3, (9, 9), (4, 4))
    assert torch.equal(field > 0, _gradient_field(kinds, (9, 9), (4, 4)))
    for k in range(1, depth + 1):  # the layer index marks where the field first reaches
        assert torch.equal((field > 0) & (field <= k), D.stacked_receptive_field(kinds[:k], 3, (9, 9), (4, 4)) > 0)


def test_the_blind_spot_is_never_reached_and_the_future_never_seen():
    field = D.stacked_receptive_field(["A"] + ["B"] * 30, 3, (9, 9), (4, 4))
    assert field[4, 4] == 0 and not bool((field[5:] > 0).any()) and not bool((field[4, 4:] > 0).any())
    for k in range(1, 5):  # k rows up, at most k columns to the right
        assert field[4 - k, 4 + k] > 0 if 4 + k < 9 else True
        assert not bool((field[4 - k, 4 + k + 1:] > 0).any())
