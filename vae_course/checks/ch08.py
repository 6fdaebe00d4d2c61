r"""Checks for the chapter 8 exercises (``solutions/08_vq_vae.ipynb``).

1. ``quantize(z, codebook)``: the nearest codeword of every row, with the straight-through gradient.
2. ``vq_losses(z_e, z_q, beta)``: the codebook term :math:`\lVert\mathrm{sg}[z_e]-z_q\rVert^2` and the commitment
   term :math:`\beta\lVert z_e-\mathrm{sg}[z_q]\rVert^2`, stacked.
3. ``causal_mask(kernel_size, mask_type)``: the raster-order mask of a masked convolution, type A or B.
4. ``perplexity(indices, n_codes)``: :math:`\exp(-\sum_k p_k\log p_k)` of the code frequencies.
5. Build task ``ema_codebook_update(...)``: the EMA codebook with dead-code restarts, judged by the codebook usage
   after training (:mod:`vae_course.checks.build_ch08`).
6. Derivation: the KL term of a VQ-VAE with a uniform prior over the codes.

Each compares the student's function with the package's reference (:mod:`vae_course.models.quantizer`,
:func:`vae_course.models.masked.causal_mask`) on seeded inputs and edge cases, then checks the gradients where
they are the point, and recognises the classic mistakes: the farthest or the most similar codeword instead of
the nearest, no gradient through the quantiser (or to the wrong argument), the two terms or their stop-gradients
swapped, mask types A and B exchanged (A belongs to the first layer only), the entropy without the exponential.
"""
from __future__ import annotations

import torch
from torch import Tensor

import math

from .. import estimators as est
from ..models.masked import causal_mask as _causal_mask
from ..models.quantizer import code_counts, nearest_code, perplexity as _perplexity, vq_loss
from . import build_ch08
from ._core import GRAPH_CUT, Case, CheckResult, Mistake, call_student, check_function, check_value

__all__ = ["check_quantize", "check_vq_losses", "check_causal_mask", "check_perplexity", "check_ema_build",
           "check_code_length"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_quantize": "Exercise 1 (nearest-codeword quantiser)",
    "check_vq_losses": "Exercise 2 (codebook and commitment terms)",
    "check_causal_mask": "Exercise 3 (causal mask)",
    "check_perplexity": "Exercise 4 (codebook perplexity)",
    "check_ema_build": "Build task (an EMA codebook that keeps its codes alive)",
    "check_code_length": "Derivation (the KL term of a VQ-VAE)",
}

QUANTIZER_FORBIDDEN = ("models.quantizer.nearest_code", "models.quantizer.squared_distances",
                       "estimators.straight_through", "models.VectorQuantizer.forward")


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- exercise 1: nearest codeword + straight-through
def _quantize_cases() -> list[Case]:
    g = _g(80)
    # codewords of very different norms: the largest inner product is not the nearest codeword
    codebook = torch.tensor([[0.0, 0.0], [3.0, 3.0], [-1.0, 0.5], [0.5, -2.0]], dtype=torch.float64)
    z = torch.tensor([[0.2, 0.3], [1.0, 1.2], [-0.8, 0.2], [2.5, 2.0], [0.4, -1.5]], dtype=torch.float64)
    cb = torch.randn(6, 3, generator=g, dtype=torch.float64) * torch.tensor([[0.5], [1.0], [2.0], [0.3], [1.5], [3.0]],
                                                                             dtype=torch.float64)
    return [
        Case((torch.tensor([[0.9, 1.1]], dtype=torch.float64), torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)),
             label="z = [[0.9, 1.1]], codebook = [[0, 0], [1, 1]] (answer [[1, 1]])"),
        Case((z, codebook), label="5 vectors z (5, 2), codebook of 4 codewords with different lengths (4, 2)"),
        Case((torch.randn(20, 3, generator=g, dtype=torch.float64), cb), label="20 random vectors (20, 3), 6 random codewords (6, 3)"),
    ]


def _quantize_random(gen: torch.Generator, n: int) -> list[Case]:
    """1-40 vectors in D = 1-6 against 2-12 codewords of very different lengths."""
    cases = []
    for _ in range(n):
        k, dim, m = (int(torch.randint(lo, hi, (1,), generator=gen)) for lo, hi in ((1, 41), (1, 7), (2, 13)))
        lengths = 10 ** torch.empty(m, 1, dtype=torch.float64).uniform_(-1, 1, generator=gen)
        codebook = lengths * torch.randn(m, dim, generator=gen, dtype=torch.float64)
        z = 2 * torch.randn(k, dim, generator=gen, dtype=torch.float64)
        cases.append(Case((z, codebook), label=f"{k} random vectors ({k}, {dim}), {m} codewords of lengths 0.1 to 10"))
    return cases


