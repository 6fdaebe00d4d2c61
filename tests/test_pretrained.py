"""vae_course.pretrained and `vae-course pretrain`: every stored model loads ready to sample, is small, and is what
its command makes (the first epoch of each recipe re-run and compared with the stored history)."""
import math

import numpy as np
import pytest
import torch

import vae_course as vc
from vae_course import pretrained as P
from vae_course.cli import main
from vae_course.experiments import pretrain

NAMES = sorted(P.STORED)
MAX_MB, TOTAL_MB = 2.1, 15.0
FIRST_EPOCH_RTOL = 0.01  # thread counts and BLAS builds change the last bits; a changed recipe moves it by more


def test_available_lists_every_stored_model_with_its_command():
    listed = P.available()
    assert sorted(listed) == NAMES == sorted(pretrain.NAMES)
    for name, command in listed.items():
        assert command == f"vae-course pretrain {name}"


@pytest.mark.parametrize("name", NAMES)
def test_a_stored_model_loads_in_eval_mode_in_float32_on_the_cpu_with_its_history(name):
    run = P.load(name)
    assert not run.model.training
    params = list(run.model.parameters())
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in params)
    assert run.history is not None and len(run.history.train["loss"]) >= 1
    assert run.command == P.available()[name] and run.extra["name"] == name
    assert all(math.isfinite(v) for v in run.history.train["loss"])
    assert P.load(name, map_location="cpu").model.training is False


def test_stored_files_are_small_and_read_with_weights_only():
    sizes = {}
    for name in NAMES:
        path = P.stored_path(name)
        sizes[name] = path.stat().st_size / 2**20
        payload = torch.load(path, weights_only=True, map_location="cpu")
        assert payload["model_class"] and payload["history"]
    assert max(sizes.values()) < MAX_MB, sizes
    assert sum(sizes.values()) < TOTAL_MB, sizes


def test_half_precision_storage_changes_decoded_images_by_far_less_than_visible(tmp_path):
    """Stored in float16, loaded back: the decoder means move by less than 0.01 (1/100 of the intensity range)."""
    torch.manual_seed(0)
    model = vc.models.VAE(z_dim=8)
    vc.train.fit(model, vc.data.mnist5k(binarize="dynamic"), epochs=1, device="cpu", progress=False)
    P.save(tmp_path / "m.pt", model, None, {"name": "vae-mnist"})
    loaded = P.load("vae-mnist", path=tmp_path / "m.pt").model
    z = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (loaded.generate(z) - model.generate(z)).abs().max()
    assert float(diff) < 0.01
    assert next(model.parameters()).dtype == torch.float32  # save left the model as it was


@pytest.mark.parametrize("name", NAMES)
def test_the_first_epoch_of_each_command_matches_the_stored_history(name):
    stored = P.load(name).history
    _, history, extra = pretrain.train_stored(name, stop_after=1, device="cpu")
    assert extra["stopped_after"] == 1
    ours, theirs = history.train["loss"][0], stored.train["loss"][0]
    assert np.isclose(ours, theirs, rtol=FIRST_EPOCH_RTOL), (name, ours, theirs)


def test_the_stored_iwae_of_the_long_run_is_reproduced_on_a_slice():
    """L_1000 of the first 100 test digits, recomputed. They are the first batch (batch_size 100) of the stored
    computation, so the seeded draws are the same ones and the values must agree to rounding: tolerance 0.01 nats
    per image (thread counts change the last bits). A smaller slice would draw different noise and differ by Monte
    Carlo error (measured up to 2.3 nats per image for 20 digits), which could hide a changed model or estimator."""
    run = P.load("vae-mnist")
    assert len(run.extra["iwae_log_px"]) == 1000 and run.extra["iwae_k"] == pretrain.IWAE_K == 1000
    stored = torch.tensor(run.extra["iwae_log_px"][:100])
    ours = torch.tensor(pretrain.iwae_of_stored(run.model, n=100))
    assert float((ours - stored).abs().max()) < 0.01, float((ours - stored).abs().max())


def test_the_2d_long_run_shows_every_digit_on_its_latent_map():
    """Chapter 5's target: each digit is the classifier's top class for at least one cell of the 15 x 15 map."""
    grid = vc.plotting.latent_grid_images(P.load("vae-2d").model, n=15)
    assert len(torch.unique(vc.quality.features(grid)[1].argmax(-1))) == 10


def test_the_long_run_scores_far_better_than_the_live_run_of_chapter_5():
    """Chapter 5's live recipe (784-400-20 MLP, 25 epochs, cosine schedule peaking at 5e-3) against the stored
    vae-mnist, 2,000 samples each. Measured: 137.5 live, 75.9 stored, a ratio of 0.55 (the issue's target was 0.5,
    not reached); the test asserts the ratio stays below 0.65, and that the long run is far from the real-digit floor too."""
    torch.manual_seed(0)
    live = vc.models.VAE(z_dim=20)
    vc.schedules.fit_cosine(live, vc.data.mnist5k(binarize="dynamic"), epochs=25, lr=5e-3, warmup=80, device="cpu",
                            progress=False)
    g = lambda: vc.utils.make_generator(2)  # noqa: E731
    fd_live = vc.quality.sample_quality(live.sample(2000, generator=g()).clamp(0, 1)).frechet
    fd_long = vc.quality.sample_quality(P.load("vae-mnist").model.sample(2000, generator=g()).clamp(0, 1)).frechet
    assert fd_long < 0.65 * fd_live, (fd_long, fd_live)
    assert fd_long > 3 * vc.quality.sample_quality(vc.quality.real_digits()).frechet


def test_cli_lists_and_guards_the_stored_files(tmp_path, capsys):
    assert main(["pretrain", "--list"]) == 0
    assert "vae-course pretrain vqvae-prior" in capsys.readouterr().out
    assert main(["pretrain", "vae-2d", "--stop-after", "1"]) == 2  # would overwrite the stored model
    assert "--out" in capsys.readouterr().err
    out = tmp_path / "digit.pt"
    assert main(["pretrain", "digit-features", "--stop-after", "1", "--out", str(out)]) == 0
    run = P.load("digit-features", path=out)
    assert run.extra["stopped_after"] == 1 and len(run.history.train["loss"]) == 1
    with pytest.raises(ValueError, match="stored models are"):
        P.load("nope")
