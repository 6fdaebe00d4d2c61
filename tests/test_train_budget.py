"""fit's time budget and checkpoint interval, and `vae-course train --beta / --minutes / --checkpoint-every`."""
import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import vae_course as vc
from vae_course import train as train_module
from vae_course.checkpoint import read_checkpoint
from vae_course.cli import main
from vae_course.models import LossTerms
from vae_course.models.base import register_model
from vae_course.train import fit


@dataclass
class SlowConfig:
    pause: float = 0.0
    nan_at: int | None = None


@register_model
class Slow(nn.Module):
    """loss = mean (x - w)^2, each call taking ``pause`` seconds; NaN from training step ``nan_at`` on."""

    config_class = SlowConfig

    def __init__(self, config: SlowConfig | None = None, **overrides):
        super().__init__()
        self.config = dataclasses.replace(config or SlowConfig(), **overrides)
        self.w = nn.Parameter(torch.zeros(2))
        self.pause, self.nan_at, self.calls = self.config.pause, self.config.nan_at, 0

    def loss(self, x, **kw):
        self.calls += self.training  # training steps only: fit scores the test set in eval mode
        time.sleep(self.pause)
        loss = (x - self.w).pow(2).sum(-1).mean()
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = loss * float("nan")
        return LossTerms(loss, {"loss": loss})


def _data(n=40):
    x = torch.rand(n, 1, 1, 2, generator=torch.Generator().manual_seed(0))  # ImageData wants (N, 1, H, W)
    return vc.data.ImageData(x_train=x, y_train=torch.zeros(n, dtype=torch.long), x_test=x[:8],
                             y_test=torch.zeros(8, dtype=torch.long), name="toy", binarize="none")


def test_time_limit_stops_before_an_epoch_that_would_overrun():
    # 4 steps of 50 ms: an epoch takes >= 0.2 s, so a 0.9 s budget has room for 3 or 4 of the 50 epochs, never 5+
    # (the clock starts at the first step: building the optimiser may import torch._dynamo, seconds on a first call)
    model = Slow(pause=0.05)
    h = fit(model, _data(), epochs=50, batch_size=10, progress=False, time_limit=0.9)
    assert 1 <= h.epochs <= 4 and sum(h.seconds) <= 0.9 + 0.25, (h.epochs, h.seconds)
    assert h.stopped is None and "time_limit" in h.note and f"after {h.epochs} of 50" in h.note
    assert h.test_epochs[-1] == h.epochs  # the last epoch the budget allowed is scored on the test set


def test_first_epoch_always_runs_and_no_note_when_the_epochs_end_first():
    h = fit(Slow(pause=0.02), _data(), epochs=2, batch_size=10, progress=False, time_limit=1e-3)
    assert h.epochs == 1 and h.note is not None
    h = fit(Slow(), _data(), epochs=3, batch_size=10, progress=False, time_limit=600)
    assert h.epochs == 3 and h.note is None and "note" not in h.to_dict()


def test_time_limit_and_checkpoint_every_are_validated():
    for bad in (0, -1, float("nan"), float("inf"), "5"):
        with pytest.raises((ValueError, TypeError), match="time_limit"):
            fit(Slow(), _data(), epochs=1, progress=False, time_limit=bad)
    for bad in (-1, float("nan")):
        with pytest.raises((ValueError, TypeError), match="checkpoint_every"):
            fit(Slow(), _data(), epochs=1, progress=False, checkpoint_every=bad)


def _count_writes(monkeypatch):
    writes = []
    real = train_module.save_checkpoint

    def counting(path, model, *, history, **kw):
        writes.append(history.epochs)
        return real(path, model, history=history, **kw)

    monkeypatch.setattr(train_module, "save_checkpoint", counting)
    return writes


def test_checkpoint_every_writes_once_at_the_end_and_every_epoch_by_default(tmp_path, monkeypatch):
    writes = _count_writes(monkeypatch)
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16)
    data = vc.data.digits(binarize="dynamic")
    fit(model, data, epochs=4, progress=False, checkpoint=tmp_path / "a.pt", checkpoint_every=1e6)
    assert writes == [4]
    assert len(read_checkpoint(tmp_path / "a.pt")["history"]["seconds"]) == 4
    writes.clear()
    fit(model, data, epochs=3, progress=False, checkpoint=tmp_path / "b.pt")
    assert writes == [1, 2, 3]


def test_an_early_stop_writes_the_restored_weights_with_their_history(tmp_path, monkeypatch):
    writes = _count_writes(monkeypatch)
    model = Slow(nan_at=4 * 3 + 2)  # 4 steps per epoch: NaN at the 2nd step of epoch 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        h = fit(model, _data(), epochs=10, batch_size=10, progress=False, checkpoint=tmp_path / "c.pt",
                checkpoint_every=1e6)
    assert h.stopped and h.epochs == 3 and writes == [3]
    saved = read_checkpoint(tmp_path / "c.pt")
    assert len(saved["history"]["seconds"]) == 3 and saved["history"]["stopped"] == h.stopped
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values())
    assert torch.equal(saved["state_dict"]["w"], model.w.detach())  # the weights that fit handed back


def test_cli_beta_weights_the_kl_and_minutes_bounds_the_run(tmp_path, capsys):
    out = tmp_path / "b4"
    code = main(["train", "--data", "digits", "--beta", "4", "--epochs", "2", "--z-dim", "3", "--hidden", "32",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    h = json.loads((out / "history.json").read_text())
    loss, recon, kl = (h["train"][k][-1] for k in ("loss", "recon", "kl"))
    assert math.isclose(loss, -recon + 4 * kl, rel_tol=1e-4), (loss, recon, kl)  # -beta-ELBO (recon: E log p(x|z))
    assert "beta=4" in capsys.readouterr().out
    code = main(["train", "--data", "digits", "--minutes", "0.02", "--z-dim", "3", "--hidden", "32",
                 "--out", str(tmp_path / "m"), "--no-progress"])
    text = capsys.readouterr().out
    h = json.loads((tmp_path / "m" / "history.json").read_text())
    assert code == 0 and "time_limit: 1.2 s" in text and 1 <= len(h["seconds"]) < 100_000 and h["note"]


@pytest.mark.parametrize("argv, needs", [(["--minutes", "0"], "--minutes"), (["--beta", "-1"], "--beta"),
                                         (["--checkpoint-every", "nan"], "--checkpoint-every"),
                                         (["--test-every", "0"], "--test-every")])
def test_cli_refuses_bad_budgets(argv, needs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--data", "digits", "--out", str(tmp_path), *argv])
    assert exit_.value.code == 2 and needs in capsys.readouterr().err
