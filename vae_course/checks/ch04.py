r"""Checks for the chapter 4 exercises (``solutions/04_gradient_estimators.ipynb``).

1. ``reparameterize(mu, logvar, eps)``: :math:`z=\mu+e^{\frac12\log\sigma^2}\odot\varepsilon`, with gradients
   reaching ``mu`` and ``logvar``.
2. ``score_gradient_mu(f, z, mu, logvar)``: the score-function estimate of
   :math:`\nabla_\mu\mathbb E[F]=\frac1n\sum_i F(z_i)\,(z_i-\mu)/\sigma^2` from given samples.
3. ``straight_through(hard, soft)``: forward value ``hard``, gradient passed to ``soft``.
4. Build task ``score_gradient_baseline(f, z, mu, logvar)``: a control variate, judged by the variance it removes and
   the bias it must not add (:mod:`vae_course.checks.build_ch04`).
5. Derivation: the variance of the one-sample score-function estimator for a given F.

Each compares the student's function with the package's reference (:mod:`vae_course.estimators`,
:func:`vae_course.generators.sample_normal`) on seeded random inputs and edge cases, and recognises
the classic mistakes: ``exp(logvar)`` used as the standard deviation, the log-derivative dropped, the
score's sign flipped, the division by :math:`\sigma^2` forgotten or made by :math:`\sigma`, the detach
on the wrong term.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import estimators as est
from ..generators import sample_normal
from ..mixtures import latent_grid
from . import build_ch04
from ._core import Case, CheckResult, Mistake, call_student, check_function, check_value
from ._mistakes import reparameterize_mistakes

__all__ = ["check_reparameterize", "check_score_gradient_mu", "check_straight_through", "check_baseline_build",
           "check_score_variance"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_reparameterize": "Exercise 1 (the reparameterised sample)",
    "check_score_gradient_mu": "Exercise 2 (score-function gradient for mu)",
    "check_straight_through": "Exercise 3 (straight-through estimator)",
    "check_baseline_build": "Build task (a baseline for the score-function estimator)",
    "check_score_variance": "Derivation (the variance of the score-function estimator)",
}

REPARAM_FORBIDDEN = ("generators.sample_normal", "distributions.reparameterize", "distributions.DiagonalGaussian.sample",
                     "generators.GaussianStats.sample")


def _t(*rows) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------- exercise 1: the reparameterised sample
def _reparam_cases() -> list[Case]:
    g = torch.Generator().manual_seed(40)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return [
        Case((_t(0.0), _t(0.0), _t(1.5)), label="mu = [0], logvar = [0] (sigma = 1), eps = [1.5] (answer 1.5)"),
        Case((_t(1.0), _t(2.0 * torch.log(torch.tensor(3.0)).item()), _t(1.0)),
             label="mu = [1], logvar = [log 9] (sigma = 3), eps = [1] (answer 1 + 3 = 4)"),
        Case((_t(0.5, -1.0, 2.0), _t(-1.0, 0.5, 1.2), _t(0.3, -2.0, 1.0)),
             label="mu = [0.5, -1, 2], logvar = [-1, 0.5, 1.2], eps = [0.3, -2, 1]"),
        Case((r(4), r(4), r(6, 4)), label="mu, logvar (4,) and 6 noise vectors eps (6, 4): answer (6, 4)"),
    ]


def _reparam_ref(mu, logvar, eps):
    return sample_normal(mu, logvar=logvar, eps=eps)


_REPARAM_MISTAKES = reparameterize_mistakes()


def _reparam_random(gen: torch.Generator, n: int) -> list[Case]:
    """mu, logvar (d,) or (B, d) broadcast against eps (..., d); log-variances from -8 to 8."""
    cases = []
    for i in range(n):
        d = int(torch.randint(1, 7, (1,), generator=gen))
        lead = (int(torch.randint(1, 6, (1,), generator=gen)),) if i % 2 else ()
        mu = 5 * torch.randn(*lead, d, generator=gen, dtype=torch.float64)
        lv = torch.empty(*lead, d, dtype=torch.float64).uniform_(-8, 8, generator=gen)
        eps = torch.randn(int(torch.randint(1, 5, (1,), generator=gen)), *lead, d, generator=gen, dtype=torch.float64)
        cases.append(Case((mu, lv, eps), label=f"mu, logvar of shape {(*lead, d)}, eps of shape {tuple(eps.shape)}"))
    return cases


def _reparam_gradients(student_fn) -> str | None:
    """The values are right; now the point of the trick: z must be a differentiable function of mu, logvar."""
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([0.4, -0.6], dtype=torch.float64, requires_grad=True)
    eps = torch.tensor([[1.0, -0.5], [0.2, 2.0]], dtype=torch.float64)
    private = eps.clone()  # the expectation below is computed from this copy, whatever the student does to eps
    z = call_student(student_fn, (mu, logvar, eps), describe="mu = [0.5, -1], logvar = [0.4, -0.6], two noise rows")
    if not z.requires_grad:
        return ("your values are right, but no gradient reaches mu and logvar: the sample must be computed from them "
                "with tensor operations (no .detach(), torch.no_grad(), torch.tensor(...) or .item()), or the "
                "reparameterisation trick is lost.")
    g_mu, g_lv = torch.autograd.grad(z.sum(), (mu, logvar), allow_unused=True, materialize_grads=True)
    if not torch.allclose(g_mu, torch.full_like(g_mu, 2.0)):
        return f"dz/dmu summed over 2 samples should be [2, 2]; got {g_mu.tolist()}: mu must enter z as mu + ... ."
    want = (0.5 * torch.exp(0.5 * logvar.detach()) * private).sum(0)
    if not torch.allclose(g_lv, want):
        return (f"dz/dlogvar should be 0.5 * sigma * eps (summed: {want.tolist()}); got {g_lv.tolist()}. "
                "Compute sigma from logvar inside the function, as exp(0.5 * logvar).")
    return None


def check_reparameterize(student_fn) -> CheckResult:
    """Exercise 1: ``reparameterize(mu, logvar, eps)`` -> ``mu + exp(0.5 * logvar) * eps`` (broadcast)."""
    return check_function(EXERCISE_NAMES["check_reparameterize"], student_fn, _reparam_ref, _reparam_cases(),
                          mistakes=_REPARAM_MISTAKES, random_cases=_reparam_random, grads=("mu", "logvar"),
                          extra=_reparam_gradients, forbidden=REPARAM_FORBIDDEN)


# ---------------------------------------------------------------- exercise 2: score-function gradient for mu
def _score_cases() -> list[Case]:
    g = torch.Generator().manual_seed(41)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    cases = [
        Case((_t(2.0), _t([1.5]), _t(0.5), _t(0.0)),
             label="one sample: f = [2], z = [[1.5]], mu = [0.5], logvar = [0] (answer 2 * (1.5 - 0.5) / 1 = [2])"),
        Case((_t(1.0, 3.0), _t([1.0], [-1.0]), _t(0.0), _t(torch.log(torch.tensor(4.0)).item())),
             label="f = [1, 3], z = [[1], [-1]], mu = [0], logvar = [log 4] (sigma^2 = 4; answer mean(1*1/4, 3*(-1)/4) = [-0.25])"),
    ]
    for n, d in ((5, 3), (8, 2)):
        mu, logvar = r(d), r(d)
        z = mu + torch.exp(0.5 * logvar) * r(n, d)
        f = (z - 1.0).pow(2).sum(-1)
        cases.append(Case((f, z, mu, logvar), label=f"n = {n} samples in d = {d}: f (n,) = ||z - 1||^2, z (n, d), "
                                                    f"random mu, logvar (d,); answer shape ({d},)"))
    return cases


def _score_random(gen: torch.Generator, n: int) -> list[Case]:
    cases = []
    for _ in range(n):
        k, d = int(torch.randint(1, 30, (1,), generator=gen)), int(torch.randint(1, 6, (1,), generator=gen))
        mu = 3 * torch.randn(d, generator=gen, dtype=torch.float64)
        logvar = torch.empty(d, dtype=torch.float64).uniform_(-4, 4, generator=gen)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(k, d, generator=gen, dtype=torch.float64)
        f = 10 * torch.randn(k, generator=gen, dtype=torch.float64)
        cases.append(Case((f, z, mu, logvar), label=f"n = {k} samples in d = {d}, logvar in [-4, 4], random values f"))
    return cases


def _score_ref(f, z, mu, logvar):
    return (f[:, None] * est.gaussian_score(z, mu, logvar).mu).mean(0)  # mean_i F(z_i) (z_i - mu) / sigma^2


def _score(f, z, mu, logvar, *, sign=1.0, power=1.0, reduce="mean"):
    term = f[:, None] * sign * (z - mu) / torch.exp(power * logvar)
    return term.mean(0) if reduce == "mean" else term.sum(0)


_SCORE_MISTAKES = [
    Mistake(lambda f, z, mu, logvar: f.mean().expand(mu.shape[-1]).clone(),
            "you averaged F alone: the log-derivative is missing. Each F(z_i) must be multiplied by the score "
            "d log Q / d mu = (z_i - mu) / sigma^2 before averaging."),
    Mistake(lambda f, z, mu, logvar: _score(f, z, mu, logvar, sign=-1.0),
            "the sign of the score is flipped: d/dmu log N(z; mu, sigma^2) = +(z - mu) / sigma^2, not (mu - z) / sigma^2."),
    Mistake(lambda f, z, mu, logvar: _score(f, z, mu, logvar, power=0.0),
            "you forgot to divide by sigma^2: the score is (z - mu) / sigma^2 = (z - mu) * exp(-logvar)."),
    Mistake(lambda f, z, mu, logvar: _score(f, z, mu, logvar, power=0.5),
            "you divided by sigma = exp(0.5 * logvar); the score divides by the variance sigma^2 = exp(logvar)."),
    Mistake(lambda f, z, mu, logvar: _score(f, z, mu, logvar, power=-1.0),
            "you multiplied by sigma^2 instead of dividing: the score is (z - mu) / sigma^2."),
    Mistake(lambda f, z, mu, logvar: _score(f, z, mu, logvar, reduce="sum"),
            "you summed over the samples; the estimate is their mean (divide by n)."),
    Mistake(lambda f, z, mu, logvar: f.mean() * ((z - mu) / torch.exp(logvar)).mean(0),
            "you multiplied the mean of F by the mean of the score; the estimator averages the products "
            "F(z_i) * score(z_i), sample by sample."),
]


def check_score_gradient_mu(student_fn) -> CheckResult:
    """Exercise 2: ``score_gradient_mu(f, z, mu, logvar)``; f ``(n,)``, z ``(n, d)``, mu/logvar ``(d,)`` -> ``(d,)``."""
    return check_function(EXERCISE_NAMES["check_score_gradient_mu"], student_fn, _score_ref, _score_cases(),
                          mistakes=_SCORE_MISTAKES, random_cases=_score_random,
                          forbidden=("estimators.gaussian_score", "estimators.score_function_gradient",
                                     "estimators.score_function_terms"))


# ---------------------------------------------------------------- exercise 3: straight-through
def _st_cases() -> list[Case]:
    g = torch.Generator().manual_seed(42)
    soft = torch.softmax(torch.randn(4, 3, generator=g, dtype=torch.float64), -1)
    hard = torch.eye(3, dtype=torch.float64)[soft.argmax(-1)]
    enc = torch.randn(5, 2, generator=g, dtype=torch.float64)
    codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]], dtype=torch.float64)
    quant = codebook[torch.cdist(enc, codebook).argmin(-1)]
    return [
        Case((_t([0.0, 1.0, 0.0]), _t([0.2, 0.5, 0.3])), label="hard = [[0, 1, 0]], soft = [[0.2, 0.5, 0.3]] (answer: hard)"),
        Case((hard, soft), label="4 one-hot samples hard (4, 3) and their softmax probabilities soft (4, 3)"),
        Case((quant, enc), label="VQ style: hard = nearest codebook vectors (5, 2), soft = encoder outputs (5, 2)"),
    ]


def _st_random(gen: torch.Generator, n: int) -> list[Case]:
    cases = []
    for _ in range(n):
        b, k = int(torch.randint(1, 8, (1,), generator=gen)), int(torch.randint(2, 7, (1,), generator=gen))
        soft = torch.softmax(3 * torch.randn(b, k, generator=gen, dtype=torch.float64), -1)
        hard = torch.eye(k, dtype=torch.float64)[torch.multinomial(soft, 1, generator=gen)[:, 0]]
        cases.append(Case((hard, soft), label=f"{b} one-hot samples over {k} classes and their probabilities"))
    return cases


def _st_ref(hard, soft):
    return est.straight_through(hard, soft)


_ST_MISTAKES = [
    Mistake(lambda hard, soft: soft.clone(),
            "your forward pass returns the soft values. The output must equal hard, with soft's gradient: "
            "soft + (hard - soft).detach() (if you wrote hard + (soft - hard).detach(), the detach is on the wrong term)."),
]


def _st_gradients(student_fn) -> str | None:
    """The values equal hard; now the backward pass: the upstream gradient must reach soft unchanged, hard none."""
    hard = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    soft = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]], dtype=torch.float64, requires_grad=True)
    out = call_student(student_fn, (hard, soft), describe="two one-hot rows and their probabilities")
    w = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]], dtype=torch.float64)
    if not out.requires_grad:
        return ("the forward values are right, but no gradient flows back at all: everything was detached "
                "(e.g. hard.detach() or (soft + hard - soft).detach()). Return soft + (hard - soft).detach().")
    g_soft, g_hard = torch.autograd.grad((out * w).sum(), (soft, hard), allow_unused=True, materialize_grads=True)
    hard_gets = bool(g_hard.abs().gt(0).any())
    if not bool(g_soft.abs().gt(0).any()):
        where = (" It goes to hard instead: returning hard itself, or detaching soft rather than (hard - soft), "
                 "does this." if hard_gets else "")
        return ("the forward values are right, but no gradient reaches soft." + where +
                " Return soft + (hard - soft).detach(): the value of hard, the gradient of soft.")
    if not torch.allclose(g_soft, w):
        return (f"the gradient arriving at soft should be the upstream gradient unchanged ({w.tolist()}); "
                f"got {g_soft.tolist()}. Return soft + (hard - soft).detach().")
    if hard_gets:
        return ("a gradient also reaches hard; it should not (hard is a sample or a codebook lookup). "
                "Detach the difference: soft + (hard - soft).detach().")
    return None


def check_straight_through(student_fn) -> CheckResult:
    """Exercise 3: ``straight_through(hard, soft)`` -> the value of hard with the gradient of soft."""
    return check_function(EXERCISE_NAMES["check_straight_through"], student_fn, _st_ref, _st_cases(),
                          mistakes=_ST_MISTAKES, extra=_st_gradients, random_cases=_st_random,
                          forbidden=("estimators.straight_through",))


# ---------------------------------------------------------------- build task: a baseline
def check_baseline_build(student_fn) -> CheckResult:
    """Build task: ``score_gradient_baseline(f, z, mu, logvar)`` -> ``(d,)``, judged by its variance reduction and
    its bias over repeated runs (:mod:`.build_ch04`)."""
    return build_ch04.check_baseline(EXERCISE_NAMES["check_baseline_build"], student_fn)


# ---------------------------------------------------------------- derivation: the variance of the score estimator
DERIVATION_MU = 2.0  # F(z) = z, z ~ N(mu, 1), one sample: the estimate is z (z - mu)


def score_variance(mu: float = DERIVATION_MU) -> float:
    r"""Var[F(z) (z - mu) / sigma^2] for F(z) = z, z ~ N(mu, 1): with z = mu + eps it is Var(mu eps + eps^2)
    = mu^2 Var(eps) + Var(eps^2) + 2 mu Cov(eps, eps^2) = mu^2 + 2 (the Gaussian's moments E eps^3 = 0,
    E eps^4 = 3), from the package's score."""
    grid = latent_grid(5, 1, rule="gauss_hermite", dtype=torch.float64)  # exact for polynomials up to degree 9
    weights = grid.log_w.exp()
    mu_t, lv = torch.tensor([mu], dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    z = mu_t + grid.z  # (5, 1)
    g = z[:, 0] * est.gaussian_score(z, mu_t, lv).mu[:, 0]  # (5,): F(z) * d log N / d mu, a degree-2 polynomial
    return float((weights * g**2).sum() - (weights * g).sum() ** 2)


def _variance_hints() -> dict[str, float]:
    m = DERIVATION_MU
    return {
        "that is the second moment E[g^2] = mu^2 + 3; the variance subtracts the squared mean (E g = 1, the gradient).":
            m**2 + 3,
        "you left out the eps^2 term: with z = mu + eps the estimate is z * eps = mu eps + eps^2, and Var(eps^2) = 2.":
            m**2,
        "you left out the mu eps term; only Var(eps^2) = 2 is there.": 2.0,
        "0 is the variance of the reparameterisation estimator (d/dmu F(mu + eps) = 1 always), not of the score "
        "function estimator.": 0.0,
    }


def check_score_variance(value) -> CheckResult:
    """Derivation: Var of the one-sample score-function estimate of d/dmu E[z], z ~ N(2, 1) (answer 6)."""
    return check_value(EXERCISE_NAMES["check_score_variance"], value, score_variance(), rtol=1e-3, atol=1e-6,
                       hints=_variance_hints(), what="`score_variance`")
