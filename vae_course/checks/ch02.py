r"""Checks for the chapter 2 exercises (``solutions/02_mixture_universality.ipynb``).

1. ``threshold_density(x, theta)``: :math:`\theta\,\mathcal N(x;0,1) + (1-\theta)\,\mathcal N(x;1,1)`, elementwise.
2. ``log_marginal_from_samples(log_lik)``: :math:`\log\frac1K\sum_k e^{a_k} = \operatorname{logsumexp}_k a_k - \log K`
   over the last dimension of ``log_lik`` ``(N, K)``.
3. ``effective_sample_size(log_w)``: :math:`(\sum_k w_k)^2/\sum_k w_k^2` from log-weights, over the last dimension.
4. ``gaussian_mle_loglik(x)``: the average log-likelihood of 1-D data ``x`` ``(N,)`` under its
   maximum-likelihood Gaussian, :math:`-\tfrac12(\log 2\pi\hat\sigma^2 + 1)`.
5. Build task ``build_generator()``: a generator :math:`G_w` fitted to a bimodal target by the chapter's
   :func:`~vae_course.mixtures.fit_marginal_likelihood`; judged by its held-out log-likelihood
   (:mod:`vae_course.checks.build_ch02`).
6. Derivation: the best single Gaussian's expected log-likelihood under the threshold mixture.

References: :func:`vae_course.mixtures.threshold_density`, :func:`vae_course.distributions.log_mean_exp`,
:func:`vae_course.mixtures.effective_sample_size`, :func:`vae_course.mixtures.fit_single_gaussian`. The classic
mistakes recognised: theta and 1 - theta swapped, a missing normaliser; the mean of the logs (Jensen), a missing
-log K, log(mean(exp)) that underflows; the ESS of unnormalised weights, exp overflow, a missing reciprocal;
the N - 1 variance, a standard deviation where the variance belongs.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import mixtures as M
from ..distributions import log_mean_exp
from . import build_ch02
from ._core import Case, CheckResult, Mistake, check_function, check_value

__all__ = ["check_threshold_density", "check_log_marginal_from_samples", "check_effective_sample_size",
           "check_gaussian_mle_loglik", "check_generator_build", "check_mixture_gaussian_fit"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_threshold_density": "Exercise 1 (threshold mixture density)",
    "check_log_marginal_from_samples": "Exercise 2 (log of the Monte-Carlo average)",
    "check_effective_sample_size": "Exercise 3 (effective sample size)",
    "check_gaussian_mle_loglik": "Exercise 4 (the best single Gaussian)",
    "check_generator_build": "Build task (a generator for a two-peaked target)",
    "check_mixture_gaussian_fit": "Derivation (one Gaussian for the threshold mixture)",
}

LOG_2PI = math.log(2 * math.pi)


def _t(*values) -> Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _normal(x: Tensor, m: float) -> Tensor:
    return torch.exp(-0.5 * (x - m) ** 2) / math.sqrt(2 * math.pi)


def _size(gen: torch.Generator, lo: int, hi: int) -> int:
    return int(torch.randint(lo, hi + 1, (1,), generator=gen))


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return float(torch.empty(1, dtype=torch.float64).uniform_(lo, hi, generator=gen))


def _spread_rows(gen: torch.Generator, n: int, k: int, scale: float) -> Tensor:
    """``(n, k)`` log-values whose rows sit at very different levels (offsets up to +-1000): one maximum for the
    whole batch would underflow every row but one."""
    offsets = torch.empty(n, 1, dtype=torch.float64).uniform_(-1000, 1000, generator=gen)
    return offsets + scale * torch.randn(n, k, generator=gen, dtype=torch.float64)


# ---------------------------------------------------------------- exercise 1: the threshold mixture
def _threshold_cases() -> list[Case]:
    g = torch.Generator().manual_seed(20)
    return [
        Case((_t(0.0, 1.0, 2.0), 0.3), label="x = [0, 1, 2], theta = 0.3"),
        Case((_t(-1.0, 0.5, 3.0), 0.9),
             label="x = [-1, 0.5, 3], theta = 0.9 (most z fall below theta: mu = 0 is likely)"),
        Case((_t(0.0, 1.0), 0.0), label="x = [0, 1], theta = 0 (every z >= theta: only N(1, 1) is left)"),
        Case((_t(0.0, 1.0), 1.0), label="x = [0, 1], theta = 1 (only N(0, 1) is left)"),
        Case((torch.randn(4, 5, generator=g, dtype=torch.float64) * 2, 0.6), label="x of shape (4, 5), theta = 0.6"),
    ]


def _threshold_random(gen: torch.Generator, n: int) -> list[Case]:
    """theta anywhere in [0, 1] (not only the tested points), x of any shape in [-6, 7]."""
    cases = []
    for _ in range(n):
        theta = _uniform(gen, 0.0, 1.0)
        shape = tuple(_size(gen, 1, 5) for _ in range(_size(gen, 1, 3)))
        x = torch.empty(shape, dtype=torch.float64).uniform_(-6, 7, generator=gen)
        cases.append(Case((x, theta), label=f"x of shape {shape}, theta = {theta:.4f}"))
    return cases


def _threshold_ref(x, theta):
    return M.threshold_density(x, theta)


_THRESHOLD_MISTAKES = [
    Mistake(lambda x, theta: (1 - theta) * _normal(x, 0.0) + theta * _normal(x, 1.0),
            "theta and 1 - theta are swapped (or, the same thing, the two means are). mu = 0 when z < theta, "
            "and P(z < theta) = theta for z ~ U[0, 1]: the "
            "weight theta belongs to N(0, 1), the weight 1 - theta to N(1, 1)."),
    Mistake(lambda x, theta: theta * torch.exp(-0.5 * x**2) + (1 - theta) * torch.exp(-0.5 * (x - 1) ** 2),
            "the normaliser 1 / sqrt(2 pi) of the Gaussians is missing; without it the density integrates to "
            "sqrt(2 pi), not 1."),
    Mistake(lambda x, theta: 0.5 * _normal(x, 0.0) + 0.5 * _normal(x, 1.0),
            "you gave both components weight 1/2 whatever theta is; the weights are the lengths of the two "
            "pieces of [0, 1]: theta and 1 - theta."),
    Mistake(lambda x, theta: _normal(x, 1.0 - theta),
            "you returned one Gaussian at the average mean 1 - theta. The marginal is a mixture of two Gaussians, "
            "not a Gaussian with the mixed mean."),
]


def check_threshold_density(student_fn) -> CheckResult:
    """Exercise 1: ``threshold_density(x, theta)``, ``x`` any shape -> the density, same shape."""
    return check_function(EXERCISE_NAMES["check_threshold_density"], student_fn, _threshold_ref, _threshold_cases(),
                          mistakes=_THRESHOLD_MISTAKES, random_cases=_threshold_random,
                          forbidden=("mixtures.threshold_density", "mixtures.mixture_density",
                                     "mixtures.mixture_log_density", "mixtures.ThresholdGenerator.density",
                                     "mixtures.ThresholdGenerator.log_density"))


# ---------------------------------------------------------------- exercise 2: log of an average of likelihoods
def _lme_cases() -> list[Case]:
    g = torch.Generator().manual_seed(21)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return [
        Case((_t([0.0, 0.0]),), label="log_lik = [[0, 0]] (both likelihoods 1: answer log 1 = 0)"),
        Case((_t([math.log(1.0), math.log(3.0)]),), label="log_lik = [[log 1, log 3]] (answer log 2 = 0.6931)"),
        Case((r(4, 6) * 3,), label="log_lik of shape (4, 6), values around 0"),
        Case((r(3, 50) * 5 - 20,), label="log_lik of shape (3, 50), values around -20"),
        Case((_t([-1000.0, -1001.0, -1002.0], [-800.0, -790.0, -850.0]),),
             label="log_lik = [[-1000, -1001, -1002], [-800, -790, -850]] (exp underflows to 0 here)"),
        Case((_t([-1000.0, -1001.0], [100.0, 101.0]),),
             label="log_lik = [[-1000, -1001], [100, 101]] (rows 1100 nats apart: subtract each row's own maximum)"),
    ]


def _lme_random(gen: torch.Generator, n: int) -> list[Case]:
    return [Case((_spread_rows(gen, _size(gen, 2, 6), _size(gen, 1, 30), _uniform(gen, 0.1, 20)),),
                 label="log_lik with rows at very different levels (between -1000 and 1000)") for _ in range(n)]


def _lme_ref(log_lik):
    return log_mean_exp(log_lik, dim=-1)


_LME_MISTAKES = [
    Mistake(lambda a: a.mean(-1),
            "you averaged the log-likelihoods: mean_k log p(x|z_k) is only a lower bound on log mean_k p(x|z_k) "
            "(Jensen's inequality: log is concave). Average the likelihoods, then take the log: use torch.logsumexp."),
    Mistake(lambda a: torch.logsumexp(a, -1),
            "the -log K term is missing: logsumexp gives the log of the SUM of the K likelihoods; the estimate is "
            "their MEAN, so subtract math.log(K)."),
    Mistake(lambda a: torch.log(torch.exp(a).mean(-1)),
            "you computed log(exp(log_lik).mean()); exp(-1000) underflows to 0, so the log is -inf (or NaN). Use "
            "torch.logsumexp, which subtracts the maximum before exponentiating, then subtract log K."),
    Mistake(lambda a: torch.logsumexp(a, -1) + math.log(a.shape[-1]),
            "you added log K; the mean is the sum divided by K, so subtract it."),
    Mistake(lambda a: torch.logsumexp(a, -1) / a.shape[-1],
            "you divided the log-sum by K; dividing the sum by K means subtracting log K from its log."),
]


def _global_max_lme(a: Tensor) -> Tensor:
    m = a.max()  # one maximum for the whole batch
    return m + torch.log(torch.exp(a - m).mean(-1))


_LME_GLOBAL = [Mistake(_global_max_lme,
                       "you subtracted one maximum for the whole batch; rows far below it underflow to exp(-1100) = 0 "
                       "and give -inf. Subtract each row's own maximum (a.max(-1, keepdim=True)), or use torch.logsumexp.")]


def check_log_marginal_from_samples(student_fn) -> CheckResult:
    """Exercise 2: ``log_marginal_from_samples(log_lik)``, ``(N, K)`` -> ``(N,)``."""
    return check_function(EXERCISE_NAMES["check_log_marginal_from_samples"], student_fn, _lme_ref, _lme_cases(),
                          mistakes=_LME_MISTAKES + _LME_GLOBAL, random_cases=_lme_random, grads=("log_lik",),
                          forbidden=("distributions.log_mean_exp", "mixtures.log_marginal_mc",
                                     "mixtures.log_marginal_quadrature"))


# ---------------------------------------------------------------- exercise 3: effective sample size
def _ess_cases() -> list[Case]:
    g = torch.Generator().manual_seed(22)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return [
        Case((_t([0.0, 0.0, 0.0, 0.0]),), label="log_w = [[0, 0, 0, 0]] (equal weights: ESS = 4)"),
        Case((_t([0.0, -50.0, -50.0]),), label="log_w = [[0, -50, -50]] (one weight dominates: ESS close to 1)"),
        Case((r(5, 20),), label="log_w of shape (5, 20), values around 0"),
        Case((r(3, 10) * 2 + 5,), label="log_w of shape (3, 10), values around 5 (weights not normalised)"),
        Case((_t([-1000.0, -1000.5, -1001.0], [800.0, 799.0, 790.0]),),
             label="log_w = [[-1000, -1000.5, -1001], [800, 799, 790]] (exp under- and overflows)"),
    ]


def _ess_random(gen: torch.Generator, n: int) -> list[Case]:
    return [Case((_spread_rows(gen, _size(gen, 2, 6), _size(gen, 1, 40), _uniform(gen, 0.1, 5)),),
                 label="log_w with rows at very different levels (between -1000 and 1000)") for _ in range(n)]


def _ess_ref(log_w):
    return M.effective_sample_size(log_w)


_ESS_MISTAKES = [
    Mistake(lambda lw: 1.0 / torch.exp(2 * lw).sum(-1),
            "you used 1 / sum_k w_k^2 with the raw weights; that formula needs NORMALISED weights w_k / sum_j w_j. "
            "Without normalising, the answer changes when all weights are multiplied by a constant."),
    Mistake(lambda lw: torch.exp(lw).sum(-1) ** 2 / torch.exp(2 * lw).sum(-1),
            "the formula is right, but exp(log_w) under- or overflows (exp(800) = inf, exp(-1000) = 0), giving NaN. "
            "Work with logs: ESS = exp(2 * logsumexp(log_w) - logsumexp(2 * log_w))."),
    Mistake(lambda lw: torch.softmax(lw, -1).pow(2).sum(-1),
            "you returned sum_k wbar_k^2 = sum w^2 / (sum w)^2 (normalised weights wbar), which is 1 / ESS: "
            "the ESS is its reciprocal, between 1 and K."),
    Mistake(lambda lw: torch.exp(torch.logsumexp(lw, -1) - torch.logsumexp(2 * lw, -1)),
            "the numerator is (sum_k w_k)^2, so its log is 2 * logsumexp(log_w), not logsumexp(log_w)."),
]


def check_effective_sample_size(student_fn) -> CheckResult:
    """Exercise 3: ``effective_sample_size(log_w)``, ``(N, K)`` -> ``(N,)``."""
    return check_function(EXERCISE_NAMES["check_effective_sample_size"], student_fn, _ess_ref, _ess_cases(),
                          mistakes=_ESS_MISTAKES, random_cases=_ess_random,
                          forbidden=("mixtures.effective_sample_size", "distributions.log_mean_exp"))


# ---------------------------------------------------------------- exercise 4: the best single Gaussian
def _gauss_cases() -> list[Case]:
    g = torch.Generator().manual_seed(23)
    return [
        Case((_t(-1.0, 1.0),), label="x = [-1, 1] (MLE variance 1: answer -0.5 * (log 2 pi + 1) = -1.4189)"),
        Case((_t(0.0, 0.0, 3.0),), label="x = [0, 0, 3]"),
        Case((torch.randn(200, generator=g, dtype=torch.float64) * 3 + 1,), label="200 draws of N(1, 9)"),
        Case((torch.cat([torch.randn(50, generator=g, dtype=torch.float64) * 0.5 - 2,
                         torch.randn(50, generator=g, dtype=torch.float64) * 0.5 + 2]),),
             label="100 points from two clusters at -2 and 2"),
    ]


def _gauss_random(gen: torch.Generator, n: int) -> list[Case]:
    """N from 2 to 300 points, scales from 0.001 to 1000, means far from 0."""
    cases = []
    for _ in range(n):
        scale, m = 10 ** _uniform(gen, -3, 3), _uniform(gen, -50, 50)
        k = _size(gen, 2, 300)
        cases.append(Case((m + scale * torch.randn(k, generator=gen, dtype=torch.float64),),
                          label=f"{k} points around {m:.3g} with spread {scale:.3g}"))
    return cases


def _gauss_ref(x):
    return M.fit_single_gaussian(x).log_prob(x).mean()


def _gauss_loglik(x, var):
    return (-0.5 * (LOG_2PI + torch.log(var) + (x - x.mean()) ** 2 / var)).mean()


_GAUSS_MISTAKES = [
    Mistake(lambda x: _gauss_loglik(x, x.var(unbiased=True)),
            "you used the unbiased variance (divisor N - 1, torch.var's default). The maximum-likelihood variance "
            "divides by N: x.var(unbiased=False) or ((x - x.mean())**2).mean()."),
    Mistake(lambda x: (-0.5 * (LOG_2PI + torch.log(x.std(unbiased=False))
                               + (x - x.mean()) ** 2 / x.var(unbiased=False))).mean(),
            "the log term uses the standard deviation; log N(x; m, s^2) has -0.5 * log(s^2) = -log s, i.e. the log of "
            "the VARIANCE times 1/2."),
    Mistake(lambda x: -0.5 * (LOG_2PI + torch.log(x.var(unbiased=False))),
            "the quadratic term is missing: at the MLE, the average of (x - m)^2 / s^2 is exactly 1, which adds -1/2."),
    Mistake(lambda x: (-0.5 * (LOG_2PI + torch.log(x.var(unbiased=False)) + x ** 2 / x.var(unbiased=False))).mean(),
            "the mean is missing from the squared error: use (x - m)^2 with m the sample mean, not x^2."),
]


def check_gaussian_mle_loglik(student_fn) -> CheckResult:
    """Exercise 4: ``gaussian_mle_loglik(x)``, ``(N,)`` -> a scalar tensor."""
    return check_function(EXERCISE_NAMES["check_gaussian_mle_loglik"], student_fn, _gauss_ref, _gauss_cases(),
                          mistakes=_GAUSS_MISTAKES, random_cases=_gauss_random,
                          forbidden=("mixtures.fit_single_gaussian", "mixtures.GaussianFit.log_prob"))


# ---------------------------------------------------------------- build task: a generator for a two-peaked target
def check_generator_build(student_fn) -> CheckResult:
    """Build task: ``build_generator()`` returns a generator with a 1-D latent and 1-D output; fitted to the
    bimodal target, its held-out log-likelihood must come within the band of the truth (:mod:`.build_ch02`)."""
    return build_ch02.check_generator(EXERCISE_NAMES["check_generator_build"], student_fn)


# ---------------------------------------------------------------- derivation: one Gaussian for the threshold mixture
DERIVATION_THETA = 0.3  # weight of N(0, 1) in the threshold mixture of the derivation


def mixture_gaussian_fit(theta: float = DERIVATION_THETA) -> float:
    """E_{x~P_theta}[log N(x; m, s^2)] for the best single Gaussian of the threshold mixture (infinite data): its
    variance is the mixture's, 1 + theta (1 - theta) by the law of total variance."""
    var = 1.0 + theta * (1.0 - theta)
    return float(M.fit_single_gaussian(torch.tensor([-math.sqrt(var), math.sqrt(var)], dtype=torch.float64))
                 .log_prob(torch.tensor([-math.sqrt(var), math.sqrt(var)], dtype=torch.float64)).mean())


