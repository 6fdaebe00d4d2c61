"""Checks for the chapter 3 exercises (``solutions/03_elbo.ipynb``).

1. ``kl_normal_std(mu, logvar)``: KL(N(mu, diag exp(logvar)) || N(0, I)) in closed form.
2. ``elbo_mc(x, W, b, sigma, mu_q, logvar_q, eps)``: the Monte-Carlo ELBO of the linear-Gaussian
   model for given noise ``eps`` (reparameterised samples, closed-form KL).
3. ``log_marginal(x, W, b, sigma)``: the exact log p(x) of the linear-Gaussian model.
4. Build task ``fit_local_q(x, W, b, sigma)``: the per-sample two-tier loop, judged by the gap it leaves
   (:mod:`vae_course.checks.build_ch03`).
5. Derivation: the gap of the best diagonal q for a given W and sigma.

Each compares the student's function with the package's reference (:mod:`vae_course.distributions`,
:mod:`vae_course.inference`) on seeded random inputs and edge cases, with the reference switched off while the
student's code runs, checks the gradients that must flow, and recognises classic mistakes.
"""
from __future__ import annotations

import math

import torch

from .. import distributions as D
from .. import inference as inf
from ..linear_gaussian import LinearGaussianModel
from . import build_ch03
from ._core import Case, CheckResult, Mistake, check_function, check_value
from ._mistakes import kl_mistakes

__all__ = ["check_kl_normal_std", "check_elbo_mc", "check_log_marginal", "check_local_q_build", "check_diagonal_gap"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_kl_normal_std": "Exercise 1 (closed-form KL to N(0, I))",
    "check_elbo_mc": "Exercise 2 (Monte-Carlo ELBO of the linear-Gaussian model)",
    "check_log_marginal": "Exercise 3 (exact log p(x) of the linear-Gaussian model)",
    "check_local_q_build": "Build task (the per-sample two-tier loop)",
    "check_diagonal_gap": "Derivation (the gap of the best diagonal q)",
}


def _t(*v) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


# The mistakes are plain torch, as a student would write them (the package's references are switched off while a
# student function runs).
def _kl_std(mu, lv):
    return 0.5 * (torch.exp(lv) + mu**2 - 1 - lv).sum(-1)


def _kl_lecture(mu, lv):
    return 0.5 * (lv + torch.exp(-lv) + mu**2 - 1).sum(-1)  # lecture 003: the KL at variance 1 / sigma^2


# ---------------------------------------------------------------- exercise 1: closed-form KL to N(0, I)
def _kl_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(3)
    return [
        Case((_t(0.0), _t(0.0)), label="mu = [0], logvar = [0] (q = prior: KL must be 0)"),
        Case((_t(1.5), _t(0.0)), label="mu = [1.5], logvar = [0]"),
        Case((_t(0.0), _t(1.0)), label="mu = [0], logvar = [1]"),
        Case((_t(0.5, -1.0), _t(-2.0, 0.7)), label="mu = [0.5, -1], logvar = [-2, 0.7]"),
        Case((torch.randn(4, 3, generator=gen, dtype=torch.float64), torch.randn(4, 3, generator=gen, dtype=torch.float64)),
             label="a batch of 4 random (mu, logvar) pairs in 3 dimensions, shape (4, 3)"),
    ]


def _kl_ref(mu, logvar):
    return D.kl_normal_std(mu, logvar)


_KL_MISTAKES = [
    Mistake(_kl_lecture,
            "this is the formula printed in lecture 003, (1/2) sum(log s^2 + 1/s^2 + mu^2 - 1); it is the right KL "
            "evaluated at variance 1/s^2. The correct one is (1/2) sum(s^2 + mu^2 - 1 - log s^2)."),
    *kl_mistakes(),
]


def _kl_random(gen: torch.Generator, n: int) -> list[Case]:
    """Any batch shape, m from 1 to 8, log-variances from -10 to 6, means up to 20."""
    cases = []
    for _ in range(n):
        m = int(torch.randint(1, 9, (1,), generator=gen))
        b = int(torch.randint(1, 6, (1,), generator=gen))
        mu = 20 * torch.rand(b, m, generator=gen, dtype=torch.float64) - 10
        lv = 16 * torch.rand(b, m, generator=gen, dtype=torch.float64) - 10
        cases.append(Case((mu, lv), label=f"{b} random (mu, logvar) pairs in {m} dimensions, logvar in [-10, 6]"))
    return cases


