"""vae_course.train / history / checkpoint: the fit loop, NaN recovery, checkpoint round trips and errors."""
import math
import pickle
import warnings

import pytest
import torch
from torch import nn

import vae_course as vc
from vae_course.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from vae_course.history import History
from vae_course.models import VAE, LossTerms
from vae_course.train import evaluate_loss, fit


@pytest.fixture(scope="module")
def digits():
    return vc.data.digits(binarize="dynamic")


def _small_vae(**kw):
    torch.manual_seed(0)
    return VAE(x_shape=(1, 8, 8), z_dim=4, hidden=128, **kw)


class Quadratic(nn.Module):
    """A toy model for the loop's mechanics: loss = mean (x - w)^2; NaN from call ``nan_at`` on."""

    def __init__(self, nan_at: int | None = None):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))
        self.calls, self.nan_at, self.seen = 0, nan_at, []

    def loss(self, x, **kw):
        self.calls += 1
        self.seen.append(kw)
        loss = (x - self.w).pow(2).sum(-1).mean()
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = loss * float("nan")
        return LossTerms(loss, {"loss": loss})


# ---------------------------------------------------------------- learning
def test_fit_learns_on_digits(digits):
    model = _small_vae()
    h = fit(model, digits, epochs=6, batch_size=64, lr=3e-3, progress=False)
    assert h.epochs == 6 and h.test_epochs == [1, 2, 3, 4, 5, 6]
    assert set(h.train) == set(h.test) == {"loss", "elbo", "recon", "kl"}
    # measured: ~29.6 -> ~25.1 nats per 8x8 image; demand at least 2.5 nats of improvement
    assert h.test["loss"][-1] < h.test["loss"][0] - 2.5
    assert math.isclose(h.test["loss"][-1], -h.test["elbo"][-1], rel_tol=1e-5)  # beta = 1: loss = -ELBO
    assert h.samples == [1500] * 6 and h.samples_per_second > 0
    assert len(h.seconds) == len(h.train_seconds) == 6


def test_fit_is_reproducible_for_a_seed(digits):
    a = fit(_small_vae(), digits, epochs=2, progress=False, seed=3)
    b = fit(_small_vae(), digits, epochs=2, progress=False, seed=3)
    assert a.train["loss"] == b.train["loss"] and a.test["loss"] == b.test["loss"]


def test_loss_kwargs_schedule_sees_every_step_and_reaches_the_model(digits):
    calls = []

    def schedule(epoch, step, n_steps):
        calls.append((epoch, step, n_steps))
        return {"beta": step / n_steps}

    model = Quadratic()
    fit(model, torch.randn(100, 2), epochs=3, batch_size=32, progress=False, loss_kwargs=schedule)
    assert [c[1] for c in calls] == list(range(12)) and {c[2] for c in calls} == {12}
    assert [c[0] for c in calls] == [0] * 4 + [1] * 4 + [2] * 4
    assert model.seen[5] == {"beta": 5 / 12}
    # a beta schedule changes the objective of a real VAE: at beta = 0 the KL is free to grow
    h0 = fit(_small_vae(), digits, epochs=2, progress=False, loss_kwargs={"beta": 0.0})
    h1 = fit(_small_vae(), digits, epochs=2, progress=False)
    assert h0.train["kl"][-1] > h1.train["kl"][-1]


def test_tensor_data_has_no_test_split_and_test_every_is_honoured(digits):
    h = fit(Quadratic(), torch.randn(64, 2), epochs=2, progress=False)
    assert h.test == {} and h.test_epochs == []
    h = fit(_small_vae(), digits, epochs=5, test_every=2, progress=False)
    assert h.test_epochs == [2, 4, 5]


