r"""The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu, 2017) and its autoregressive prior over codes (chapter 8).

**Stage 1, the autoencoder.** A convolutional encoder maps an image to a map of vectors
:math:`z_e(x)` ``(B, D, h, w)`` (``28x28 -> 7x7`` with two stride-2 layers, ``8x8 -> 4x4`` with one); a
:class:`~vae_course.models.quantizer.VectorQuantizer` replaces each vector by its nearest codeword
:math:`z_q`, and the decoder maps :math:`z_q` back to a distribution over images. The loss per image is
eq. (3) of the paper:

.. math:: L = -\log p_\theta(x\mid z_q(x)) + \lVert\mathrm{sg}[z_e(x)] - e\rVert^2 + \beta\,\lVert z_e(x) - \mathrm{sg}[e]\rVert^2,

with the straight-through gradient from :math:`z_q` to :math:`z_e`. For a Gaussian decoder with a fixed
:math:`\sigma` the first term is :math:`\lVert x - G_\theta(z_q)\rVert^2/2\sigma^2` plus a constant; with
Bernoulli pixels it is the binary cross-entropy. ``VQVAE.loss`` returns it as
:class:`~vae_course.models.base.LossTerms`, so :func:`vae_course.train.fit` trains the model; the EMA codebook
and dead-code restarts update inside the training-mode forward (see :mod:`vae_course.models.quantizer`).

**Stage 2, the prior.** The code maps of the training set are fixed data, and a PixelCNN
(:class:`~vae_course.models.masked.PixelCNN`, masked convolutions) models them autoregressively in raster order,
:math:`P_\phi(z) = \prod_i \mathrm{softmax}(F_\phi(z_{<i}))_{z_i}`. :class:`CodePrior` wraps it with
``loss = -log P_phi(z)`` in nats per map, so the same ``fit`` trains it (:func:`vae_course.vq.code_data`).
Sampling draws a code map ancestrally from the prior and decodes it (:func:`vae_course.vq.sample_vqvae`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import _validate as check
from ..utils import check_positive_int
from .base import LossTerms, register_model
from .decoders import LIKELIHOODS, PixelHead
from .masked import PixelCNN
from .quantizer import Quantized, VectorQuantizer, code_counts, dead_fraction, perplexity

__all__ = ["VQVAEConfig", "VQVAE", "VQVAEOutput", "CodePriorConfig", "CodePrior", "CODEBOOKS"]

CODEBOOKS = ("loss", "ema")


@dataclass
class VQVAEConfig:
    """Everything needed to rebuild a :class:`VQVAE` (plain values, stored in checkpoints)."""

    x_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of one image
    n_codes: int = 64  # K, codewords in the codebook (the paper: 512 for ImageNet)
    code_dim: int = 16  # D, size of one codeword
    channels: tuple[int, int] = (32, 64)  # conv channels: after the first layer, and of the code-map trunk
    downsample: int = 2  # stride-2 layers: 28x28 -> 7x7 code map (2), 8x8 -> 4x4 (1)
    beta: float = 0.25  # commitment weight (the paper's value)
    codebook: str = "loss"  # "loss": trained by the codebook loss; "ema": running means of assigned outputs
    decay: float = 0.99  # EMA decay gamma (codebook="ema")
    restart_every: int = 0  # restart dead codes every this many training steps; 0: never
    dead_threshold: float = 1.0  # a code used fewer times per batch than this (running mean) is dead
    usage_decay: float = 0.95  # decay of that running count
    likelihood: str = "bernoulli"  # p(x|z_q): "bernoulli" or "gaussian" (fixed sigma = decoder_std)
    decoder_std: float = 0.1  # sigma of the Gaussian decoder

    def __post_init__(self) -> None:
        self.x_shape, self.channels = tuple(self.x_shape), tuple(self.channels)
        if len(self.x_shape) != 3:
            raise ValueError(f"x_shape: got {self.x_shape}; need (C, H, W), e.g. (1, 28, 28)")
        for name in ("n_codes", "code_dim", "downsample"):
            check_positive_int(name, getattr(self, name))
        if len(self.channels) != 2:
            raise ValueError(f"channels: got {self.channels}; need two ints, e.g. (32, 64)")
        f = 2 ** self.downsample
        if self.x_shape[1] % f or self.x_shape[2] % f:
            raise ValueError(f"x_shape: got {self.x_shape}; with downsample={self.downsample} H and W must be "
                             f"divisible by {f}")
        if self.codebook not in CODEBOOKS:
            raise ValueError(f"codebook: got {self.codebook!r}; need one of {CODEBOOKS}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood: got {self.likelihood!r}; need one of {LIKELIHOODS}")

    @property
    def map_shape(self) -> tuple[int, int]:
        """(h, w) of the code map."""
        f = 2 ** self.downsample
        return self.x_shape[1] // f, self.x_shape[2] // f


class VQVAEOutput(NamedTuple):
    """``pixels``: the decoder's distribution :math:`p_\\theta(x\\mid z_q)`; ``q``: the :class:`Quantized` result."""

    pixels: object
    q: Quantized