def _quantize_ref(z, codebook):
    return est.straight_through(codebook[nearest_code(z, codebook)], z)


_QUANTIZE_MISTAKES = [
    Mistake(lambda z, codebook: codebook[torch.cdist(z, codebook).argmax(1)],
            "you picked the farthest codeword (argmax of the distance); the quantiser takes the nearest: argmin."),
    Mistake(lambda z, codebook: codebook[(z @ codebook.T).argmax(1)],
            "you picked the codeword with the largest inner product z . e_k. The nearest codeword minimises "
            "||z - e_k||^2 = ||z||^2 - 2 z . e_k + ||e_k||^2, which also depends on the length ||e_k||^2."),
    Mistake(lambda z, codebook: codebook[(z @ codebook.T).argmin(1)],
            "you took the argmin of the inner product z . e_k; the nearest codeword minimises the squared distance "
            "||z - e_k||^2 (or, equivalently, maximises 2 z . e_k - ||e_k||^2)."),
    Mistake(lambda z, codebook: z.clone(),
            "your output has the value of z, not of its codeword (z_q + (z - z_q).detach() does this: the detach is "
            "on the wrong term). The straight-through output is z + (z_q - z).detach()."),
    Mistake(lambda z, codebook: codebook[(z[:, None] - codebook[None]).abs().sum(-1).argmin(1)],
            "you used the L1 distance sum |z - e_k|; the quantiser uses the squared Euclidean distance."),
]


def _quantize_gradients(student_fn) -> str | None:
    z = torch.tensor([[0.2, 0.3], [2.0, 2.5], [-0.9, 0.4]], dtype=torch.float64, requires_grad=True)
    codebook = torch.tensor([[0.0, 0.0], [3.0, 3.0], [-1.0, 0.5]], dtype=torch.float64, requires_grad=True)
    out = call_student(student_fn, (z, codebook), describe="3 vectors and 3 codewords that require gradients")
    upstream = torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]], dtype=torch.float64)
    if not out.requires_grad:
        return ("the codewords are right, but no gradient flows through your output: the argmin has no gradient, so "
                "the encoder would never learn. Use the straight-through trick: z + (z_q - z).detach().")
    g_z, g_cb = torch.autograd.grad((out * upstream).sum(), (z, codebook), allow_unused=True, materialize_grads=True)
    if not bool(g_z.abs().gt(0).any()):
        return ("the codewords are right, but no gradient reaches z (it goes to the codebook instead, as with "
                "codebook[idx]). The straight-through output is z + (z_q - z).detach(): the value of z_q, the "
                "gradient of z.")
    if not torch.allclose(g_z, upstream):
        return (f"the gradient reaching z should be the upstream gradient unchanged ({upstream.tolist()}); got "
                f"{g_z.tolist()}. Return z + (z_q - z).detach().")
    if bool(g_cb.abs().gt(0).any()):
        return ("a gradient also reaches the codebook through your output; it should not (the codebook is trained by "
                "its own loss term). Detach the whole difference: z + (z_q - z).detach().")
    return None


def check_quantize(student_fn) -> CheckResult:
    """Exercise 1: ``quantize(z, codebook)``: ``(N, D)``, ``(K, D)`` -> nearest codewords ``(N, D)``, straight-through."""
    return check_function(EXERCISE_NAMES["check_quantize"], student_fn, _quantize_ref, _quantize_cases(),
                          mistakes=_QUANTIZE_MISTAKES, extra=_quantize_gradients, random_cases=_quantize_random,
                          forbidden=QUANTIZER_FORBIDDEN)


# ---------------------------------------------------------------- exercise 2: codebook and commitment terms
def _loss_cases() -> list[Case]:
    g = _g(81)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return [
        Case((torch.tensor([[1.0, 2.0]], dtype=torch.float64), torch.tensor([[0.0, 0.0]], dtype=torch.float64), 0.25),
             label="z_e = [[1, 2]], z_q = [[0, 0]], beta = 0.25 (answer [5, 1.25])"),
        Case((r(4, 3), r(4, 3), 0.25), label="a batch of 4 vectors in D = 3, beta = 0.25"),
        Case((r(6, 2), r(6, 2), 1.5), label="a batch of 6 vectors in D = 2, beta = 1.5"),
    ]


