r"""The variational autoencoder (Kingma & Welling, 2014; Rezende, Mohamed & Wierstra, 2014), chapter 5.

An encoder :math:`q_w(z\mid x) = \mathcal N(\mu_w(x), \mathrm{diag}\,\sigma^2_w(x))`, a decoder
:math:`p_\theta(x\mid z)` (:mod:`vae_course.models.decoders`) and a prior :math:`p(z)`, :math:`\mathcal N(0, I_m)` by
default (:mod:`vae_course.models.priors`), trained by maximising the evidence lower bound; the ELBO, the loss
and the importance weights come from :class:`~vae_course.models.vae_base.VAEBase`. The KL to the standard normal is
the closed form :math:`\tfrac12\sum_j(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)`. The beta-weighted objective
``total = recon - beta * kl`` (Higgins et al., 2017) equals the ELBO at ``beta = 1``.

``deterministic=True`` turns the model into a **vanilla autoencoder**: :math:`z = \mu_w(x)` (no
noise) and no KL term, so the loss is the reconstruction error alone. Its latent codes are not
tied to :math:`\mathcal N(0, I)`, which is why decoding prior draws from it fails (chapter 5).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from ..nets import ACTIVATIONS
from ..utils import check_positive_int
from .base import register_model
from .decoders import DECODER_VAR, LIKELIHOODS, ConvDecoder, LinearDecoder, MLPDecoder, PixelHead
from .encoders import POSTERIOR_VAR, ConvEncoder, LinearEncoder, MLPEncoder
from .priors import PRIORS, build_prior
from .vae_base import ELBO, VAEBase

__all__ = ["VAEConfig", "VAE", "ARCHS"]

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
    prior: str = "standard"  # p(z): "standard" (N(0, I)), "mixture" (learned Gaussians) or "vamp" (VampPrior)
    prior_components: int = 10  # mixture: number of Gaussians; vamp: number of pseudo-inputs

    def __post_init__(self) -> None:
        self.x_shape = tuple(self.x_shape)
        self.channels = tuple(self.channels)
        if len(self.x_shape) != 3:
            raise ValueError(f"x_shape: got {self.x_shape}; need (C, H, W), e.g. (1, 28, 28)")
        for i, s in enumerate(self.x_shape):
            check_positive_int(f"x_shape[{i}]", s)
        check_positive_int("z_dim", self.z_dim)
        check_positive_int("hidden", self.hidden)
        check_positive_int("prior_components", self.prior_components)
        for name, value, allowed in (("arch", self.arch, ARCHS), ("activation", self.activation, tuple(ACTIVATIONS)),
                                     ("likelihood", self.likelihood, LIKELIHOODS),
                                     ("decoder_var", self.decoder_var, DECODER_VAR),
                                     ("posterior_var", self.posterior_var, POSTERIOR_VAR),
                                     ("prior", self.prior, PRIORS)):
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


@register_model
class VAE(VAEBase):
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
        self.prior = build_prior(c.prior, c.z_dim, n_components=c.prior_components, encoder=self.encoder,
                                 x_shape=c.x_shape)

    def decode(self, z: Tensor):
        r""":math:`p_\theta(x\mid z)` for latents ``(..., m)``: Bernoulli or Gaussian pixels ``(..., C, H, W)``."""
        if not isinstance(z, Tensor) or z.dim() < 1 or z.shape[-1] != self.config.z_dim:
            raise ValueError(f"z: got {tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__}; need latents "
                             f"(..., {self.config.z_dim})")
        return self.head(self.decoder(z))

    def elbo(self, x: Tensor, beta: float = 1.0, n_samples: int = 1, **kwargs) -> ELBO:
        r"""Per-example ELBO terms (:meth:`VAEBase.elbo <vae_course.models.vae_base.VAEBase.elbo>`); for the
        deterministic autoencoder :math:`z = \mu(x)` and the loss is the reconstruction alone."""
        if not self.config.deterministic:
            return super().elbo(x, beta, n_samples, **kwargs)
        x = self._images(x)
        recon = self.decode(self.encoder(x).mu).log_prob(x)  # (B,): z = mu(x), no noise and no KL
        kl = torch.zeros_like(recon)
        return ELBO(recon, kl, recon, recon)

    def log_weights(self, x: Tensor, k: int, *, generator: torch.Generator | None = None) -> Tensor:
        if self.config.deterministic:
            raise ValueError("log_weights: this model is a deterministic autoencoder (deterministic=True); it has no "
                             "q(z|x) and no likelihood bound")
        return super().log_weights(x, k, generator=generator)

    log_weights.__doc__ = VAEBase.log_weights.__doc__

    # ------------------------------------------------------------ generation
    def generate(self, z: Tensor, *, mean: bool = True, generator: torch.Generator | None = None) -> Tensor:
        r"""Images for latents ``z`` ``(n, m)``: the decoder mean :math:`\mathbb E[x\mid z]` (``mean=True``, what the
        book shows) or a draw :math:`x\sim p_\theta(x\mid z)`. :meth:`sample` calls it with :math:`z\sim p(z)`."""
        p = self.decode(z)
        return p.mean if mean else p.sample(generator)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, *, sample_latent: bool = False, mean: bool = True,
                    generator: torch.Generator | None = None) -> Tensor:
        r"""Encode then decode: :math:`z = \mu(x)` (or a draw of :math:`q` if ``sample_latent``), then the
        decoder mean (or a draw if ``mean=False``). ``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        q = self.encode(x)
        z = q.sample(generator=generator) if sample_latent and not self.config.deterministic else q.mu
        return self.generate(z, mean=mean, generator=generator)
