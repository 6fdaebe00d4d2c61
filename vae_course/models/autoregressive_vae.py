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

(:func:`vae_course.collapse.free_bits_kl`, Kingma et al., 2016). The history always records the true ELBO.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import distributions as D
from ..collapse import free_bits_kl, kl_per_dimension
from ..utils import check_positive_int
from .base import LossTerms, register_model
from .encoders import ACTIVATIONS, MLPEncoder, Posterior
from .masked import PixelCNN
from .vae import ELBO

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
class AutoregressiveVAE(nn.Module):
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

    def _images(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"x: got {type(x).__name__}; need a floating torch.Tensor of binary images")
        shape = self.config.x_shape
        if x.dim() == 2 and x.shape[1] == self.config.x_dim:
            return x.reshape(-1, *shape)
        if x.dim() != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"x: got shape {tuple(x.shape)}; need (B, {', '.join(map(str, shape))})")
        return x

    def encode(self, x: Tensor) -> Posterior:
        r""":math:`q_w(z\mid x)`: ``mu``, ``logvar`` ``(B, m)``."""
        return self.encoder(self._images(x))

    def decode(self, z: Tensor) -> AutoregressivePixels:
        r""":math:`p_\theta(x\mid z)` for latents ``(..., B, m)``; call ``.log_prob(x)`` or ``.sample()``."""
        c = self.config
        if z.dim() < 2 or z.shape[-1] != c.z_dim:
            raise ValueError(f"z: got shape {tuple(z.shape)}; need (..., B, {c.z_dim})")
        cond = z.reshape(-1, c.z_dim)  # (N, m)
        if self.z_to_map is not None:
            cond = self.z_to_map(cond).unflatten(-1, (c.cond_map, *c.x_shape[1:]))  # (N, cond_map, H, W)
        return AutoregressivePixels(self.decoder, cond, tuple(z.shape[:-1]), c.x_shape)

    def elbo(self, x: Tensor, beta: float = 1.0, n_samples: int = 1, *, free_bits: float = 0.0,
             free_bits_group: int = 1, generator: torch.Generator | None = None) -> ELBO:
        """Per-example ``recon``, ``kl``, ``elbo`` ``(B,)``; ``total`` is minus the per-example training loss."""
        x = self._images(x)
        q = self.encoder(x)
        z = q.sample(None if n_samples == 1 else check_positive_int("n_samples", n_samples), generator=generator)
        recon = self.decode(z).log_prob(x)  # (B,) or (S, B)
        if n_samples != 1:
            recon = recon.mean(0)
        kl_dims = kl_per_dimension(q.mu, q.logvar)  # (B, m): one KL per latent dimension
        kl = kl_dims.sum(-1)
        if free_bits > 0:
            # the floor acts on batch means, so the penalty is one number for the batch (broadcast to (B,))
            total = recon - beta * free_bits_kl(kl_dims, free_bits, group_size=free_bits_group)
        else:
            total = recon - beta * kl
        return ELBO(recon, kl, recon - kl, total)

    def loss(self, x: Tensor, beta: float = 1.0, free_bits: float = 0.0, free_bits_group: int = 1,
             n_samples: int = 1) -> LossTerms:
        r"""The :func:`~vae_course.train.fit` protocol: minus the mean of ``recon - beta * R`` (module doc)."""
        t = self.elbo(x, beta=beta, n_samples=n_samples, free_bits=free_bits, free_bits_group=free_bits_group)
        loss = -t.total.mean()
        return LossTerms(loss, {"loss": loss, "elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean()})

    def forward(self, x: Tensor) -> ELBO:
        return self.elbo(x)

    def log_weights(self, x: Tensor, k: int, *, generator: torch.Generator | None = None) -> Tensor:
        r"""Importance log-weights :math:`\log p(x\mid z_i) + \log p(z_i) - \log q(z_i\mid x)`, ``(k, B)`` (IWAE)."""
        x = self._images(x)
        q = self.encoder(x)
        z = q.sample(check_positive_int("k", k), generator=generator)  # (k, B, m)
        return self.decode(z).log_prob(x) + D.log_normal_std(z, validate=False) - q.log_prob(z)

    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, noise: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        r""":math:`z\sim\mathcal N(0, I)` (or the given ``z`` ``(n, m)``), then :math:`x\sim p_\theta(x\mid z)` pixel by
        pixel; ``noise``: uniforms broadcastable to ``(n, C, H, W)``, shared noise isolates the effect of z."""
        n = check_positive_int("n", n)
        device = next(self.parameters()).device
        if z is None:
            z = torch.randn(n, self.config.z_dim, generator=generator, device=device)
        elif z.shape != (n, self.config.z_dim):
            raise ValueError(f"z: got shape {tuple(z.shape)}; need ({n}, {self.config.z_dim})")
        return self.decode(z.to(device)).sample(generator, noise=noise)