def _fit_hints() -> dict[str, float]:
    th = DERIVATION_THETA
    ll = lambda var: -0.5 * (LOG_2PI + math.log(var) + 1.0)  # noqa: E731
    return {
        "you used the within-component variance 1 alone; the spread of the two means adds theta (1 - theta) "
        "(the law of total variance: Var x = E[Var(x|z)] + Var(E[x|z])).": ll(1.0),
        "you used only the variance of the means theta (1 - theta); each component adds its own variance 1.":
            ll(th * (1 - th)),
        "the +1 is missing: at the best Gaussian the average of (x - m)^2 / s^2 is exactly 1, which adds -1/2.":
            -0.5 * (LOG_2PI + math.log(1 + th * (1 - th))),
        "the variance of the means is theta (1 - theta), not theta^2 + (1 - theta)^2.": ll(1 + th**2 + (1 - th) ** 2),
        "that is in bits; the question asks for nats.": ll(1 + th * (1 - th)) / math.log(2),
    }


def check_mixture_gaussian_fit(value) -> CheckResult:
    """Derivation: the expected log-likelihood (nats per point) of the best single Gaussian under the threshold
    mixture 0.3 N(0, 1) + 0.7 N(1, 1), with infinitely many data (about -1.5143)."""
    return check_value(EXERCISE_NAMES["check_mixture_gaussian_fit"], value, mixture_gaussian_fit(), rtol=1e-3,
                       hints=_fit_hints(), what="`best_gaussian_loglik`", unit="nats")
