r"""Why model :math:`p(x)`? A classifier that is confidently wrong, and the simplest density that is not fooled (chapter 0).

A classifier learns only :math:`p(y\mid x) = \operatorname{softmax}(f(x))`. Softmax outputs sum to 1
for *any* input, so the network must name a class even for an image that is no digit at all,
and often does so with high confidence (Nguyen et al., 2015). Small, structured perturbations
flip its decisions (Szegedy et al., 2014); :func:`fgsm` makes them in one gradient step
(Goodfellow et al., 2015). Writing :math:`p(x, y) = p(y\mid x)\,p(x)` shows what is missing: a
model of the inputs, which would say that such an image is improbable.

The simplest such model treats the :math:`D` pixels as independent Bernoulli variables,

.. math:: p(x) = \prod_{j=1}^D \theta_j^{x_j}(1-\theta_j)^{1-x_j},

fitted by maximum likelihood: :math:`\hat\theta_j` is the mean of pixel :math:`j` (smoothed, see
:func:`fit_pixel_bernoulli`). Given the digit label as a discrete latent variable :math:`z`, the
same code fits a *mixture* :math:`p(x) = \sum_k \pi_k \prod_j \mathrm{Bern}(x_j;\theta_{kj})`, the first
latent-variable model of the course.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import _validate as check
from .data import ImageData
from .distributions import log_bernoulli
from .utils import check_positive_int, make_generator

__all__ = [
    "DigitClassifier", "ClassifierFit", "train_classifier", "Prediction", "predict", "fgsm",
    "PixelBernoulli", "fit_pixel_bernoulli",
]


# ---------------------------------------------------------------- the classifier, p(y | x)
class DigitClassifier(nn.Module):
    """A small MLP :math:`x \\mapsto` class logits: flatten, ``Linear-ReLU`` layers, ``Linear`` to ``n_classes``.

    Input ``(B, 1, H, W)`` or ``(B, D)`` images in [0, 1]; output ``(B, n_classes)`` logits.
    """

    def __init__(self, x_dim: int, n_classes: int = 10, hidden: tuple[int, ...] = (256,)):
        super().__init__()
        dims = (check_positive_int("x_dim", x_dim), *hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], check_positive_int("n_classes", n_classes)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, n_classes)


class ClassifierFit(NamedTuple):
    """Result of :func:`train_classifier`: the ``model``, the mean training loss per epoch and the accuracies."""

    model: DigitClassifier
    losses: list[float]
    train_accuracy: float
    test_accuracy: float


def train_classifier(data: ImageData, *, epochs: int = 10, hidden: tuple[int, ...] = (256,), lr: float = 1e-3,
                     batch_size: int = 128, seed: int = 0) -> ClassifierFit:
    """Train a :class:`DigitClassifier` on ``data.x_train`` with cross-entropy and Adam.

    Args:
        data: an :class:`~vae_course.data.ImageData` (e.g. ``vc.data.mnist5k()``); grey levels are fine.
        epochs, hidden, lr, batch_size: as usual; the defaults take about two seconds on one CPU for mnist5k.
        seed: seeds the initial weights and the minibatch order.
    Returns:
        :class:`ClassifierFit`; the model is in eval mode, on the data's device.
    """
    if not isinstance(data, ImageData):
        raise TypeError(f"data: got {type(data).__name__}; need a vae_course.data.ImageData (e.g. vc.data.digits())")
    epochs, batch_size = check_positive_int("epochs", epochs), check_positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr: got {lr!r}; need a positive learning rate")
    gen = make_generator(seed)
    with torch.random.fork_rng(devices=[]):  # seed the weights without touching the global RNG
        torch.manual_seed(seed)
        model = DigitClassifier(data.x_dim, int(data.y_train.max()) + 1, hidden).to(data.x_train.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = data.x_train, data.y_train
    losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen).to(x.device)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])  # mean of -log p(y|x) over the batch
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
    model.eval()
    acc = lambda xs, ys: (predict(model, xs).label == ys).float().mean().item()  # noqa: E731
    return ClassifierFit(model, losses, acc(data.x_train, data.y_train), acc(data.x_test, data.y_test))


class Prediction(NamedTuple):
    """``label`` (B,) the arg-max class, ``confidence`` (B,) its probability, ``probs`` (B, C) = softmax(logits)."""

    label: Tensor
    confidence: Tensor
    probs: Tensor


@torch.no_grad()
def predict(model: nn.Module, x: Tensor) -> Prediction:
    r"""Class probabilities :math:`p(y\mid x) = \operatorname{softmax}(f(x))` and the most probable class.

    Args: ``model`` maps ``x`` ``(B, ...)`` to logits ``(B, C)``. Returns :class:`Prediction`.
    """
    check.tensor("x", x, min_dim=2)
    probs = torch.softmax(model(x), dim=-1)  # (B, C)
    confidence, label = probs.max(-1)
    return Prediction(label, confidence, probs)


def fgsm(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, clamp: tuple[float, float] | None = (0.0, 1.0)) -> Tensor:
    r"""Fast gradient sign method (Goodfellow et al., 2015): one step that increases the classifier's loss.

    .. math:: x_\text{adv} = \operatorname{clip}_{[0,1]}\Big(x + \epsilon\,
              \operatorname{sign}\big(\nabla_x\, [-\log p(y\mid x)]\big)\Big)

    Every pixel moves by at most ``eps`` (an :math:`L_\infty` ball), in the direction that raises the
    loss of the true label to first order.

    Args:
        model: maps ``x`` to logits ``(B, C)``; its parameters are not changed.
        x: ``(B, ...)`` images; y: ``(B,)`` true labels (int64).
        eps: the perturbation size, >= 0 (0.1-0.2 for MNIST grey levels in [0, 1]).
        clamp: keep pixels in this range (``None`` to skip).
    Returns:
        ``(B, ...)`` perturbed images, detached.
    """
    check.tensor("x", x, min_dim=2)
    if not isinstance(y, Tensor) or y.dtype != torch.int64 or y.shape != x.shape[:1]:
        got = f"{y.dtype} of shape {tuple(y.shape)}" if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"y: got {got}; need int64 labels of shape ({x.shape[0]},)")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps: got {eps!r}; need a number >= 0")
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")  # sum: each image's gradient is its own
    (grad,) = torch.autograd.grad(loss, x)
    x_adv = x.detach() + eps * grad.sign()
    return x_adv.clamp(*clamp) if clamp is not None else x_adv


# ---------------------------------------------------------------- the simplest density, p(x)
@dataclass(frozen=True, eq=False)
class PixelBernoulli:
    r"""A mixture of :math:`K` independent-pixel Bernoulli models (:math:`K = 1`: all pixels independent).

    .. math:: p(x) = \sum_{k=1}^K \pi_k \prod_{j=1}^D \sigma(\ell_{kj})^{x_j}\,\big(1-\sigma(\ell_{kj})\big)^{1-x_j}

    ``logits`` ``(K, D)`` are :math:`\ell_{kj} = \log\frac{\theta_{kj}}{1-\theta_{kj}}`, ``log_weights``
    ``(K,)`` are :math:`\log\pi_k`, ``image_shape`` is the shape of one image, e.g. ``(1, 28, 28)``.
    """

    logits: Tensor  # (K, D)
    log_weights: Tensor  # (K,)
    image_shape: tuple[int, ...]

    @property
    def probs(self) -> Tensor:
        """``(K, D)`` pixel probabilities :math:`\\theta_{kj} = \\sigma(\\ell_{kj})`."""
        return torch.sigmoid(self.logits)

    def _flat(self, x: Tensor) -> Tensor:
        check.tensor("x", x, min_dim=2)
        d = self.logits.shape[-1]
        if x[0].numel() != d:
            raise ValueError(f"x: got images of shape {tuple(x.shape[1:])}; need {self.image_shape} ({d} pixels)")
        return x.reshape(len(x), d)  # (B, D)

    def joint_log_prob(self, x: Tensor) -> Tensor:
        r"""``(B, K)`` :math:`\log \pi_k + \log p(x\mid z=k)`, for ``x`` ``(B, *image_shape)`` in [0, 1].

        Grey levels are allowed: then :math:`\log p(x\mid z=k)` is the *expected* log-likelihood of a
        binarisation :math:`b \sim \mathrm{Bern}(x)` (the formula is linear in :math:`x`).
        """
        xf = self._flat(x)  # (B, D)
        return self.log_weights + log_bernoulli(xf.unsqueeze(1), self.logits)  # (B, K)

    def log_prob(self, x: Tensor) -> Tensor:
        r"""``(B,)`` :math:`\log p(x) = \operatorname{logsumexp}_k\big(\log\pi_k + \log p(x\mid z=k)\big)` in nats.

        For :math:`K = 1` and grey levels, this is the expected log-likelihood of a random binarisation of ``x``.
        """
        return torch.logsumexp(self.joint_log_prob(x), dim=-1)

    def posterior(self, x: Tensor) -> Tensor:
        r"""``(B, K)`` :math:`p(z=k\mid x) = \pi_k p(x\mid k) / p(x)` (Bayes' rule; for digit labels as
        :math:`z`, this is the naive-Bayes classifier)."""
        return torch.softmax(self.joint_log_prob(x), dim=-1)

    def sample(self, n: int, *, generator: torch.Generator | None = None, return_z: bool = False):
        r"""``(n, *image_shape)`` binary samples: :math:`z \sim \pi`, then each pixel :math:`x_j \sim \mathrm{Bern}(\theta_{zj})`.

        With ``return_z=True`` returns ``(x, z)``, ``z`` ``(n,)``.
        """
        n = check_positive_int("n", n)
        z = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)  # (n,)
        u = torch.rand((n, self.logits.shape[-1]), generator=generator).to(self.logits.device)
        x = (u < self.probs[z]).float().reshape(n, *self.image_shape)
        return (x, z) if return_z else x


def fit_pixel_bernoulli(x: Tensor, labels: Tensor | None = None, *, alpha: float = 1.0) -> PixelBernoulli:
    r"""Maximum-likelihood fit of :class:`PixelBernoulli`: pixel means, per component if ``labels`` are given.

    .. math:: \hat\theta_{kj} = \frac{\sum_{i: z_i = k} x_{ij} + \alpha}{N_k + 2\alpha}, \qquad
              \hat\pi_k = \frac{N_k}{N}

    Setting the derivative of :math:`\sum_i \log p(x_i)` to zero gives the plain mean (``alpha=0``). A
    pixel that is 0 in every training image would then get :math:`\theta = 0`, and any image with ink
    there log-probability :math:`-\infty`; ``alpha`` adds pseudo-counts (Laplace smoothing) to avoid it.
    (With ``alpha=0``, :math:`\theta` is clipped to :math:`[10^{-6}, 1-10^{-6}]` so the logits stay finite.)

    Args:
        x: ``(N, *image_shape)`` training images in [0, 1] (binary, or grey levels read as probabilities).
        labels: optional ``(N,)`` int64 component of each image (e.g. the digit class) -> a K-component mixture.
        alpha: pseudo-count >= 0 added to the ones and to the zeros of every pixel.
    """
    check.tensor("x", x, min_dim=2)
    if bool(((x < 0) | (x > 1)).any()):
        raise ValueError(f"x: got values in [{x.min().item():.3g}, {x.max().item():.3g}]; need pixel values in [0, 1]")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
        raise ValueError(f"alpha: got {alpha!r}; need a pseudo-count >= 0")
    n = len(x)
    xf = x.reshape(n, -1)  # (N, D)
    if labels is None:
        labels = torch.zeros(n, dtype=torch.int64, device=x.device)
    elif not isinstance(labels, Tensor) or labels.dtype != torch.int64 or labels.shape != (n,) or bool((labels < 0).any()):
        got = f"{labels.dtype} of shape {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels: got {got}; need non-negative int64 labels of shape ({n},)")
    k = int(labels.max()) + 1
    onehot = F.one_hot(labels, k).to(xf.dtype)  # (N, K)
    counts = onehot.sum(0)  # (K,)
    if bool((counts == 0).any()):
        raise ValueError(f"labels: component(s) {torch.nonzero(counts == 0).flatten().tolist()} have no images; need every label 0..{k - 1} present")
    theta = (onehot.T @ xf + alpha) / (counts[:, None] + 2 * alpha)  # (K, D)
    theta = theta.clamp(1e-6, 1 - 1e-6)  # alpha = 0 would give exact 0 / 1; keep the logits finite
    return PixelBernoulli(torch.logit(theta), torch.log(counts / n), tuple(x.shape[1:]))
