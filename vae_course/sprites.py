r"""Sprites: a procedural image data set whose generative factors are known (chapter 6).

Disentanglement can only be measured where the true factors of variation are known, so the course
draws its own images, in the spirit of dSprites (Matthey et al., 2017; used by Higgins et al., 2017).
Each 32x32 greyscale image shows one shape (pixel value 1) on an empty background (0), fixed by five
independent factors, each taking a few evenly spaced levels (:data:`FACTORS`, :data:`LEVELS`, :data:`RANGES`):

======== ========================================== ===================
factor   values                                     default levels
======== ========================================== ===================
shape    square, ellipse, triangle                  3
scale    half-size 3.5 .. 6.5 pixels (at 32x32)     4
rotation -30 .. 30 degrees                          5
x, y     centre 9 .. 23 pixels (at 32x32)           8 each
======== ========================================== ===================

so the full grid has 3 x 4 x 5 x 8 x 8 = 3,840 images. A factor vector is an int64 row of level
indices, e.g. ``[2, 0, 4, 7, 3]``. The rotation range is narrower than a full turn on purpose: a
square turned by 90 degrees is the same square, and a factor whose levels give identical images
cannot be recovered from the images by any method.

Rendering uses signed distances: for the centre :math:`p` of each pixel, the shape's own frame is
:math:`u = R(-\theta)(p - c)/s` (centre :math:`c`, rotation :math:`\theta`, scale :math:`s`), the signed
distance :math:`d` from :math:`p` to the outline is computed there (negative inside), and the pixel
gets :math:`\mathrm{clip}(\tfrac12 - d, 0, 1)`: 1 inside, 0 outside, and across an edge the fraction
of the pixel that the shape covers (anti-aliasing, checked in the tests against 16x supersampling).
All images of a batch are rendered in one set of tensor
operations, so 20,000 images take a few seconds on a CPU. Nothing is downloaded, and the same
``seed`` gives the same images.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .data import ImageData
from ._validate import seed as _seed
from ._validate import tensor as _tensor
from .utils import check_positive_int

__all__ = ["FACTORS", "SHAPES", "LEVELS", "RANGES", "SpritesData", "factor_sizes", "factor_values", "factor_grid",
           "render", "sprites", "sprites_grid", "traverse_factor"]

FACTORS = ("shape", "scale", "rotation", "x", "y")
SHAPES = ("square", "ellipse", "triangle")
LEVELS = {"shape": 3, "scale": 4, "rotation": 5, "x": 8, "y": 8}  # default number of levels of each factor
# value range of each continuous factor at 32x32; scales and positions are in pixels (scaled with image_size)
RANGES = {"scale": (3.5, 6.5), "rotation": (-math.pi / 6, math.pi / 6), "x": (9.0, 23.0), "y": (9.0, 23.0)}
_BASE = 32  # RANGES are given for 32x32 images
_ELLIPSE_AXES = (1.25, 0.7)  # semi-axes in units of the scale: visibly elongated, so rotation shows
_TRIANGLE_R = 1.3  # circumradius of the equilateral triangle in units of the scale
_CHUNK_POINTS = 2**22  # pixels rendered at once (4M floats = 16 MB per temporary)


@dataclass(frozen=True, eq=False, repr=False)
class SpritesData(ImageData):
    """:class:`~vae_course.data.ImageData` plus the factors that generated each image.

    ``factors_train`` (N, K) and ``factors_test`` (M, K) are int64 level indices in the order of
    ``factor_names``; ``factor_sizes`` gives the number of levels of each factor. ``y_train`` /
    ``y_test`` hold the shape index (the one categorical factor), so code written for labelled
    data sets works unchanged; :func:`vae_course.train.fit` trains on it like on any ImageData.
    """

    factors_train: Tensor  # (N, K)
    factors_test: Tensor  # (M, K)
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        k = len(self.factor_names)
        for f, x, part in ((self.factors_train, self.x_train, "train"), (self.factors_test, self.x_test, "test")):
            if f.dtype != torch.int64 or f.shape != (x.shape[0], k):
                raise ValueError(f"SpritesData: factors_{part} must be int64 of shape ({x.shape[0]}, {k}), "
                                 f"got {f.dtype} {tuple(f.shape)}")

    def to(self, device: torch.device | str) -> "SpritesData":
        """A new SpritesData with every tensor on ``device``."""
        return dataclasses.replace(self, x_train=self.x_train.to(device), y_train=self.y_train.to(device),
                                   x_test=self.x_test.to(device), y_test=self.y_test.to(device),
                                   factors_train=self.factors_train.to(device), factors_test=self.factors_test.to(device))

    def __repr__(self) -> str:
        levels = ", ".join(f"{n}={s}" for n, s in zip(self.factor_names, self.factor_sizes))
        return (f"SpritesData(x_train={tuple(self.x_train.shape)}, x_test={tuple(self.x_test.shape)}, "
                f"factors: {levels})")


def factor_sizes(levels: dict[str, int] | None = None) -> tuple[int, ...]:
    """Number of levels of each factor in :data:`FACTORS` order: :data:`LEVELS` updated by ``levels``.

    ``levels`` may change any factor except ``shape`` (at most 3 shapes exist); each count must be >= 1.
    """
    sizes = dict(LEVELS)
    for name, count in (levels or {}).items():
        if name not in LEVELS:
            raise ValueError(f"levels: got factor {name!r}; need names from {FACTORS}")
        check_positive_int(f"levels[{name!r}]", count)
        if name == "shape" and count > len(SHAPES):
            raise ValueError(f"levels['shape']: got {count}; at most {len(SHAPES)} shapes exist {SHAPES}")
        sizes[name] = count
    return tuple(sizes[n] for n in FACTORS)


def _check_factors(factors: Tensor, sizes: tuple[int, ...]) -> Tensor:
    if not isinstance(factors, Tensor) or factors.dtype != torch.int64:
        got = type(factors).__name__ if not isinstance(factors, Tensor) else f"tensor of dtype {factors.dtype}"
        raise TypeError(f"factors: got {got}; need an int64 tensor (N, {len(FACTORS)}) of level indices")
    if factors.dim() != 2 or factors.shape[1] != len(FACTORS):
        raise ValueError(f"factors: got shape {tuple(factors.shape)}; need (N, {len(FACTORS)}), columns {FACTORS}")
    high = torch.tensor(sizes, device=factors.device)
    if len(factors) and bool(((factors < 0) | (factors >= high)).any()):
        raise ValueError(f"factors: level indices must lie in [0, size) per column with sizes {sizes}; "
                         f"got column minima {factors.min(0).values.tolist()} and maxima {factors.max(0).values.tolist()}")
    return factors


def factor_values(factors: Tensor, *, levels: dict[str, int] | None = None, image_size: int = 32) -> Tensor:
    r"""Level indices ``(N, 5)`` -> physical values ``(N, 5)`` float: shape index, scale (px), rotation (rad), x, y (px).

    Level :math:`i` of a factor with :math:`L` levels on :math:`[a, b]` is :math:`a + (b-a)\,i/(L-1)`
    (the midpoint if :math:`L = 1`). Pixel values are scaled by ``image_size / 32``.
    """
    sizes = factor_sizes(levels)
    factors = _check_factors(factors, sizes)
    out = factors.to(torch.float32).clone()
    px = image_size / _BASE
    for j, name in enumerate(FACTORS[1:], start=1):
        a, b = RANGES[name]
        frac = factors[:, j] / (sizes[j] - 1) if sizes[j] > 1 else torch.full_like(out[:, j], 0.5)
        out[:, j] = (a + (b - a) * frac) * (1.0 if name == "rotation" else px)
    return out


def factor_grid(levels: dict[str, int] | None = None) -> Tensor:
    """Every combination of factor levels, ``(prod(sizes), 5)`` int64, in lexicographic order (y varies fastest)."""
    sizes = factor_sizes(levels)
    return torch.tensor(list(itertools.product(*(range(s) for s in sizes))), dtype=torch.int64)


def _signed_distance(u: Tensor, v: Tensor, shape: Tensor) -> Tensor:
    """Signed distance to the outline in the shape's own frame (negative inside), in units of the scale.

    ``u, v`` (B, P), ``shape`` (B, 1) float shape index -> (B, P). Exact along the edges, which is all
    anti-aliasing needs; outside the triangle's corners the max over half-planes underestimates it.
    """
    qu, qv = u.abs() - 1.0, v.abs() - 1.0
    square = torch.hypot(qu.clamp(min=0), qv.clamp(min=0)) + torch.maximum(qu, qv).clamp(max=0)  # exact box distance
    # ellipse: k0 (k0 - 1) / k1 with k0 = |(u/a, v/b)|, k1 = |(u/a^2, v/b^2)|, first-order distance to the curve
    a, b = _ELLIPSE_AXES
    k0 = torch.hypot(u / a, v / b)
    k1 = torch.hypot(u / a**2, v / b**2).clamp(min=1e-6)
    ellipse = k0 * (k0 - 1.0) / k1
    # equilateral triangle pointing up (v grows downwards in image rows): three half-planes at distance R/2
    s3 = math.sqrt(3) / 2
    triangle = torch.maximum(v, torch.maximum(s3 * u - 0.5 * v, -s3 * u - 0.5 * v)) - _TRIANGLE_R / 2
    return torch.where(shape == 0, square, torch.where(shape == 1, ellipse, triangle))


def render(factors: Tensor, *, levels: dict[str, int] | None = None, image_size: int = 32) -> Tensor:
    r"""Draw the sprites of ``factors`` (N, 5) int64 level indices: images ``(N, 1, image_size, image_size)`` in [0, 1].

    Pixel value = :math:`\mathrm{clip}(\tfrac12 - d, 0, 1)` with :math:`d` the signed distance (in pixels)
    from the pixel centre to the outline: 1 inside, 0 outside, a one-pixel ramp across the edge, which
    is the pixel's covered area for a straight edge (anti-aliasing). Deterministic.
    """
    image_size = check_positive_int("image_size", image_size)
    return render_values(factor_values(factors, levels=levels, image_size=image_size), image_size=image_size)


def render_values(values: Tensor, *, image_size: int = 32) -> Tensor:
    """Draw sprites from physical factor values ``(N, 5)`` float (shape index, scale and centre in pixels,
    rotation in radians; see :func:`factor_values`): images ``(N, 1, image_size, image_size)`` in [0, 1]."""
    image_size = check_positive_int("image_size", image_size)
    values = _tensor("values", values, min_dim=2).float()
    if values.dim() != 2 or values.shape[1] != len(FACTORS):
        raise ValueError(f"values: got shape {tuple(values.shape)}; need (N, {len(FACTORS)}), columns {FACTORS}")
    n = len(values)
    centres = torch.arange(image_size, dtype=torch.float32) + 0.5  # pixel centres in pixel units
    py, px = torch.meshgrid(centres, centres, indexing="ij")
    px, py = px.reshape(1, -1), py.reshape(1, -1)  # (1, P)
    out = torch.empty(n, 1, image_size, image_size)
    step = max(1, _CHUNK_POINTS // px.shape[1])
    for i in range(0, n, step):
        val = values[i:i + step]
        shape, scale, theta, cx, cy = (val[:, j:j + 1] for j in range(5))  # (B, 1) each
        dx, dy = px - cx, py - cy  # (B, P)
        cos, sin = torch.cos(theta), torch.sin(theta)
        u = (cos * dx + sin * dy) / scale  # u = R(-theta) (p - c) / s
        v = (-sin * dx + cos * dy) / scale
        d = _signed_distance(u, v, shape) * scale  # (B, P), pixels: rotation keeps distances
        out[i:i + step] = (0.5 - d).clamp(0.0, 1.0).reshape(-1, 1, image_size, image_size)
    return out


def _split(factors: Tensor, test_size: int, g: torch.Generator, sizes, levels, image_size) -> SpritesData:
    n = len(factors)
    if not 1 <= test_size < n:
        raise ValueError(f"test_size: got {test_size}; need 1 <= test_size < {n} (the number of images)")
    factors = factors[torch.randperm(n, generator=g)]
    x = render(factors, levels=levels, image_size=image_size)
    tr, te = factors[test_size:], factors[:test_size]
    return SpritesData("sprites", x[test_size:], tr[:, 0].clone(), x[:test_size], te[:, 0].clone(), "none",
                       tr, te, FACTORS, sizes)


def sprites(n: int | None = None, *, test_size: int = 500, seed: int = 0, levels: dict[str, int] | None = None,
            image_size: int = 32) -> SpritesData:
    """The sprites data set, split into train and test parts; deterministic for a given ``seed``.

    Args:
        n: number of images. ``None`` (default): every combination of factor levels exactly once
            (3,840 with the default :data:`LEVELS`), shuffled. An int: ``n`` factor vectors drawn
            independently and uniformly over the levels (combinations may repeat).
        test_size: images held out as the test part (the first ``test_size`` after shuffling).
        seed: an int >= 0; fixes the draws and the split.
        levels: change the number of levels of some factors, e.g. ``{"x": 16, "y": 16}``.
        image_size: side of the square images (ranges scale with it).
    Returns:
        :class:`SpritesData`: x (N, 1, S, S) in [0, 1] with anti-aliased edges, factors (N, 5) int64,
        ``binarize="none"`` (train with a Bernoulli decoder on the grey values, or binarise yourself).
    """
    sizes = factor_sizes(levels)
    g = torch.Generator().manual_seed(_seed("seed", seed))
    if n is None:
        factors = factor_grid(levels)
    else:
        n = check_positive_int("n", n)
        factors = torch.stack([torch.randint(0, s, (n,), generator=g) for s in sizes], dim=1)
    return _split(factors, check_positive_int("test_size", test_size), g, sizes, levels, image_size)


def sprites_grid(*, levels: dict[str, int] | None = None, image_size: int = 32) -> tuple[Tensor, Tensor]:
    """The full factor grid for metrics: images ``(G, 1, S, S)`` and factors ``(G, 5)`` int64 (:func:`factor_grid` order)."""
    factors = factor_grid(levels)
    return render(factors, levels=levels, image_size=image_size), factors


def traverse_factor(base: Tensor | list[int] | tuple[int, ...], factor: int | str, *,
                    levels: dict[str, int] | None = None) -> Tensor:
    """Factor vectors ``(L, 5)`` that copy ``base`` (5 level indices) and run one ``factor`` over all its L levels."""
    sizes = factor_sizes(levels)
    j = FACTORS.index(factor) if isinstance(factor, str) and factor in FACTORS else factor
    if not isinstance(j, int) or not 0 <= j < len(FACTORS):
        raise ValueError(f"factor: got {factor!r}; need an index 0..{len(FACTORS) - 1} or a name from {FACTORS}")
    base = _check_factors(torch.as_tensor(base, dtype=torch.int64).reshape(1, -1), sizes)
    out = base.repeat(sizes[j], 1)
    out[:, j] = torch.arange(sizes[j])
    return out
