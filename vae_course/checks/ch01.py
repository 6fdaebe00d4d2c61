r"""Checks for the chapter 1 exercises (``solutions/01_probabilistic_generators.ipynb``).

1. ``sample_mvn(mu, cov, eps)``: a draw of :math:`\mathcal N(\mu, \Sigma)` as :math:`x = \mu + L\varepsilon`, :math:`LL^\top = \Sigma`.
2. ``log_normal_diag(x, mu, logvar)``: :math:`\log\mathcal N(x; \mu, \mathrm{diag}(e^{\ell}))`, summed over the last dim.
3. ``log_normal_full(x, mu, cov)``: :math:`\log\mathcal N(x; \mu, \Sigma)` through the Cholesky factor.
4. Derivation: the log-density of a 2-D Gaussian at its mean, by hand.

Each compares the student's function with the package's reference (:func:`vae_course.generators.sample_normal`,
:mod:`vae_course.distributions`) on seeded random inputs and edge cases, and recognises the classic mistakes:
:math:`\Sigma` or :math:`L^\top` where :math:`L` belongs, ``exp(logvar)`` used as a standard deviation, the
slide's normaliser :math:`(2\pi|\Sigma|)^{d/2}`, a missing log-determinant, a missing 1/2.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import distributions as D
from ..generators import sample_normal
from ._core import Case, CheckResult, Mistake, check_function, check_value

__all__ = ["check_sample_mvn", "check_log_normal_diag", "check_log_normal_full", "check_density_at_mean"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_sample_mvn": "Exercise 1 (sampling N(mu, Sigma) by Cholesky)",
    "check_log_normal_diag": "Exercise 2 (diagonal Gaussian log-density)",
    "check_log_normal_full": "Exercise 3 (full-covariance log-density)",
    "check_density_at_mean": "Derivation (a Gaussian's log-density at its mean)",
}

LOG_2PI = math.log(2 * math.pi)


def _spd(*shape: int, d: int, gen: torch.Generator) -> Tensor:
    """Random symmetric positive-definite ``(*shape, d, d)`` matrices A A^T + 0.3 I (determinant != 1)."""
    A = torch.randn(*shape, d, d, generator=gen, dtype=torch.float64)
    return A @ A.transpose(-1, -2) + 0.3 * torch.eye(d, dtype=torch.float64)


def _t(*rows) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _size(gen: torch.Generator, lo: int, hi: int) -> int:
    return int(torch.randint(lo, hi + 1, (1,), generator=gen))


def _batch(gen: torch.Generator) -> tuple[int, ...]:
    return tuple(_size(gen, 1, 4) for _ in range(_size(gen, 0, 2)))


# ---------------------------------------------------------------- exercise 1: sampling through Cholesky
def _sample_cases() -> list[Case]:
    g = torch.Generator().manual_seed(10)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return [
        Case((_t(0.0, 0.0), _t([4.0, 1.2], [1.2, 1.0]), _t(1.0, 0.0)),
             label="mu = [0, 0], cov = [[4, 1.2], [1.2, 1]], eps = [1, 0]"),
        Case((_t(1.0, -1.0), _t([2.0, -0.8], [-0.8, 0.5]), _t(0.5, -1.5)),
             label="mu = [1, -1], cov = [[2, -0.8], [-0.8, 0.5]], eps = [0.5, -1.5]"),
        Case((_t(3.0), _t([0.25]), _t(2.0)), label="d = 1: mu = [3], cov = [[0.25]], eps = [2] (x must be 3 + 0.5 * 2 = 4)"),
        Case((r(6, 3), _spd(d=3, gen=g), r(6, 3)), label="a batch of 6 draws in d = 3 sharing one cov: mu, eps (6, 3), cov (3, 3)"),
        Case((r(4, 2), _spd(4, d=2, gen=g), r(4, 2)), label="4 draws, each with its own cov: mu, eps (4, 2), cov (4, 2, 2)"),
    ]


def _sample_random(gen: torch.Generator, n: int) -> list[Case]:
    """d from 1 to 6, batches of any rank, one covariance for all rows or one per row, scales from 0.01 to 100."""
    cases = []
    for i in range(n):
        d, batch = _size(gen, 1, 6), _batch(gen)
        scale = 10 ** float(torch.empty(1).uniform_(-1, 1, generator=gen))
        cov = _spd(*(batch if i % 2 else ()), d=d, gen=gen) * scale**2
        mu, eps = torch.randn(*batch, d, generator=gen, dtype=torch.float64), torch.randn(*batch, d, generator=gen, dtype=torch.float64)
        cases.append(Case((mu, cov, eps), label=f"d = {d}, batch shape {batch}, "
                                                f"{'one cov per row' if i % 2 else 'one shared cov'} of scale {scale:.2g}"))
    return cases


def _sample_ref(mu, cov, eps):
    return sample_normal(mu, scale_tril=D.cholesky(cov), eps=eps)


def _mv(M: Tensor, v: Tensor) -> Tensor:
    return (M @ v.unsqueeze(-1)).squeeze(-1)


_SAMPLE_MISTAKES = [
    Mistake(lambda mu, cov, eps: mu + _mv(cov, eps),
            "you multiplied eps by the covariance itself: Cov(Sigma eps) = Sigma Sigma^T = Sigma^2, not Sigma. "
            "Multiply by the Cholesky factor L = torch.linalg.cholesky(cov), for which L L^T = Sigma."),
    Mistake(lambda mu, cov, eps: mu + _mv(torch.linalg.cholesky(cov).transpose(-1, -2), eps),
            "you used L^T (the upper factor, or eps @ L) instead of L: Cov(L^T eps) = L^T L, which is not Sigma. "
            "Compute L @ eps with the lower factor, e.g. (L @ eps.unsqueeze(-1)).squeeze(-1)."),
    Mistake(lambda mu, cov, eps: mu + torch.sqrt(torch.diagonal(cov, dim1=-2, dim2=-1)) * eps,
            "you scaled eps by the standard deviations sqrt(diag(Sigma)) only; that drops the correlations "
            "(the off-diagonal entries). Use the full Cholesky factor L."),
    Mistake(lambda mu, cov, eps: mu + _mv(torch.sqrt(cov), eps),
            "torch.sqrt(cov) takes the square root of each entry; that is not a matrix square root. Use the Cholesky factor L."),
    Mistake(lambda mu, cov, eps: mu + eps,
            "you returned mu + eps, which has covariance I whatever cov is; scale the noise by L first."),
]


def check_sample_mvn(student_fn) -> CheckResult:
    """Exercise 1: ``sample_mvn(mu, cov, eps)``, mu/eps ``(..., d)``, cov ``(..., d, d)`` -> ``mu + L eps`` ``(..., d)``."""
    return check_function(EXERCISE_NAMES["check_sample_mvn"], student_fn, _sample_ref, _sample_cases(),
                          mistakes=_SAMPLE_MISTAKES, random_cases=_sample_random,
                          forbidden=("generators.sample_normal", "distributions.cholesky",
                                     "generators.GaussianStats.sample"))


# ---------------------------------------------------------------- exercise 2: diagonal Gaussian log-density
def _diag_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return [
        Case((_t(0.0, 0.0), _t(0.0, 0.0), _t(0.0, 0.0)),
             label="x = mu = [0, 0], logvar = [0, 0] (answer: -log(2 pi) = -1.8379)"),
        Case((_t(1.0), _t(0.0), _t(math.log(4.0))), label="x = [1], mu = [0], logvar = [log 4] (sigma = 2)"),
        Case((_t(0.5, -1.0, 2.0), _t(0.0, 1.0, 1.5), _t(-1.0, 0.5, 1.0)),
             label="x = [0.5, -1, 2], mu = [0, 1, 1.5], logvar = [-1, 0.5, 1]"),
        Case((r(5, 4), r(5, 4), r(5, 4)), label="a batch: x, mu, logvar of shape (5, 4) (answer shape (5,))"),
        Case((r(3, 2, 6), r(3, 2, 6), 2 * r(3, 2, 6)), label="x, mu, logvar of shape (3, 2, 6) (answer shape (3, 2))"),
    ]


def _diag_random(gen: torch.Generator, n: int) -> list[Case]:
    """Any batch shape, d from 1 to 8, log-variances from -12 to 8 (standard deviations 0.0025 to 55)."""
    cases = []
    for _ in range(n):
        d, batch = _size(gen, 1, 8), _batch(gen)
        r = lambda: torch.randn(*batch, d, generator=gen, dtype=torch.float64)  # noqa: E731
        logvar = torch.empty(*batch, d, dtype=torch.float64).uniform_(-12, 8, generator=gen)
        cases.append(Case((r(), r(), logvar), label=f"x, mu, logvar of shape {(*batch, d)}, logvar in [-12, 8]"))
    return cases


def _diag_ref(x, mu, logvar):
    return D.log_normal_diag(x, mu, logvar)


def _diag(x, mu, logvar, *, c=1.0, logdet=1.0, quad=1.0, half=0.5, var_pow=1.0):
    var = torch.exp(var_pow * logvar)
    return -half * (c * LOG_2PI + logdet * var_pow * logvar + quad * (x - mu) ** 2 / var).sum(-1)


_DIAG_MISTAKES = [
    Mistake(lambda x, mu, logvar: _diag(x, mu, logvar, var_pow=2.0),
            "you used exp(logvar) as the standard deviation; exp(logvar) is the variance sigma^2, "
            "the standard deviation is exp(0.5 * logvar)."),
    Mistake(lambda x, mu, logvar: _diag(x, mu, logvar, logdet=0.0),
            "the log-variance term is missing: each coordinate contributes -0.5 * logvar_j (the log of the "
            "normaliser sqrt(2 pi sigma_j^2)), not only the constant and the squared error."),
    Mistake(lambda x, mu, logvar: _diag(x, mu, logvar, c=0.0),
            "the constant -0.5 * log(2 pi) per coordinate is missing (a density needs its normaliser)."),
    Mistake(lambda x, mu, logvar: _diag(x, mu, logvar, quad=2.0),
            "a 1/2 is missing in front of the squared error: the term is -(x - mu)^2 / (2 sigma^2)."),
    Mistake(lambda x, mu, logvar: _diag(x, mu, logvar, half=1.0),
            "the factor 1/2 is missing: log N = -1/2 * (log 2 pi + logvar + (x - mu)^2 / sigma^2), summed over j."),
    Mistake(lambda x, mu, logvar: -_diag(x, mu, logvar),
            "the sign is flipped: you returned the negative log-density (a loss); return log N itself."),
    Mistake(lambda x, mu, logvar: -0.5 * (LOG_2PI + logvar + (x - mu) ** 2 / torch.exp(logvar)),
            "you did not sum over the last (event) dimension: the log-density of a vector is the sum over its coordinates."),
    Mistake(lambda x, mu, logvar: -0.5 * (LOG_2PI + logvar + (x - mu) ** 2 / torch.exp(logvar)).mean(-1),
            "you averaged over the coordinates; the log-density of independent coordinates is their sum."),
]


def check_log_normal_diag(student_fn) -> CheckResult:
    """Exercise 2: ``log_normal_diag(x, mu, logvar)``, all ``(..., d)`` -> ``(...)``."""
    return check_function(EXERCISE_NAMES["check_log_normal_diag"], student_fn, _diag_ref, _diag_cases(),
                          mistakes=_DIAG_MISTAKES, random_cases=_diag_random,
                          forbidden=("distributions.log_normal_diag", "distributions.log_normal_std",
                                     "distributions.DiagonalGaussian.log_prob", "generators.GaussianStats.log_prob"))


# ---------------------------------------------------------------- exercise 3: full-covariance log-density
def _full_cases() -> list[Case]:
    g = torch.Generator().manual_seed(12)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return [
        Case((_t(1.0, 0.0), _t(0.0, 0.0), _t([2.0, 0.6], [0.6, 1.0])),
             label="x = [1, 0], mu = [0, 0], cov = [[2, 0.6], [0.6, 1]]"),
        Case((_t(0.0, 1.0, -1.0), _t(0.5, 0.5, 0.5), _t([3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.5])),
             label="x = [0, 1, -1], mu = [0.5, 0.5, 0.5], cov = diag(3, 2, 0.5)"),
        Case((_t(2.0), _t(1.0), _t([0.25])), label="d = 1: x = [2], mu = [1], cov = [[0.25]]"),
        Case((r(5, 3), r(5, 3), _spd(d=3, gen=g)), label="x, mu (5, 3) sharing one random cov (3, 3) (answer shape (5,))"),
        Case((r(4, 4), r(4, 4), _spd(4, d=4, gen=g)), label="x, mu (4, 4), each with its own cov (4, 4, 4)"),
    ]


def _full_random(gen: torch.Generator, n: int) -> list[Case]:
    """d from 1 to 6, batch shapes with one shared covariance or one per row, covariances of very different scales."""
    cases = []
    for i in range(n):
        d, batch = _size(gen, 1, 6), _batch(gen)
        scale = 10 ** float(torch.empty(1).uniform_(-1.5, 1.5, generator=gen))
        cov = _spd(*(batch if i % 2 else ()), d=d, gen=gen) * scale**2
        x, mu = (scale * torch.randn(*batch, d, generator=gen, dtype=torch.float64) for _ in range(2))
        cases.append(Case((x, mu, cov), label=f"d = {d}, batch shape {batch}, "
                                              f"{'one cov per row' if i % 2 else 'one shared cov'} of scale {scale:.2g}"))
    return cases


def _full_ref(x, mu, cov):
    return D.log_normal_full(x, mu, cov)


def _full_parts(x, mu, cov):
    """(d, log|Sigma|, Mahalanobis^2) computed the plain way, for the mistakes."""
    d = x.shape[-1]
    diff = x - mu
    quad = (diff.unsqueeze(-2) @ torch.linalg.solve(cov, diff.unsqueeze(-1))).squeeze(-1).squeeze(-1)
    return d, torch.logdet(cov), quad


def _full_mistake(kind):
    def fn(x, mu, cov):
        d, logdet, quad = _full_parts(x, mu, cov)
        if kind == "slide":
            return -0.5 * d * (LOG_2PI + logdet) - 0.5 * quad
        if kind == "no_logdet":
            return -0.5 * (d * LOG_2PI + quad)
        if kind == "half_logdet":
            return -0.5 * (d * LOG_2PI + 0.5 * logdet + quad)
        if kind == "quad_sigma":
            diff = (x - mu).unsqueeze(-1)
            return -0.5 * (d * LOG_2PI + logdet + (diff.transpose(-1, -2) @ cov @ diff).squeeze(-1).squeeze(-1))
        if kind == "quad_no_half":
            return -0.5 * (d * LOG_2PI + logdet) - quad
        if kind == "upper_solve":
            L = torch.linalg.cholesky(cov)
            diff = (x - mu).expand(*torch.broadcast_shapes((x - mu).shape[:-1], L.shape[:-2]), d)
            u = torch.linalg.solve_triangular(L.transpose(-1, -2).expand(*diff.shape[:-1], d, d), diff.unsqueeze(-1), upper=True)
            return -0.5 * (d * LOG_2PI + logdet + u.squeeze(-1).pow(2).sum(-1))
        if kind == "sign":
            return 0.5 * (d * LOG_2PI + logdet + quad)
        raise AssertionError(kind)
    return fn


_FULL_MISTAKES = [
    Mistake(_full_mistake("slide"),
            "you used the slide's normaliser (2 pi |Sigma|)^(d/2), i.e. -d/2 * log|Sigma|. The correct normaliser is "
            "(2 pi)^(d/2) |Sigma|^(1/2): the log-determinant enters with -1/2, whatever d is (the two agree only for d = 1)."),
    Mistake(_full_mistake("no_logdet"),
            "the log-determinant term is missing: log N includes -1/2 log|Sigma| = -sum_j log L_jj."),
    Mistake(_full_mistake("half_logdet"),
            "your log-determinant is half of log|Sigma|: with Sigma = L L^T, log|Sigma| = 2 * sum_j log L_jj "
            "(you probably used sum_j log L_jj, the log-determinant of L)."),
    Mistake(_full_mistake("quad_sigma"),
            "the quadratic form uses Sigma; it needs Sigma^{-1}: (x - mu)^T Sigma^{-1} (x - mu) = ||L^{-1}(x - mu)||^2 "
            "(solve L u = x - mu with torch.linalg.solve_triangular(L, ..., upper=False))."),
    Mistake(_full_mistake("quad_no_half"),
            "a 1/2 is missing in front of the quadratic form: the exponent is -(x - mu)^T Sigma^{-1} (x - mu) / 2."),
    Mistake(_full_mistake("upper_solve"),
            "you solved with L^T instead of L: ||L^{-T}(x - mu)||^2 = (x - mu)^T (L^T L)^{-1} (x - mu), which is not the "
            "Mahalanobis distance. Solve L u = x - mu with the lower factor (upper=False)."),
    Mistake(_full_mistake("sign"),
            "the sign is flipped: you returned the negative log-density; return log N itself."),
]


def check_log_normal_full(student_fn) -> CheckResult:
    """Exercise 3: ``log_normal_full(x, mu, cov)``, x/mu ``(..., d)``, cov ``(..., d, d)`` -> ``(...)``."""
    return check_function(EXERCISE_NAMES["check_log_normal_full"], student_fn, _full_ref, _full_cases(),
                          mistakes=_FULL_MISTAKES, random_cases=_full_random,
                          forbidden=("distributions.log_normal_full", "generators.GaussianStats.log_prob",
                                     "mixtures.GaussianFit.log_prob"))


# ---------------------------------------------------------------- derivation: the log-density at the mean
DERIVATION_COV = ((4.0, 1.2), (1.2, 1.0))  # Sigma of the derivation; |Sigma| = 4 - 1.44 = 2.56


def density_at_mean() -> float:
    """log N(mu; mu, Sigma) for ``DERIVATION_COV`` (the package's full-covariance log-density)."""
    cov = torch.tensor(DERIVATION_COV, dtype=torch.float64)
    return float(D.log_normal_full(torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64), cov))


