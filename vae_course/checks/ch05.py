r"""Checks for the chapter 5 exercises (``solutions/05_vae.ipynb``).

1. ``reparameterize(mu, logvar, eps)``: :math:`z = \mu + e^{\ell/2}\odot\varepsilon`, differentiable in mu and logvar.
2. ``negative_elbo(x, x_logits, mu, logvar)``: per-example
   :math:`-\sum_j\log\mathrm{Bern}(x_j;\sigma(\ell_j)) + \mathrm{KL}(\mathcal N(\mu,\sigma^2)\|\mathcal N(0,I))`.
3. ``iwae_bound(log_w)``: :math:`\log\frac1k\sum_i w_i = \operatorname{logsumexp}_i \log w_i - \log k`.
4. Build task ``TinyVAE``: encoder, decoder and negative ELBO written by the student, trained with
   :func:`vae_course.train.fit`, judged by the test negative ELBO (:mod:`vae_course.checks.build_ch05`).
5. Derivation: a log-likelihood in nats per image as bits per dimension.

Each compares the student's function with the package's reference (:func:`vae_course.distributions.reparameterize`,
:mod:`vae_course.distributions`, :func:`vae_course.evaluate.iwae_bound`) on seeded random inputs and edge cases,
and recognises the classic mistakes: ``exp(logvar)`` used as the standard deviation, the KL's sign flipped,
a mean over pixels where the sum belongs, the log-mean-exp done as a mean of logs, a missing :math:`\log k`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import distributions as D
from ..distributions import reparameterize
from ..evaluate import bits_per_dim, iwae_bound
from . import build_ch05
from ._core import Case, CheckResult, Mistake, call_student, check_function, check_value
from ._mistakes import elbo_mistakes, reparameterize_mistakes
from .ch04 import REPARAM_FORBIDDEN

__all__ = ["check_reparameterize", "check_negative_elbo", "check_iwae_bound", "check_vae_build", "check_bits_per_dim"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_reparameterize": "Exercise 1 (the reparameterised sample)",
    "check_negative_elbo": "Exercise 2 (negative ELBO, Bernoulli pixels)",
    "check_iwae_bound": "Exercise 3 (IWAE bound from log-weights)",
    "check_vae_build": "Build task (a VAE of your own, trained)",
    "check_bits_per_dim": "Derivation (nats per image to bits per dimension)",
}

ELBO_FORBIDDEN = ("distributions.log_bernoulli", "distributions.kl_normal_std", "objectives.negative_beta_elbo",
                  "objectives.kl_per_dimension", "objectives.beta_objective")


def _t(*rows) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _gen(seed: int):
    g = torch.Generator().manual_seed(seed)
    return lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731


# ---------------------------------------------------------------- exercise 1: the reparameterised sample
def _reparam_cases() -> list[Case]:
    r = _gen(50)
    return [
        Case((_t(0.0), _t(math.log(4.0)), _t(1.0)), label="mu = [0], logvar = [log 4] (sigma = 2), eps = [1] (answer: [2])"),
        Case((_t(1.0, -2.0), _t(0.0, 0.0), _t(0.5, -1.0)), label="mu = [1, -2], logvar = [0, 0], eps = [0.5, -1]"),
        Case((_t(0.5, 0.5), _t(-2.0, 1.5), _t(-1.0, 2.0)), label="mu = [0.5, 0.5], logvar = [-2, 1.5], eps = [-1, 2]"),
        Case((r(6, 3), r(6, 3), r(6, 3)), label="a batch: mu, logvar, eps of shape (6, 3)"),
        Case((r(4, 5), r(4, 5), r(2, 4, 5)), label="two draws per example: mu, logvar (4, 5), eps (2, 4, 5)"),
    ]


def _reparam_ref(mu, logvar, eps):
    return reparameterize(mu, logvar, eps=eps)


_REPARAM_MISTAKES = reparameterize_mistakes()


def _reparam_random(gen: torch.Generator, n: int) -> list[Case]:
    """mu, logvar (B, m) with eps (B, m) or (S, B, m); log-variances from -8 to 8."""
    cases = []
    for i in range(n):
        b, m = int(torch.randint(1, 7, (1,), generator=gen)), int(torch.randint(1, 7, (1,), generator=gen))
        lead = (int(torch.randint(1, 4, (1,), generator=gen)),) if i % 2 else ()
        mu = 3 * torch.randn(b, m, generator=gen, dtype=torch.float64)
        lv = torch.empty(b, m, dtype=torch.float64).uniform_(-8, 8, generator=gen)
        eps = torch.randn(*lead, b, m, generator=gen, dtype=torch.float64)
        cases.append(Case((mu, lv, eps), label=f"mu, logvar ({b}, {m}), eps {tuple(eps.shape)}"))
    return cases


def _reparam_grad(student_fn) -> str | None:
    mu = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([0.2, -1.0], dtype=torch.float64, requires_grad=True)
    eps = torch.tensor([1.5, -0.5], dtype=torch.float64)
    private = eps.clone()  # the expectation is computed from this copy, whatever the student does to eps
    z = call_student(student_fn, (mu, logvar, eps), describe="mu = [0.3, -0.7], logvar = [0.2, -1], eps = [1.5, -0.5]")
    if z.requires_grad:
        z.sum().backward()
    if mu.grad is None or logvar.grad is None:
        return ("no gradient reaches mu or logvar: build z from them with differentiable torch operations "
                "(no .detach(), no torch.no_grad(), no torch.normal(mu, std)).")
    want = 0.5 * torch.exp(0.5 * logvar.detach()) * private  # dz/dlogvar = eps * sigma / 2
    if not torch.allclose(mu.grad, torch.ones(2, dtype=torch.float64)) or not torch.allclose(logvar.grad, want):
        return f"the gradients are wrong: dz/dmu should be 1 and dz/dlogvar = eps * sigma / 2 = {want.tolist()}."
    return None


def check_reparameterize(student_fn) -> CheckResult:
    """Exercise 1: ``reparameterize(mu, logvar, eps)`` -> ``mu + exp(0.5 * logvar) * eps``, gradients to mu and logvar."""
    return check_function(EXERCISE_NAMES["check_reparameterize"], student_fn, _reparam_ref, _reparam_cases(),
                          mistakes=_REPARAM_MISTAKES, extra=_reparam_grad, random_cases=_reparam_random,
                          grads=("mu", "logvar"), forbidden=REPARAM_FORBIDDEN)


# ---------------------------------------------------------------- exercise 2: negative ELBO with Bernoulli pixels
def _elbo_cases() -> list[Case]:
    r = _gen(51)
    g = torch.Generator().manual_seed(52)
    bits = lambda *s: torch.bernoulli(torch.full(s, 0.3, dtype=torch.float64), generator=g)  # noqa: E731
    return [
        Case((_t([1.0, 0.0]), _t([0.0, 0.0]), _t([0.0]), _t([0.0])),
             label="x = [[1, 0]], logits = [[0, 0]], mu = [[0]], logvar = [[0]] (answer: 2 log 2 = 1.3863)"),
        Case((_t([1.0, 1.0, 0.0]), _t([2.0, -1.0, 0.5]), _t([1.0, -0.5]), _t([0.3, -0.2])),
             label="one image of 3 pixels: x = [[1, 1, 0]], logits = [[2, -1, 0.5]], mu = [[1, -0.5]], logvar = [[0.3, -0.2]]"),
        Case((bits(5, 16), 2 * r(5, 16), r(5, 3), r(5, 3)),
             label="a batch of 5 images of 16 pixels, 3 latent dimensions (answer shape (5,))"),
        Case((bits(3, 64), 3 * r(3, 64), 2 * r(3, 2), r(3, 2)),
             label="3 images of 64 pixels, 2 latent dimensions"),
        Case((_t([0.2, 0.7, 1.0, 0.0]), _t([1.0, -1.0, 2.0, 0.0]), _t([0.5]), _t([-0.5])),
             label="grey levels x = [[0.2, 0.7, 1, 0]] (allowed: pixels in [0, 1]), logits = [[1, -1, 2, 0]]"),
        Case((_t([1.0, 0.0, 1.0]), _t([300.0, -300.0, -200.0]), _t([0.0]), _t([0.0])),
             label="x = [[1, 0, 1]], logits = [[300, -300, -200]] (logits in the hundreds)"),
    ]


def elbo_random(gen: torch.Generator, n: int, beta: bool = False) -> list[Case]:
    """Binary or grey images of 2-64 pixels, logits up to scale 100, 1-8 latents (and a beta in [0, 8])."""
    cases = []
    for i in range(n):
        b, d, m = (int(torch.randint(lo, hi, (1,), generator=gen)) for lo, hi in ((1, 6), (2, 65), (1, 9)))
        x = torch.rand(b, d, generator=gen, dtype=torch.float64)
        x = (x < 0.3).double() if i % 2 == 0 else x
        logits = float(torch.empty(1).uniform_(0.5, 100, generator=gen)) * torch.randn(b, d, generator=gen, dtype=torch.float64)
        mu = 2 * torch.randn(b, m, generator=gen, dtype=torch.float64)
        lv = torch.empty(b, m, dtype=torch.float64).uniform_(-6, 4, generator=gen)
        args = (x, logits, mu, lv)
        label = f"{b} {'binary' if i % 2 == 0 else 'grey'} images of {d} pixels, {m} latents"
        if beta:
            w = float(torch.empty(1).uniform_(0.0, 8.0, generator=gen))
            args, label = args + (w,), label + f", beta = {w:.3f}"
        cases.append(Case(args, label=label))
    return cases


def _elbo_ref(x, x_logits, mu, logvar):
    return -D.log_bernoulli(x, x_logits) + D.kl_normal_std(mu, logvar)


_ELBO_MISTAKES = elbo_mistakes(with_beta=False)


def check_negative_elbo(student_fn) -> CheckResult:
    """Exercise 2: ``negative_elbo(x, x_logits, mu, logvar)`` with x, x_logits ``(B, D)``, mu, logvar ``(B, m)`` -> ``(B,)``."""
    return check_function(EXERCISE_NAMES["check_negative_elbo"], student_fn, _elbo_ref, _elbo_cases(),
                          mistakes=_ELBO_MISTAKES, random_cases=elbo_random, grads=("x_logits", "mu", "logvar"),
                          forbidden=ELBO_FORBIDDEN)


# ---------------------------------------------------------------- exercise 3: IWAE from log-weights
def _iwae_cases() -> list[Case]:
    r = _gen(53)
    return [
        Case((_t([0.0], [math.log(3.0)]),), label="k = 2, one image: log w = [[0], [log 3]] (answer: log 2 = 0.6931)"),
        Case((_t([-1.0, 2.0], [-1.0, 2.0], [-1.0, 2.0]),), label="k = 3 equal weights per image (answer: [-1, 2])"),
        Case((r(10, 4),), label="k = 10 samples for 4 images: log_w of shape (10, 4)"),
        Case((r(50, 3) * 5 - 800.0,), label="k = 50, log-weights near -800: exp() underflows to 0, even in float64"),
        Case((r(7, 2) * 3 + 800.0,), label="k = 7, log-weights near +800: exp() overflows to inf, even in float64"),
        Case((torch.stack([r(5) - 1000.0, r(5) + 100.0], 1),),
             label="k = 5 for 2 images whose log-weights are 1100 nats apart (-1000 and +100): each image needs its own maximum"),
    ]


def _iwae_random(gen: torch.Generator, n: int) -> list[Case]:
    cases = []
    for _ in range(n):
        k, b = int(torch.randint(1, 60, (1,), generator=gen)), int(torch.randint(2, 6, (1,), generator=gen))
        offsets = torch.empty(1, b, dtype=torch.float64).uniform_(-1000, 1000, generator=gen)
        cases.append(Case((offsets + 10 * torch.randn(k, b, generator=gen, dtype=torch.float64),),
                          label=f"k = {k} samples for {b} images whose log-weights sit between -1000 and 1000"))
    return cases


_IWAE_MISTAKES = [
    Mistake(lambda lw: lw.mean(0),
            "you averaged the log-weights (a mean of logs). That is the k-sample ELBO, not the IWAE bound: "
            "average the weights themselves, log((1/k) sum_i w_i), computed as logsumexp(log_w, 0) - log k."),
    Mistake(lambda lw: torch.logsumexp(lw, 0),
            "the -log k is missing: log((1/k) sum_i w_i) = logsumexp(log_w, dim=0) - log(k)."),
    Mistake(lambda lw: torch.logsumexp(lw, 0) + math.log(lw.shape[0]),
            "log k has the wrong sign: log((1/k) sum_i w_i) = logsumexp(log_w, dim=0) - log(k)."),
    Mistake(lambda lw: torch.logsumexp(lw, 1) - math.log(lw.shape[1]),
            "you reduced over the wrong dimension: log_w has shape (k, B), average over the k samples (dim 0)."),
    Mistake(lambda lw: lw.max(0).values,
            "you kept the largest weight only; the bound averages all k weights: logsumexp(log_w, 0) - log k."),
    Mistake(lambda lw: lw.max() + torch.log(torch.exp(lw - lw.max()).mean(0)),
            "you subtracted one maximum for the whole batch; an image whose log-weights are far below it underflows "
            "to log(0) = -inf. Subtract each image's own maximum (lw.max(0, keepdim=True)), or use torch.logsumexp."),
]


def check_iwae_bound(student_fn) -> CheckResult:
    """Exercise 3: ``iwae_bound(log_w)``, ``log_w`` ``(k, B)`` -> ``(B,)``, stable for any scale of the log-weights."""
    return check_function(EXERCISE_NAMES["check_iwae_bound"], student_fn, iwae_bound, _iwae_cases(),
                          mistakes=_IWAE_MISTAKES, random_cases=_iwae_random, grads=("log_w",),
                          forbidden=("evaluate.iwae_bound", "distributions.log_mean_exp", "evaluate.log_likelihood"))


# ---------------------------------------------------------------- build task: a VAE of your own
def check_vae_build(student_fn) -> CheckResult:
    """Build task: the class ``TinyVAE`` (encode, decode, loss), trained with fit and judged by its test -ELBO
    (:mod:`.build_ch05`)."""
    return build_ch05.check_vae(EXERCISE_NAMES["check_vae_build"], student_fn)


# ---------------------------------------------------------------- derivation: bits per dimension
DERIVATION_NATS, DERIVATION_PIXELS = 88.0, 784  # -log p(x) of a binarised MNIST digit, and its pixels


def bits_per_dimension() -> float:
    """-log2 p(x) / D for -log p(x) = 88 nats and D = 784 (:func:`vae_course.evaluate.bits_per_dim`)."""
    return float(bits_per_dim(-DERIVATION_NATS, DERIVATION_PIXELS))


def _bpd_hints() -> dict[str, float]:
    n, d = DERIVATION_NATS, DERIVATION_PIXELS
    return {
        "you divided by the number of pixels but not by log 2: nats become bits by dividing by ln 2 = 0.6931.": n / d,
        "you multiplied by ln 2; a bit is ln 2 = 0.6931 nats, so the number of bits is the nats DIVIDED by ln 2.":
            n * math.log(2) / d,
        "that is the code length of the whole image in bits; bits per dimension divides by the 784 pixels too.":
            n / math.log(2),
        "bits per dimension is positive (a code length); the sign is flipped.": -n / (d * math.log(2)),
        "you used log10; bits use log base 2: divide the nats by ln 2.": n / (d * math.log(10)),
    }


def check_bits_per_dim(value) -> CheckResult:
    """Derivation: -log p(x) = 88 nats for a 28x28 image, in bits per dimension (about 0.1619)."""
    return check_value(EXERCISE_NAMES["check_bits_per_dim"], value, bits_per_dimension(), rtol=1e-3,
                       hints=_bpd_hints(), what="`bits_per_dim_answer`", unit="bits per dimension")