def check_kl_normal_std(student_fn) -> CheckResult:
    """Exercise 1: ``kl_normal_std(mu, logvar)``, both ``(..., m)`` -> ``(...)``."""
    return check_function(EXERCISE_NAMES["check_kl_normal_std"], student_fn, _kl_ref, _kl_cases(), mistakes=_KL_MISTAKES,
                          random_cases=_kl_random, grads=("mu", "logvar"),
                          forbidden=("distributions.kl_normal_std", "distributions.kl_normal_diag",
                                     "objectives.kl_per_dimension", "inference.kl_normal_diag_monte_carlo"))


# ---------------------------------------------------------------- exercise 2: Monte-Carlo ELBO
def _model_args(d: int, m: int, sigma: float, n: int, s: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
    return (r(n, d), r(d, m), r(d), sigma, r(n, m), 0.5 * r(n, m), r(s, n, m))


def _elbo_cases() -> list[Case]:
    return [
        Case(_model_args(3, 2, 0.5, 4, 5, 0), label="d = 3, m = 2, sigma = 0.5, 4 data points, S = 5 samples"),
        Case(_model_args(2, 1, 1.5, 3, 1, 1), label="d = 2, m = 1, sigma = 1.5, 3 data points, S = 1 sample"),
        Case(_model_args(4, 3, 0.8, 2, 20, 2), label="d = 4, m = 3, sigma = 0.8, 2 data points, S = 20 samples"),
    ]


def _elbo_ref(x, W, b, sigma, mu_q, logvar_q, eps):
    return inf.elbo_gaussian(LinearGaussianModel(W, b, sigma), x, mu_q, logvar_q, eps=eps).elbo


def _recon(x, W, b, sigma, z, logvar_x=None):
    mean = z @ W.T + b  # (S, N, d)
    lv = torch.full_like(mean, 2 * math.log(sigma) if logvar_x is None else logvar_x)
    return -0.5 * (math.log(2 * math.pi) + lv + (x - mean) ** 2 / torch.exp(lv)).sum(-1)  # (S, N)


def _z(mu_q, logvar_q, eps, scale="std"):
    return mu_q + (torch.exp(0.5 * logvar_q) if scale == "std" else torch.exp(logvar_q)) * eps


_ELBO_MISTAKES = [
    Mistake(lambda x, W, b, s, mu, lv, eps: _recon(x, W, b, s, _z(mu, lv, eps, "var")).mean(0) - _kl_std(mu, lv),
            "z = mu + exp(logvar) * eps uses the variance as a scale; the standard deviation is exp(0.5 * logvar)."),
    Mistake(lambda x, W, b, s, mu, lv, eps: _recon(x, W, b, s, _z(mu, lv, eps)).mean(0) + _kl_std(mu, lv),
            "the KL is added; the ELBO is E_q[log p(x|z)] MINUS KL(q || p(z))."),
    Mistake(lambda x, W, b, s, mu, lv, eps: _recon(x, W, b, s, _z(mu, lv, eps)).mean(0),
            "the KL term is missing: that is only the reconstruction term E_q[log p(x|z)]."),
    Mistake(lambda x, W, b, s, mu, lv, eps: (_recon(x, W, b, s, _z(mu, lv, eps))
                                             - 0.5 * (math.log(2 * math.pi) + _z(mu, lv, eps) ** 2).sum(-1)).mean(0),
            "you averaged log p(x, z) = log p(x|z) + log p(z) but left out the entropy of q (the -log q(z) term); "
            "ELBO = E_q[log p(x, z) - log q(z)]."),
    Mistake(lambda x, W, b, s, mu, lv, eps: _recon(x, W, b, s, _z(mu, lv, eps)).sum(0) - _kl_std(mu, lv),
            "you summed over the S samples; the Monte-Carlo estimate of an expectation is their mean."),
    Mistake(lambda x, W, b, s, mu, lv, eps: _recon(x, W, b, s, _z(mu, lv, eps), logvar_x=math.log(s)).mean(0)
            - _kl_std(mu, lv),
            "sigma is the noise standard deviation: the variance of p(x|z) is sigma**2, so its log-variance is "
            "2 log(sigma), not log(sigma)."),
    Mistake(lambda x, W, b, s, mu, lv, eps: _recon(x, W, b, s, _z(mu, lv, eps)).mean(0) - _kl_lecture(mu, lv),
            "your KL is lecture 003's wrong formula; use (1/2) sum(exp(logvar) + mu^2 - 1 - logvar)."),
]


def _elbo_random(gen: torch.Generator, n: int) -> list[Case]:
    cases = []
    for _ in range(n):
        d, m, k, S = (int(torch.randint(lo, hi, (1,), generator=gen)) for lo, hi in ((1, 7), (1, 5), (1, 6), (1, 30)))
        sigma = float(torch.empty(1).uniform_(0.1, 2.0, generator=gen))
        seed = int(torch.randint(0, 10_000, (1,), generator=gen))
        cases.append(Case(_model_args(d, m, sigma, k, S, seed), label=f"d = {d}, m = {m}, sigma = {sigma:.3f}, {k} data "
                                                                       f"points, S = {S} samples"))
    return cases


def check_elbo_mc(student_fn) -> CheckResult:
    """Exercise 2: ``elbo_mc(x, W, b, sigma, mu_q, logvar_q, eps)`` -> ``(N,)``."""
    return check_function(EXERCISE_NAMES["check_elbo_mc"], student_fn, _elbo_ref,
                          _elbo_cases(), mistakes=_ELBO_MISTAKES, random_cases=_elbo_random, grads=("mu_q", "logvar_q"),
                          forbidden=("inference.elbo_gaussian", "inference.elbo_closed_form",
                                     "distributions.kl_normal_std", "distributions.log_normal_diag",
                                     "linear_gaussian.LinearGaussianModel.log_likelihood"))


# ---------------------------------------------------------------- exercise 3: exact log p(x)
def _marginal_cases() -> list[Case]:
    cases = []
    for d, m, sigma, n, seed in ((3, 2, 0.5, 4, 10), (2, 1, 1.5, 3, 11), (4, 3, 0.3, 6, 12)):
        x, W, b = _model_args(d, m, sigma, n, 1, seed)[:3]
        cases.append(Case((x, W, b, sigma), label=f"d = {d}, m = {m}, sigma = {sigma}, {n} data points"))
    return cases


def _marginal_random(gen: torch.Generator, n: int) -> list[Case]:
    cases = []
    for _ in range(n):
        d, m, k = (int(torch.randint(lo, hi, (1,), generator=gen)) for lo, hi in ((1, 8), (1, 5), (1, 8)))
        sigma = float(torch.empty(1).uniform_(0.05, 3.0, generator=gen))
        x, W, b = _model_args(d, m, sigma, k, 1, int(torch.randint(0, 10_000, (1,), generator=gen)))[:3]
        cases.append(Case((x, W, b, sigma), label=f"d = {d}, m = {m}, sigma = {sigma:.3f}, {k} data points"))
    return cases


def _marginal_ref(x, W, b, sigma):
    return LinearGaussianModel(W, b, sigma).log_marginal(x)


def _lognormal(x, mean, cov):
    return torch.distributions.MultivariateNormal(mean, cov).log_prob(x)


_MARGINAL_MISTAKES = [
    Mistake(lambda x, W, b, s: _lognormal(x, b, W @ W.T + s * torch.eye(W.shape[0], dtype=W.dtype)),
            "the noise adds sigma**2 * I to the covariance (sigma is a standard deviation), not sigma * I."),
    Mistake(lambda x, W, b, s: _lognormal(x, b, W @ W.T + s**2),
            "you added sigma**2 to every entry of W W^T; the noise is independent per coordinate, so add sigma**2 * I "
            "(only the diagonal)."),
    Mistake(lambda x, W, b, s: _lognormal(x, torch.zeros_like(b), W @ W.T + s**2 * torch.eye(W.shape[0], dtype=W.dtype)),
            "the mean of p(x) is b (the mean of W z + b with E[z] = 0), not 0."),
    Mistake(lambda x, W, b, s: _lognormal(x, b, s**2 * torch.eye(W.shape[0], dtype=W.dtype)),
            "that is log p(x | z = 0); integrating z out adds W W^T to the covariance: p(x) = N(b, W W^T + sigma^2 I)."),
    Mistake(lambda x, W, b, s: _lognormal(x, b, W @ W.T + torch.eye(W.shape[0], dtype=W.dtype)),
            "the noise covariance is sigma**2 * I, not I."),
]


def check_log_marginal(student_fn) -> CheckResult:
    """Exercise 3: ``log_marginal(x, W, b, sigma)`` -> ``(N,)``."""
    return check_function(EXERCISE_NAMES["check_log_marginal"], student_fn, _marginal_ref,
                          _marginal_cases(), mistakes=_MARGINAL_MISTAKES, random_cases=_marginal_random,
                          forbidden=("linear_gaussian.LinearGaussianModel.log_marginal",
                                     "linear_gaussian.LinearGaussianModel.marginal_cov",
                                     "evaluate.linear_gaussian_log_marginal", "distributions.log_normal_full"))


# ---------------------------------------------------------------- build task: the per-sample two-tier loop
def check_local_q_build(student_fn) -> CheckResult:
    """Build task: ``fit_local_q(x, W, b, sigma)`` -> ``(mu_q, logvar_q)``, judged by the exact gap it leaves
    (:mod:`.build_ch03`)."""
    return build_ch03.check_local_q(EXERCISE_NAMES["check_local_q_build"], student_fn)


# ---------------------------------------------------------------- derivation: the gap of the best diagonal q
DERIVATION_W = ((1.0, 0.0), (1.0, 1.0))  # W (d = 2, m = 2) of the derivation
DERIVATION_SIGMA = 0.5


def diagonal_gap(W=DERIVATION_W, sigma: float = DERIVATION_SIGMA) -> float:
    """log p(x) - ELBO(q*) for the best diagonal q* of the linear-Gaussian model (the same for every x)."""
    model = LinearGaussianModel(torch.tensor(W, dtype=torch.float64), torch.zeros(len(W), dtype=torch.float64), sigma)
    x = torch.zeros(1, len(W), dtype=torch.float64)
    mu, logvar = inf.mean_field_optimum(model, x)
    return float(inf.bound_gap(model, x, mu, logvar).gap[0])


def _gap_hints() -> dict[str, float]:
    W = torch.tensor(DERIVATION_W, dtype=torch.float64)
    s = DERIVATION_SIGMA

    def half_gap(lam: torch.Tensor, half: float = 0.5) -> float:
        return half * float(torch.log(torch.diagonal(lam)).sum() - torch.logdet(lam))

    eye = torch.eye(2, dtype=torch.float64)
    return {
        "the factor 1/2 is missing: the gap is (1/2) (sum_i log Lambda_ii - log|Lambda|).":
            half_gap(eye + W.T @ W / s**2, 1.0),
        "you divided W^T W by sigma instead of sigma^2: Lambda = I + W^T W / sigma^2.": half_gap(eye + W.T @ W / s),
        "the identity is missing from the posterior precision: Lambda = I + W^T W / sigma^2 (the prior adds I).":
            half_gap(W.T @ W / s**2),
        "the sign is flipped: the gap log p(x) - ELBO is a KL, >= 0.": -half_gap(eye + W.T @ W / s**2),
        "you ignored sigma (took sigma = 1): Lambda = I + W^T W / sigma^2 with sigma = 0.5.": half_gap(eye + W.T @ W),
    }


def check_diagonal_gap(value) -> CheckResult:
    """Derivation: the gap of the best diagonal q for W = [[1, 0], [1, 1]], sigma = 0.5 (about 0.2197 nats)."""
    return check_value(EXERCISE_NAMES["check_diagonal_gap"], value, diagonal_gap(), rtol=1e-3, hints=_gap_hints(),
                       what="`gap_nats`", unit="nats")
