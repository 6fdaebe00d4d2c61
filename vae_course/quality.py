r"""How good are generated digits? Distances and scores in the feature space of a digit classifier (chapters 5 and 8).

A likelihood says how well a model explains test images; it does not say whether its samples look like digits.
Three numbers do, all read off a small convolutional classifier :class:`FeatureNet` that the package trains on
the mnist5k training split (:func:`train_feature_net`; the trained weights ship as ``stored/digit_features.pt``,
written by ``vae-course pretrain digit-features``):

* the **Frechet distance** (Heusel et al., 2017, who call it FID with an Inception network) between Gaussians fitted
  to the classifier's penultimate features :math:`f(x)\in\mathbb R^{F}` of held-out real digits and of the images,

  .. math:: \mathrm{FD} = \lVert\mu_r - \mu_g\rVert^2 + \operatorname{tr}\big(\Sigma_r + \Sigma_g
            - 2(\Sigma_r^{1/2}\Sigma_g\Sigma_r^{1/2})^{1/2}\big),

  0 for identical statistics. It compares whole sets: blur, noise, missing classes and too little variety all
  move the mean or the covariance of the features;
* the **classifier score** (the Inception Score of Salimans et al., 2016, with the digit classifier),
  :math:`\exp\big(\mathbb E_x\,\mathrm{KL}(p(y\mid x)\,\|\,p(y))\big)` with :math:`p(y) = \mathbb E_x\,p(y\mid x)`:
  between 1 and 10, high when each image is confidently one digit *and* the digits are varied;
* the number of **classes covered**: digits that are the classifier's top class for at least a share
  ``min_share`` of the images.

A classifier is confidently wrong on noise (chapter 0): uniform noise is called an "8" with high confidence, so
its classifier score and its coverage can look respectable. The Frechet distance is not fooled, because the
features of noise are nothing like the features of digits (``tests/test_quality.py`` checks that noise scores
about 50 times the real-digit floor).

Held-out digits: the 1,000 test images of :func:`vae_course.data.mnist5k` are split into two halves of 500
(50 per class, fixed): :func:`reference_digits`, against which every set is measured, and :func:`real_digits`,
whose distance to the reference is the **floor**, what real digits score. A Frechet distance estimated from
:math:`n` images is biased upwards by roughly :math:`\operatorname{tr}\Sigma/n` and fluctuates from draw to draw: for
a chapter-5 VAE, 500 samples give values that spread by about 10 between draws, 2,000 samples by about 1 (and a
value about 5 lower). The chapters score 2,000 samples of each model; the floor uses the 500 real digits there are,
so it is, if anything, an overestimate.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _validate as check
from .checkpoint import load_checkpoint
from .data import ImageData, mnist5k
from .models.base import register_model
from .utils import check_positive_int, make_generator, stored_file

__all__ = ["FeatureNetConfig", "FeatureNet", "FeatureNetFit", "train_feature_net", "feature_net", "STORED_FEATURES",
           "features", "FeatureStats", "feature_stats", "frechet_distance", "classifier_score", "reference_digits",
           "real_digits", "blur_images", "SampleQuality", "sample_quality"]

STORED_FEATURES = "digit_features.pt"  # vae_course/stored/, written by `vae-course pretrain digit-features`
IMAGE_SHAPE = (1, 28, 28)


@dataclass
class FeatureNetConfig:
    """The digit classifier whose features the scores use (plain values, stored in its checkpoint)."""

    channels: tuple[int, int] = (16, 32)  # two 5x5 conv layers, each followed by 2x2 max pooling: 28 -> 14 -> 7
    features: int = 64  # F: width of the penultimate layer, the feature space of the Frechet distance
    n_classes: int = 10

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        if len(self.channels) != 2:
            raise ValueError(f"channels: got {self.channels}; need two ints, e.g. (16, 32)")
        for i, c in enumerate(self.channels):
            check_positive_int(f"channels[{i}]", c)
        check_positive_int("features", self.features)
        check_positive_int("n_classes", self.n_classes)


@register_model
class FeatureNet(nn.Module):
    """A LeNet-style classifier of 28x28 digits: ``(B, 1, 28, 28)`` -> features ``(B, F)`` -> logits ``(B, 10)``."""

    config_class = FeatureNetConfig

    def __init__(self, config: FeatureNetConfig | None = None, **overrides):
        super().__init__()
        c = dataclasses.replace(config or FeatureNetConfig(), **overrides)
        self.config = c
        c1, c2 = c.channels
        self.trunk = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 7, 7)
            nn.Flatten(), nn.Linear(c2 * 49, c.features), nn.ReLU(),      # (B, F)
        )
        self.head = nn.Linear(c.features, c.n_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features ``(B, F)`` of images ``(B, 1, 28, 28)``."""
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))  # (B, n_classes) logits


