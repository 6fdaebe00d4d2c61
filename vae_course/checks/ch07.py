r"""Checks for the chapter 7 exercises (``solutions/07_posterior_collapse.ipynb``).

1. ``unit_activity(mu)``: :math:`A_u = \mathrm{Var}_x(\mu_u(x))` per latent unit, the variance over the images
   (rows) of the posterior means, with :math:`1/N`; units with :math:`A_u > 0.01` are active (Burda et al., 2016).
2. ``free_bits_kl(kl_per_dim, lam)``: :math:`\sum_j \max(\lambda, \frac1B\sum_b \mathrm{KL}_{bj})`, the floor per
   dimension on the batch mean (Kingma et al., 2016).
3. ``warmup_beta(step, n_steps, kind)``: the linear and the sigmoid KL warm-up (Bowman et al., 2016).

Each compares the student's function with :mod:`vae_course.collapse` and :mod:`vae_course.objectives` on seeded inputs and edge cases and recognises
the classic mistakes: the variance over the wrong axis, a missing centring, the floor on the summed KL or per example,
a schedule that overshoots 1 or does not start at 0.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import collapse as C
from .. import objectives as O
from ._core import Case, CheckResult, Mistake, check_function

__all__ = ["check_unit_activity", "check_free_bits_kl", "check_warmup_beta"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_unit_activity": "Exercise 1 (active units)",
    "check_free_bits_kl": "Exercise 2 (free bits)",
    "check_warmup_beta": "Exercise 3 (KL warm-up)",
}


def _gen(seed: int):
    g = torch.Generator().manual_seed(seed)
    return lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731


# ---------------------------------------------------------------- exercise 1: active units
def _activity_cases() -> list[Case]:
    r = _gen(70)
    shifted = r(300, 4) * torch.tensor([1.0, 0.05, 0.3, 0.001], dtype=torch.float64) + torch.tensor([0.0, 2.0, -1.0, 3.0],
                                                                                                     dtype=torch.float64)
    return [
        Case((torch.tensor([[0.0, 1.0], [2.0, 1.0]], dtype=torch.float64),),
             label="mu = [[0, 1], [2, 1]]: 2 images, 2 units (answer: [1, 0])"),
        Case((shifted,), label="mu of 300 images, 4 units with means far from 0 and spreads 1, 0.05, 0.3, 0.001"),
        Case((r(200, 6),), label="mu of 200 images and 6 units, standard normal"),
        Case((r(5, 5) * 0.5,), label="a square mu: 5 images, 5 units"),
    ]


_ACTIVITY_MISTAKES = [
    Mistake(lambda mu: mu.var(1, unbiased=False),
            "you took the variance over the units of each image (dim 1). A_u is the variance of unit u's posterior mean "
            "ACROSS THE IMAGES: mu has shape (N, m), reduce over dim 0 and return one value per unit."),
    Mistake(lambda mu: mu.var(1),
            "you took the variance over the units of each image (dim 1); reduce over the images, dim 0."),
    Mistake(lambda mu: mu.pow(2).mean(0),
            "you averaged mu^2 without subtracting the mean over the images: a unit whose mean is the same large value "
            "for every image carries no information, yet E[mu^2] is large. Use the variance, E[(mu - E[mu])^2]."),
    Mistake(lambda mu: mu.std(0, unbiased=False),
            "you returned the standard deviation; A_u is the variance (Burda et al. threshold the variance at 0.01)."),
    Mistake(lambda mu: mu.var(0, unbiased=True),
            "you used the unbiased (N - 1) variance; this exercise uses the mean over the N images: "
            "mu.var(0, unbiased=False) (the two differ visibly only for few images)."),
]


def _activity_ref(mu: Tensor) -> Tensor:
    return C.active_units(mu).activity


def check_unit_activity(student_fn) -> CheckResult:
    """Exercise 1: ``unit_activity(mu)`` with ``mu`` ``(N, m)`` -> ``(m,)``: the variance over the N images."""
    return check_function(EXERCISE_NAMES["check_unit_activity"], student_fn, _activity_ref, _activity_cases(),
                          mistakes=_ACTIVITY_MISTAKES)


# ---------------------------------------------------------------- exercise 2: free bits
def _free_bits_cases() -> list[Case]:
    g = torch.Generator().manual_seed(71)
    kl = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)  # noqa: E731
    t = lambda rows: torch.tensor(rows, dtype=torch.float64)  # noqa: E731
    return [
        Case((t([[0.0, 2.0, 0.1], [0.2, 4.0, 0.1]]), 0.5),
             label="kl_per_dim = [[0, 2, 0.1], [0.2, 4, 0.1]], lam = 0.5 (answer: 0.5 + 3 + 0.5 = 4)"),
        Case((t([[0.0, 2.0, 0.1], [0.2, 4.0, 0.1]]), 0.05),
             label="the same KLs, lam = 0.05: dimension 0 has 0 for one example but a batch mean of 0.1"),
        Case((t([[1.0, 2.0]]), 0.0), label="lam = 0: the plain KL, 3"),
        Case((kl(16, 8) * 0.4, 0.25), label="a batch of 16, 8 dimensions, KLs in [0, 0.4], lam = 0.25"),
        Case((kl(10, 4) * 3, 1.0), label="a batch of 10, 4 dimensions, KLs in [0, 3], lam = 1"),
    ]


_FREE_BITS_MISTAKES = [
    Mistake(lambda kl, lam: torch.clamp(kl.sum(1).mean(), min=lam),
            "the floor was applied to the summed KL instead of per dimension: max(lam, sum_j KL_j) lets some "
            "dimensions collapse to 0 while others carry the floor. Take max(lam, mean KL of dimension j) for each j, then sum."),
    Mistake(lambda kl, lam: torch.clamp(kl.sum(1).mean(), min=lam * kl.shape[1]),
            "the floor was applied to the summed KL instead of per dimension: max(m * lam, sum_j KL_j) still lets "
            "dimensions collapse. Take max(lam, mean KL of dimension j) for each j, then sum."),
    Mistake(lambda kl, lam: torch.clamp(kl, min=lam).sum(1).mean(),
            "you applied the floor to each example before averaging over the batch. Free bits floors the BATCH-MEAN KL of "
            "each dimension: kl_per_dim.mean(0), then clamp(min=lam), then sum."),
    Mistake(lambda kl, lam: torch.clamp(kl.mean(0), max=lam).sum(),
            "you used min instead of max: the floor is max(lam, KL_j), so a dimension below lam counts as lam."),
    Mistake(lambda kl, lam: torch.clamp(kl.sum(0), min=lam).sum(),
            "you summed over the batch instead of averaging: use kl_per_dim.mean(0) (nats per example)."),
]


def _free_bits_grad(student_fn) -> str | None:
    kl = torch.tensor([[0.05, 2.0], [0.15, 1.0]], dtype=torch.float64, requires_grad=True)
    out = student_fn(kl, 0.5)
    if not out.requires_grad:
        return "no gradient flows back to kl_per_dim: use torch operations (torch.clamp or torch.maximum), no .item()."
    out.backward()
    if kl.grad is None or float(kl.grad[:, 0].abs().sum()) != 0.0 or not torch.allclose(kl.grad[:, 1], torch.full((2,), 0.5, dtype=torch.float64)):
        return ("the gradient is wrong: a dimension whose batch-mean KL is below lam must get NO gradient (it is free), "
                "the others d/dKL_bj = 1/B.")
    return None


def check_free_bits_kl(student_fn) -> CheckResult:
    """Exercise 2: ``free_bits_kl(kl_per_dim, lam)`` with ``kl_per_dim`` ``(B, m)`` -> a scalar tensor."""
    return check_function(EXERCISE_NAMES["check_free_bits_kl"], student_fn, lambda kl, lam: O.free_bits_kl(kl, lam),
                          _free_bits_cases(), mistakes=_FREE_BITS_MISTAKES, extra=_free_bits_grad)


# ---------------------------------------------------------------- exercise 3: KL warm-up
def _warmup_cases() -> list[Case]:
    cases = []
    for kind in ("linear", "sigmoid"):
        for step, n in ((0, 100), (25, 100), (50, 100), (80, 100), (100, 100), (250, 100), (7, 10)):
            cases.append(Case((step, n, kind), label=f"step = {step}, n_steps = {n}, kind = {kind!r}"))
    return cases


def _sig(t: float) -> float:
    return 1 / (1 + math.exp(-10 * (t - 0.5)))


_WARMUP_MISTAKES = [
    Mistake(lambda step, n, kind: step / n if kind == "linear" else (_sig(step / n) - _sig(0)) / (_sig(1) - _sig(0)),
            "beta keeps growing after the warm-up: after n_steps it must stay at 1 (clip t = step / n_steps to [0, 1])."),
    Mistake(lambda step, n, kind: min(step / n, 1.0) if kind == "linear" else _sig(min(step / n, 1.0)),
            "your sigmoid is not rescaled: sigmoid(10 (t - 1/2)) is 0.0067 at t = 0 and 0.9933 at t = 1. Subtract s(0) "
            "and divide by s(1) - s(0) so the warm-up starts at exactly 0 and ends at exactly 1."),
    Mistake(lambda step, n, kind: min(step / n, 1.0) if kind == "linear" else
            (1 / (1 + math.exp(-10 * min(step / n, 1.0))) - 0.5) / (1 / (1 + math.exp(-10)) - 0.5),
            "your sigmoid is centred at t = 0: use s(t) = 1 / (1 + exp(-10 (t - 1/2))), centred in the middle of the warm-up."),
    Mistake(lambda step, n, kind: 1 - min(step / n, 1.0) if kind == "linear" else
            1 - (_sig(min(step / n, 1.0)) - _sig(0)) / (_sig(1) - _sig(0)),
            "your schedule runs backwards: the KL weight starts at 0 and rises to 1."),
]


def _warmup_ref(step, n_steps, kind):
    return O.warmup_beta(kind, step, n_steps)


def check_warmup_beta(student_fn) -> CheckResult:
    """Exercise 3: ``warmup_beta(step, n_steps, kind)`` -> the KL weight in [0, 1] (a float)."""
    return check_function(EXERCISE_NAMES["check_warmup_beta"], student_fn, _warmup_ref, _warmup_cases(),
                          mistakes=_WARMUP_MISTAKES, rtol=1e-6, atol=1e-8)
