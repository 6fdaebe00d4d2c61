r"""Decoders :math:`p_\theta(x\mid z)`: a network :math:`G_\theta(z)` and a pixel distribution.

The network maps a latent ``(..., m)`` to raw statistics ``(..., k*C, H, W)``; a
:class:`PixelHead` turns them into a distribution over images (:data:`LIKELIHOODS`):

* ``"bernoulli"``: :math:`p(x\mid z) = \prod_j \mathrm{Bern}(x_j; \sigma(\ell_j))` with logits
  :math:`\ell = G_\theta(z)` (Kingma & Welling, 2014, appendix C.1). Exact for binary pixels.
* ``"gaussian"``: :math:`p(x\mid z) = \mathcal N(\mu, \mathrm{diag}\,\sigma^2)` with
  :math:`\mu = G_\theta(z)` and the variance chosen by :data:`DECODER_VAR`:
  ``"fixed"`` (a constant :math:`\sigma`, the slides use :math:`\sigma = 1`), ``"shared"`` (one
  learned :math:`\sigma_j` per pixel, the same for every :math:`z`) or ``"learned"`` (the network
  outputs :math:`\log\sigma^2_j(z)` too).

A learned variance is numerically delicate. A pixel that is (almost) constant in the data, such as
the MNIST border, can be predicted exactly, and then :math:`\log\mathcal N(x;\mu,\sigma^2)
= -\tfrac12\log(2\pi\sigma^2) - (x-\mu)^2/2\sigma^2 \to +\infty` as :math:`\sigma\to0`: the
likelihood has no maximum, training drives :math:`\sigma\to0` and finally overflows. The fix used
here is a floor, :math:`\sigma^2 = \sigma^2_{\min} + e^{a}` (``min_decoder_std``); ``0`` removes it.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import distributions as D
from ..nets import activation as _activation
from .encoders import conv_sizes

__all__ = ["BernoulliPixels", "GaussianPixels", "PixelHead", "MLPDecoder", "ConvDecoder", "LinearDecoder",
           "LIKELIHOODS", "DECODER_VAR"]

LIKELIHOODS = ("bernoulli", "gaussian")
DECODER_VAR = ("fixed", "shared", "learned")
LOG_2PI = math.log(2 * math.pi)
_EVENT = (-3, -2, -1)  # (C, H, W): one image is one event


class BernoulliPixels(NamedTuple):
    r"""Independent Bernoulli pixels with ``logits`` ``(..., C, H, W)``."""

    logits: Tensor

    @property
    def mean(self) -> Tensor:
        r""":math:`\mathbb E[x\mid z] = \sigma(\ell)`, the pixel probabilities."""
        return torch.sigmoid(self.logits)

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\sum_j x_j\ell_j - \mathrm{softplus}(\ell_j)`; ``x`` ``(B, C, H, W)`` broadcast -> ``(..., B)``."""
        logits, x = torch.broadcast_tensors(self.logits, x)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(_EVENT)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """One binary image per row, ``x_j ~ Bern(sigmoid(logit_j))``."""
        return torch.bernoulli(self.mean, generator=generator)


