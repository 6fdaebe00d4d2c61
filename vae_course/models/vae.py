r"""The variational autoencoder (Kingma & Welling, 2014; Rezende, Mohamed & Wierstra, 2014).

An encoder :math:`q_w(z\mid x) = \mathcal N(\mu_w(x), \mathrm{diag}\,\sigma^2_w(x))`, a decoder
:math:`p_\theta(x\mid z)` and the prior :math:`p(z) = \mathcal N(0, I_m)`, trained by maximising
the evidence lower bound, one estimate per data point:

.. math:: \mathrm{ELBO}(x) = \underbrace{\mathbb E_{q_w(z\mid x)}\big[\log p_\theta(x\mid z)\big]}_{\texttt{recon}}
          - \underbrace{\mathrm{KL}\big(q_w(z\mid x)\,\|\,\mathcal N(0, I)\big)}_{\texttt{kl}} \le \log p_\theta(x).

The expectation is estimated with ``n_samples`` reparameterised draws
:math:`z = \mu + \sigma\odot\varepsilon`; the KL is the closed form
:math:`\tfrac12\sum_j(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)`. The beta-weighted objective
``total = recon - beta * kl`` (Higgins et al., 2017) equals the ELBO at ``beta = 1``.

``deterministic=True`` turns the model into a **vanilla autoencoder**: :math:`z = \mu_w(x)` (no
noise) and no KL term, so the loss is the reconstruction error alone. Its latent codes are not
tied to :math:`\mathcal N(0, I)`, which is why decoding prior draws from it fails (chapter 5).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import distributions as D
from ..utils import check_positive_int
from .base import LossTerms, register_model
from .decoders import DECODER_VAR, LIKELIHOODS, ConvDecoder, LinearDecoder, MLPDecoder, PixelHead
from .encoders import ACTIVATIONS, POSTERIOR_VAR, ConvEncoder, LinearEncoder, MLPEncoder, Posterior

__all__ = ["VAEConfig", "VAE", "ELBO", "ARCHS"]

ARCHS = ("mlp", "conv", "linear")


@dataclass
class VAEConfig:
    """Everything needed to rebuild a :class:`VAE` (stored in checkpoints as plain values)."""

    x_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of one image
    z_dim: int = 20  # latent size m; Kingma & Welling compare 2, 5, 10 and 20
    hidden: int = 400  # hidden units: the MLP's layer (K&W used 500), the conv nets' dense layer
    arch: str = "mlp"  # "mlp" (K&W: one tanh layer), "conv" (two stride-2 convs), "linear" (exact log p(x))
    activation: str = "tanh"  # hidden nonlinearity; "relu" suits the conv nets
    likelihood: str = "bernoulli"  # p(x|z): "bernoulli" (binary pixels) or "gaussian"
    decoder_var: str = "fixed"  # gaussian only: "fixed" (decoder_std), "shared" (per pixel), "learned" (sigma(z))
    decoder_std: float = 0.1  # sigma for "fixed"; the starting sigma for "shared" and "learned"
    min_decoder_std: float = 0.01  # variance floor: sigma^2 = min^2 + e^a; 0 removes it (and lets sigma collapse)
    posterior_var: str = "exp"  # q(z|x) variance: "exp" (sigma^2 = e^a) or "softplus" (softplus(a) + 1e-4)
    deterministic: bool = False  # True: vanilla autoencoder, z = mu(x), no noise and no KL
    channels: tuple[int, int] = (32, 64)  # conv only: channels of the two conv layers

    def __post_init__(self) -> None:
        self.x_shape = tuple(self.x_shape)
        self.channels = tuple(self.channels)
        if len(self.x_shape) != 3:
            raise ValueError(f"x_shape: got {self.x_shape}; need (C, H, W), e.g. (1, 28, 28)")
        for i, s in enumerate(self.x_shape):
            check_positive_int(f"x_shape[{i}]", s)
        check_positive_int("z_dim", self.z_dim)
        check_positive_int("hidden", self.hidden)
        for name, value, allowed in (("arch", self.arch, ARCHS), ("activation", self.activation, tuple(ACTIVATIONS)),
                                     ("likelihood", self.likelihood, LIKELIHOODS),
                                     ("decoder_var", self.decoder_var, DECODER_VAR),
                                     ("posterior_var", self.posterior_var, POSTERIOR_VAR)):
            if value not in allowed:
                raise ValueError(f"{name}: got {value!r}; need one of {allowed}")
        if self.likelihood == "bernoulli" and self.decoder_var != "fixed":
            raise ValueError(f"decoder_var: got {self.decoder_var!r} with likelihood='bernoulli'; a Bernoulli has no "
                             "variance parameter, use likelihood='gaussian'")

    @property
    def x_dim(self) -> int:
        """Pixels per image, C * H * W."""
        c, h, w = self.x_shape
        return c * h * w


class ELBO(NamedTuple):
    r"""Per-example terms ``(B,)`` in nats: ``recon`` :math:`\hat{\mathbb E}_q\log p(x\mid z)`, ``kl``,
    ``elbo = recon - kl`` and ``total = recon - beta * kl`` (the objective that was maximised)."""

    recon: Tensor
    kl: Tensor
    elbo: Tensor
    total: Tensor


@register_model
class VAE(nn.Module):
    """A VAE built from a :class:`VAEConfig` (or keyword overrides: ``VAE(z_dim=2)``).

    Images are ``(B, C, H, W)`` (flat ``(B, C*H*W)`` is accepted); latents ``(B, m)``.
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig | None = None, **overrides):
        super().__init__()
        config = dataclasses.replace(config or VAEConfig(), **overrides)
        self.config = config
        c = config
        self.head = PixelHead(c.x_shape, c.likelihood, c.decoder_var, c.decoder_std, c.min_decoder_std)
        k = self.head.out_channels
        if c.arch == "mlp":
            self.encoder = MLPEncoder(c.x_dim, c.z_dim, (c.hidden,), c.activation, c.posterior_var)
            self.decoder = MLPDecoder(c.z_dim, c.x_shape, k, (c.hidden,), c.activation)
        elif c.arch == "conv":
            self.encoder = ConvEncoder(c.x_shape, c.z_dim, c.hidden, c.channels, c.activation, c.posterior_var)
            self.decoder = ConvDecoder(c.z_dim, c.x_shape, k, c.hidden, c.channels, c.activation)
        else:
            self.encoder = LinearEncoder(c.x_dim, c.z_dim, c.posterior_var)
            self.decoder = LinearDecoder(c.z_dim, c.x_shape, k)

    # ------------------------------------------------------------ the two halves
    def _images(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"x: got {type(x).__name__}{'' if not isinstance(x, Tensor) else ' of dtype ' + str(x.dtype)}; "
                            "need a floating torch.Tensor of images")
        shape = self.config.x_shape
        if x.dim() == 2 and x.shape[1] == self.config.x_dim:
            return x.reshape(-1, *shape)
        if x.dim() != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"x: got shape {tuple(x.shape)}; need (B, {', '.join(map(str, shape))}) or (B, {self.config.x_dim})")
        return x

    def encode(self, x: Tensor) -> Posterior:
        r""":math:`q_w(z\mid x)`: a :class:`~vae_course.models.encoders.Posterior` with ``mu``, ``logvar`` ``(B, m)``."""
        return self.encoder(self._images(x))

    def decode(self, z: Tensor):
        r""":math:`p_\theta(x\mid z)` for latents ``(..., m)``: Bernoulli or Gaussian pixels ``(..., C, H, W)``."""
        return self.head(self.decoder(z))

    # ------------------------------------------------------------ the objective
    def elbo(self, x: Tensor, beta: float = 1.0, n_samples: int = 1, *, generator: torch.Generator | None = None) -> ELBO:
        r"""Per-example ELBO terms for a batch ``x`` ``(B, C, H, W)``; ``n_samples`` draws of :math:`z` per example."""
        x = self._images(x)
        q = self.encoder(x)
        if self.config.deterministic:  # vanilla AE: z = mu(x), the loss is the reconstruction alone
            recon = self.decode(q.mu).log_prob(x)  # (B,)
            kl = torch.zeros_like(recon)
            return ELBO(recon, kl, recon, recon)
        z = q.sample(None if n_samples == 1 else check_positive_int("n_samples", n_samples), generator=generator)
        recon = self.decode(z).log_prob(x)  # (B,) or (S, B)
        if n_samples != 1:
            recon = recon.mean(0)
        kl = q.kl()  # (B,), closed form
        elbo = recon - kl
        return ELBO(recon, kl, elbo, elbo if beta == 1 else recon - beta * kl)

    def loss(self, x: Tensor, beta: float = 1.0, n_samples: int = 1) -> LossTerms:
        """``-mean(total)`` over the batch, with the mean terms for the history (the :func:`~vae_course.train.fit` protocol)."""
        t = self.elbo(x, beta=beta, n_samples=n_samples)
        loss = -t.total.mean()
        return LossTerms(loss, {"loss": loss, "elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean()})

    def forward(self, x: Tensor) -> ELBO:
        return self.elbo(x)

    def log_weights(self, x: Tensor, k: int, *, generator: torch.Generator | None = None) -> Tensor:
        r"""Importance log-weights :math:`\log p(x\mid z_i) + \log p(z_i) - \log q(z_i\mid x)`, :math:`z_i\sim q`:
        ``(k, B)``. Their log-mean-exp is the IWAE bound (:func:`vae_course.evaluate.log_likelihood`)."""
        if self.config.deterministic:
            raise ValueError("log_weights: this model is a deterministic autoencoder (deterministic=True); it has no "
                             "q(z|x) and no likelihood bound")
        x = self._images(x)
        q = self.encoder(x)
        z = q.sample(check_positive_int("k", k), generator=generator)  # (k, B, m)
        return self.decode(z).log_prob(x) + D.log_normal_std(z, validate=False) - q.log_prob(z)

    # ------------------------------------------------------------ generation
    @torch.no_grad()
    def sample(self, n: int, *, mean: bool = True, generator: torch.Generator | None = None,
               z: Tensor | None = None) -> Tensor:
        r"""Sample_VAE: :math:`z\sim\mathcal N(0, I)`, then the decoder mean :math:`\mathbb E[x\mid z]`
        (``mean=True``) or a draw :math:`x\sim p_\theta(x\mid z)`. Returns ``(n, C, H, W)``."""
        n = check_positive_int("n", n)
        device = next(self.parameters()).device
        if z is None:
            z = torch.randn(n, self.config.z_dim, generator=generator, device=device)
        p = self.decode(z.to(device))
        return p.mean if mean else p.sample(generator)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, *, sample_latent: bool = False, mean: bool = True,
                    generator: torch.Generator | None = None) -> Tensor:
        r"""Encode then decode: :math:`z = \mu(x)` (or a draw of :math:`q` if ``sample_latent``), then the
        decoder mean (or a draw if ``mean=False``). ``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        q = self.encode(x)
        z = q.sample(generator=generator) if sample_latent and not self.config.deterministic else q.mu
        p = self.decode(z)
        return p.mean if mean else p.sample(generator)
