r"""A VAE whose decoder is a PixelCNN conditioned on :math:`z`: strong enough to ignore the latent (chapter 7).

The encoder is the usual :math:`q_w(z\mid x) = \mathcal N(\mu_w(x), \mathrm{diag}\,\sigma^2_w(x))`; the decoder is
autoregressive over the pixels,

.. math:: p_\theta(x\mid z) = \prod_{i=1}^{D} \mathrm{Bern}\big(x_i;\ \sigma(\ell_i(x_{<i}, z))\big),

a :class:`~vae_course.models.masked.PixelCNN` with ``cond_dim = z_dim`` (Chen et al., 2017; Gulrajani et al., 2017).
Unlike the factorised decoder of chapter 5, it can model the dependence between pixels on its own, so the
ELBO can be maximised with :math:`q(z\mid x) = p(z)` for every :math:`x` (KL = 0): **posterior collapse**.

The training objective, minimised by :func:`vae_course.train.fit` through :meth:`AutoregressiveVAE.loss`:

.. math:: -\mathbb E_q[\log p_\theta(x\mid z)] + \beta\cdot R,\qquad
          R = \begin{cases} \mathrm{KL}(q(z\mid x)\,\|\,p(z)) & \text{free\_bits} = 0\\
          \sum_g \max\big(\lambda,\ \overline{\mathrm{KL}}_g\big) & \text{free\_bits} = \lambda > 0 \end{cases}

(:func:`vae_course.objectives.free_bits_kl`, Kingma et al., 2016); the ELBO, the loss and the importance weights
are :class:`~vae_course.models.vae_base.VAEBase`'s, the same as the VAE's. The history always records the true ELBO.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..nets import ACTIVATIONS
from ..utils import check_positive_int
from .base import register_model
from .encoders import MLPEncoder
from .masked import PixelCNN
from .priors import PRIORS, build_prior
from .vae_base import VAEBase

__all__ = ["AutoregressiveVAEConfig", "AutoregressiveVAE", "AutoregressivePixels"]


@dataclass
class AutoregressiveVAEConfig:
    """Everything needed to rebuild an :class:`AutoregressiveVAE` (plain values, stored in checkpoints)."""

    x_shape: tuple[int, int, int] = (1, 8, 8)  # (C, H, W); binary pixels
    z_dim: int = 8  # latent size m
    hidden: int = 256  # the MLP encoder's hidden units
    activation: str = "tanh"  # the encoder's nonlinearity
    pixel_hidden: int = 32  # channels of the PixelCNN decoder
    pixel_layers: int = 1  # residual mask-B layers of the decoder
    first_kernel: int = 3  # kernel of the mask-A layer (with pixel_layers, sets how far back one pixel sees)
    kernel: int = 3  # kernel of the mask-B layers
    cond_map: int = 0  # 0: z is one bias per channel (conditional PixelCNN); c > 0: an MLP turns z into a (c, H, W) map
    prior: str = "standard"  # p(z): "standard" (N(0, I)), "mixture" (learned Gaussians) or "vamp" (VampPrior)
    prior_components: int = 10  # mixture: number of Gaussians; vamp: number of pseudo-inputs

    def __post_init__(self) -> None:
        self.x_shape = tuple(self.x_shape)
        if len(self.x_shape) != 3:
            raise ValueError(f"x_shape: got {self.x_shape}; need (C, H, W), e.g. (1, 8, 8)")
        for name in ("z_dim", "hidden", "pixel_hidden"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("pixel_layers", self.pixel_layers, allow_zero=True)
        check_positive_int("cond_map", self.cond_map, allow_zero=True)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: got {self.activation!r}; need one of {tuple(ACTIVATIONS)}")
        if self.prior not in PRIORS:
            raise ValueError(f"prior: got {self.prior!r}; need one of {PRIORS}")
        check_positive_int("prior_components", self.prior_components)

    @property
    def x_dim(self) -> int:
        c, h, w = self.x_shape
        return c * h * w


class AutoregressivePixels(NamedTuple):
    r""":math:`p_\theta(x\mid z)` of the PixelCNN decoder for latents of batch shape ``lead`` = ``(..., B)``:
    ``cond`` holds what the PixelCNN is conditioned on, flattened to ``(N, ...)``; ``log_prob(x)`` and ``sample``."""

    net: PixelCNN
    cond: Tensor
    lead: tuple[int, ...]
    x_shape: tuple[int, int, int]

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\sum_i\log p(x_i\mid x_{<i}, z)` for images ``x`` ``(B, C, H, W)``: ``(..., B)`` (teacher forcing)."""
        xs = x.expand(*self.lead[:-1], *x.shape).reshape(-1, *self.x_shape)  # (N, C, H, W): x repeated per draw
        return self.net.log_prob(xs, self.cond).reshape(self.lead)

    def sample(self, generator: torch.Generator | None = None, *, noise: Tensor | None = None) -> Tensor:
        """One image per latent, pixel by pixel: ``(N, C, H, W)``."""
        return self.net.sample((self.cond.shape[0], *self.x_shape), self.cond, generator, noise=noise)


