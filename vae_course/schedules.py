r"""Learning-rate schedules for :func:`vae_course.train.fit`, plugged in where every schedule goes: ``loss_kwargs``.

``fit`` calls ``loss_kwargs(epoch, step, n_steps)`` before every step, so a schedule that sets the optimiser's
step size there needs nothing else from the loop. A short run profits most: a constant step size leaves Adam
bouncing around the bottom of the loss, while decaying it over the last part of training settles the weights,
worth several nats of test ELBO for the same number of steps (chapter 5). The one schedule here is a linear
warm-up followed by a cosine decay (Loshchilov & Hutter, 2017),

.. math:: \eta_t = \eta_{\min} + \tfrac12(\eta_{\max} - \eta_{\min})\big(1 + \cos(\pi\,\tfrac{t - t_w}{T - t_w})\big),
          \qquad t_w \le t < T,

with :math:`\eta_t = \eta_{\max}(t + 1)/t_w` during the first :math:`t_w` steps. ``total_steps`` is given
explicitly (not read from the ``fit`` call), so that running only the first epochs of a long run follows exactly
the long run's schedule (what the tests of the stored models do).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .history import History
from .train import fit, make_optimizer
from .utils import check_positive_int

__all__ = ["cosine_lr", "CosineSchedule", "fit_cosine"]


def cosine_lr(step: int, total_steps: int, lr: float, *, warmup: int = 0, final: float = 0.0) -> float:
    r"""The step size at ``step`` (0-based): linear warm-up over ``warmup`` steps to ``lr``, then a cosine decay to
    ``final * lr`` at ``total_steps``; ``final * lr`` after that."""
    total_steps = check_positive_int("total_steps", total_steps)
    warmup = check_positive_int("warmup", warmup, allow_zero=True)
    if warmup >= total_steps:
        raise ValueError(f"warmup: got {warmup}; need fewer warm-up steps than total_steps ({total_steps})")
    low = final * lr
    if step < warmup:
        return lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / (total_steps - warmup))
    return low + 0.5 * (lr - low) * (1 + math.cos(math.pi * t))


class CosineSchedule:
    """A ``loss_kwargs`` callable for :func:`~vae_course.train.fit` that sets every parameter group of ``optimizer``
    to :func:`cosine_lr` before each step, then returns ``inner(epoch, step, n_steps)`` (another schedule, e.g. KL
    warm-up), or ``inner`` itself if it is a dict, or ``{}``.

    ``start``: the step of the long run the first call of ``fit`` corresponds to (to continue a run in pieces).
    ``fit`` counts ``step`` from 0 in each call.

    Usage::

        opt = vc.train.make_optimizer(model, lr=3e-3)
        schedule = vc.schedules.CosineSchedule(opt, lr=3e-3, total_steps=epochs * steps_per_epoch)
        vc.train.fit(model, data, epochs=epochs, optimizer=opt, loss_kwargs=schedule)
    """

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, total_steps: int, *, warmup: int = 0,
                 final: float = 0.0, start: int = 0, inner: dict | Callable[[int, int, int], dict] | None = None):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer: got {type(optimizer).__name__}; need a torch.optim.Optimizer "
                            "(vc.train.make_optimizer(model, lr))")
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr: got {lr!r}; need a positive peak learning rate")
        if not (isinstance(final, (int, float)) and 0 <= final <= 1):
            raise ValueError(f"final: got {final!r}; need the final step size as a fraction of lr, in [0, 1]")
        self.optimizer, self.lr, self.final, self.inner = optimizer, float(lr), float(final), inner
        self.total_steps, self.warmup = check_positive_int("total_steps", total_steps), warmup
        self.start = check_positive_int("start", start, allow_zero=True)
        cosine_lr(0, self.total_steps, self.lr, warmup=warmup, final=final)  # checks warmup against total_steps
        self.last_lr = self.lr

    def __call__(self, epoch: int, step: int, n_steps: int) -> dict:
        self.last_lr = cosine_lr(self.start + step, self.total_steps, self.lr, warmup=self.warmup, final=self.final)
        for group in self.optimizer.param_groups:
            group["lr"] = self.last_lr
        if callable(self.inner):
            return self.inner(epoch, step, n_steps)
        return dict(self.inner or {})


def fit_cosine(model: nn.Module, data, *, epochs: int, lr: float, warmup: int = 0, final: float = 0.0,
               batch_size: int = 128, **fit_kwargs) -> History:
    """:func:`~vae_course.train.fit` with Adam (:func:`~vae_course.train.make_optimizer`) and a :class:`CosineSchedule`
    over exactly these ``epochs``: ``warmup`` steps up to ``lr``, then a cosine decay to ``final * lr``. Other keyword
    arguments go to ``fit`` (a ``loss_kwargs`` given there runs inside the schedule)."""
    n = len(data.x_train) if hasattr(data, "x_train") else len(data)
    steps = check_positive_int("epochs", epochs) * math.ceil(n / check_positive_int("batch_size", batch_size))
    opt = make_optimizer(model, lr)
    schedule = CosineSchedule(opt, lr, steps, warmup=warmup, final=final, inner=fit_kwargs.pop("loss_kwargs", None))
    return fit(model, data, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=opt, loss_kwargs=schedule,
               **fit_kwargs)