def _loss_random(gen: torch.Generator, n: int) -> list[Case]:
    cases = []
    for _ in range(n):
        b, dim = int(torch.randint(1, 20, (1,), generator=gen)), int(torch.randint(1, 9, (1,), generator=gen))
        beta = float(torch.empty(1).uniform_(0.0, 2.0, generator=gen))
        r = lambda: 3 * torch.randn(b, dim, generator=gen, dtype=torch.float64)  # noqa: E731
        cases.append(Case((r(), r(), beta), label=f"a batch of {b} vectors in D = {dim}, beta = {beta:.3f}"))
    return cases


def _loss_ref(z_e, z_q, beta):
    return torch.stack(tuple(vq_loss(z_e, z_q, beta)))


def _sq(z_e, z_q):
    return (z_e - z_q).pow(2).sum(-1).mean()


_LOSS_MISTAKES = [
    Mistake(lambda z_e, z_q, beta: torch.stack([beta * _sq(z_e, z_q), _sq(z_e, z_q)]),
            "beta weights the wrong term: the codebook term ||sg[z_e] - z_q||^2 has weight 1, the commitment term "
            "beta ||z_e - sg[z_q]||^2 has weight beta."),
    Mistake(lambda z_e, z_q, beta: torch.stack([(z_e - z_q).pow(2).sum(-1).sum(), beta * (z_e - z_q).pow(2).sum(-1).sum()]),
            "you summed over the batch; each term is the squared distance summed over the D coordinates of a vector "
            "and averaged over the batch."),
    Mistake(lambda z_e, z_q, beta: torch.stack([(z_e - z_q).pow(2).mean(), beta * (z_e - z_q).pow(2).mean()]),
            "you averaged over the D coordinates too; the squared norm ||z_e - z_q||^2 sums them (then average over "
            "the batch)."),
    Mistake(lambda z_e, z_q, beta: torch.stack([(z_e - z_q).norm(dim=-1).mean(), beta * (z_e - z_q).norm(dim=-1).mean()]),
            "you used the norm ||z_e - z_q||; both terms use the squared norm."),
]


