r"""A conditional VAE: encoder and decoder both see a label :math:`y` (chapter 9).

.. math:: q_w(z\mid x, y) = \mathcal N\big(\mu_w(x, y), \mathrm{diag}\,\sigma_w^2(x, y)\big),\qquad
          p(z) = \mathcal N(0, I),\qquad p_\theta(x\mid z, y),

trained on the conditional ELBO (Sohn, Lee & Yan, 2015; Kingma et al., 2014, model M2 with the label observed)

.. math:: \log p_\theta(x\mid y) \ge \mathbb E_{q_w(z\mid x, y)}\big[\log p_\theta(x\mid z, y)\big]
          - \mathrm{KL}\big(q_w(z\mid x, y)\,\|\,p(z)\big).

Since the decoder is told the class, the latent need not store it: :math:`z` is free to encode what the label does
not say (the style). Decoding one :math:`z` with every label gives the lecture's "analogies".

The label travels with its image: an input is a **packed** row of the :math:`D` pixels followed by the one-hot
label (:func:`pack`, ``(B, D + K)``; :func:`labelled` packs a whole data set), so that :func:`vae_course.train.fit`
batches, shuffles and binarises it as it does images (a Bernoulli draw leaves 0/1 entries unchanged, so the
dynamically binarised label stays the label). The encoder reads the packed row as it is, which is
:math:`[x, y]`; the likelihood hook (:meth:`ConditionalVAE.log_likelihood`) unpacks it. Everything else, the ELBO,
the loss options and the importance weights (a bound on :math:`\log p(x\mid y)`), is the VAE skeleton's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _validate as check
from ..nets import ACTIVATIONS
from ..utils import check_positive_int
from .base import register_model
from .decoders import MLPDecoder, PixelHead
from .encoders import MLPEncoder
from .priors import StandardNormalPrior
from .vae_base import VAEBase

if TYPE_CHECKING:  # only for the annotation: the models do not load the data sets
    from ..data import ImageData

__all__ = ["pack", "unpack", "labelled", "ConditionalVAEConfig", "ConditionalVAE"]


def pack(x: Tensor, y: Tensor, n_classes: int = 10) -> Tensor:
    """Images ``x`` ``(B, C, H, W)`` (or flat ``(B, D)``) and int labels ``y`` ``(B,)`` -> rows ``(B, D + K)``:
    the pixels, then the one-hot label."""
    k = check_positive_int("n_classes", n_classes)
    if not isinstance(y, Tensor) or y.dtype not in (torch.int64, torch.int32) or y.dim() != 1 or len(y) != len(x):
        got = f"{y.dtype} of shape {tuple(y.shape)}" if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"y: got {got}; need integer labels of shape ({len(x)},)")
    if bool(((y < 0) | (y >= k)).any()):
        raise ValueError(f"y: got labels in [{int(y.min())}, {int(y.max())}]; need 0 <= y < n_classes = {k}")
    return torch.cat([x.flatten(1), F.one_hot(y.long(), k).to(x.dtype)], dim=1)


def unpack(xy: Tensor, n_classes: int = 10) -> tuple[Tensor, Tensor]:
    """Packed rows ``(B, D + K)`` -> flat pixels ``(B, D)`` and the one-hot labels ``(B, K)``."""
    return xy[:, :-n_classes], xy[:, -n_classes:]


def labelled(data: ImageData, n_classes: int = 10) -> ImageData:
    """``data`` with every image packed with its label (:func:`pack`): images ``(N, 1, 1, D + K)``, the labels kept."""
    return dataclasses.replace(data, x_train=pack(data.x_train, data.y_train, n_classes)[:, None, None],
                               x_test=pack(data.x_test, data.y_test, n_classes)[:, None, None])


@dataclass
class ConditionalVAEConfig:
    """Everything needed to rebuild a :class:`ConditionalVAE` (plain values, stored in checkpoints)."""

    x_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of one image; Bernoulli pixels
    n_classes: int = 10  # K, the number of labels
    z_dim: int = 8  # latent size m
    hidden: int = 400  # hidden units of the encoder's and the decoder's MLP
    activation: str = "tanh"  # hidden nonlinearity

    def __post_init__(self) -> None:
        self.x_shape = tuple(self.x_shape)
        if len(self.x_shape) != 3:
            raise ValueError(f"x_shape: got {self.x_shape}; need (C, H, W), e.g. (1, 28, 28)")
        for name in ("n_classes", "z_dim", "hidden"):
            check_positive_int(name, getattr(self, name))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: got {self.activation!r}; need one of {tuple(ACTIVATIONS)}")

    @property
    def x_dim(self) -> int:
        c, h, w = self.x_shape
        return c * h * w


@register_model
class ConditionalVAE(VAEBase):
    """The conditional VAE of the module doc, built from a :class:`ConditionalVAEConfig` (or keyword overrides).
    Its inputs are packed rows ``(B, D + K)`` (or ``(B, 1, 1, D + K)``, as :func:`labelled` stores them)."""

    config_class = ConditionalVAEConfig

    def __init__(self, config: ConditionalVAEConfig | None = None, **overrides):
        super().__init__()
        c = dataclasses.replace(config or ConditionalVAEConfig(), **overrides)
        self.config = c
        self.encoder = MLPEncoder(c.x_dim + c.n_classes, c.z_dim, (c.hidden,), c.activation)  # reads [x, y]
        self.head = PixelHead(c.x_shape, "bernoulli")
        self.decoder = MLPDecoder(c.z_dim + c.n_classes, c.x_shape, self.head.out_channels, (c.hidden,), c.activation)
        self.prior = StandardNormalPrior(c.z_dim)

    def check_input(self, x: Tensor, name: str = "x") -> Tensor:
        """``x`` checked as packed rows and returned flat, ``(B, D + K)``: at least one row, on the model's device and
        dtype, every entry in [0, 1] (Bernoulli pixels and a one-hot label). :func:`vae_course.train.fit` and
        :mod:`vae_course.evaluate` call it once on their data."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"{name}: got {type(x).__name__}; need a floating torch.Tensor of packed rows (vae_course."
                            "models.conditional.pack)")
        width = self.config.x_dim + self.config.n_classes
        if x.dim() == 4 and tuple(x.shape[1:3]) == (1, 1):
            x = x[:, 0, 0]
        if x.dim() != 2 or x.shape[1] != width:
            raise ValueError(f"{name}: got shape {tuple(x.shape)}; need packed rows (B, {width}) = pixels and one-hot "
                             f"label (vae_course.models.conditional.pack), or (B, 1, 1, {width})")
        check.non_empty(name, x, "row")
        if check.in_checked_data():  # a batch of fit's data set: checked, moved and cast once
            return x
        return check.pixels(name, check.like(name, x, check.first_parameter(self)))

    def _images(self, x: Tensor) -> Tensor:
        return self.check_input(x)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        r""":math:`\log p_\theta(x\mid z, y)` with ``x`` packed rows ``(B, D + K)`` and latents ``(..., B, m)``: ``(..., B)``."""
        pixels, y = unpack(x, self.config.n_classes)
        return self.decode(z, y).log_prob(pixels.reshape(-1, *self.config.x_shape))

    def _one_hot(self, y: Tensor, like: Tensor) -> Tensor:
        if y.dim() == 1:  # integer labels
            y = F.one_hot(y.long(), self.config.n_classes)
        return y.to(like)

    def decode(self, z: Tensor, y: Tensor):
        r""":math:`p_\theta(x\mid z, y)` for latents ``(..., B, m)`` and labels ``y`` (ints ``(B,)`` or one-hot ``(B, K)``):
        Bernoulli pixels ``(..., B, C, H, W)``."""
        y = self._one_hot(y, z).expand(*z.shape[:-1], self.config.n_classes)
        return self.head(self.decoder(torch.cat([z, y], dim=-1)))

    def encode_labelled(self, x: Tensor, y: Tensor):
        r""":math:`q_w(z\mid x, y)` for images ``x`` ``(B, C, H, W)`` and int labels ``y`` ``(B,)``."""
        return self.encode(pack(x, y, self.config.n_classes))

    def generate(self, z: Tensor, *, y: Tensor, mean: bool = True, generator: torch.Generator | None = None) -> Tensor:
        """Images ``(n, C, H, W)`` for latents ``z`` ``(n, m)`` and labels ``y`` ``(n,)``: decoder means, or binary draws.
        ``model.sample(n, y=labels)`` draws ``z`` from the prior first."""
        if not isinstance(y, Tensor) or len(y) != len(z):
            raise ValueError(f"y: need one label per latent, a tensor of length {len(z)}")
        p = self.decode(z, y.to(z.device))
        return p.mean if mean else p.sample(generator)
