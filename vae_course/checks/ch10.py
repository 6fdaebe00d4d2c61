r"""Checks for the appendix A exercises (``solutions/10_model_families.ipynb``).

1. ``finite_memory_mask(n_pixels, memory)``: the ``(D, D)`` 0/1 matrix with :math:`M_{ij} = 1` iff
   :math:`i - k \le j < i`, which pixels the conditional of pixel :math:`i` may read.
2. ``coupling_log_det(s, mask)``: :math:`\log|\det J| = \sum_j (1 - m_j)\,s_j` of an affine coupling, per example.
3. ``dequantized_bits_per_dim(log_density, n_pixels, n_levels)``: :math:`-(\log p(v) - D\log L)/(D\ln 2)`.
4. ``two_layer_log_density(x, a, b, c)`` (the derivation): :math:`\log p(x)` of the flow
   coupling :math:`(z_1,\ z_2e^{az_1}+b)`, swap, coupling :math:`(g_1,\ g_2e^{cg_1})`, from :math:`z\sim\mathcal N(0, I_2)`.
5. Derivation: the bits per dimension of one :math:`2\times2` binary image under a finite-memory model (memory 1) with
   stated conditionals, worked out by hand (1.3452 bits).

Each compares the student's function with the package's reference (:func:`vae_course.families.finite_memory_mask`,
:func:`vae_course.families.dequantized_bound` and :func:`vae_course.evaluate.bits_per_dim`; the closed form of
exercise 4 is checked against torch.autograd in the tests) on seeded inputs and edge cases, and recognises the
classic mistakes: the pixel itself in its own context, a window one pixel too long, the matrix transposed; the
log-det summed over the kept coordinates or over all of them, :math:`\prod e^{s}` instead of its log, the inverse's
sign; the :math:`D\log L` of the cell volume forgotten or with the wrong sign, nats left as nats; in the derivation,
the log-determinant added instead of subtracted, one layer's term left out, the swap forgotten.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..evaluate import bits_per_dim
from ..families.autoregressive import finite_memory_mask as _mask
from ..families.coupling_flow import dequantized_bound
from ._core import Case, CheckResult, Mistake, check_function, check_value

__all__ = ["check_finite_memory_mask", "check_coupling_log_det", "check_dequantized_bits_per_dim",
           "check_two_layer_log_density", "check_image_bits_per_dim"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_finite_memory_mask": "Exercise 1 (the finite-memory mask)",
    "check_coupling_log_det": "Exercise 2 (log-determinant of an affine coupling)",
    "check_dequantized_bits_per_dim": "Exercise 3 (dequantised bits per dimension)",
    "check_two_layer_log_density": "Exercise 4 (derivation: a two-coupling flow by hand)",
    "check_image_bits_per_dim": "Derivation (bits per dimension of a 2x2 image under a memory-1 model)",
}

LOG_2PI = math.log(2 * math.pi)


def _gen(seed: int):
    g = torch.Generator().manual_seed(seed)
    return lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731


# ---------------------------------------------------------------- exercise 1: the finite-memory mask
def _mask_cases() -> list[Case]:
    return [
        Case((4, 1), label="n_pixels = 4, memory = 1 (answer: ones just below the diagonal)"),
        Case((6, 2), label="n_pixels = 6, memory = 2"),
        Case((9, 3), label="n_pixels = 9 (a 3x3 image), memory = 3 (the row above)"),
        Case((5, 0), label="memory = 0: no context at all (answer: all zeros)"),
        Case((4, 7), label="memory = 7 longer than the image: every earlier pixel"),
    ]


def _band(d: int, lo: int, hi: int) -> Tensor:
    i, j = torch.arange(d)[:, None], torch.arange(d)[None, :]
    return ((j - i >= lo) & (j - i <= hi)).float()


_MASK_MISTAKES = [
    Mistake(lambda d, k: _band(d, -k, 0), "the diagonal is 1: pixel i would read itself, the very value it predicts. "
            "Only j < i is allowed (strictly below the diagonal)."),
    Mistake(lambda d, k: _band(d, -k - 1, -1), "the window is one pixel too long: memory k means j = i-k, ..., i-1, "
            "k pixels, so the band has k diagonals below the main one."),
    Mistake(lambda d, k: _band(d, 1, k), "the matrix is transposed: row i is the conditional of pixel i, and its "
            "ones must be in the columns j < i (below the diagonal)."),
    Mistake(lambda d, k: torch.ones(d, d).tril(-1), "every earlier pixel is read: that is a model with unlimited memory "
            "(the GRU's). A finite memory keeps only the last k: j >= i - k."),
]


def check_finite_memory_mask(student_fn) -> CheckResult:
    """Exercise 1: ``finite_memory_mask(n_pixels, memory)`` -> ``(D, D)`` with ones where ``i - k <= j < i``."""
    return check_function(EXERCISE_NAMES["check_finite_memory_mask"], student_fn, _mask, _mask_cases(),
                          mistakes=_MASK_MISTAKES)


# ---------------------------------------------------------------- exercise 2: the coupling log-determinant
def _log_det_cases() -> list[Case]:
    r = _gen(100)
    return [
        Case((torch.tensor([[1.0, 2.0]], dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64)),
             label="s = [[1, 2]], mask = [1, 0]: coordinate 0 kept, 1 changed (answer: [2])"),
        Case((r(3, 4), torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)),
             label="a batch of 3, D = 4, the first half kept"),
        Case((r(5, 6), torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)),
             label="a batch of 5, D = 6, a scattered mask"),
        Case((r(2, 3), torch.zeros(3, dtype=torch.float64)), label="mask = 0: every coordinate changes"),
    ]


def _log_det_ref(s: Tensor, mask: Tensor) -> Tensor:
    return ((1 - mask) * s).sum(-1)


_LOG_DET_MISTAKES = [
    Mistake(lambda s, m: (m * s).sum(-1), "you summed s over the KEPT coordinates (mask = 1). Those are copied, "
            "y_a = x_a, with derivative 1 and log 1 = 0; the scales act on the changed ones, where mask = 0."),
    Mistake(lambda s, m: s.sum(-1), "you summed s over every coordinate; the layer applies s only where mask = 0, "
            "so the kept coordinates contribute log 1 = 0."),
    Mistake(lambda s, m: ((1 - m) * s).exp().prod(-1), "you returned the determinant itself, prod exp(s_j); the "
            "flow adds LOG-determinants: log prod exp(s_j) = sum s_j."),
    Mistake(lambda s, m: -((1 - m) * s).sum(-1), "the sign is flipped: the forward layer multiplies by exp(s), "
            "which stretches volume by exp(sum s); minus that is the inverse layer's log-det."),
    Mistake(lambda s, m: ((1 - m) * s).exp().sum(-1), "you summed exp(s_j): the determinant of a triangular matrix "
            "is the PRODUCT of its diagonal, and its log is sum s_j."),
]


def check_coupling_log_det(student_fn) -> CheckResult:
    """Exercise 2: ``coupling_log_det(s, mask)``, ``s`` ``(B, D)``, ``mask`` ``(D,)`` (1 = kept) -> ``(B,)``."""
    return check_function(EXERCISE_NAMES["check_coupling_log_det"], student_fn, _log_det_ref, _log_det_cases(),
                          mistakes=_LOG_DET_MISTAKES)


# ---------------------------------------------------------------- exercise 3: dequantised bits per dimension
def _bpd_cases() -> list[Case]:
    r = _gen(101)
    return [
        Case((torch.tensor([0.0], dtype=torch.float64), 1, 2),
             label="log p(v) = 0 for one binary pixel: the uniform density (answer: 1 bit)"),
        Case((torch.tensor([10.0, -5.0], dtype=torch.float64), 64, 2), label="two 8x8 binary images, log p(v) = 10 and -5"),
        Case((20 * r(4), 64, 17), label="four 8x8 images with 17 grey levels"),
        Case((5 * r(3) + 100.0, 784, 256), label="three 28x28 images with 256 levels, log p(v) near 100"),
    ]


def _bpd_ref(log_density: Tensor, n_pixels: int, n_levels: int) -> Tensor:
    return bits_per_dim(dequantized_bound(log_density, n_pixels, n_levels), n_pixels)


_BPD_MISTAKES = [
    Mistake(lambda lp, d, L: -lp / (d * math.log(2)), "the cell volume is missing: log P(x) >= log p(v) - D log L, "
            "because the density is integrated over a cube of side 1/L per pixel. Subtract D log L before converting."),
    Mistake(lambda lp, d, L: -(lp + d * math.log(L)) / (d * math.log(2)), "D log L has the wrong sign: the cube of "
            "side 1/L has volume L^-D < 1, so log P(x) >= log p(v) - D log L."),
    Mistake(lambda lp, d, L: -(lp - d * math.log(L)) / d, "the result is in nats per dimension: divide by ln 2 to "
            "get bits (log2 y = ln y / ln 2)."),
    Mistake(lambda lp, d, L: (lp - d * math.log(L)) / (d * math.log(2)), "the sign is flipped: bits per dimension are "
            "the code length -log2 P(x) / D, a positive number for a discrete model."),
    Mistake(lambda lp, d, L: -(lp - d * math.log(L - 1)) / (d * math.log(2)), "you used L - 1: with L levels there are "
            "L cells of width 1/L per pixel, so the volume is L^-D."),
    Mistake(lambda lp, d, L: -(lp - d * math.log(L)) / math.log(2), "you did not divide by D: bits per DIMENSION are "
            "the image's bits shared out over its D pixels."),
]


def check_dequantized_bits_per_dim(student_fn) -> CheckResult:
    """Exercise 3: ``dequantized_bits_per_dim(log_density, n_pixels, n_levels)``, ``log_density`` ``(B,)`` -> ``(B,)``."""
    return check_function(EXERCISE_NAMES["check_dequantized_bits_per_dim"], student_fn, _bpd_ref, _bpd_cases(),
                          mistakes=_BPD_MISTAKES)


# ---------------------------------------------------------------- exercise 4: a two-coupling flow by hand
def _two_layer_terms(x: Tensor, a: float, b: float, c: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The inverse of the exercise's flow: ``(z1, z2, log|det J_1|, log|det J_3|)``."""
    x1, x2 = x[..., 0], x[..., 1]
    g2 = x2 * torch.exp(-c * x1)            # undo layer 3: g = (x1, x2 e^{-c x1})
    z1, h2 = g2, x1                         # undo the swap: h = (g2, g1)
    z2 = (h2 - b) * torch.exp(-a * z1)      # undo layer 1: z2 = (h2 - b) e^{-a z1}
    return z1, z2, a * z1, c * x1


