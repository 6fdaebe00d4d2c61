"""vae_course.schedules: the warm-up and cosine formula at its landmarks, and the schedule driving fit's optimiser."""
import math

import pytest
import torch

import vae_course as vc
from vae_course.schedules import CosineSchedule, cosine_lr


def test_cosine_lr_at_its_landmarks():
    assert cosine_lr(0, 100, 1.0, warmup=10) == pytest.approx(0.1)
    assert cosine_lr(9, 100, 1.0, warmup=10) == pytest.approx(1.0)
    assert cosine_lr(10, 100, 1.0, warmup=10) == pytest.approx(1.0)
    assert cosine_lr(55, 100, 1.0, warmup=10) == pytest.approx(0.5)  # half way through the decay
    assert cosine_lr(100, 100, 1.0, warmup=10, final=0.1) == pytest.approx(0.1)
    assert cosine_lr(500, 100, 2.0, final=0.1) == pytest.approx(0.2)  # stays at the floor after the end
    t = 0.3
    assert cosine_lr(30, 100, 1.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * t)))
    with pytest.raises(ValueError, match="warmup"):
        cosine_lr(0, 10, 1.0, warmup=10)


def test_the_schedule_sets_the_step_size_that_fit_uses_and_passes_other_kwargs_on():
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16)
    data = vc.data.digits(binarize="dynamic")
    opt = vc.train.make_optimizer(model, 1e-2)
    steps = 3 * math.ceil(len(data.x_train) / 128)
    seen = []
    schedule = CosineSchedule(opt, 1e-2, steps, warmup=2, inner=lambda e, s, n: seen.append(opt.param_groups[0]["lr"])
                              or {"beta": 1.0})
    history = vc.train.fit(model, data, epochs=3, optimizer=opt, loss_kwargs=schedule, progress=False, device="cpu")
    assert len(seen) == steps and seen[0] == pytest.approx(5e-3) and seen[1] == pytest.approx(1e-2)
    assert all(a >= b for a, b in zip(seen[1:], seen[2:]))  # non-increasing after the warm-up
    assert seen[-1] == pytest.approx(cosine_lr(steps - 1, steps, 1e-2, warmup=2))
    assert history.epochs == 3
    # continuing a run in pieces: `start` shifts the step count
    later = CosineSchedule(opt, 1e-2, steps, warmup=2, start=steps - 1)
    later(0, 0, 1)
    assert opt.param_groups[0]["lr"] == pytest.approx(seen[-1])
    assert CosineSchedule(opt, 1e-2, 10, inner={"beta": 0.5})(0, 0, 10) == {"beta": 0.5}


def test_bad_arguments_are_named():
    opt = vc.train.make_optimizer(torch.nn.Linear(2, 2), 1e-3)
    with pytest.raises(TypeError, match="optimizer"):
        CosineSchedule(object(), 1e-3, 10)
    with pytest.raises(ValueError, match="lr"):
        CosineSchedule(opt, -1.0, 10)
    with pytest.raises(ValueError, match="final"):
        CosineSchedule(opt, 1e-3, 10, final=2.0)
    with pytest.raises(ValueError, match="total_steps"):
        CosineSchedule(opt, 1e-3, 0)


def test_fit_cosine_is_fit_with_the_schedule_over_its_epochs_and_learns():
    data = vc.data.digits(binarize="dynamic")
    torch.manual_seed(0)
    a = vc.models.VAE(x_shape=(1, 8, 8), z_dim=4, hidden=64)
    steps = []
    h = vc.schedules.fit_cosine(a, data, epochs=3, lr=1e-2, warmup=5, progress=False, device="cpu",
                                loss_kwargs=lambda e, s, n: steps.append(s) or {})
    torch.manual_seed(0)
    b = vc.models.VAE(x_shape=(1, 8, 8), z_dim=4, hidden=64)
    opt = vc.train.make_optimizer(b, 1e-2)
    n = 3 * math.ceil(len(data.x_train) / 128)
    vc.train.fit(b, data, epochs=3, optimizer=opt, loss_kwargs=CosineSchedule(opt, 1e-2, n, warmup=5), progress=False,
                 device="cpu")
    assert steps == list(range(n))  # the inner schedule saw every step
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert opt.param_groups[0]["lr"] == pytest.approx(cosine_lr(n - 1, n, 1e-2, warmup=5))
    assert h.test["loss"][-1] < h.test["loss"][0]
