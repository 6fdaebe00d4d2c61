r"""Checks for the chapter 7 exercises (``solutions/07_posterior_collapse.ipynb``).

1. ``unit_activity(mu)``: :math:`A_u = \mathrm{Var}_x(\mu_u(x))` per latent unit, the variance over the images
   (rows) of the posterior means, with :math:`1/N`; units with :math:`A_u > 0.01` are active (Burda et al., 2016).
2. ``free_bits_kl(kl_per_dim, lam)``: :math:`\sum_j \max(\lambda, \frac1B\sum_b \mathrm{KL}_{bj})`, the floor per
   dimension on the batch mean (Kingma et al., 2016).
3. ``warmup_beta(step, n_steps, kind)``: the linear and the sigmoid KL warm-up (Bowman et al., 2016).
4. Build task ``remedy_loss(recon, kl_per_dim, progress)``: cure the collapse of the PixelCNN-decoder VAE, judged by
   its active units and its bound (:mod:`vae_course.checks.build_ch07`).
5. Derivation: the average KL of one latent unit from its posterior variance and its activity.

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
from . import build_ch07
from ._core import Case, CheckResult, Mistake, call_student, check_function, check_value

__all__ = ["check_unit_activity", "check_free_bits_kl", "check_warmup_beta", "check_remedy_build", "check_unit_kl"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_unit_activity": "Exercise 1 (active units)",
    "check_free_bits_kl": "Exercise 2 (free bits)",
    "check_warmup_beta": "Exercise 3 (KL warm-up)",
    "check_remedy_build": "Build task (cure the collapse)",
    "check_unit_kl": "Derivation (the KL of one latent unit)",
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


def _activity_random(gen: torch.Generator, n: int) -> list[Case]:
    """2-400 images, 1-10 units, means far from 0 and spreads from 1e-3 to 10."""
    cases = []
    for _ in range(n):
        k, m = int(torch.randint(2, 400, (1,), generator=gen)), int(torch.randint(1, 11, (1,), generator=gen))
        spread = 10 ** torch.empty(m, dtype=torch.float64).uniform_(-3, 1, generator=gen)
        centre = torch.empty(m, dtype=torch.float64).uniform_(-5, 5, generator=gen)
        cases.append(Case((centre + spread * torch.randn(k, m, generator=gen, dtype=torch.float64),),
                          label=f"mu of {k} images and {m} units with means far from 0 and spreads from 0.001 to 10"))
    return cases


def _activity_ref(mu: Tensor) -> Tensor:
    return C.active_units(mu).activity


def check_unit_activity(student_fn) -> CheckResult:
    """Exercise 1: ``unit_activity(mu)`` with ``mu`` ``(N, m)`` -> ``(m,)``: the variance over the N images."""
    return check_function(EXERCISE_NAMES["check_unit_activity"], student_fn, _activity_ref, _activity_cases(),
                          mistakes=_ACTIVITY_MISTAKES, random_cases=_activity_random,
                          forbidden=("collapse.active_units",))


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


def _free_bits_random(gen: torch.Generator, n: int) -> list[Case]:
    cases = []
    for _ in range(n):
        b, m = int(torch.randint(1, 20, (1,), generator=gen)), int(torch.randint(1, 12, (1,), generator=gen))
        lam = float(torch.empty(1).uniform_(0.0, 1.5, generator=gen))
        kl = 2 * torch.rand(b, m, generator=gen, dtype=torch.float64) ** 2
        cases.append(Case((kl, lam), label=f"a batch of {b}, {m} dimensions, KLs in [0, 2], lam = {lam:.3f}"))
    return cases


def _free_bits_grad(student_fn) -> str | None:
    kl = torch.tensor([[0.05, 2.0], [0.15, 1.0]], dtype=torch.float64, requires_grad=True)
    out = call_student(student_fn, (kl, 0.5), describe="kl_per_dim = [[0.05, 2], [0.15, 1]], lam = 0.5")
    if not out.requires_grad:
        return ("no gradient flows back to kl_per_dim: " + "use torch operations (torch.clamp or torch.maximum); "
                "a Python max(...), .item(), numpy or torch.tensor([...]) of the terms cuts the graph.")
    out.backward()
    if kl.grad is None or float(kl.grad[:, 0].abs().sum()) != 0.0 or not torch.allclose(kl.grad[:, 1], torch.full((2,), 0.5, dtype=torch.float64)):
        return ("the gradient is wrong: a dimension whose batch-mean KL is below lam must get NO gradient (it is free), "
                "the others d/dKL_bj = 1/B.")
    return None


def check_free_bits_kl(student_fn) -> CheckResult:
    """Exercise 2: ``free_bits_kl(kl_per_dim, lam)`` with ``kl_per_dim`` ``(B, m)`` -> a scalar tensor."""
    return check_function(EXERCISE_NAMES["check_free_bits_kl"], student_fn, _free_bits_ref,
                          _free_bits_cases(), mistakes=_FREE_BITS_MISTAKES, extra=_free_bits_grad,
                          random_cases=_free_bits_random, grads=("kl_per_dim",),
                          forbidden=("objectives.free_bits_kl", "objectives.beta_objective"))


def _free_bits_ref(kl_per_dim, lam):
    return O.free_bits_kl(kl_per_dim, lam)


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


def _warmup_random(gen: torch.Generator, n: int) -> list[Case]:
    """Steps anywhere, between and beyond the tested points, of warm-ups of 1 to 5000 steps."""
    cases = []
    for i in range(2 * n):
        n_steps = int(torch.randint(1, 5001, (1,), generator=gen))
        step = int(torch.randint(0, int(1.5 * n_steps) + 2, (1,), generator=gen))
        kind = ("linear", "sigmoid")[i % 2]
        cases.append(Case((step, n_steps, kind), label=f"step = {step}, n_steps = {n_steps}, kind = {kind!r}"))
    return cases


def check_warmup_beta(student_fn) -> CheckResult:
    """Exercise 3: ``warmup_beta(step, n_steps, kind)`` -> the KL weight in [0, 1] (a float)."""
    return check_function(EXERCISE_NAMES["check_warmup_beta"], student_fn, _warmup_ref, _warmup_cases(),
                          mistakes=_WARMUP_MISTAKES, rtol=1e-6, atol=1e-8, random_cases=_warmup_random, returns="float",
                          forbidden=("objectives.warmup_beta", "objectives.kl_warmup"))


# ---------------------------------------------------------------- build task: cure the collapse
def check_remedy_build(student_fn) -> CheckResult:
    """Build task: ``remedy_loss(recon, kl_per_dim, progress)`` -> the scalar to minimise; the PixelCNN-decoder VAE
    trained with it must keep its latents active without losing the bound (:mod:`.build_ch07`)."""
    return build_ch07.check_remedy(EXERCISE_NAMES["check_remedy_build"], student_fn)


# ---------------------------------------------------------------- derivation: the KL of one unit
DERIVATION_S2, DERIVATION_ACTIVITY = 0.36, 0.64  # q(z_u|x) = N(mu_u(x), s^2), Var_x mu_u(x) = A_u, E_x mu_u(x) = 0


def unit_kl(s2: float = DERIVATION_S2, activity: float = DERIVATION_ACTIVITY) -> float:
    """E_x KL(N(mu_u(x), s^2) || N(0, 1)) when mu_u(x) has mean 0 and variance A_u over the data: the package's KL
    averaged over two points mu = +-sqrt(A_u) (the KL is quadratic in mu, so two points give the exact mean)."""
    mu = torch.tensor([[math.sqrt(activity)], [-math.sqrt(activity)]], dtype=torch.float64)
    return float(O.kl_per_dimension(mu, torch.full_like(mu, math.log(s2))).mean())


def _unit_hints() -> dict[str, float]:
    s2, a = DERIVATION_S2, DERIVATION_ACTIVITY
    kl = lambda v, m2, half=0.5: half * (v + m2 - 1 - math.log(v))  # noqa: E731
    return {
        "the factor 1/2 is missing: KL = (1/2)(s^2 + mu^2 - 1 - log s^2), averaged over the data.": kl(s2, a, 1.0),
        "you used s = 0.6 where the variance s^2 = 0.36 belongs.": kl(math.sqrt(s2), a),
        "you left out the means: E_x[mu_u(x)^2] = A_u + (E_x mu_u)^2 = 0.64 adds to the KL.": kl(s2, 0.0),
        "the log-variance enters with a minus: KL = (1/2)(s^2 + mu^2 - 1 - log s^2).":
            0.5 * (s2 + a - 1 + math.log(s2)),
        "that is in bits; the question asks for nats.": kl(s2, a) / math.log(2),
    }


def check_unit_kl(value) -> CheckResult:
    """Derivation: E_x KL(q(z_u|x) || N(0, 1)) for s^2 = 0.36 and A_u = 0.64 (about 0.5108 nats)."""
    return check_value(EXERCISE_NAMES["check_unit_kl"], value, unit_kl(), rtol=1e-3, hints=_unit_hints(),
                       what="`unit_kl_nats`", unit="nats")