def test_fit_rejects_bad_arguments(digits):
    with pytest.raises(ValueError, match="epochs"):
        fit(_small_vae(), digits, epochs=0)
    with pytest.raises(TypeError, match="data"):
        fit(_small_vae(), [1, 2, 3], epochs=1)
    with pytest.raises(TypeError, match="model"):
        fit(nn.Linear(2, 2), torch.randn(4, 2), epochs=1)
    with pytest.raises(TypeError, match="loss_kwargs"):
        fit(Quadratic(), torch.randn(4, 2), epochs=1, loss_kwargs=3, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            fit(_small_vae(), digits, epochs=1, device="cuda")


# ---------------------------------------------------------------- NaN / Inf recovery
def test_nan_stops_with_a_message_and_restores_the_epoch_start_weights():
    starts = {}
    model = Quadratic(nan_at=7)  # 4 steps per epoch: the NaN comes at step 3 of epoch 2

    def record(epoch, step, n_steps):
        if step % 4 == 0:
            starts[epoch] = model.w.detach().clone()
        return {}

    x = torch.randn(128, 2) + 3.0
    with pytest.warns(RuntimeWarning, match="stopped at epoch 2, step 3/4"):
        h = fit(model, x, epochs=5, batch_size=32, lr=0.1, progress=False, loss_kwargs=record)
    assert "restored" in h.stopped.lower() and "nan" in h.stopped.lower()
    assert h.epochs == 1  # the failing epoch is not recorded
    assert torch.isfinite(model.w).all()
    assert torch.equal(model.w.detach(), starts[1])  # the weights from the start of epoch 2


def test_inf_from_a_collapsed_decoder_variance_is_caught_and_undone(digits):
    # a learned Gaussian variance with no floor that has collapsed: sigma^2 = e^-200 underflows to 0, so
    # (x - mu)^2 / sigma^2 = inf. The collapse happens at the start of epoch 2; fit must stop there.
    model = _small_vae(likelihood="gaussian", decoder_var="learned", min_decoder_std=0.0)
    last = model.decoder.net[-1]
    saved = {}

    def collapse(epoch, step, n_steps):
        if epoch == 1 and "w" not in saved:
            saved["w"] = last.bias.detach().clone()
            with torch.no_grad():
                last.bias[64:] = -200.0  # the log-variance half of the output
        return {}

    with pytest.warns(RuntimeWarning, match="variance"):
        h = fit(model, digits, epochs=3, progress=False, loss_kwargs=collapse)
    assert h.epochs == 1 and "epoch 2, step 1/" in h.stopped
    assert torch.equal(last.bias.detach(), saved["w"])  # the weights from before the collapse
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ---------------------------------------------------------------- history
def test_history_round_trip_plot_and_last(digits):
    h = fit(_small_vae(), digits, epochs=2, progress=False)
    d = h.to_dict()
    assert History.from_dict(d) == h
    assert h.last("loss", "test") == h.test["loss"][-1]
    with pytest.raises(ValueError, match="term"):
        h.last("nope")
    with pytest.raises(ValueError, match="unknown keys"):
        History.from_dict({**d, "bogus": 1})
    import matplotlib
    matplotlib.use("Agg")
    ax = vc.plotting.history_curves(h, "kl")
    assert len(ax.lines) == 2
    assert "History(epochs=2" in repr(h)


def test_evaluate_loss_matches_the_test_terms(digits):
    model = _small_vae()
    h = fit(model, digits, epochs=1, progress=False)
    torch.manual_seed(0)
    a = evaluate_loss(model, digits.x_test)
    assert set(a) == set(h.test)
    assert abs(a["loss"] - h.test["loss"][-1]) < 0.5  # one z per image: MC noise of the mean is small


# ---------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path, digits):
    model = _small_vae(arch="conv", channels=(4, 8), activation="relu")
    path = tmp_path / "run" / "ckpt.pt"
    h = fit(model, digits, epochs=2, progress=False, checkpoint=path, checkpoint_extra={"data": "digits"})
    raw = torch.load(path, weights_only=True)  # the format must load without unpickling code
    assert raw["model_class"] == "VAE" and raw["extra"] == {"data": "digits"}
    loaded, config, history, extra = load_checkpoint(path, return_extra=True)
    assert config == model.config and history == h and extra == {"data": "digits"}
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    x = digits.x_test[:5]
    assert torch.equal(model.encode(x).mu, loaded.encode(x).mu)
    assert list(tmp_path.joinpath("run").iterdir()) == [path]  # no temporary files left behind


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    model = _small_vae()
    save_checkpoint(path, model)
    before = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, VAE(x_shape=(1, 8, 8), z_dim=2))
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_save_rejects_unregistered_models_and_unsafe_extras(tmp_path):
    with pytest.raises(ValueError, match="register_model"):
        save_checkpoint(tmp_path / "a.pt", Quadratic(), config=None)
    with pytest.raises(TypeError, match="extra"):
        save_checkpoint(tmp_path / "b.pt", _small_vae(), extra={"fn": print})


def _saved(tmp_path):
    path = tmp_path / "good.pt"
    save_checkpoint(path, _small_vae())
    return path


def test_corrupt_or_truncated_file_gives_a_clear_error(tmp_path):
    good = _saved(tmp_path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01 not a checkpoint at all" * 10)
    with pytest.raises(ValueError, match=r"junk\.pt.*corrupt"):
        load_checkpoint(junk)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut\.pt.*corrupt"):
        load_checkpoint(cut)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": object()}, protocol=2))
    with pytest.raises(ValueError, match="evil.pt"):
        load_checkpoint(evil)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_missing_keys_unknown_class_and_shape_mismatch_are_named(tmp_path):
    good = _saved(tmp_path)
    payload = read_checkpoint(good)
    cases = {
        "nokeys.pt": ({k: v for k, v in payload.items() if k != "state_dict"}, r"missing key.*state_dict"),
        "class.pt": ({**payload, "model_class": "Mystery"}, "registered models"),
        "shape.pt": ({**payload, "config": {**payload["config"], "z_dim": 5}}, r"do not fit.*size mismatch"),
        "names.pt": ({**payload, "state_dict": {"w": torch.zeros(1)}}, r"do not fit.*Missing key"),
        "config.pt": ({**payload, "config": {**payload["config"], "arch": "resnet"}}, "cannot rebuild.*arch"),
        "format.pt": ({**payload, "format": "other/9"}, "format"),
    }
    for name, (content, match) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(ValueError, match=match) as err:
            load_checkpoint(tmp_path / name)
        assert name in str(err.value)