def _density_hints() -> dict[str, float]:
    cov = torch.tensor(DERIVATION_COV, dtype=torch.float64)
    logdet, d = float(torch.logdet(cov)), 2
    return {
        "you used the slide's normaliser (2 pi |Sigma|)^(d/2): it takes -d/2 log|Sigma| where -1/2 log|Sigma| belongs.":
            -0.5 * d * (LOG_2PI + logdet),
        "the log-determinant term -1/2 log|Sigma| is missing (at x = mu the quadratic form is 0, but the normaliser is not).":
            -0.5 * d * LOG_2PI,
        "the constant -d/2 log(2 pi) is missing.": -0.5 * logdet,
        "the sign is flipped: a density below 1 has a negative log.": 0.5 * (d * LOG_2PI + logdet),
        "you used the trace of Sigma (the sum of the variances) where its determinant belongs.":
            -0.5 * (d * LOG_2PI + math.log(float(torch.trace(cov)))),
        "you ignored the correlation: the determinant of [[4, 1.2], [1.2, 1]] is 4 * 1 - 1.2^2 = 2.56, not 4.":
            -0.5 * (d * LOG_2PI + math.log(4.0)),
    }


def check_density_at_mean(value) -> CheckResult:
    """Derivation: log N(x = mu; mu, Sigma) in nats for Sigma = [[4, 1.2], [1.2, 1]] (about -2.3079)."""
    return check_value(EXERCISE_NAMES["check_density_at_mean"], value, density_at_mean(), rtol=1e-3,
                       hints=_density_hints(), what="`log_density_at_mean`", unit="nats")