class FeatureNetFit(NamedTuple):
    """What :func:`train_feature_net` returns: the ``model`` (eval mode), the mean training loss per epoch and its
    accuracy on the test split."""

    model: FeatureNet
    losses: list[float]
    test_accuracy: float


def train_feature_net(data: ImageData | None = None, *, epochs: int = 8, batch_size: int = 64, lr: float = 1e-3,
                      seed: int = 0, config: FeatureNetConfig | None = None) -> FeatureNetFit:
    """Train a :class:`FeatureNet` by cross-entropy and Adam on ``data.x_train`` (default: mnist5k, grey levels).

    Deterministic on the CPU for a given seed and thread count: the weights are initialised and the batches
    ordered from ``seed`` without touching the global random state. About 10 s on one CPU core; the defaults
    reach about 97% test accuracy.
    """
    data = mnist5k() if data is None else data
    if not isinstance(data, ImageData) or data.image_shape != IMAGE_SHAPE:
        raise ValueError(f"data: got {data!r}; need an ImageData of 28x28 digits such as vc.data.mnist5k()")
    epochs, batch_size = check_positive_int("epochs", epochs), check_positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr: got {lr!r}; need a positive learning rate")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureNet(config)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = make_generator(seed)
    x, y = data.x_train.cpu(), data.y_train.cpu()
    losses = []
    model.train()
    for _ in range(epochs):
        perm, total = torch.randperm(len(x), generator=order), 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])  # mean of -log p(y|x) over the batch
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(x))
    model.eval()
    with torch.no_grad():
        acc = float((model(data.x_test.cpu()).argmax(-1) == data.y_test.cpu()).float().mean())
    return FeatureNetFit(model, losses, acc)


@functools.lru_cache(maxsize=1)
def feature_net() -> FeatureNet:
    """The stored :class:`FeatureNet` (``stored/digit_features.pt``), loaded once per process, on the CPU, eval mode."""
    return load_checkpoint(stored_file(STORED_FEATURES)).model


def _check_images(images: Tensor) -> Tensor:
    check.tensor("images", images, min_dim=2)
    if images.dim() == 2 and images.shape[1] == 784:
        images = images.reshape(-1, *IMAGE_SHAPE)
    if images.dim() == 3 and tuple(images.shape[1:]) == (28, 28):
        images = images[:, None]
    if images.dim() != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"images: got shape {tuple(images.shape)}; need 28x28 digits (N, 1, 28, 28), (N, 28, 28) or "
                         "(N, 784); the classifier behind the scores is trained on mnist5k")
    if len(images) < 2:
        raise ValueError(f"images: got {len(images)} image(s); need at least 2 to estimate a covariance")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"images: values in [{lo:.3g}, {hi:.3g}]; need pixel intensities in [0, 1] (clamp decoder "
                         "outputs with .clamp(0, 1))")
    return images.clamp(0, 1)