def _loss_gradients(student_fn) -> str | None:
    z_e = torch.tensor([[1.0, -0.5], [0.3, 2.0]], dtype=torch.float64, requires_grad=True)
    z_q = torch.tensor([[0.0, 0.5], [1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    out = call_student(student_fn, (z_e, z_q, 0.25), describe="z_e, z_q of 2 vectors that require gradients, beta = 0.25")
    if not out.requires_grad:
        return (f"the values are right, but no gradient flows from your terms to z_e or z_q; {GRAPH_CUT}. Each term "
                "detaches exactly one side (sg[.] = .detach()), and the two are put together with torch.stack.")
    ge_cb, gq_cb = torch.autograd.grad(out[0], (z_e, z_q), retain_graph=True, allow_unused=True, materialize_grads=True)
    ge_cm, gq_cm = torch.autograd.grad(out[1], (z_e, z_q), allow_unused=True, materialize_grads=True)
    to_e_cb, to_q_cb = bool(ge_cb.abs().gt(0).any()), bool(gq_cb.abs().gt(0).any())
    to_e_cm, to_q_cm = bool(ge_cm.abs().gt(0).any()), bool(gq_cm.abs().gt(0).any())
    if to_e_cb and not to_q_cb and to_q_cm and not to_e_cm:
        return ("the stop-gradients are swapped: your codebook term trains the encoder and your commitment term trains "
                "the codebook. The codebook term is ||sg[z_e] - z_q||^2 (detach z_e), the commitment term "
                "beta ||z_e - sg[z_q]||^2 (detach z_q).")
    if to_e_cb:
        return ("the codebook term sends a gradient to the encoder output z_e; it must move the codewords only: "
                "detach z_e in it.")
    if to_q_cm:
        return ("the commitment term sends a gradient to the codewords z_q; it must pull the encoder only: "
                "detach z_q in it.")
    if not to_q_cb or not to_e_cm:
        return ("a term has no gradient at all: the codebook term must reach z_q and the commitment term z_e "
                "(detach only the other side).")
    return None


def check_vq_losses(student_fn) -> CheckResult:
    """Exercise 2: ``vq_losses(z_e, z_q, beta)`` -> ``torch.stack([codebook, commitment])``."""
    return check_function(EXERCISE_NAMES["check_vq_losses"], student_fn, _loss_ref, _loss_cases(),
                          mistakes=_LOSS_MISTAKES, extra=_loss_gradients, random_cases=_loss_random,
                          forbidden=("models.quantizer.vq_loss",))


# ---------------------------------------------------------------- exercise 3: the causal mask
def _mask_cases() -> list[Case]:
    return [Case((k, t), label=f"kernel_size = {k}, mask_type = {t!r}") for k in (3, 5, 7, 9) for t in ("A", "B")] + [
        Case((1, "A"), label="kernel_size = 1, mask_type = 'A' (answer [[0]])"),
        Case((1, "B"), label="kernel_size = 1, mask_type = 'B' (answer [[1]])"),
    ]


def _mask_random(gen: torch.Generator, n: int) -> list[Case]:
    """Odd kernel sizes up to 15, beyond the fixed cases."""
    return [Case((k, t), label=f"kernel_size = {k}, mask_type = {t!r}")
            for k, t in ((2 * int(torch.randint(0, 8, (1,), generator=gen)) + 1, ("A", "B")[i % 2]) for i in range(n))]


def _mask_ref(kernel_size, mask_type):
    return _causal_mask(kernel_size, mask_type)


def _mask(k: int, t: str) -> Tensor:
    """The mask in plain torch, for the mistakes (a student would write it so; the reference is switched off)."""
    m = torch.zeros(k, k)
    c = k // 2
    m[:c] = 1.0
    m[c, :c] = 1.0
    m[c, c] = float(t == "B")
    return m


def _swap(t: str) -> str:
    return "B" if t == "A" else "A"


def _mask_rows_only(kernel_size, mask_type):
    m = _mask(kernel_size, mask_type)
    m[kernel_size // 2 + 1:] = 1  # forgot the rows below
    return m


def _mask_whole_row(kernel_size, mask_type):
    m = _mask(kernel_size, mask_type)
    c = kernel_size // 2
    m[c, :c] = 0
    return m


_MASK_MISTAKES = [
    Mistake(lambda k, t: _mask(k, _swap(t)),
            "types A and B are exchanged. Type A (the first layer only) zeroes the centre, so a position never sees its "
            "own code; type B (every later layer) keeps the centre, because there the centre holds features computed "
            "from earlier positions only."),
    Mistake(_mask_rows_only,
            "the rows below the centre are not zeroed; in raster order every position in a lower row comes later."),
    Mistake(_mask_whole_row,
            "you zeroed the whole centre row; positions to the left of the centre come earlier in raster order and "
            "must be kept."),
    Mistake(lambda k, t: _mask(k, t).T.contiguous(),
            "your mask is transposed: it follows column order. Raster order runs along rows: keep the rows above and, "
            "in the centre row, the positions to the left."),
]


def check_causal_mask(student_fn) -> CheckResult:
    """Exercise 3: ``causal_mask(kernel_size, mask_type)`` -> a float32 ``(k, k)`` mask of 0s and 1s (float32: it
    multiplies the float32 weights of a convolution; a float64 mask makes ``conv2d`` fail on float32 input)."""
    return check_function(EXERCISE_NAMES["check_causal_mask"], student_fn, _mask_ref, _mask_cases(), mistakes=_MASK_MISTAKES,
                          random_cases=_mask_random, dtype=torch.float32, forbidden=("models.masked.causal_mask",))


# ---------------------------------------------------------------- exercise 4: perplexity
def _perplexity_cases() -> list[Case]:
    g = _g(83)
    skewed = torch.multinomial(torch.tensor([8.0, 4.0, 2.0, 1.0, 1.0, 0.0, 0.0, 0.0]), 7 * 7 * 6, replacement=True,
                               generator=g).reshape(6, 7, 7)
    return [
        Case((torch.arange(16).reshape(2, 2, 4) % 8, 8), label="each of 8 codes used twice (answer 8)"),
        Case((torch.full((3, 4, 4), 5), 8), label="one code everywhere, K = 8 (answer 1)"),
        Case((torch.tensor([[0, 0, 0, 1]]), 4), label="codes [0, 0, 0, 1], K = 4: two codes with frequencies 3/4 and 1/4"),
        Case((skewed, 8), label="6 code maps of 7x7 using 5 of 8 codes with skewed frequencies"),
    ]


def _perplexity_random(gen: torch.Generator, n: int) -> list[Case]:
    cases = []
    for _ in range(n):
        k = int(torch.randint(2, 65, (1,), generator=gen))
        weights = torch.rand(k, generator=gen) ** 3 * (torch.rand(k, generator=gen) < 0.7)
        weights[0] += 0.1
        shape = tuple(int(torch.randint(1, 8, (1,), generator=gen)) for _ in range(3))
        idx = torch.multinomial(weights, math.prod(shape), replacement=True, generator=gen).reshape(shape)
        cases.append(Case((idx, k), label=f"code maps of shape {shape}, K = {k}, skewed use with unused codes"))
    return cases


def _perplexity_ref(indices, n_codes):
    return _perplexity(code_counts(indices, n_codes))


def _counts(indices, n_codes):
    return torch.bincount(indices.reshape(-1), minlength=n_codes).float()  # plain torch, as a student writes it


def _entropy(indices, n_codes):
    p = _counts(indices, n_codes) / indices.numel()
    p = p[p > 0]
    return -(p * p.log()).sum()


def _over_k(indices, n_codes):
    p = _counts(indices, n_codes) / n_codes  # the wrong normaliser
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum())


_PERPLEXITY_MISTAKES = [
    Mistake(_entropy, "you returned the entropy H; the perplexity is exp(H), the effective number of codes."),
    Mistake(lambda i, k: 2 ** _entropy(i, k),
            "you computed 2 ** H with H in nats (natural log); use exp(H), or 2 ** H with H in bits (log2)."),
    Mistake(_over_k,
            "you divided the counts by K; the frequencies p_k are the counts divided by the number of positions "
            "(indices.numel())."),
    Mistake(lambda i, k: (_counts(i, k) > 0).sum().to(torch.float32),
            "you counted the codes in use; the perplexity weighs them by frequency: exp(-sum_k p_k log p_k)."),
]


def check_perplexity(student_fn) -> CheckResult:
    """Exercise 4: ``perplexity(indices, n_codes)`` -> a scalar tensor in [1, K]."""
    return check_function(EXERCISE_NAMES["check_perplexity"], student_fn, _perplexity_ref, _perplexity_cases(),
                          mistakes=_PERPLEXITY_MISTAKES, rtol=1e-4, atol=1e-5, random_cases=_perplexity_random,
                          forbidden=("models.quantizer.perplexity", "models.quantizer.code_counts", "vq.codebook_usage"))


# ---------------------------------------------------------------- build task: the EMA codebook with restarts
def check_ema_build(student_fn) -> CheckResult:
    """Build task: ``ema_codebook_update(codebook, cluster_size, embed_sum, z, indices, decay, dead)`` ->
    ``(codebook, cluster_size, embed_sum)``, judged by the usage of the trained VQ-VAE's codebook (:mod:`.build_ch08`)."""
    return build_ch08.check_ema(EXERCISE_NAMES["check_ema_build"], student_fn)


# ---------------------------------------------------------------- derivation: the KL term of a VQ-VAE
DERIVATION_K, DERIVATION_MAP = 512, (7, 7)  # codebook size and code map of the derivation


def vq_code_length(n_codes: int = DERIVATION_K, map_shape=DERIVATION_MAP) -> float:
    """KL(q(z|x) || uniform prior) in nats for a one-hot posterior on every position of the code map: log K per
    position (the entropy of the package's perplexity of a uniform code use is log K)."""
    per_position = math.log(float(_perplexity(torch.ones(n_codes, dtype=torch.float64))))
    return math.prod(map_shape) * per_position


def _code_hints() -> dict[str, float]:
    k, n = DERIVATION_K, math.prod(DERIVATION_MAP)
    return {
        "that is in bits (log base 2); the question asks for nats.": n * math.log2(k),
        "that is the KL of one position; the code map has 7 x 7 = 49 independent positions, and their KLs add.":
            math.log(k),
        "a one-hot q has entropy 0, so KL(q || uniform) = -H(q) + log K = log K per position, not 0.": 0.0,
        "the sign is flipped: a KL is >= 0.": -n * math.log(k),
        "you counted log 49 instead of 49 log K: each position pays log K.": math.log(n * k),
    }


def check_code_length(value) -> CheckResult:
    """Derivation: KL(q(z|x) || p(z)) of a VQ-VAE with a uniform prior over K = 512 codes on a 7x7 map (about 305.7 nats)."""
    return check_value(EXERCISE_NAMES["check_code_length"], value, vq_code_length(), rtol=1e-3, hints=_code_hints(),
                       what="`vq_kl_nats`", unit="nats")