def two_layer_log_density_reference(x: Tensor, a: float, b: float, c: float) -> Tensor:
    r"""The closed form: :math:`\log p(x) = \log\mathcal N(z_1)+\log\mathcal N(z_2) - a z_1 - c x_1` with
    :math:`z_1 = x_2e^{-cx_1}`, :math:`z_2 = (x_1 - b)e^{-az_1}`. ``x`` ``(B, 2)`` -> ``(B,)``."""
    z1, z2, ld1, ld3 = _two_layer_terms(x, a, b, c)
    return -LOG_2PI - 0.5 * (z1**2 + z2**2) - ld1 - ld3


def _two_layer_cases() -> list[Case]:
    r = _gen(102)
    return [
        Case((torch.tensor([[0.0, 0.0]], dtype=torch.float64), 0.0, 0.0, 0.0),
             label="a = b = c = 0 (the identity): x = [[0, 0]] (answer: -log 2 pi = -1.8379)"),
        Case((torch.tensor([[1.0, 0.5]], dtype=torch.float64), 0.5, -1.0, 0.3), label="x = [[1, 0.5]], a = 0.5, b = -1, c = 0.3"),
        Case((r(6, 2), -0.7, 0.4, 0.9), label="6 points, a = -0.7, b = 0.4, c = 0.9"),
        Case((2 * r(5, 2), 1.2, 2.0, -0.5), label="5 points, a = 1.2, b = 2, c = -0.5"),
    ]