@torch.no_grad()
def features(images: Tensor, *, net: nn.Module | None = None, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """``(features (N, F), probs (N, 10))`` of the classifier (default :func:`feature_net`) for ``images``, on the
    CPU."""
    net = feature_net() if net is None else net
    x = _check_images(images).float()
    device = next(net.parameters()).device
    feats, probs = [], []
    for i in range(0, len(x), check_positive_int("batch_size", batch_size)):
        h = net.features(x[i:i + batch_size].to(device))
        feats.append(h.cpu())
        probs.append(torch.softmax(net.head(h), dim=-1).cpu())
    return torch.cat(feats), torch.cat(probs)


class FeatureStats(NamedTuple):
    """Mean ``mu`` ``(F,)`` and covariance ``cov`` ``(F, F)`` (float64) of ``n`` feature vectors."""

    mu: Tensor
    cov: Tensor
    n: int


def feature_stats(feats: Tensor) -> FeatureStats:
    r"""The Gaussian fitted to features ``(N, F)``: mean and unbiased covariance
    :math:`\frac1{N-1}\sum(f-\bar f)(f-\bar f)^\top`."""
    check.tensor("feats", feats, min_dim=2)
    if feats.dim() != 2 or len(feats) < 2:
        raise ValueError(f"feats: got shape {tuple(feats.shape)}; need (N, F) with N >= 2")
    f = feats.double()
    return FeatureStats(f.mean(0), torch.cov(f.T), len(f))


def _sqrt_psd(a: Tensor) -> Tensor:
    """The symmetric square root of a positive semi-definite matrix, by its eigendecomposition."""
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    r"""The squared 2-Wasserstein (Frechet) distance between :math:`\mathcal N(\mu_a, \Sigma_a)` and
    :math:`\mathcal N(\mu_b, \Sigma_b)`: :math:`\lVert\mu_a-\mu_b\rVert^2 + \operatorname{tr}\Sigma_a
    + \operatorname{tr}\Sigma_b - 2\operatorname{tr}(\Sigma_a^{1/2}\Sigma_b\Sigma_a^{1/2})^{1/2}` (Dowson & Landau, 1982). The trace of the
    matrix square root is the sum of the square roots of the eigenvalues of the symmetric
    :math:`\Sigma_a^{1/2}\Sigma_b\Sigma_a^{1/2}`, computed in float64."""
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"a, b: feature sizes differ ({tuple(a.mu.shape)} vs {tuple(b.mu.shape)}); need the same F")
    s = _sqrt_psd(a.cov)
    cross = torch.linalg.eigvalsh(s @ b.cov @ s).clamp(min=0).sqrt().sum()
    fd = (a.mu - b.mu).pow(2).sum() + a.cov.trace() + b.cov.trace() - 2 * cross
    return max(float(fd), 0.0)


def classifier_score(probs: Tensor) -> float:
    r""":math:`\exp\big(\frac1N\sum_i\mathrm{KL}(p(y\mid x_i)\,\|\,\bar p(y))\big)`,
    :math:`\bar p = \frac1N\sum_i p(y\mid x_i)`, from class probabilities ``(N, C)``: 1 if every image gets the same distribution, C if each image is one class
    with certainty and the classes are equally frequent (Salimans et al., 2016)."""
    check.tensor("probs", probs, min_dim=2)
    p = probs.double()
    marginal = p.mean(0)
    kl = torch.special.xlogy(p, p).sum(-1) - (p * marginal.clamp(min=1e-300).log()).sum(-1)  # (N,)
    return math.exp(float(kl.mean()))


