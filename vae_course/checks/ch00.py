"""Checks for the chapter 0 exercises (``solutions/00_preliminaries.ipynb``).

1. ``entropy(p)``: Shannon entropy of categorical distributions, in nats.
2. ``kl_categorical(p, q)``: KL(p || q) between categorical distributions, in nats.
3. ``bernoulli_log_likelihood(x, logits)``: log p(x) of images under independent Bernoulli pixels.
4. Derivation: the code length ``-log p(x)`` of one binary image under a model with the same probability for every pixel.

Each compares the student's function with the package's reference on seeded random inputs and
edge cases (zeros in p, zeros in q, grey-level pixels, logits in the hundreds), with the package's reference
switched off while the student's code runs, and recognises the classic mistakes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import math

from .. import information as info
from ..distributions import log_bernoulli
from ._core import Case, CheckResult, Mistake, check_function, check_value

__all__ = ["check_entropy", "check_kl_categorical", "check_bernoulli_log_likelihood", "check_image_code_length"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_entropy": "Exercise 1 (entropy)",
    "check_kl_categorical": "Exercise 2 (KL between categorical distributions)",
    "check_bernoulli_log_likelihood": "Exercise 3 (Bernoulli pixel log-likelihood)",
    "check_image_code_length": "Derivation (the code length of a binary image)",
}



def _dirichlet(n: int, k: int, gen: torch.Generator, zeros: float = 0.0) -> torch.Tensor:
    """``(n, k)`` random probability vectors (normalised exponentials = Dirichlet(1)); each entry is 0 with
    probability ``zeros`` (the first entry of a row never is, so every row sums to 1)."""
    e = -torch.log(torch.rand(n, k, generator=gen, dtype=torch.float64))
    if zeros:
        off = torch.rand(n, k, generator=gen) < zeros
        off[:, 0] = False
        e = e.masked_fill(off, 0.0)
    return e / e.sum(-1, keepdim=True)


def _size(gen: torch.Generator, lo: int, hi: int) -> int:
    return int(torch.randint(lo, hi + 1, (1,), generator=gen))


# The classic mistakes are written the way a student would write them, in plain torch: the package's references
# are switched off while a student function runs, so a mistake built on them could not be submitted as one.
def _h(p, base=math.e):
    return -torch.xlogy(p, p).sum(-1) / math.log(base)


def _kl(p, q, base=math.e):
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1) / math.log(base)


def _ll(x, logits):
    return (x * logits - F.softplus(logits)).sum(-1)


# ---------------------------------------------------------------- exercise 1: entropy
def _entropy_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    t = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return [
        Case((t(0.5, 0.5),), label="p = [0.5, 0.5] (a fair coin)"),
        Case((t(0.7, 0.2, 0.1),), label="p = [0.7, 0.2, 0.1]"),
        Case((t(0.5, 0.5, 0.0, 0.0),), label="p = [0.5, 0.5, 0, 0] (zeros: 0 log 0 = 0)"),
        Case((t(1.0, 0.0, 0.0),), label="p = [1, 0, 0] (a certain outcome)"),
        Case((_dirichlet(5, 6, gen),), label="a batch of 5 random distributions over 6 outcomes, shape (5, 6)"),
    ]


def _entropy_random(gen: torch.Generator, n: int) -> list[Case]:
    """Random distributions over 2-12 outcomes, about a third of the entries exactly 0, some rows one-hot."""
    cases = []
    for _ in range(n):
        b, k = _size(gen, 1, 6), _size(gen, 2, 12)
        p = _dirichlet(b, k, gen, zeros=0.35)
        p = p[:, torch.randperm(k, generator=gen)]
        cases.append(Case((p,), label=f"{b} random distributions over {k} outcomes with zeros, shape ({b}, {k})"))
    return cases


def _entropy_ref(p):
    return info.entropy(p)


_ENTROPY_MISTAKES = [
    Mistake(lambda p: _h(p, base=2),
            "you computed the entropy in bits (log base 2); the course uses the natural log (nats): torch.log."),
    Mistake(lambda p: -(p * torch.log(p)).sum(-1),
            "0 * log(0) gives NaN in floating point; use the convention 0 log 0 = 0, e.g. torch.xlogy(p, p) "
            "or torch.where(p > 0, p * torch.log(p), 0)."),
    Mistake(lambda p: torch.xlogy(p, p).sum(-1),
            "the sign is flipped: H(p) = -sum_k p_k log p_k is >= 0 for a discrete distribution."),
    Mistake(lambda p: -torch.xlogy(p, p).mean(-1),
            "you averaged over the outcomes; the entropy is a sum over k of -p_k log p_k."),
    Mistake(lambda p: -torch.log(p.clamp_min(1e-12)).sum(-1),
            "you summed -log p_k without the weights p_k; H(p) is the expectation of -log p(X) under p."),
]


def check_entropy(student_fn) -> CheckResult:
    """Exercise 1: ``entropy(p)`` with ``p`` ``(..., K)`` -> ``(...)`` in nats, 0 log 0 = 0."""
    return check_function(EXERCISE_NAMES["check_entropy"], student_fn, _entropy_ref, _entropy_cases(), mistakes=_ENTROPY_MISTAKES,
                          random_cases=_entropy_random, forbidden=("information.entropy",))


# ---------------------------------------------------------------- exercise 2: KL between categoricals
def _kl_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(1)
    t = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return [
        Case((t(0.5, 0.5), t(0.9, 0.1)), label="p = [0.5, 0.5], q = [0.9, 0.1]"),
        Case((t(0.7, 0.2, 0.1), t(0.1, 0.3, 0.6)), label="p = [0.7, 0.2, 0.1], q = [0.1, 0.3, 0.6]"),
        Case((t(0.8, 0.2, 0.0), t(0.4, 0.4, 0.2)), label="p = [0.8, 0.2, 0], q = [0.4, 0.4, 0.2] (a zero in p)"),
        Case((t(0.25, 0.25, 0.5), t(0.25, 0.25, 0.5)), label="p = q = [0.25, 0.25, 0.5] (KL must be 0)"),
        Case((_dirichlet(4, 5, gen), _dirichlet(4, 5, gen)), label="a batch of 4 random pairs over 5 outcomes, shape (4, 5)"),
        Case((t(0.5, 0.5, 0.0), t(0.5, 0.5, 0.0)),
             label="p = q = [0.5, 0.5, 0] (a zero in p AND in q: that outcome contributes 0, the answer is 0)"),
        Case((t(0.5, 0.5), t(1.0, 0.0)),
             label="p = [0.5, 0.5], q = [1, 0] (q is 0 where p is not: KL(p || q) = +inf, not NaN and not a large number)"),
    ]


def _kl_random(gen: torch.Generator, n: int) -> list[Case]:
    """Random pairs over 2-10 outcomes; zeros in p, and q zero only where p is (KL finite)."""
    cases = []
    for _ in range(n):
        b, k = _size(gen, 1, 5), _size(gen, 2, 10)
        p = _dirichlet(b, k, gen, zeros=0.3)
        q = _dirichlet(b, k, gen)
        q = torch.where((p == 0) & (torch.rand(b, k, generator=gen) < 0.5), 0.0, q)
        q = q / q.sum(-1, keepdim=True)
        cases.append(Case((p, q), label=f"{b} random pairs over {k} outcomes, with zeros, shape ({b}, {k})"))
    return cases


def _kl_ref(p, q):
    return info.kl_divergence(p, q)


_KL_MISTAKES = [
    Mistake(lambda p, q: _kl(q, p),
            "the arguments are swapped: KL(p || q) = sum_k p_k log(p_k / q_k) weights by p, the first argument; "
            "you computed KL(q || p), and KL is not symmetric."),
    Mistake(lambda p, q: _kl(p, q, base=2),
            "you used log base 2 (bits); the course uses the natural log (nats)."),
    Mistake(lambda p, q: (p * torch.log(p / q)).sum(-1),
            "0 * log(0 / q) gives NaN in floating point; terms with p_k = 0 contribute 0 (torch.xlogy helps)."),
    Mistake(lambda p, q: -_kl(p, q),
            "the sign is flipped: KL(p || q) = sum_k p_k log(p_k / q_k) >= 0, or log(q/p) with a minus in front."),
    Mistake(lambda p, q: -torch.xlogy(p, q).sum(-1),
            "you returned the cross-entropy H(p, q) = -sum p log q; KL subtracts the entropy: KL = H(p, q) - H(p)."),
    Mistake(lambda p, q: (torch.xlogy(p, p) - torch.xlogy(p, q)).mean(-1),
            "you averaged over the outcomes; KL is a sum over k of p_k log(p_k / q_k)."),
]


def check_kl_categorical(student_fn) -> CheckResult:
    """Exercise 2: ``kl_categorical(p, q)`` with ``p, q`` ``(..., K)`` -> ``(...)`` in nats."""
    return check_function(EXERCISE_NAMES["check_kl_categorical"], student_fn, _kl_ref, _kl_cases(),
                          mistakes=_KL_MISTAKES, random_cases=_kl_random,
                          forbidden=("information.kl_divergence", "information.cross_entropy", "information.entropy"))


# ---------------------------------------------------------------- exercise 3: Bernoulli pixels from logits
def _bernoulli_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(2)
    t = lambda *v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    x = (torch.rand(6, 16, generator=gen) < 0.3).double()
    logits = 2.0 * torch.randn(6, 16, generator=gen, dtype=torch.float64)
    return [
        Case((t(1.0, 0.0), t(0.0, 0.0)), label="x = [[1, 0]], logits = [[0, 0]] (two fair pixels: 2 log 0.5)"),
        Case((t(1.0, 0.0, 1.0), t(2.0, -1.0, -3.0)), label="x = [[1, 0, 1]], logits = [[2, -1, -3]]"),
        Case((x, logits), label="6 random binary images of 16 pixels, random logits, shape (6, 16)"),
        Case((t(1.0, 0.0, 1.0, 0.0), t(40.0, -40.0, -40.0, 40.0)),
             label="x = [[1, 0, 1, 0]], logits = [[40, -40, -40, 40]] (very confident pixels, two of them wrong)"),
        Case((t(1.0, 0.0, 1.0, 0.0), t(300.0, -500.0, -300.0, 500.0)),
             label="x = [[1, 0, 1, 0]], logits = [[300, -500, -300, 500]] (logits in the hundreds: exp() overflows)"),
        Case((t(0.25, 0.5, 0.9, 0.0), t(1.0, -2.0, 3.0, 0.5)),
             label="grey levels x = [[0.25, 0.5, 0.9, 0]], logits = [[1, -2, 3, 0.5]] (the docstring allows x in [0, 1])"),
    ]


def _bernoulli_random(gen: torch.Generator, n: int) -> list[Case]:
    """Binary or grey images, logits of scale up to 200."""
    cases = []
    for i in range(n):
        b, d = _size(gen, 1, 6), _size(gen, 2, 40)
        x = torch.rand(b, d, generator=gen, dtype=torch.float64)
        x = (x < 0.4).double() if i % 2 == 0 else x
        scale = float(torch.empty(1).uniform_(0.5, 200.0, generator=gen))
        logits = scale * torch.randn(b, d, generator=gen, dtype=torch.float64)
        kind = "binary" if i % 2 == 0 else "grey-level"
        cases.append(Case((x, logits), label=f"{b} {kind} images of {d} pixels, logits of scale {scale:.0f}"))
    return cases


def _bernoulli_ref(x, logits):
    return log_bernoulli(x, logits)


def _naive_probs(x, logits):
    prob = torch.sigmoid(logits)
    return (x * torch.log(prob) + (1 - x) * torch.log(1 - prob)).sum(-1)


_BERNOULLI_MISTAKES = [
    Mistake(lambda x, logits: -_ll(x, logits),
            "the sign is flipped: you returned the negative log-likelihood (the loss); the log-likelihood is <= 0."),
    Mistake(lambda x, logits: _ll(x, torch.sigmoid(logits)),
            "you passed sigmoid(logits), which are probabilities, where logits belong (sigmoid applied twice); "
            "use the logits directly: x * l - softplus(l)."),
    Mistake(lambda x, logits: (x * torch.log(logits) + (1 - x) * torch.log(1 - logits)).sum(-1),
            "you used the logits as if they were probabilities; theta = sigmoid(logit)."),
    Mistake(_naive_probs,
            "log(sigmoid(l)) and log(1 - sigmoid(l)) underflow to log(0) for large |l|; compute from logits: "
            "log sigmoid(l) = -softplus(-l), log(1 - sigmoid(l)) = -softplus(l) (or F.logsigmoid)."),
    Mistake(lambda x, logits: _ll(x, logits) / x.shape[-1],
            "you averaged over the pixels; log p(x) of one image is the sum over its pixels (independence)."),
    Mistake(lambda x, logits: _ll(x, -logits),
            "the logit's sign is flipped: theta = sigmoid(l) is the probability that the pixel is 1, not 0."),
    Mistake(lambda x, logits: -F.binary_cross_entropy_with_logits(logits, x, reduction="sum"),
            "you summed over the whole batch; return one log-likelihood per image, shape (N,): sum over the last dim only."),
]


def check_bernoulli_log_likelihood(student_fn) -> CheckResult:
    """Exercise 3: ``bernoulli_log_likelihood(x, logits)`` with ``x, logits`` ``(N, D)`` -> ``(N,)`` in nats."""
    return check_function(EXERCISE_NAMES["check_bernoulli_log_likelihood"], student_fn, _bernoulli_ref, _bernoulli_cases(),
                          mistakes=_BERNOULLI_MISTAKES, random_cases=_bernoulli_random, grads=("logits",),
                          forbidden=("distributions.log_bernoulli",))


# ---------------------------------------------------------------- derivation: the code length of one image
IMAGE_PIXELS, IMAGE_ON, PIXEL_THETA = 784, 100, 0.1  # a 28x28 image with 100 white pixels; every pixel white w.p. 0.1


def image_code_length() -> float:
    """-log p(x) in nats of an image with ``IMAGE_ON`` of ``IMAGE_PIXELS`` pixels on, every pixel on with
    probability ``PIXEL_THETA``: the package's Bernoulli log-likelihood, from logits."""
    x = torch.zeros(1, IMAGE_PIXELS, dtype=torch.float64)
    x[0, :IMAGE_ON] = 1.0
    logit = math.log(PIXEL_THETA / (1 - PIXEL_THETA))
    return float(-log_bernoulli(x, torch.full_like(x, logit))[0])


def _code_length_hints() -> dict[str, float]:
    on, off, th = IMAGE_ON, IMAGE_PIXELS - IMAGE_ON, PIXEL_THETA
    nats = image_code_length()
    return {
        "that is the code length in bits (log base 2); the question asks for nats (natural log).": nats / math.log(2),
        "you counted only the white pixels; every black pixel costs -log(1 - theta) nats too.": -on * math.log(th),
        "theta and 1 - theta are swapped: a white pixel has probability theta = 0.1, so it costs -log 0.1.":
            -(on * math.log(1 - th) + off * math.log(th)),
        "the sign is flipped: log p(x) is negative, the code length -log p(x) is positive.": -nats,
        "you averaged over the pixels; the question asks for the whole image, the sum over its 784 pixels.": nats / IMAGE_PIXELS,
    }


def check_image_code_length(value) -> CheckResult:
    """Derivation: ``-log p(x)`` in nats of a 784-pixel binary image with 100 white pixels, every pixel white with
    probability 0.1 independently (answer about 302.3 nats)."""
    return check_value(EXERCISE_NAMES["check_image_code_length"], value, image_code_length(), rtol=1e-3,
                       hints=_code_length_hints(), what="`code_length_nats`", unit="nats")
