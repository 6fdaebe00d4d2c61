r"""A two-level VAE with top-down inference, in the style of the ladder VAE (chapter 9).

The generative model has two latent levels, a top :math:`z_2` and a bottom :math:`z_1`:

.. math:: p(z_2) = \mathcal N(0, I),\qquad p_\theta(z_1\mid z_2) = \mathcal N\big(\mu_p(z_2), \mathrm{diag}\,\sigma_p^2(z_2)\big),
          \qquad p_\theta(x\mid z_1).

Inference runs **bottom-up, then top-down** (Sønderby et al., 2016; the same order as NVAE and VDVAE): a
bottom-up pass computes features of :math:`x` and from them :math:`q(z_2\mid x)` and a Gaussian "bottom-up
estimate" :math:`\mathcal N(\hat\mu_1(x), \hat\sigma_1^2(x))` of :math:`z_1`; then :math:`z_2` is drawn and the
posterior of :math:`z_1` combines the estimate with the generative model's own top-down prediction
:math:`p_\theta(z_1\mid z_2)` by precision weighting (:func:`precision_weighted`):

.. math:: \sigma_q^{-2} = \hat\sigma_1^{-2} + \sigma_p^{-2},\qquad \mu_q = \sigma_q^2\big(\hat\mu_1\hat\sigma_1^{-2} + \mu_p\sigma_p^{-2}\big).

The top-down network is shared by the prior and the posterior. The ELBO has one KL per level, each in closed form
given the draw of :math:`z_2` (so free bits can floor each level):

.. math:: \mathrm{ELBO} = \mathbb E_q[\log p_\theta(x\mid z_1)] - \mathrm{KL}\big(q(z_2\mid x)\,\|\,p(z_2)\big)
          - \mathbb E_{q(z_2\mid x)}\mathrm{KL}\big(q(z_1\mid x, z_2)\,\|\,p_\theta(z_1\mid z_2)\big).

The latent the skeleton sees is :math:`z = (z_1, z_2)`, ``(..., B, m_1 + m_2)``; its prior
(:class:`LadderPrior`) has :math:`\log p(z) = \log p(z_2) + \log p_\theta(z_1\mid z_2)` and samples ancestrally, so
the ELBO, the loss options, the importance weights and Sample_VAE are :class:`~vae_course.models.vae_base.VAEBase`'s.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .. import distributions as D
from ..nets import ACTIVATIONS, activation as _activation
from ..utils import check_positive_int
from .base import register_model
from .decoders import MLPDecoder, PixelHead
from .encoders import MLPEncoder
from .priors import _draw
from .vae_base import LatentDraws, VAEBase

__all__ = ["precision_weighted", "LadderPrior", "LadderVAEConfig", "LadderVAE"]


def precision_weighted(a: D.DiagonalGaussian, b: D.DiagonalGaussian) -> D.DiagonalGaussian:
    r"""The normalised product of two diagonal Gaussians, :math:`\mathcal N(\mu_a, \sigma_a^2)\,\mathcal N(\mu_b, \sigma_b^2)
    \propto \mathcal N(\mu, \sigma^2)` with :math:`\sigma^{-2} = \sigma_a^{-2} + \sigma_b^{-2}` and
    :math:`\mu = \sigma^2(\mu_a\sigma_a^{-2} + \mu_b\sigma_b^{-2})`. Shapes broadcast; computed from log-variances."""
    logvar = -torch.logaddexp(-a.logvar, -b.logvar)  # log sigma^2 = -log(sigma_a^-2 + sigma_b^-2)
    mu = (a.mu * torch.exp(logvar - a.logvar) + b.mu * torch.exp(logvar - b.logvar))
    return D.DiagonalGaussian(mu, logvar)


class LadderPrior(nn.Module):
    r""":math:`p(z_1, z_2) = \mathcal N(z_2; 0, I)\,\mathcal N\big(z_1; \mu_p(z_2), \sigma_p^2(z_2)\big)` with a one-hidden-layer
    top-down network; latents are :math:`z = (z_1, z_2)`, ``(..., m_1 + m_2)``. ``kl`` is None: the model computes its
    KL level by level."""

    def __init__(self, z1_dim: int, z2_dim: int, hidden: int = 128, activation: str = "tanh"):
        super().__init__()
        self.z1_dim, self.z2_dim = check_positive_int("z1_dim", z1_dim), check_positive_int("z2_dim", z2_dim)
        self.z_dim = self.z1_dim + self.z2_dim
        self.top_down = nn.Sequential(nn.Linear(self.z2_dim, hidden), _activation(activation),
                                      nn.Linear(hidden, 2 * self.z1_dim))

    def split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(z_1, z_2)`` from ``z`` ``(..., m_1 + m_2)``."""
        return z[..., :self.z1_dim], z[..., self.z1_dim:]

    def conditional(self, z2: Tensor) -> D.DiagonalGaussian:
        r""":math:`p_\theta(z_1\mid z_2)` for ``z2`` ``(..., m_2)``: ``(..., m_1)``."""
        mu, logvar = self.top_down(z2).chunk(2, dim=-1)
        return D.DiagonalGaussian(mu, logvar.clamp(-12.0, 6.0))

    def log_prob(self, z: Tensor) -> Tensor:
        r""":math:`\log\mathcal N(z_2; 0, I) + \log p_\theta(z_1\mid z_2)`: ``(..., m_1 + m_2)`` -> ``(...)``."""
        z1, z2 = self.split(z)
        return D.log_normal_std(z2, validate=False) + self.conditional(z2).log_prob(z1)

    def sample(self, n: int, generator: torch.Generator | None = None, *, z2: Tensor | None = None) -> Tensor:
        r"""Ancestral draws ``(n, m_1 + m_2)``: :math:`z_2\sim\mathcal N(0, I)` (or the given ``z2`` ``(n, m_2)``), then
        :math:`z_1\sim p_\theta(z_1\mid z_2)`."""
        n = check_positive_int("n", n)
        anchor = self.top_down[0].weight
        with torch.no_grad():
            if z2 is None:
                z2 = _draw((n, self.z2_dim), generator, anchor)
            p1 = self.conditional(z2)
            z1 = p1.sample(generator=generator)
            return torch.cat([z1, z2], dim=-1)

    def kl(self, q: D.DiagonalGaussian, *, per_dimension: bool = False) -> None:
        """No closed form for a diagonal q against the joint of both levels; see :meth:`LadderVAE.posterior_draws`."""
        return None

    def extra_repr(self) -> str:
        return f"z1_dim={self.z1_dim}, z2_dim={self.z2_dim}"


