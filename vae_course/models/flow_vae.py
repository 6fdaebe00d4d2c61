r"""A VAE whose posterior is a normalising flow on top of the encoder's Gaussian (chapter 9).

The encoder gives a diagonal Gaussian :math:`q_0(z_0\mid x)` and features :math:`h(x)`; ``flow_layers`` invertible
layers (:mod:`vae_course.flows`: planar or IAF, conditioned on :math:`h(x)`) map :math:`z_0` to :math:`z = z_K`:

.. math:: \log q(z_K\mid x) = \log q_0(z_0\mid x) - \sum_{k=1}^K \log\Big|\det\frac{\partial f_k}{\partial z_{k-1}}\Big|,
          \qquad \mathrm{ELBO}(x) = \mathbb E_{q_0}\Big[\log p_\theta(x\mid z_K) + \log p(z_K) - \log q(z_K\mid x)\Big]

(Rezende & Mohamed, 2015; Kingma et al., 2016). There is no closed-form KL, so the ELBO's KL is the Monte-Carlo
mean of :math:`\log q(z_K\mid x) - \log p(z_K)` over its own draws. The model is a :class:`~vae_course.models.VAE`
with one more part: the decoder, the prior, the loss options, the importance weights and sampling are the VAE's;
only the hook :meth:`~vae_course.models.vae_base.VAEBase.posterior_draws` changes. Because its encoder, decoder
and prior are a VAE's, a trained VAE's weights load into it (``load_state_dict(vae.state_dict(), strict=False)``),
which is how chapter 9 gives one decoder a richer posterior. With ``flow_layers = 0`` it is the VAE itself.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from ..flows import FLOWS, build_flow
from ..utils import check_positive_int
from .base import register_model
from .vae import VAE, VAEConfig
from .vae_base import LatentDraws

__all__ = ["FlowVAEConfig", "FlowVAE"]


@dataclass
class FlowVAEConfig(VAEConfig):
    """A :class:`~vae_course.models.VAEConfig` plus the flow (plain values, stored in checkpoints)."""

    flow: str = "iaf"  # "iaf" (inverse autoregressive, Kingma et al. 2016) or "planar" (Rezende & Mohamed 2015)
    flow_layers: int = 2  # number of flow layers K; 0 gives the plain VAE
    flow_hidden: int = 64  # IAF only: hidden units of each layer's MADE
    flow_seed: int = 0  # planar only: seeds the layers' initial (u, w)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.flow not in FLOWS:
            raise ValueError(f"flow: got {self.flow!r}; need one of {FLOWS}")
        check_positive_int("flow_layers", self.flow_layers, allow_zero=True)
        check_positive_int("flow_hidden", self.flow_hidden)
        if self.deterministic:
            raise ValueError("deterministic: got True; a flow posterior needs a stochastic encoder")


@register_model
class FlowVAE(VAE):
    """A :class:`~vae_course.models.VAE` with a flow posterior, built from a :class:`FlowVAEConfig` (or keyword
    overrides: ``FlowVAE(z_dim=16, flow="planar", flow_layers=8)``). Images ``(B, C, H, W)``; latents ``(B, m)``."""

    config_class = FlowVAEConfig

    def __init__(self, config: FlowVAEConfig | None = None, **overrides):
        super().__init__(dataclasses.replace(config or FlowVAEConfig(), **overrides))
        c = self.config
        context = self.encoder.head.in_features  # the features h(x) the encoder's last layer reads
        self.flow = build_flow(c.flow, c.z_dim, c.flow_layers, context_dim=context, hidden=c.flow_hidden,
                               seed=c.flow_seed)

    def posterior_draws(self, x: Tensor, n_samples: int | None = None, *,
                        generator: torch.Generator | None = None) -> LatentDraws:
        r"""Draws :math:`z_K = f_K\circ\dots\circ f_1(z_0)`, :math:`z_0\sim q_0(z_0\mid x)`, and
        :math:`\log q(z_K\mid x) = \log q_0(z_0\mid x) - \sum_k\log|\det\partial f_k/\partial z_{k-1}|`; no closed-form KL."""
        h = self.encoder.trunk(x)  # (B, F)
        q0 = self.encoder.posterior(h)  # (B, m)
        z0 = q0.sample(n_samples, generator=generator)  # (B, m) or (S, B, m)
        z, log_det = self.flow(z0, h)  # (..., B, m), (..., B)
        return LatentDraws(z, q0.log_prob(z0) - log_det, self.prior.log_prob(z), None)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, *, sample_latent: bool = False, mean: bool = True,
                    generator: torch.Generator | None = None) -> Tensor:
        r"""Encode then decode, through the flow: :math:`z = f(\mu_0(x))` (or :math:`f(z_0)`, :math:`z_0\sim q_0`, if
        ``sample_latent``). ``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        x = self._images(x)
        h = self.encoder.trunk(x)
        q0 = self.encoder.posterior(h)
        z, _ = self.flow(q0.sample(generator=generator) if sample_latent else q0.mu, h)
        return self.generate(z, mean=mean, generator=generator)
