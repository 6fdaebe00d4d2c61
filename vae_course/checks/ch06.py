r"""Checks for the chapter 6 exercises (``solutions/06_beta_vae.ipynb``).

1. ``negative_beta_elbo(x, x_logits, mu, logvar, beta)``: per-example
   :math:`-\sum_j\log\mathrm{Bern}(x_j;\sigma(\ell_j)) + \beta\,\mathrm{KL}(\mathcal N(\mu,\sigma^2)\,\|\,\mathcal N(0,I))`.
2. ``mutual_information(a, b)``: plug-in :math:`I(a;b)` in nats of two discrete vectors.
3. ``mig(codes_discrete, factors)``: the Mutual Information Gap, each factor's gap divided by its entropy.

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

from ..disentangle import factor_entropy, mi_matrix, mig_from_discrete
from ..objectives import negative_beta_elbo
from ._core import Case, CheckResult, Mistake, check_function

__all__ = ["check_negative_beta_elbo", "check_mutual_information", "check_mig"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_negative_beta_elbo": "Exercise 1 (the negative beta-ELBO)",
    "check_mutual_information": "Exercise 2 (mutual information of discrete variables)",
    "check_mig": "Exercise 3 (the Mutual Information Gap)",
}


def _t(*rows) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------- exercise 1: the beta-ELBO
def _elbo_cases() -> list[Case]:
    g = torch.Generator().manual_seed(60)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    bits = lambda *s: torch.bernoulli(torch.full(s, 0.3, dtype=torch.float64), generator=g)  # noqa: E731
    return [
        Case((_t([1.0, 0.0]), _t([0.0, 0.0]), _t([1.0]), _t([0.0]), 4.0),
             label="x = [[1, 0]], logits = [[0, 0]], mu = [[1]], logvar = [[0]], beta = 4 (answer: 2 log 2 + 4 * 0.5 = 3.3863)"),
        Case((bits(5, 16), 2 * r(5, 16), r(5, 3), r(5, 3), 4.0), label="5 images of 16 pixels, 3 latents, beta = 4"),
        Case((bits(3, 64), 3 * r(3, 64), 2 * r(3, 2), r(3, 2), 0.5), label="3 images of 64 pixels, 2 latents, beta = 0.5"),
        Case((bits(4, 9), r(4, 9), r(4, 4), r(4, 4), 1.0), label="4 images of 9 pixels, beta = 1 (the plain negative ELBO)"),
    ]


def _bce(x, logits, reduce="sum"):
    t = F.binary_cross_entropy_with_logits(logits, x, reduction="none")  # -log p per pixel
    return t.sum(-1) if reduce == "sum" else t.mean(-1)


def _kl(mu, logvar):
    return 0.5 * (logvar.exp() + mu**2 - 1 - logvar).sum(-1)


_ELBO_MISTAKES = [
    Mistake(lambda x, l, mu, lv, beta: beta * _bce(x, l) + _kl(mu, lv),
            "beta multiplies the reconstruction term. In the beta-ELBO, beta weights the KL (the rate) only: "
            "-log p(x|z) + beta * KL."),
    Mistake(lambda x, l, mu, lv, beta: beta * (_bce(x, l) + _kl(mu, lv)),
            "beta multiplies both terms; that only rescales the loss (like a learning rate) and changes no trade-off. "
            "Weight the KL alone: -log p(x|z) + beta * KL."),
    Mistake(lambda x, l, mu, lv, beta: _bce(x, l) / beta + _kl(mu, lv),
            "you divided the reconstruction by beta. Up to the overall scale that is the same trade-off, but it is not the "
            "beta-ELBO's value: -log p(x|z) + beta * KL."),
    Mistake(lambda x, l, mu, lv, beta: _bce(x, l) + _kl(mu, lv) / beta,
            "the KL is divided by beta; the beta-ELBO multiplies it: -log p(x|z) + beta * KL."),
    Mistake(lambda x, l, mu, lv, beta: _bce(x, l) + _kl(mu, lv),
            "beta is missing: the KL term must be multiplied by beta."),
    Mistake(lambda x, l, mu, lv, beta: _bce(x, l, "mean") + beta * _kl(mu, lv),
            "you averaged the reconstruction term over the pixels; log p(x|z) of an image is the SUM over its pixels."),
    Mistake(lambda x, l, mu, lv, beta: _bce(x, l) - beta * _kl(mu, lv),
            "the KL has the wrong sign: the NEGATIVE beta-ELBO is -log p(x|z) + beta * KL."),
]


def check_negative_beta_elbo(student_fn) -> CheckResult:
    """Exercise 1: ``negative_beta_elbo(x, x_logits, mu, logvar, beta)``, x and x_logits ``(B, D)``, mu and logvar ``(B, m)`` -> ``(B,)``."""
    return check_function(EXERCISE_NAMES["check_negative_beta_elbo"], student_fn, negative_beta_elbo, _elbo_cases(),
                          mistakes=_ELBO_MISTAKES)


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


def _mi_ref(a: Tensor, b: Tensor) -> Tensor:
    return mi_matrix(a.reshape(-1, 1), b.reshape(-1, 1))[0, 0]


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
                          mistakes=_MI_MISTAKES, rtol=1e-5, atol=1e-7)


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
    ]


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
                          mistakes=_MIG_MISTAKES, rtol=1e-5, atol=1e-7)