@register_model
class AutoregressiveVAE(VAEBase):
    """An MLP encoder and a PixelCNN decoder conditioned on z; built from an :class:`AutoregressiveVAEConfig`
    (or keyword overrides: ``AutoregressiveVAE(z_dim=4)``). Images ``(B, C, H, W)`` of 0/1 pixels."""

    config_class = AutoregressiveVAEConfig

    def __init__(self, config: AutoregressiveVAEConfig | None = None, **overrides):
        super().__init__()
        c = dataclasses.replace(config or AutoregressiveVAEConfig(), **overrides)
        self.config = c
        self.encoder = MLPEncoder(c.x_dim, c.z_dim, (c.hidden,), c.activation)
        self.z_to_map = None
        if c.cond_map:  # z -> a (cond_map, H, W) map: the condition can depend on the position, like an MLP decoder
            self.z_to_map = nn.Sequential(nn.Linear(c.z_dim, c.hidden), ACTIVATIONS[c.activation](),
                                          nn.Linear(c.hidden, c.cond_map * c.x_shape[1] * c.x_shape[2]))
        self.decoder = PixelCNN(c.x_shape[0], c.pixel_hidden, c.pixel_layers, cond_dim=c.cond_map or c.z_dim,
                                first_kernel=c.first_kernel, kernel=c.kernel)
        self.prior = build_prior(c.prior, c.z_dim, n_components=c.prior_components, encoder=self.encoder,
                                 x_shape=c.x_shape)

    def decode(self, z: Tensor) -> AutoregressivePixels:
        r""":math:`p_\theta(x\mid z)` for latents ``(..., B, m)``; call ``.log_prob(x)`` or ``.sample()``."""
        c = self.config
        if z.dim() < 2 or z.shape[-1] != c.z_dim:
            raise ValueError(f"z: got shape {tuple(z.shape)}; need (..., B, {c.z_dim})")
        cond = z.reshape(-1, c.z_dim)  # (N, m)
        if self.z_to_map is not None:
            cond = self.z_to_map(cond).unflatten(-1, (c.cond_map, *c.x_shape[1:]))  # (N, cond_map, H, W)
        return AutoregressivePixels(self.decoder, cond, tuple(z.shape[:-1]), c.x_shape)

    def generate(self, z: Tensor, *, noise: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        r"""Images for latents ``z`` ``(n, m)``, drawn pixel by pixel from :math:`p_\theta(x\mid z)`; ``noise``: uniforms
        broadcastable to ``(n, C, H, W)`` (shared noise isolates the effect of z). :meth:`sample` calls it with
        :math:`z\sim p(z)`."""
        return self.decode(z).sample(generator, noise=noise)