def _wrong(sign_1: float = -1.0, sign_3: float = -1.0, swap: bool = True):
    def fn(x, a, b, c):
        if not swap:  # as if layer 2 were missing: the coupling of layer 3 inverted straight onto z
            z1 = x[..., 0]
            g2 = x[..., 1] * torch.exp(-c * z1)
            z2 = (g2 - b) * torch.exp(-a * z1)
            return -LOG_2PI - 0.5 * (z1**2 + z2**2) - a * z1 - c * z1
        z1, z2, ld1, ld3 = _two_layer_terms(x, a, b, c)
        return -LOG_2PI - 0.5 * (z1**2 + z2**2) + sign_1 * ld1 + sign_3 * ld3
    return fn


_TWO_LAYER_MISTAKES = [
    Mistake(_wrong(+1.0, +1.0), "the log-determinants are added; for the density of x = f(z) they are SUBTRACTED: "
            "log p(x) = log N(z) - sum_j log|det J_j| (stretching spreads the probability thinner)."),
    Mistake(_wrong(0.0, -1.0), "the first coupling's term -a z1 is missing: every layer contributes its log-det."),
    Mistake(_wrong(-1.0, 0.0), "the last coupling's term -c x1 is missing: every layer contributes its log-det."),
    Mistake(_wrong(swap=False), "the swap is forgotten: undo the layers in reverse order, layer 3, then the swap "
            "(h1, h2) = (g2, g1), then layer 1."),
]