def _encoder(c: VQVAEConfig) -> nn.Sequential:
    c1, c2 = c.channels
    layers: list[nn.Module] = []
    ch = c.x_shape[0]
    for i in range(c.downsample):
        out = c1 if i < c.downsample - 1 else c2
        layers += [nn.Conv2d(ch, out, 4, stride=2, padding=1), nn.ReLU()]  # halves H and W
        ch = out
    layers += [nn.Conv2d(ch, c2, 3, padding=1), nn.ReLU(), nn.Conv2d(c2, c.code_dim, 1)]  # (B, D, h, w)
    return nn.Sequential(*layers)


def _decoder(c: VQVAEConfig, out_channels: int) -> nn.Sequential:
    c1, c2 = c.channels
    layers: list[nn.Module] = [nn.Conv2d(c.code_dim, c2, 3, padding=1), nn.ReLU()]  # (B, c2, h, w)
    ch = c2
    for i in range(c.downsample):
        last = i == c.downsample - 1
        out = out_channels if last else c1
        layers.append(nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1))  # doubles H and W
        if not last:
            layers.append(nn.ReLU())
        ch = out
    return nn.Sequential(*layers)


@register_model
class VQVAE(nn.Module):
    """A VQ-VAE built from a :class:`VQVAEConfig` (or keyword overrides: ``VQVAE(n_codes=32)``).

    Images ``(B, C, H, W)``; code maps ``(B, h, w)`` long; quantised maps ``(B, D, h, w)``.
    """

    config_class = VQVAEConfig

    def __init__(self, config: VQVAEConfig | None = None, **overrides):
        super().__init__()
        c = dataclasses.replace(config or VQVAEConfig(), **overrides)
        self.config = c
        self.head = PixelHead(c.x_shape, c.likelihood, "fixed", c.decoder_std, min(0.01, c.decoder_std / 2))
        self.encoder = _encoder(c)
        self.quantizer = VectorQuantizer(c.n_codes, c.code_dim, c.beta, ema=c.codebook == "ema", decay=c.decay,
                                         restart_every=c.restart_every, dead_threshold=c.dead_threshold,
                                         usage_decay=c.usage_decay)
        self.decoder = _decoder(c, self.head.out_channels)

    def check_input(self, x: Tensor, name: str = "x") -> Tensor:
        """``x`` checked as this model's input: images ``(B, C, H, W)``, at least one, on the model's device, cast to
        its dtype, pixels in [0, 1] for Bernoulli pixels (finite for a Gaussian decoder). ``fit`` calls it once."""
        shape = self.config.x_shape
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 4 or tuple(x.shape[1:]) != shape:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name}: got {got}; need a floating tensor of images (B, {', '.join(map(str, shape))})")
        check.non_empty(name, x, "image")
        if check.in_checked_data():  # a batch of fit's data set: checked, moved and cast once
            return x
        x = check.like(name, x, self.quantizer.codebook)
        if self.config.likelihood == "bernoulli":
            return check.pixels(name, x)
        return check.tensor(name, x)

    def _images(self, x: Tensor) -> Tensor:
        return self.check_input(x)

    def encode(self, x: Tensor) -> Tensor:
        r""":math:`z_e(x)`: ``(B, C, H, W)`` -> ``(B, D, h, w)``, before quantisation."""
        return self.encoder(self._images(x))

    def decode(self, z_q: Tensor):
        r""":math:`p_\theta(x\mid z_q)` for quantised maps ``(B, D, h, w)``: Bernoulli or Gaussian pixels."""
        return self.head(self.decoder(z_q))

    def decode_codes(self, codes: Tensor):
        """The pixel distribution for a code map ``(B, h, w)`` of indices: look up the codewords, then decode."""
        h, w = self.config.map_shape
        if not isinstance(codes, Tensor) or codes.dtype != torch.long or codes.dim() != 3 or tuple(codes.shape[1:]) != (h, w):
            got = f"dtype {codes.dtype}, shape {tuple(codes.shape)}" if isinstance(codes, Tensor) else type(codes).__name__
            raise ValueError(f"codes: got {got}; need a long map (B, {h}, {w}), this model's code-map size")
        check.non_empty("codes", codes, "code map")
        check.index_tensor("codes", check.like("codes", codes, self.quantizer.codebook), self.config.n_codes)
        z_q = self.quantizer.codebook[codes].movedim(-1, 1)  # (B, D, h, w)
        return self.decode(z_q)

    def forward(self, x: Tensor) -> VQVAEOutput:
        """Encode, quantise (updating the codebook state in training mode), decode: a :class:`VQVAEOutput`."""
        q = self.quantizer(self.encode(x))
        return VQVAEOutput(self.decode(q.quantized), q)

    def loss(self, x: Tensor) -> LossTerms:
        r"""Mean over the batch of :math:`-\log p(x\mid z_q) + \text{codebook} + \text{commitment}` (nats per image
        for the first term), with terms ``recon``, ``mse`` (per pixel, decoder mean), ``codebook``, ``commitment``,
        ``perplexity`` and ``dead`` (fraction of codes unused in this batch)."""
        x = self._images(x)
        pixels, q = self(x)
        recon = -pixels.log_prob(x).mean()
        loss = recon + q.loss.codebook + q.loss.commitment
        with torch.no_grad():
            counts = code_counts(q.indices, self.config.n_codes)
            mse = (pixels.mean - x).pow(2).mean()
        return LossTerms(loss, {"loss": loss, "recon": recon, "mse": mse, "codebook": q.loss.codebook,
                                "commitment": q.loss.commitment, "perplexity": perplexity(counts),
                                "dead": dead_fraction(counts)})

    @torch.no_grad()
    def encode_codes(self, x: Tensor) -> Tensor:
        """Code map ``(B, h, w)`` (long) of images ``(B, C, H, W)``; eval mode, nothing is updated."""
        was = self.training
        self.eval()
        try:
            return self.quantizer(self.encode(x)).indices
        finally:
            self.train(was)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decoder mean of the quantised code of ``x``: ``(B, C, H, W)``."""
        return self.decode_codes(self.encode_codes(x)).mean


@dataclass
class CodePriorConfig:
    """A PixelCNN prior over code maps (plain values, stored in checkpoints)."""

    n_codes: int = 64  # K: categories per position (the VQ-VAE's codebook size)
    map_shape: tuple[int, int] = (7, 7)  # (h, w) of a code map
    hidden: int = 64  # channels of the PixelCNN's hidden layers
    n_layers: int = 4  # residual mask-B layers after the mask-A input layer
    first_kernel: int = 5  # kernel of the mask-A layer
    kernel: int = 3  # kernel of the mask-B layers

    def __post_init__(self) -> None:
        self.map_shape = tuple(self.map_shape)
        for name in ("n_codes", "hidden", "first_kernel", "kernel"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("n_layers", self.n_layers, allow_zero=True)
        if len(self.map_shape) != 2:
            raise ValueError(f"map_shape: got {self.map_shape}; need (h, w)")


@register_model
class CodePrior(nn.Module):
    r"""The autoregressive prior :math:`P_\phi(z)=\prod_i P_\phi(z_i\mid z_{<i})` over code maps, a categorical
    :class:`~vae_course.models.masked.PixelCNN`.

    ``loss(z)`` is :math:`-\log P_\phi(z)` in nats per map (mean over the batch). ``z``: a long map
    ``(B, h, w)``, or the same as floats ``(B, h, w)`` / ``(B, 1, h, w)`` (what :func:`vae_course.vq.code_data`
    gives :func:`vae_course.train.fit`, which takes floating data).
    """

    config_class = CodePriorConfig

    def __init__(self, config: CodePriorConfig | None = None, **overrides):
        super().__init__()
        c = dataclasses.replace(config or CodePriorConfig(), **overrides)
        self.config = c
        self.pixelcnn = PixelCNN(c.n_codes, c.hidden, c.n_layers, categorical=True, first_kernel=c.first_kernel,
                                 kernel=c.kernel)

    def check_input(self, z: Tensor, name: str = "z") -> Tensor:
        """Code maps ``(B, h, w)`` (or ``(B, 1, h, w)``) of integers in ``[0, K)``, as longs or as floats holding
        whole numbers (what :func:`vae_course.vq.code_data` gives ``fit``), at least one, on the model's device."""
        if not isinstance(z, Tensor):
            raise TypeError(f"{name}: got {type(z).__name__}; need a tensor of code maps")
        if z.dim() == 4 and z.shape[1] == 1:
            z = z[:, 0]
        if z.dim() != 3 or tuple(z.shape[1:]) != self.config.map_shape:
            raise ValueError(f"{name}: got shape {tuple(z.shape)}; need code maps (B, {', '.join(map(str, self.config.map_shape))})")
        check.non_empty(name, z, "code map")
        if not check.in_checked_data():
            check.like(name, z, self.pixelcnn.input.weight)
        if z.is_floating_point():
            check.pixels(name, z, high=self.config.n_codes - 1, per_batch=True)
            if check.should_scan(z, True) and bool((z != z.round()).any()):
                raise ValueError(f"{name}: got fractional values; need whole numbers, the code indices")
            return z.round().long()
        return check.index_tensor(name, z, self.config.n_codes, per_batch=True)

    def _codes(self, z: Tensor) -> Tensor:
        return self.check_input(z)

    def log_prob(self, z: Tensor) -> Tensor:
        r""":math:`\log P_\phi(z)=\sum_i\log P_\phi(z_i\mid z_{<i})`, nats, ``(B,)``."""
        return self.pixelcnn.log_prob(self._codes(z))

    def loss(self, z: Tensor) -> LossTerms:
        """Negative log-likelihood in nats per map, mean over the batch; term ``bits_per_code`` too."""
        nll = -self.log_prob(z).mean()
        h, w = self.config.map_shape
        return LossTerms(nll, {"loss": nll, "bits_per_code": nll.detach() / (h * w * torch.log(torch.tensor(2.0)))})

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Ancestral sampling: ``n`` code maps ``(n, h, w)`` drawn position by position in raster order."""
        n = check_positive_int("n", n)
        return self.pixelcnn.sample((n, *self.config.map_shape), generator=generator)
