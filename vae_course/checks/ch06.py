r"""Checks for the chapter 6 exercises (``solutions/06_beta_vae.ipynb``).

1. ``negative_beta_elbo(x, x_logits, mu, logvar, beta)``: per-example
   :math:`-\sum_j\log\mathrm{Bern}(x_j;\sigma(\ell_j)) + \beta\,\mathrm{KL}(\mathcal N(\mu,\sigma^2)\,\|\,\mathcal N(0,I))`.
2. ``mutual_information(a, b)``: plug-in :math:`I(a;b)` in nats of two discrete vectors.
3. ``mig(codes_discrete, factors)``: the Mutual Information Gap, each factor's gap divided by its entropy
   (constant factors, with entropy 0, left out).
4. Build task ``capacity_loss(recon, kl, capacity, gamma)``: capacity control, judged by the rate the trained VAE
   ends at (:mod:`vae_course.checks.build_ch06`).
5. Derivation: the total correlation of a correlated 2-D Gaussian.

Each compares the student's function with the package's reference (:func:`vae_course.objectives.negative_beta_elbo`,
:func:`vae_course.disentangle.mi_matrix`, :func:`vae_course.disentangle.mig_from_discrete`) on seeded inputs and
hand-made edge cases, and recognises the classic mistakes: beta applied to the reconstruction term (or to both
terms), a mean over pixels where the sum belongs, mutual information in bits or from unnormalised counts, and the
MIG without its entropy normalisation.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import distributions as D
from ..disentangle import factor_entropy, mi_matrix, mig_from_discrete
from ..objectives import negative_beta_elbo
from . import build_ch06
from ._core import Case, CheckResult, Mistake, check_function, check_value
from ._mistakes import elbo_mistakes
from .ch05 import ELBO_FORBIDDEN, elbo_random

__all__ = ["check_negative_beta_elbo", "check_mutual_information", "check_mig", "check_capacity_build",
           "check_total_correlation"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_negative_beta_elbo": "Exercise 1 (the negative beta-ELBO)",
    "check_mutual_information": "Exercise 2 (mutual information of discrete variables)",
    "check_mig": "Exercise 3 (the Mutual Information Gap)",
    "check_capacity_build": "Build task (capacity control: a VAE at a chosen rate)",
    "check_total_correlation": "Derivation (the total correlation of a 2-D Gaussian)",
}


def _t(*rows) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------- exercise 1: the beta-ELBO
def _elbo_cases() -> list[Case]:
    g = torch.Generator().manual_seed(60)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    bits = lambda *s: torch.bernoulli(torch.full(s, 0.3, dtype=torch.float64), generator=g)  # noqa: E731
    return [
        Case((_t([0.3, 0.8]), _t([1.0, -2.0]), _t([0.5]), _t([-1.0]), 2.0),
             label="grey levels x = [[0.3, 0.8]], logits = [[1, -2]], mu = [[0.5]], logvar = [[-1]], beta = 2"),
        Case((_t([1.0, 0.0]), _t([0.0, 0.0]), _t([1.0]), _t([0.0]), 4.0),
             label="x = [[1, 0]], logits = [[0, 0]], mu = [[1]], logvar = [[0]], beta = 4 (answer: 2 log 2 + 4 * 0.5 = 3.3863)"),
        Case((bits(5, 16), 2 * r(5, 16), r(5, 3), r(5, 3), 4.0), label="5 images of 16 pixels, 3 latents, beta = 4"),
        Case((bits(3, 64), 3 * r(3, 64), 2 * r(3, 2), r(3, 2), 0.5), label="3 images of 64 pixels, 2 latents, beta = 0.5"),
        Case((bits(4, 9), r(4, 9), r(4, 4), r(4, 4), 1.0), label="4 images of 9 pixels, beta = 1 (the plain negative ELBO)"),
    ]


_ELBO_MISTAKES = elbo_mistakes(with_beta=True)


def _elbo_random(gen: torch.Generator, n: int) -> list[Case]:
    return elbo_random(gen, n, beta=True)


def check_negative_beta_elbo(student_fn) -> CheckResult:
    """Exercise 1: ``negative_beta_elbo(x, x_logits, mu, logvar, beta)``, x and x_logits ``(B, D)``, mu and logvar ``(B, m)`` -> ``(B,)``."""
    return check_function(EXERCISE_NAMES["check_negative_beta_elbo"], student_fn, negative_beta_elbo, _elbo_cases(),
                          mistakes=_ELBO_MISTAKES, random_cases=_elbo_random, grads=("x_logits", "mu", "logvar"),
                          forbidden=ELBO_FORBIDDEN)


# ---------------------------------------------------------------- exercise 2: mutual information of discrete variables
def _long(*values) -> Tensor:
    return torch.tensor(values, dtype=torch.int64)


def _mi_cases() -> list[Case]:
    g = torch.Generator().manual_seed(61)
    a = torch.randint(0, 4, (300,), generator=g)
    b = (a + torch.randint(0, 2, (300,), generator=g)) % 4  # depends on a
    c = torch.randint(0, 6, (500,), generator=g)
    d = torch.where(torch.rand(500, generator=g) < 0.7, c // 2, torch.randint(0, 3, (500,), generator=g))
    return [
        Case((_long(0, 1, 0, 1), _long(0, 1, 0, 1)), label="a = b = [0, 1, 0, 1] (answer: log 2 = 0.6931)"),
        Case((_long(0, 0, 1, 1), _long(0, 1, 0, 1)), label="a = [0, 0, 1, 1], b = [0, 1, 0, 1]: independent (answer: 0)"),
        Case((_long(0, 0, 0, 2, 2, 5), _long(1, 1, 1, 0, 0, 0)), label="a = [0, 0, 0, 2, 2, 5], b = [1, 1, 1, 0, 0, 0] (labels need not be 0..L-1)"),
        Case((a, b), label="300 pairs, b = a + noise (mod 4)"),
        Case((c, d), label="500 pairs, a with 6 levels, b with 3"),
    ]


def _mi_random(gen: torch.Generator, n: int) -> list[Case]:
    """Labels with gaps (not 0..L-1), 2-9 levels, dependent or independent, 20-600 pairs."""
    cases = []
    for _ in range(n):
        k = int(torch.randint(20, 600, (1,), generator=gen))
        la, lb = int(torch.randint(1, 9, (1,), generator=gen)), int(torch.randint(1, 9, (1,), generator=gen))
        a = torch.randint(0, la, (k,), generator=gen)
        b = torch.where(torch.rand(k, generator=gen) < 0.6, a % lb, torch.randint(0, lb, (k,), generator=gen))
        shift = int(torch.randint(-5, 50, (1,), generator=gen))
        cases.append(Case((3 * a + shift, 7 * b - 2), label=f"{k} pairs, a with up to {la} levels and b with up to "
                                                             f"{lb} (labels spread out, e.g. {3 * 0 + shift}, {3 + shift}, ...)"))
    return cases


def _relabel(v: Tensor) -> Tensor:
    return torch.unique(v, return_inverse=True)[1].reshape(-1, 1)  # any integer labels -> 0..L-1, (N, 1)


def _mi_ref(a: Tensor, b: Tensor) -> Tensor:
    return mi_matrix(_relabel(a), _relabel(b))[0, 0]


def _entropy(a: Tensor) -> Tensor:
    return factor_entropy(torch.unique(a, return_inverse=True)[1].reshape(-1, 1))[0]


def _joint_entropy(a: Tensor, b: Tensor) -> Tensor:
    pairs = torch.unique(torch.stack([a, b], 1), dim=0, return_inverse=True)[1]
    return factor_entropy(pairs.reshape(-1, 1))[0]


_MI_MISTAKES = [
    Mistake(lambda a, b: _mi_ref(a, b) / math.log(2),
            "your answer is in bits (log base 2); the course measures information in nats: use the natural log."),
    Mistake(lambda a, b: -_mi_ref(a, b),
            "the sign is flipped: I(a; b) = sum p(a,b) log[p(a,b) / (p(a) p(b))] >= 0."),
    Mistake(lambda a, b: _mi_ref(a, b) - math.log(len(a)),
            "you used counts where probabilities belong inside the log: divide every count by N first."),
    Mistake(lambda a, b: _entropy(a),
            "you returned the entropy H(a); the mutual information subtracts what b leaves unknown: I = H(a) - H(a | b)."),
    Mistake(lambda a, b: _joint_entropy(a, b),
            "you returned the joint entropy H(a, b); I(a; b) = H(a) + H(b) - H(a, b)."),
]


def check_mutual_information(student_fn) -> CheckResult:
    """Exercise 2: ``mutual_information(a, b)``, two int64 vectors ``(N,)`` -> a 0-dim tensor in nats."""
    return check_function(EXERCISE_NAMES["check_mutual_information"], student_fn, _mi_ref, _mi_cases(),
                          mistakes=_MI_MISTAKES, rtol=1e-5, atol=1e-7, random_cases=_mi_random,
                          forbidden=("disentangle.mi_matrix", "disentangle.factor_entropy", "collapse.mutual_information",
                                     "information.entropy", "information.kl_divergence"))


# ---------------------------------------------------------------- exercise 3: the Mutual Information Gap
def _mig_case(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Factors with different numbers of levels and non-uniform frequencies (so H(v_k) != log L_k), and a code
    that stores factor 0 cleanly, mixes factors 1 and 2 in one latent, and has a noise latent."""
    g = torch.Generator().manual_seed(seed)
    v0 = torch.randint(0, 3, (n,), generator=g)
    v1 = torch.minimum(torch.randint(0, 8, (n,), generator=g), torch.randint(0, 8, (n,), generator=g))  # skewed
    v2 = (torch.rand(n, generator=g) < 0.25).long()  # a rare level
    noisy = lambda v, p: torch.where(torch.rand(n, generator=g) < p, v, torch.randint(0, 8, (n,), generator=g))  # noqa: E731
    z = torch.stack([noisy(v0, 0.9), (v1 + 3 * v2) % 10, torch.randint(0, 5, (n,), generator=g), noisy(v2, 0.6),
                     noisy(v1 // 2, 0.8)], 1)
    return z, torch.stack([v0, v1, v2], 1)


def _mig_cases() -> list[Case]:
    f = torch.stack([_long(*range(4)).repeat(10), (torch.arange(40) >= 20).long()], 1)  # every pair 5 times
    return [
        Case((torch.cat([f, torch.zeros(40, 1, dtype=torch.int64)], 1), f),
             label="a code that copies two factors into latents 0 and 1, latent 2 constant (answer: 1)"),
        Case(_mig_case(400, 62), label="400 points, 5 discrete latents, 3 factors with unequal entropies"),
        Case(_mig_case(1000, 63), label="1000 points, another such code"),
        Case((_mig_case(300, 64)[0], torch.cat([_mig_case(300, 64)[1], torch.full((300, 1), 2, dtype=torch.int64)], 1)),
             label="300 points and a 4th factor that is constant (entropy 0: nothing to disentangle, so it is left "
                   "out of the mean, not divided by 0)"),
    ]


def _mig_random(gen: torch.Generator, n: int) -> list[Case]:
    return [Case(_mig_case(int(torch.randint(100, 800, (1,), generator=gen)), int(torch.randint(0, 10**6, (1,), generator=gen))),
                 label="a random code of 5 discrete latents against 3 factors") for _ in range(n)]


def _gaps(mi: Tensor) -> Tensor:
    top = mi.topk(2, dim=0).values
    return top[0] - top[1]


_MIG_MISTAKES = [
    Mistake(lambda z, f: _gaps(mi_matrix(z, f)).mean(),
            "the gaps are not normalised: divide each factor's gap by its entropy H(v_k) before averaging, so that "
            "every factor counts on the same [0, 1] scale whatever its number of levels."),
    Mistake(lambda z, f: (_gaps(mi_matrix(z, f)) / torch.tensor([float(f[:, k].max() + 1) for k in range(f.shape[1])],
                                                              dtype=torch.float64).log()).mean(),
            "you divided by log(number of levels); that is the entropy only when all levels are equally frequent. Use "
            "the entropy of the factor in the data, H(v_k) = -sum p(v) log p(v)."),
    Mistake(lambda z, f: (mi_matrix(z, f).max(0).values / factor_entropy(f)).mean(),
            "you used the largest mutual information alone; the MIG subtracts the second largest, so that a factor "
            "spread over two latents scores low."),
    Mistake(lambda z, f: ((mi_matrix(z, f).max(0).values - mi_matrix(z, f).min(0).values) / factor_entropy(f)).mean(),
            "you subtracted the smallest mutual information; the gap is between the largest and the SECOND largest."),
    Mistake(lambda z, f: (_gaps(mi_matrix(z, f).T)).mean(),
            "you took the gap across factors for each latent; the MIG takes, for each FACTOR, the gap between its two "
            "most informative latents (top-2 over the latent dimension, dim 0 of the (m, K) table)."),
]


def check_mig(student_fn) -> CheckResult:
    """Exercise 3: ``mig(codes_discrete, factors)``, int64 ``(N, m)`` and ``(N, K)`` -> a 0-dim tensor in [0, 1]."""
    return check_function(EXERCISE_NAMES["check_mig"], student_fn, mig_from_discrete, _mig_cases(),
                          mistakes=_MIG_MISTAKES, rtol=1e-5, atol=1e-7, random_cases=_mig_random,
                          forbidden=("disentangle.mig_from_discrete", "disentangle.mig"))


# ---------------------------------------------------------------- build task: capacity control
def check_capacity_build(student_fn) -> CheckResult:
    """Build task: ``capacity_loss(recon, kl, capacity, gamma)`` -> the scalar to minimise; the trained VAE's test rate
    must end near the capacity (:mod:`.build_ch06`)."""
    return build_ch06.check_capacity(EXERCISE_NAMES["check_capacity_build"], student_fn)


# ---------------------------------------------------------------- derivation: total correlation
DERIVATION_RHO = 0.6  # q(z) = N(0, [[1, rho], [rho, 1]])


def total_correlation(rho: float = DERIVATION_RHO) -> float:
    """TC = KL(q(z1, z2) || q(z1) q(z2)) of a 2-D Gaussian with unit variances and correlation rho (the package's
    full-covariance Gaussian KL)."""
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    zero = torch.zeros(2, dtype=torch.float64)
    return float(D.kl_normal_full(zero, cov, zero, torch.diag(torch.diagonal(cov))))


def _tc_hints() -> dict[str, float]:
    r = DERIVATION_RHO
    return {
        "the factor 1/2 is missing: TC = -(1/2) log(1 - rho^2).": -math.log(1 - r**2),
        "the determinant of [[1, rho], [rho, 1]] is 1 - rho^2, not 1 - rho.": -0.5 * math.log(1 - r),
        "that is in bits; the course measures information in nats.": -0.5 * math.log(1 - r**2) / math.log(2),
        "the sign is flipped: the total correlation is a KL, >= 0.": 0.5 * math.log(1 - r**2),
        "a Gaussian with correlation rho has TC -(1/2) log(1 - rho^2); 1 + rho^2 belongs to no term here.":
            0.5 * math.log(1 + r**2),
        "the correlation enters squared: -(1/2) log(1 - rho^2), not -(1/2) log(1 - rho)^2.": -math.log(1 - r),
    }


def check_total_correlation(value) -> CheckResult:
    """Derivation: the total correlation of N(0, [[1, 0.6], [0.6, 1]]) in nats (about 0.2231)."""
    return check_value(EXERCISE_NAMES["check_total_correlation"], value, total_correlation(), rtol=1e-3,
                       hints=_tc_hints(), what="`total_correlation_nats`", unit="nats")