def check_two_layer_log_density(student_fn) -> CheckResult:
    """Exercise 4: ``two_layer_log_density(x, a, b, c)``, ``x`` ``(B, 2)``, floats ``a, b, c`` -> ``(B,)``."""
    return check_function(EXERCISE_NAMES["check_two_layer_log_density"], student_fn, two_layer_log_density_reference,
                          _two_layer_cases(), mistakes=_TWO_LAYER_MISTAKES)


# ---------------------------------------------------------------- derivation: one image's bits per dimension
# The image [[1, 1], [0, 1]] in raster order; memory 1: p(x_1 = 1) = 0.5, p(x_i = 1 | x_{i-1}) from the table.
DERIVATION_IMAGE = (1, 1, 0, 1)
DERIVATION_P_FIRST = 0.5
DERIVATION_P_GIVEN = {0: 0.3, 1: 0.8}  # p(x_i = 1 | x_{i-1} = key)


def _log_p_image(image=DERIVATION_IMAGE, p_first: float = DERIVATION_P_FIRST, p_given=None) -> float:
    r""":math:`\log p(x) = \log\mathrm{Bern}(x_1; p_1) + \sum_{i\ge2}\log\mathrm{Bern}(x_i; p(\cdot\mid x_{i-1}))` in nats."""
    p_given = DERIVATION_P_GIVEN if p_given is None else p_given
    probs = [p_first] + [p_given[prev] for prev in image[:-1]]  # p(x_i = 1 | context), one per pixel
    return sum(math.log(p if x == 1 else 1 - p) for x, p in zip(image, probs))


def image_bits_per_dim(image=DERIVATION_IMAGE, p_first: float = DERIVATION_P_FIRST, p_given=None) -> float:
    r""":math:`-\log p(x) / (D\ln 2)` of a binary ``image`` (a sequence of D zeros and ones, raster order) under the
    memory-1 model with :math:`p(x_1 = 1) =` ``p_first`` and :math:`p(x_i = 1\mid x_{i-1} = v) =` ``p_given[v]``
    (the chain rule of appendix A.1; :func:`vae_course.evaluate.bits_per_dim`)."""
    return float(bits_per_dim(_log_p_image(image, p_first, p_given), len(image)))


def _image_bpd_hints() -> dict[str, float]:
    x, p1, pg = DERIVATION_IMAGE, DERIVATION_P_FIRST, DERIVATION_P_GIVEN
    d, log_p = len(x), _log_p_image()
    ones_only = sum(math.log(p) for p in [p1] + [pg[prev] for prev in x[:-1]])  # p(x_i = 1) used for every pixel
    return {
        "that is in nats per pixel; bits per dimension divides -log p(x) by D ln 2.": -log_p / d,
        "that is the whole image's code length in bits; divide by the D = 4 pixels.": -log_p / math.log(2),
        "a pixel that is 0 has probability 1 - p(x_i = 1 | x_{i-1}), not p(x_i = 1 | x_{i-1}).":
            -ones_only / (d * math.log(2)),
        "the first pixel's factor p(x_1) = 0.5 is missing: the chain rule has one factor per pixel, the first one "
        "with no context.": -(log_p - math.log(p1)) / (d * math.log(2)),
        "the sign is flipped: bits per dimension is -log2 p(x) / D, positive for a probability below 1.":
            log_p / (d * math.log(2)),
        "that is a base-10 logarithm; bits are base 2: -log p(x) / (D ln 2).": -log_p / (d * math.log(10)),
    }


def check_image_bits_per_dim(value) -> CheckResult:
    """Derivation: bits per dimension of the image [[1, 1], [0, 1]] under the memory-1 model with p(x_1 = 1) = 0.5,
    p(x_i = 1 | x_{i-1} = 1) = 0.8, p(x_i = 1 | x_{i-1} = 0) = 0.3 (about 1.3452 bits)."""
    return check_value(EXERCISE_NAMES["check_image_bits_per_dim"], value, image_bits_per_dim(), rtol=1e-3,
                       hints=_image_bpd_hints(), what="`bits_per_dim_2x2`", unit="bits")
