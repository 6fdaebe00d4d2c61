r"""The two-stage VQ-VAE recipe of chapter 8 (the lecture's ``AE_General_Latent`` with discrete codes).

1. Train the autoencoder :class:`~vae_course.models.VQVAE` with :func:`vae_course.train.fit`.
2. Encode the training set to code maps (:func:`encode_codes`; :func:`code_data` packs them for ``fit``).
3. Train the autoregressive prior :class:`~vae_course.models.CodePrior` on the code maps with the same ``fit``.
4. Sample a code map ancestrally from the prior and decode it (:func:`sample_vqvae`).

Reports: :func:`codebook_usage` (counts, perplexity, dead fraction over a whole data set),
:func:`prior_bits_per_code` (the prior's negative log-likelihood in bits per code position) and
:func:`reconstruction_error` (mean squared error per pixel of the decoded code maps).
Reference: van den Oord, Vinyals & Kavukcuoglu (2017), *Neural Discrete Representation Learning*, NeurIPS.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from . import _validate as check
from .data import ImageData, draw_binary
from .models.quantizer import code_counts, dead_fraction, perplexity
from .utils import check_positive_int, make_generator

__all__ = ["CodebookUsage", "VQSamples", "encode_codes", "code_data", "codebook_usage", "prior_bits_per_code",
           "reconstruction_error", "point_mass_bound", "sample_vqvae"]


class CodebookUsage(NamedTuple):
    """How a data set uses the codebook: ``counts`` ``(K,)``, ``probs`` ``(K,)`` (frequencies), ``perplexity``
    (effective number of codes, in [1, K]) and ``dead_fraction`` (codes never used)."""

    counts: Tensor
    probs: Tensor
    perplexity: float
    dead_fraction: float


class VQSamples(NamedTuple):
    """Generated images ``x`` ``(n, C, H, W)`` (decoder means) and the code maps ``codes`` ``(n, h, w)`` behind them."""

    x: Tensor
    codes: Tensor


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_codes(model: nn.Module, x: Tensor, *, batch_size: int = 1000) -> Tensor:
    r"""Step 2 of the recipe: :math:`z^j = k(E_w(x^j))` for every image, ``(N, C, H, W)`` -> long ``(N, h, w)`` on the CPU.

    Runs in eval mode, so the codebook, its usage counts and the restarts are left untouched.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    device = _device(model)
    return torch.cat([model.encode_codes(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


def code_data(model: nn.Module, data: ImageData, *, batch_size: int = 1000, seed: int = 0) -> ImageData:
    """The code maps of ``data``'s train and test images as an :class:`~vae_course.data.ImageData`
    (``x_*`` float ``(N, 1, h, w)`` holding the integer codes, labels kept), ready for ``fit(CodePrior(...), ...)``.

    With ``data.binarize == "dynamic"`` the grey training images are binarised once (``seed``), like the test
    images, so the prior sees codes of the kind of images the autoencoder was trained on.
    ``fit`` takes floating data; codes up to :math:`2^{24}` are exact in float32 and
    :class:`~vae_course.models.CodePrior` rounds them back.
    """
    if not isinstance(data, ImageData):
        raise TypeError(f"data: got {type(data).__name__}; need vae_course.data.ImageData")
    x_train = data.x_train
    if data.binarize == "dynamic":
        x_train = draw_binary(x_train, generator=make_generator(seed))
    tr = encode_codes(model, x_train, batch_size=batch_size)[:, None].float()
    te = encode_codes(model, data.x_test, batch_size=batch_size)[:, None].float()
    return ImageData(f"{data.name}-codes", tr, data.y_train, te, data.y_test, "none",
                     value_range=(0.0, float(model.config.n_codes - 1)))


def codebook_usage(codes: Tensor, n_codes: int) -> CodebookUsage:
    r"""Usage of a codebook of size ``n_codes`` by the code maps ``codes`` (long, any shape).

    Perplexity :math:`\exp(-\sum_k p_k\log p_k)`: :math:`K` if all codes are equally frequent, 1 if one code is used.
    """
    n_codes = check_positive_int("n_codes", n_codes)
    if not isinstance(codes, Tensor) or codes.dtype != torch.long:
        raise TypeError(f"codes: got {getattr(codes, 'dtype', type(codes).__name__)}; need a long tensor of code indices")
    if codes.numel() == 0 or int(codes.min()) < 0 or int(codes.max()) >= n_codes:
        raise ValueError(f"codes: need a non-empty tensor with values in [0, {n_codes})")
    counts = code_counts(codes, n_codes)
    return CodebookUsage(counts, counts / counts.sum(), float(perplexity(counts)), float(dead_fraction(counts)))


@torch.no_grad()
def prior_bits_per_code(prior: nn.Module, codes: Tensor, *, batch_size: int = 1000) -> float:
    r"""The prior's negative log-likelihood per code position in bits: :math:`-\frac{1}{N\,h w\ln 2}\sum_j\log P_\phi(z^j)`.

    ``codes`` ``(N, h, w)`` long (or the float maps of :func:`code_data`). A prior that ignored the context and
    used all :math:`K` codes uniformly would score :math:`\log_2 K`.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    if not isinstance(codes, Tensor) or codes.dim() < 3 or not len(codes):
        raise ValueError(f"codes: got {getattr(codes, 'shape', type(codes).__name__)}; need code maps (N, h, w), N >= 1")
    was = prior.training
    prior.eval()
    device = _device(prior)
    try:
        total = sum(float(prior.log_prob(codes[i:i + batch_size].to(device)).sum())
                    for i in range(0, len(codes), batch_size))
    finally:
        prior.train(was)
    positions = codes.shape[-1] * codes.shape[-2]
    return -total / (len(codes) * positions * math.log(2))


@torch.no_grad()
def reconstruction_error(model: nn.Module, x: Tensor, *, batch_size: int = 1000) -> float:
    r"""Mean squared error per pixel between ``x`` and the decoder mean of its code map, :math:`\overline{(x - G_\theta(z_q(x)))^2}`."""
    batch_size = check_positive_int("batch_size", batch_size)
    check.non_empty("x", check.tensor("x", x, finite=False), "image")  # the model checks the values
    device = _device(model)
    was = model.training
    model.eval()
    try:
        sse = sum(float((model.reconstruct(x[i:i + batch_size].to(device)) - x[i:i + batch_size].to(device)).pow(2).sum())
                  for i in range(0, len(x), batch_size))
    finally:
        model.train(was)
    return sse / x.numel()


@torch.no_grad()
def point_mass_bound(model: nn.Module, prior: nn.Module, x: Tensor, *, batch_size: int = 1000) -> Tensor:
    r"""The ELBO of the VQ-VAE read as a latent-variable model :math:`p(x) = \sum_z p_\theta(x\mid z)P_\phi(z)` with the
    encoder as a point-mass posterior :math:`q(z\mid x) = 1[z = k(x)]`, whose entropy is 0:

    .. math:: \log p(x) \ge \log p_\theta\big(x\mid z_q(x)\big) + \log P_\phi\big(k(x)\big).

    A valid but loose lower bound per image, ``(N,)`` nats: the second term is minus the code length of
    the image's codes under the prior.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    check.non_empty("x", check.tensor("x", x, finite=False), "image")  # the model checks the values
    device = _device(model)
    was_m, was_p = model.training, prior.training
    model.eval()
    prior.eval()
    try:
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device)
            codes = model.encode_codes(xb)
            out.append((model.decode_codes(codes).log_prob(xb) + prior.log_prob(codes.to(_device(prior))).to(device)).cpu())
    finally:
        model.train(was_m)
        prior.train(was_p)
    return torch.cat(out)


@torch.no_grad()
def sample_vqvae(model: nn.Module, prior: nn.Module, n: int, *, generator: torch.Generator | None = None) -> VQSamples:
    r"""Step 4: draw code maps :math:`z\sim P_\phi` ancestrally (one position at a time, raster order), decode them.

    Returns :class:`VQSamples` with the decoder means :math:`\mathbb E[x\mid z_q]` and the codes.
    """
    n = check_positive_int("n", n)
    if tuple(prior.config.map_shape) != tuple(model.config.map_shape) or prior.config.n_codes != model.config.n_codes:
        raise ValueError(f"prior: built for K={prior.config.n_codes} codes on {tuple(prior.config.map_shape)} maps; the "
                         f"model has K={model.config.n_codes} on {tuple(model.config.map_shape)}")
    was = model.training
    model.eval()
    try:
        codes = prior.sample(n, generator=generator).to(_device(model))  # (n, h, w)
        return VQSamples(model.decode_codes(codes).mean, codes)
    finally:
        model.train(was)