@functools.lru_cache(maxsize=1)
def _halves() -> tuple[Tensor, Tensor]:
    data = mnist5k()
    g = make_generator(0)
    first, second = [], []
    for c in range(10):
        idx = (data.y_test == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        first.append(idx[: len(idx) // 2])
        second.append(idx[len(idx) // 2:])
    first, second = torch.cat(first), torch.cat(second)
    # classes interleaved in a fixed random order, so that the first images of a half show every digit
    first, second = first[torch.randperm(len(first), generator=g)], second[torch.randperm(len(second), generator=g)]
    return data.x_test[first], data.x_test[second]


def reference_digits() -> Tensor:
    """500 held-out real digits (50 per class, from the mnist5k test split, in a fixed random order),
    ``(500, 1, 28, 28)`` grey levels: the set every :func:`sample_quality` is measured against."""
    return _halves()[1].clone()


def real_digits() -> Tensor:
    """The other 500 test digits (50 per class), ``(500, 1, 28, 28)``: score them to get the real-digit floor."""
    return _halves()[0].clone()


def blur_images(images: Tensor, passes: int = 1) -> Tensor:
    r"""Images ``(N, 1, H, W)`` convolved ``passes`` times with the 5x5 binomial kernel
    :math:`\frac1{256}(1, 4, 6, 4, 1)^\top(1, 4, 6, 4, 1)` (a Gaussian blur of standard deviation 1 pixel per pass):
    a reference point for the scores, digits with the right shapes and soft strokes."""
    check.tensor("images", images, min_dim=4)
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=images.dtype, device=images.device)
    kernel = (k[:, None] * k[None]) / 256  # (5, 5), sums to 1
    for _ in range(check_positive_int("passes", passes)):
        images = F.conv2d(images, kernel[None, None], padding=2)
    return images


@functools.lru_cache(maxsize=1)
def _reference_stats() -> FeatureStats:
    return feature_stats(features(_halves()[1])[0])


class SampleQuality(NamedTuple):
    """What :func:`sample_quality` returns.

    ``frechet``: Frechet distance to the reference digits' features (lower is better; real digits: the floor);
    ``classifier_score``: in [1, 10] (higher is better); ``classes_covered``: digits that are the top class of at
    least ``min_share`` of the images; ``class_counts`` ``(10,)``: how many images each digit is the top class of;
    ``confidence``: mean top-class probability; ``n``: images scored.
    """

    frechet: float
    classifier_score: float
    classes_covered: int
    class_counts: Tensor
    confidence: float
    n: int

    def __str__(self) -> str:
        return (f"Frechet distance {self.frechet:.1f}, classifier score {self.classifier_score:.2f}, "
                f"{self.classes_covered} classes covered ({self.n} images)")


def sample_quality(images: Tensor, *, reference: Tensor | None = None, min_share: float = 0.01,
                   net: nn.Module | None = None) -> SampleQuality:
    r"""Score a set of generated (or real) digits ``images`` ``(N, 1, 28, 28)`` in [0, 1] (decoder means, or samples).

    Args:
        images: at least 2 images; use the same N when comparing sets (the distance is biased upwards by about
            :math:`\operatorname{tr}\Sigma/N`); the chapters score 2,000 samples per model.
        reference: real digits to compare with (default :func:`reference_digits`, 500 held-out test digits).
        min_share: a class counts as covered if it is the top class of at least this share of the images
            (and of at least one image).
        net: the classifier (default: the stored :func:`feature_net`).

    Returns :class:`SampleQuality`: Frechet distance (Heusel et al., 2017), classifier score
    (Salimans et al., 2016), classes covered.
    """
    if not (isinstance(min_share, (int, float)) and 0 <= min_share <= 1):
        raise ValueError(f"min_share: got {min_share!r}; need a share in [0, 1]")
    feats, probs = features(images, net=net)
    if reference is None and net is None:
        ref = _reference_stats()
    else:
        ref = feature_stats(features(reference_digits() if reference is None else reference, net=net)[0])
    counts = torch.bincount(probs.argmax(-1), minlength=probs.shape[1])
    covered = int((counts >= max(1, math.ceil(min_share * len(probs)))).sum())
    return SampleQuality(frechet_distance(feature_stats(feats), ref), classifier_score(probs), covered, counts,
                         float(probs.max(-1).values.mean()), len(probs))