class GaussianPixels(NamedTuple):
    r"""Independent Gaussian pixels: ``mean`` ``(..., C, H, W)`` and ``logvar`` :math:`\log\sigma^2` (broadcastable)."""

    mean: Tensor
    logvar: Tensor

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.logvar).expand_as(self.mean)

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`-\tfrac12\sum_j\big(\log 2\pi + \log\sigma_j^2 + (x_j-\mu_j)^2/\sigma_j^2\big)` -> ``(..., B)``."""
        return -0.5 * (LOG_2PI + self.logvar + (x - self.mean).pow(2) * torch.exp(-self.logvar)).sum(_EVENT)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        r""":math:`x = \mu + \sigma\odot\varepsilon`: the mean plus independent noise on every pixel."""
        return D.reparameterize(self.mean, self.logvar, n_samples=None, generator=generator, validate=False)


class PixelHead(nn.Module):
    r"""Raw network output ``(..., k*C, H, W)`` -> :class:`BernoulliPixels` or :class:`GaussianPixels`.

    Args:
        x_shape: ``(C, H, W)``.
        likelihood: one of :data:`LIKELIHOODS`; decoder_var: one of :data:`DECODER_VAR` (Gaussian only).
        decoder_std: :math:`\sigma` for "fixed"; the initial :math:`\sigma` for "shared" and "learned".
        min_decoder_std: floor :math:`\sigma_{\min}` with :math:`\sigma^2 = \sigma^2_{\min} + e^{a}`; 0: no floor.
    """

    def __init__(self, x_shape: tuple[int, int, int], likelihood: str = "bernoulli", decoder_var: str = "fixed",
                 decoder_std: float = 0.1, min_decoder_std: float = 0.01):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood: got {likelihood!r}; need one of {LIKELIHOODS}")
        if decoder_var not in DECODER_VAR:
            raise ValueError(f"decoder_var: got {decoder_var!r}; need one of {DECODER_VAR}")
        if not (isinstance(decoder_std, (int, float)) and math.isfinite(decoder_std) and decoder_std > 0):
            raise ValueError(f"decoder_std: got {decoder_std!r}; need a positive float")
        if not (isinstance(min_decoder_std, (int, float)) and 0 <= min_decoder_std < decoder_std):
            raise ValueError(f"min_decoder_std: got {min_decoder_std!r}; need 0 <= min_decoder_std < decoder_std ({decoder_std})")
        self.x_shape = tuple(x_shape)
        self.likelihood, self.decoder_var = likelihood, decoder_var
        self.min_logvar = 2 * math.log(min_decoder_std) if min_decoder_std > 0 else None
        # e^{a} starts at decoder_std^2 - min^2, so sigma starts at decoder_std
        self.a0 = math.log(decoder_std**2 - min_decoder_std**2)
        self.learned_var = likelihood == "gaussian" and decoder_var == "learned"
        self.out_channels = x_shape[0] * (2 if self.learned_var else 1)
        if likelihood == "gaussian" and decoder_var == "shared":
            self.a = nn.Parameter(torch.full(self.x_shape, self.a0))  # one learned variance per pixel
        else:
            self.register_buffer("a", torch.full((), self.a0), persistent=False)

    def _logvar(self, a: Tensor) -> Tensor:
        # log(sigma_min^2 + e^a) = logaddexp(a, log sigma_min^2): a smooth floor at sigma_min^2
        return a if self.min_logvar is None else torch.logaddexp(a, torch.full_like(a, self.min_logvar))

    def forward(self, raw: Tensor) -> BernoulliPixels | GaussianPixels:
        if self.likelihood == "bernoulli":
            return BernoulliPixels(raw)
        if self.learned_var:
            mean, a = raw.chunk(2, dim=-3)  # (..., C, H, W) each
            return GaussianPixels(mean, self._logvar(a + self.a0))
        return GaussianPixels(raw, self._logvar(self.a))


class MLPDecoder(nn.Module):
    r"""Kingma & Welling's decoder: :math:`h = \tanh(W_3 z + b_3)`, raw statistics :math:`= W_4 h + b_4`.

    ``(..., m)`` -> ``(..., out_channels, H, W)``.
    """

    def __init__(self, z_dim: int, x_shape: tuple[int, int, int], out_channels: int, hidden: tuple[int, ...] = (400,),
                 activation: str = "tanh"):
        super().__init__()
        self.out_shape = (out_channels, *x_shape[1:])
        sizes = [z_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), _activation(activation)]
        layers.append(nn.Linear(sizes[-1], math.prod(self.out_shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).unflatten(-1, self.out_shape)  # (..., k*C, H, W)


class ConvDecoder(nn.Module):
    """Mirror of :class:`~vae_course.models.encoders.ConvEncoder`: a fully connected layer to a
    ``(c2, H/4, W/4)`` map, then two stride-2 transposed convolutions up to ``(out_channels, H, W)``."""

    def __init__(self, z_dim: int, x_shape: tuple[int, int, int], out_channels: int, hidden: int = 400,
                 channels: tuple[int, int] = (32, 64), activation: str = "relu"):
        super().__init__()
        h4, w4 = conv_sizes(x_shape)
        c1, c2 = channels
        self.fc = nn.Sequential(nn.Linear(z_dim, hidden), _activation(activation),
                                nn.Linear(hidden, c2 * h4 * w4), _activation(activation))
        self.map_shape = (c2, h4, w4)
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), _activation(activation),  # (B, c1, H/2, W/2)
            nn.ConvTranspose2d(c1, out_channels, 4, stride=2, padding=1),  # (B, k*C, H, W)
        )

    def forward(self, z: Tensor) -> Tensor:
        batch = z.shape[:-1]
        h = self.fc(z.reshape(-1, z.shape[-1])).unflatten(-1, self.map_shape)  # (N, c2, H/4, W/4)
        out = self.deconv(h)
        return out.reshape(*batch, *out.shape[1:])


class LinearDecoder(nn.Module):
    r"""An affine decoder :math:`\mu = Wz + b`, ``W`` ``(D, m)``: with a fixed Gaussian variance this is
    the linear-Gaussian model of chapter 3, whose :math:`\log p(x)` is exact
    (:func:`vae_course.evaluate.linear_gaussian_log_marginal`)."""

    def __init__(self, z_dim: int, x_shape: tuple[int, int, int], out_channels: int):
        super().__init__()
        self.out_shape = (out_channels, *x_shape[1:])
        self.linear = nn.Linear(z_dim, math.prod(self.out_shape))

    def forward(self, z: Tensor) -> Tensor:
        return self.linear(z).unflatten(-1, self.out_shape)