@dataclass
class LadderVAEConfig:
    """Everything needed to rebuild a :class:`LadderVAE` (plain values, stored in checkpoints)."""

    x_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of one image; Bernoulli pixels
    z1_dim: int = 16  # bottom latent m_1, read by the decoder
    z2_dim: int = 8  # top latent m_2
    hidden: int = 400  # hidden units of the bottom-up MLP and of the decoder
    hidden2: int = 128  # hidden units of the second bottom-up layer and of the top-down network
    activation: str = "tanh"  # every hidden nonlinearity

    def __post_init__(self) -> None:
        self.x_shape = tuple(self.x_shape)
        if len(self.x_shape) != 3:
            raise ValueError(f"x_shape: got {self.x_shape}; need (C, H, W), e.g. (1, 28, 28)")
        for name in ("z1_dim", "z2_dim", "hidden", "hidden2"):
            check_positive_int(name, getattr(self, name))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: got {self.activation!r}; need one of {tuple(ACTIVATIONS)}")

    @property
    def z_dim(self) -> int:
        """The size of the latents the skeleton sees (both levels together, m_1 + m_2)."""
        return self.z1_dim + self.z2_dim

    @property
    def x_dim(self) -> int:
        c, h, w = self.x_shape
        return c * h * w


@register_model
class LadderVAE(VAEBase):
    """The two-level VAE of the module doc, built from a :class:`LadderVAEConfig` (or keyword overrides:
    ``LadderVAE(z2_dim=4)``). Images ``(B, C, H, W)`` of 0/1 pixels; latents ``(B, m_1 + m_2)``, bottom level first."""

    config_class = LadderVAEConfig

    def __init__(self, config: LadderVAEConfig | None = None, **overrides):
        super().__init__()
        c = dataclasses.replace(config or LadderVAEConfig(), **overrides)
        self.config = c
        self.encoder = MLPEncoder(c.x_dim, c.z1_dim, (c.hidden,), c.activation)  # bottom-up estimate of z_1
        self.up = nn.Sequential(nn.Linear(c.hidden, c.hidden2), _activation(c.activation),
                                nn.Linear(c.hidden2, 2 * c.z2_dim))  # bottom-up features -> q(z_2 | x)
        self.prior = LadderPrior(c.z1_dim, c.z2_dim, c.hidden2, c.activation)
        self.head = PixelHead(c.x_shape, "bernoulli")
        self.decoder = MLPDecoder(c.z1_dim, c.x_shape, self.head.out_channels, (c.hidden,), c.activation)

    # ------------------------------------------------------------ inference, bottom-up then top-down
    def _bottom_up(self, x: Tensor) -> tuple[D.DiagonalGaussian, D.DiagonalGaussian]:
        """``(estimate of z_1 (B, m_1), q(z_2 | x) (B, m_2))`` from one bottom-up pass."""
        h = self.encoder.trunk(x)  # (B, hidden)
        mu2, logvar2 = self.up(h).chunk(2, dim=-1)
        return self.encoder.posterior(h), D.DiagonalGaussian(mu2, logvar2.clamp(-12.0, 6.0))

    def posterior_draws(self, x: Tensor, n_samples: int | None = None, *,
                        generator: torch.Generator | None = None) -> LatentDraws:
        r""":math:`z_2\sim q(z_2\mid x)`, then :math:`z_1\sim q(z_1\mid x, z_2)` (precision weighting of the bottom-up
        estimate and :math:`p_\theta(z_1\mid z_2)`); the KL per coordinate is closed form for each level, the bottom
        level's averaged over the draws of :math:`z_2`. ``z`` is ``(z_1, z_2)``."""
        est1, q2 = self._bottom_up(x)
        z2 = q2.sample(n_samples, generator=generator)  # (..., B, m_2)
        p1 = self.prior.conditional(z2)  # (..., B, m_1)
        q1 = precision_weighted(est1, p1)
        z1 = q1.sample(generator=generator)  # (..., B, m_1)
        z = torch.cat([z1, z2], dim=-1)
        kl1 = D.kl_normal_diag(q1.mu[..., None], q1.logvar[..., None], p1.mu[..., None], p1.logvar[..., None],
                               validate=False)  # (..., B, m_1): one KL per coordinate
        kl1 = kl1 if kl1.dim() == 2 else kl1.mean(0)
        kl2 = D.kl_normal_std(q2.mu, q2.logvar, per_dimension=True, validate=False)  # (B, m_2)
        log_q = q1.log_prob(z1) + q2.log_prob(z2)
        return LatentDraws(z, log_q, self.prior.log_prob(z), torch.cat([kl1, kl2], dim=-1))

    def encode(self, x: Tensor) -> D.DiagonalGaussian:
        r"""The posterior along the mean path: :math:`q(z_2\mid x)` and :math:`q(z_1\mid x, z_2 = \mu_2(x))`, concatenated
        ``(B, m_1 + m_2)`` (bottom level first); the active units and latent maps of chapters 5-7 read it."""
        est1, q2 = self._bottom_up(self._images(x))
        q1 = precision_weighted(est1, self.prior.conditional(q2.mu))
        return D.DiagonalGaussian(torch.cat([q1.mu, q2.mu], -1), torch.cat([q1.logvar, q2.logvar], -1))

    @torch.no_grad()
    def kl_per_level(self, x: Tensor, *, generator: torch.Generator | None = None) -> tuple[float, float]:
        """The mean KL of the bottom and the top level over images ``x``, nats: ``(kl_bottom, kl_top)``."""
        kl = self.posterior_draws(self._images(x), generator=generator).kl_dims  # (B, m_1 + m_2)
        m1 = self.config.z1_dim
        return float(kl[:, :m1].sum(-1).mean()), float(kl[:, m1:].sum(-1).mean())

    # ------------------------------------------------------------ generation
    def decode(self, z: Tensor):
        r""":math:`p_\theta(x\mid z_1)` for latents ``(..., m_1 + m_2)`` (the top level reaches x only through z_1)."""
        return self.head(self.decoder(z[..., :self.config.z1_dim]))

    def generate(self, z: Tensor, *, mean: bool = True, generator: torch.Generator | None = None) -> Tensor:
        """Images for latents ``z`` ``(n, m_1 + m_2)``: the decoder mean, or a binary draw if ``mean=False``."""
        p = self.decode(z)
        return p.mean if mean else p.sample(generator)

    @torch.no_grad()
    def sample_levels(self, n_top: int, n_bottom: int, *, z2: Tensor | None = None,
                      generator: torch.Generator | None = None) -> Tensor:
        r"""What each level encodes: ``n_top`` draws :math:`z_2\sim p(z_2)` (or the given ``z2`` ``(n_top, m_2)``, e.g. the
        top-level means of encoded images), and for each ``n_bottom`` draws :math:`z_1\sim p_\theta(z_1\mid z_2)`: decoder
        means ``(n_top, n_bottom, C, H, W)``."""
        n_top, n_bottom = check_positive_int("n_top", n_top), check_positive_int("n_bottom", n_bottom)
        anchor = self.prior.top_down[0].weight
        if z2 is None:
            z2 = _draw((n_top, self.config.z2_dim), generator, anchor)
        elif tuple(z2.shape) != (n_top, self.config.z2_dim):
            raise ValueError(f"z2: got shape {tuple(z2.shape)}; need ({n_top}, {self.config.z2_dim})")
        z = self.prior.sample(n_top * n_bottom, generator, z2=z2.to(anchor.device).repeat_interleave(n_bottom, 0))
        return self.generate(z).reshape(n_top, n_bottom, *self.config.x_shape)
