r"""Checks for the chapter 5 exercises (``solutions/05_vae.ipynb``).

1. ``reparameterize(mu, logvar, eps)``: :math:`z = \mu + e^{\ell/2}\odot\varepsilon`, differentiable in mu and logvar.
2. ``negative_elbo(x, x_logits, mu, logvar)``: per-example
   :math:`-\sum_j\log\mathrm{Bern}(x_j;\sigma(\ell_j)) + \mathrm{KL}(\mathcal N(\mu,\sigma^2)\|\mathcal N(0,I))`.
3. ``iwae_bound(log_w)``: :math:`\log\frac1k\sum_i w_i = \operatorname{logsumexp}_i \log w_i - \log k`.

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
from ..evaluate import iwae_bound
from ._core import Case, CheckResult, Mistake, check_function

__all__ = ["check_reparameterize", "check_negative_elbo", "check_iwae_bound"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_reparameterize": "Exercise 1 (the reparameterised sample)",
    "check_negative_elbo": "Exercise 2 (negative ELBO, Bernoulli pixels)",
    "check_iwae_bound": "Exercise 3 (IWAE bound from log-weights)",
}


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


_REPARAM_MISTAKES = [
    Mistake(lambda mu, logvar, eps: mu + torch.exp(logvar) * eps,
            "you used exp(logvar) as the standard deviation. exp(logvar) is the variance sigma^2; the standard "
            "deviation is sigma = exp(0.5 * logvar)."),
    Mistake(lambda mu, logvar, eps: mu + logvar * eps,
            "you multiplied eps by logvar itself; logvar is log sigma^2, so sigma = exp(0.5 * logvar)."),
    Mistake(lambda mu, logvar, eps: mu + torch.exp(-0.5 * logvar) * eps,
            "the sign inside the exponential is flipped: exp(-0.5 * logvar) = 1 / sigma. Use exp(+0.5 * logvar)."),
    Mistake(lambda mu, logvar, eps: mu + eps,
            "you returned mu + eps: the noise must be scaled by sigma = exp(0.5 * logvar)."),
]


def _reparam_grad(student_fn) -> str | None:
    mu = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([0.2, -1.0], dtype=torch.float64, requires_grad=True)
    eps = torch.tensor([1.5, -0.5], dtype=torch.float64)
    z = student_fn(mu, logvar, eps)
    if z.requires_grad:
        z.sum().backward()
    if mu.grad is None or logvar.grad is None:
        return ("no gradient reaches mu or logvar: build z from them with differentiable torch operations "
                "(no .detach(), no torch.no_grad(), no torch.normal(mu, std)).")
    want = 0.5 * torch.exp(0.5 * logvar.detach()) * eps  # dz/dlogvar = eps * sigma / 2
    if not torch.allclose(mu.grad, torch.ones(2, dtype=torch.float64)) or not torch.allclose(logvar.grad, want):
        return f"the gradients are wrong: dz/dmu should be 1 and dz/dlogvar = eps * sigma / 2 = {want.tolist()}."
    return None


def check_reparameterize(student_fn) -> CheckResult:
    """Exercise 1: ``reparameterize(mu, logvar, eps)`` -> ``mu + exp(0.5 * logvar) * eps``, gradients to mu and logvar."""
    return check_function(EXERCISE_NAMES["check_reparameterize"], student_fn, _reparam_ref, _reparam_cases(),
                          mistakes=_REPARAM_MISTAKES, extra=_reparam_grad)


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
    ]


def _elbo_ref(x, x_logits, mu, logvar):
    return -D.log_bernoulli(x, x_logits) + D.kl_normal_std(mu, logvar)


def _bce(x, logits, reduce="sum"):
    ll = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return ll.sum(-1) if reduce == "sum" else ll.mean(-1)


def _kl(mu, logvar, sign=1.0, half=0.5, reduce="sum"):
    t = half * (logvar.exp() + mu**2 - 1 - sign * logvar)
    return t.sum(-1) if reduce == "sum" else t.mean(-1)


_ELBO_MISTAKES = [
    Mistake(lambda x, l, mu, lv: -_bce(x, l) - _kl(mu, lv),
            "the KL has the wrong sign: ELBO = E[log p(x|z)] - KL, so the NEGATIVE ELBO is "
            "-E[log p(x|z)] + KL (minimising it keeps q(z|x) close to the prior)."),
    Mistake(lambda x, l, mu, lv: -_bce(x, l, "mean") + _kl(mu, lv),
            "you averaged the reconstruction term over the pixels; log p(x|z) of an image is the SUM over its "
            "pixels (independent Bernoullis multiply). With a mean the KL outweighs the image ~D-fold."),
    Mistake(lambda x, l, mu, lv: -_bce(x, l, "mean") + _kl(mu, lv, reduce="mean"),
            "you averaged over pixels and latent dimensions; both terms are sums over dimensions, one number per image."),
    Mistake(lambda x, l, mu, lv: -_bce(x, l) + _kl(mu, lv, sign=-1.0),
            "inside the KL the log-variance enters with a minus: KL = 0.5 * sum(sigma^2 + mu^2 - 1 - logvar)."),
    Mistake(lambda x, l, mu, lv: -_bce(x, l) + _kl(mu, lv, half=1.0),
            "the KL is missing its factor 1/2: KL = 0.5 * sum(sigma^2 + mu^2 - 1 - logvar)."),
    Mistake(lambda x, l, mu, lv: -_bce(x, l),
            "the KL term is missing; the negative ELBO is the reconstruction error PLUS KL(q(z|x) || N(0, I))."),
    Mistake(lambda x, l, mu, lv: -_bce(x, l) + 0.5 * (lv.exp() ** 2 + mu**2 - 1 - lv).sum(-1),
            "you used exp(logvar) as the standard deviation in the KL: sigma^2 = exp(logvar), not exp(logvar)^2."),
    Mistake(lambda x, l, mu, lv: _bce(x, l) + _kl(mu, lv),
            "the reconstruction term has the wrong sign: the negative ELBO contains -log p(x|z), which is >= 0."),
]


def check_negative_elbo(student_fn) -> CheckResult:
    """Exercise 2: ``negative_elbo(x, x_logits, mu, logvar)`` with x, x_logits ``(B, D)``, mu, logvar ``(B, m)`` -> ``(B,)``."""
    return check_function(EXERCISE_NAMES["check_negative_elbo"], student_fn, _elbo_ref, _elbo_cases(),
                          mistakes=_ELBO_MISTAKES)


# ---------------------------------------------------------------- exercise 3: IWAE from log-weights
def _iwae_cases() -> list[Case]:
    r = _gen(53)
    return [
        Case((_t([0.0], [math.log(3.0)]),), label="k = 2, one image: log w = [[0], [log 3]] (answer: log 2 = 0.6931)"),
        Case((_t([-1.0, 2.0], [-1.0, 2.0], [-1.0, 2.0]),), label="k = 3 equal weights per image (answer: [-1, 2])"),
        Case((r(10, 4),), label="k = 10 samples for 4 images: log_w of shape (10, 4)"),
        Case((r(50, 3) * 5 - 800.0,), label="k = 50, log-weights near -800: exp() underflows to 0, even in float64"),
        Case((r(7, 2) * 3 + 800.0,), label="k = 7, log-weights near +800: exp() overflows to inf, even in float64"),
    ]


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
]


def check_iwae_bound(student_fn) -> CheckResult:
    """Exercise 3: ``iwae_bound(log_w)``, ``log_w`` ``(k, B)`` -> ``(B,)``, stable for any scale of the log-weights."""
    return check_function(EXERCISE_NAMES["check_iwae_bound"], student_fn, iwae_bound, _iwae_cases(),
                          mistakes=_IWAE_MISTAKES)
