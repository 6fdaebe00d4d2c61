"""fit never hands back nor saves broken weights: a finite loss whose gradient is inf or NaN, at every placement.

The toy model's loss is finite at every step, but at one chosen optimiser step its gradient is inf (or NaN), so
Adam's step turns the weights into NaN. Three placements matter: in the middle of an epoch (the next step's loss is
NaN), on the last batch of an epoch (no later loss of that epoch sees it: the end-of-epoch check must), and on the
very last step of training (nothing comes after it but the return). Each runs with and without a checkpoint.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from vae_course.checkpoint import load_checkpoint, save_checkpoint
from vae_course.models import LossTerms
from vae_course.models.base import register_model
from vae_course.train import fit

STEPS_PER_EPOCH, EPOCHS = 4, 3  # 64 examples, batch 16


class _BadGradient(torch.autograd.Function):
    """Identity forward (a finite value), a gradient of inf or NaN backward."""

    @staticmethod
    def forward(ctx, w, fill):
        ctx.fill = fill
        return w.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.full_like(grad, ctx.fill), None


@dataclass
class PoisonConfig:
    dim: int = 2
    poison_at: int = 0  # the 1-based training step whose gradient is bad; 0: never
    fill: float = float("inf")


@register_model
class PoisonedGradient(nn.Module):
    """loss = mean ||x - w||^2, finite always; at training step ``poison_at`` its gradient is ``fill``."""

    config_class = PoisonConfig

    def __init__(self, config: PoisonConfig | None = None, **overrides):
        super().__init__()
        self.config = dataclasses.replace(config or PoisonConfig(), **overrides)
        self.w = nn.Parameter(torch.zeros(self.config.dim))
        self.steps = 0

    def loss(self, x):
        loss = (x - self.w).pow(2).sum(-1).mean()
        if self.training:
            self.steps += 1
            if self.steps == self.config.poison_at:
                loss = loss + 0.0 * _BadGradient.apply(self.w, self.config.fill).sum()  # value unchanged, gradient bad
        return LossTerms(loss, {"loss": loss})


def _run(poison_at: int, tmp_path=None, fill=float("inf")):
    """Train with the bad gradient at ``poison_at``; returns (model, history, weights at the start of each epoch,
    checkpoint path or None, the warnings)."""
    torch.manual_seed(0)
    x = torch.randn(STEPS_PER_EPOCH * 16, 2) + 3.0
    model = PoisonedGradient(poison_at=poison_at, fill=fill)
    starts = {}

    def record(epoch, step, n_steps):
        if step % STEPS_PER_EPOCH == 0:
            starts[epoch] = model.w.detach().clone()
        return {}

    path = tmp_path / "ckpt.pt" if tmp_path is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = fit(model, x, epochs=EPOCHS, batch_size=16, lr=0.1, progress=False, loss_kwargs=record, checkpoint=path)
    return model, h, starts, path, [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_the_toy_gradient_really_poisons_adams_weights():
    """A check of the test's premise: the loss stays finite, the weights do not (with the checks switched off by
    stepping by hand)."""
    for fill in (float("inf"), float("nan")):
        model = PoisonedGradient(poison_at=1, fill=fill)
        opt = torch.optim.Adam(model.parameters(), lr=0.1)
        out = model.loss(torch.ones(4, 2))
        assert torch.isfinite(out.loss)
        out.loss.backward()
        opt.step()
        assert not torch.isfinite(model.w).all()


PLACEMENTS = {
    # name: (bad step, epochs recorded, the epoch whose starting weights come back, message)
    "mid-epoch": (6, 1, 1, "stopped at epoch 2, step 3/4"),
    "last batch of an epoch": (8, 1, 1, "stopped at the end of epoch 2"),
    "last step of training": (EPOCHS * STEPS_PER_EPOCH, 2, 2, "stopped at the end of epoch 3"),
}


@pytest.mark.parametrize("with_checkpoint", [False, True], ids=["no checkpoint", "checkpoint"])
@pytest.mark.parametrize("fill", [float("inf"), float("nan")], ids=["inf gradient", "nan gradient"])
@pytest.mark.parametrize("placement", list(PLACEMENTS))
def test_a_bad_gradient_never_leaves_broken_weights(placement, fill, with_checkpoint, tmp_path):
    bad_step, recorded, restored_epoch, message = PLACEMENTS[placement]
    model, h, starts, path, caught = _run(bad_step, tmp_path if with_checkpoint else None, fill)
    assert len(caught) == 1 and message in str(caught[0].message), [str(w.message) for w in caught]
    assert h.stopped and message in h.stopped and "restored" in h.stopped.lower()
    assert h.epochs == recorded  # the epoch that went wrong is not recorded
    assert torch.isfinite(model.w).all()
    assert torch.equal(model.w.detach(), starts[restored_epoch])  # the weights from the start of that epoch
    if with_checkpoint:
        loaded, _, history = load_checkpoint(path)
        assert torch.equal(loaded.w, model.w.detach())  # the file holds the last finite weights, = what fit returned
        assert history.epochs == recorded


@pytest.mark.parametrize("with_checkpoint", [False, True], ids=["no checkpoint", "checkpoint"])
def test_a_bad_gradient_on_the_last_batch_of_the_first_epoch_restores_the_initial_weights(with_checkpoint, tmp_path):
    model, h, starts, path, caught = _run(STEPS_PER_EPOCH, tmp_path if with_checkpoint else None)
    assert h.epochs == 0 and "end of epoch 1" in h.stopped
    assert torch.equal(model.w.detach(), torch.zeros(2))
    if with_checkpoint:
        assert not path.exists()  # no epoch ended with finite weights: nothing is written


def test_a_clean_run_is_not_stopped(tmp_path):
    model, h, _, path, caught = _run(0, tmp_path)
    assert not caught and h.stopped is None and h.epochs == EPOCHS
    assert torch.equal(load_checkpoint(path).model.w, model.w.detach())


def test_the_optimiser_state_poisoned_by_the_bad_gradient_is_dropped():
    torch.manual_seed(0)
    model = PoisonedGradient(poison_at=8)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    with pytest.warns(RuntimeWarning, match="end of epoch 2"):
        fit(model, torch.randn(64, 2), epochs=3, batch_size=16, progress=False, optimizer=opt)
    for state in opt.state.values():  # continuing with this optimiser starts its moments afresh
        assert all(torch.isfinite(v).all() for v in state.values() if torch.is_tensor(v))
    model.config.poison_at = 0
    fit(model, torch.randn(64, 2), epochs=1, batch_size=16, progress=False, optimizer=opt)
    assert torch.isfinite(model.w).all()


def test_fit_refuses_a_model_whose_weights_are_already_nan():
    model = PoisonedGradient()
    with torch.no_grad():
        model.w[0] = float("nan")
    with pytest.raises(ValueError, match=r"^model: got non-finite weights.*\bw\b"):
        fit(model, torch.randn(8, 2), epochs=1, progress=False)


def test_save_checkpoint_refuses_non_finite_weights_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    model = PoisonedGradient()
    save_checkpoint(path, model)
    before = path.read_bytes()
    with torch.no_grad():
        model.w.fill_(float("inf"))
    with pytest.raises(ValueError, match=r"^model: got non-finite weights.*ckpt\.pt"):
        save_checkpoint(path, model)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
