r"""How good is a trained model? Its log-likelihood, by importance weighting (chapter 5).

The ELBO is a lower bound on :math:`\log p(x)`, and a loose one when :math:`q(z\mid x)` is far from
the posterior. Importance sampling with :math:`q` as the proposal gives tighter bounds
(Burda, Grosse & Salakhutdinov, 2016):

.. math:: \mathcal L_k(x) = \mathbb E_{z_1..z_k\sim q}\Big[\log\frac1k\sum_{i=1}^k w_i\Big],\qquad
          w_i = \frac{p(x\mid z_i)\,p(z_i)}{q(z_i\mid x)},

with :math:`\mathcal L_1 = \mathrm{ELBO} \le \mathcal L_k \le \mathcal L_{k+1} \le \log p(x)` and
:math:`\mathcal L_k\to\log p(x)` as :math:`k\to\infty`. The average is taken in log space,
:math:`\log\frac1k\sum_i e^{\log w_i} = \operatorname{logsumexp}_i(\log w_i) - \log k`, because the
weights themselves underflow (:math:`\log w\approx -100` nats for an MNIST digit).

:func:`log_likelihood` evaluates :math:`\mathcal L_k` for k up to thousands with bounded memory: the
k samples are drawn in chunks, and the chunks' bounds are averaged (weighted by their sizes) in log space. Results are reported in nats per
image and in bits per dimension, :math:`-\log_2 p(x) / D = -\log p(x) / (D\ln 2)`.

Also here: the posterior parameters of a whole data set (:func:`encode_all`, used by the detectors of
chapters 6 and 7), the exact :math:`\log p(x)` of a linear-Gaussian VAE (to test the estimator), and what a
likelihood buys: scores that separate the training distribution from other images (:func:`auroc`).
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import torch
from torch import Tensor, nn

from . import _validate as check
from .distributions import log_mean_exp
from .linear_gaussian import LinearGaussianModel
from .utils import check_positive_int

__all__ = ["iwae_bound", "log_weights", "log_likelihood", "iwae_curve", "elbo_per_example", "encode_all",
           "bits_per_dim", "LogLikelihood", "linear_gaussian_log_marginal", "shift_images", "invert_images", "auroc"]

FLOAT_BUDGET = 2**24  # decoder outputs held at once (k_chunk * batch * D floats, 64 MB in float32)


def iwae_bound(log_w: Tensor) -> Tensor:
    r"""The IWAE estimate from log-weights ``(k, B)``: :math:`\log\frac1k\sum_i w_i`, shape ``(B,)``
    (:func:`~vae_course.distributions.log_mean_exp` over the k samples). ``log_w``: no NaN or ``+inf``, k >= 1."""
    check.log_values("log_w", log_w, min_dim=1)
    if log_w.shape[0] == 0:
        raise ValueError(f"log_w: got shape {tuple(log_w.shape)}; need (k, B) with k >= 1 samples")
    return log_mean_exp(log_w, dim=0, validate=False)


def bits_per_dim(log_px: Tensor | float, x_dim: int) -> Tensor | float:
    r"""Bits per dimension of a log-likelihood in nats: :math:`-\log p(x) / (D \ln 2)`."""
    if isinstance(log_px, Tensor):
        check.log_values("log_px", log_px)
    else:
        check.number("log_px", log_px, finite=False)
    return -log_px / (check_positive_int("x_dim", x_dim) * math.log(2))


class LogLikelihood(NamedTuple):
    """``log_px`` ``(N,)``: the IWAE bound per image (nats); ``k``; ``mean``: its average (nats);
    ``bits_per_dim``: ``-mean / (D ln 2)``."""

    log_px: Tensor
    k: int
    mean: float
    bits_per_dim: float


def _chunk(k: int, batch: int, x_dim: int, k_chunk: int | None) -> int:
    return check_positive_int("k_chunk", k_chunk) if k_chunk is not None else max(1, min(k, FLOAT_BUDGET // (batch * x_dim)))


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _images(model: nn.Module, x: Tensor, name: str = "x") -> Tensor:
    """``x`` checked once as the model's input (not empty, finite, its own ``check_input``), on the CPU or its device."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name}: got {type(x).__name__}{' of dtype ' + str(x.dtype) if isinstance(x, Tensor) else ''}; "
                        "need a floating tensor of images (N, C, H, W)")
    check.non_empty(name, x, "image")
    own = getattr(model, "check_input", None)
    if callable(own):  # the model's own check, on its device; returns x cast to its dtype
        return own(x.to(_device(model)), name)
    return check.tensor(name, x)


@torch.no_grad()
def log_weights(model: nn.Module, x: Tensor, k: int, *, batch_size: int = 100, k_chunk: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """All importance log-weights ``(k, N)`` of ``model.log_weights`` for images ``x`` ``(N, ...)``, in chunks."""
    k, batch_size = check_positive_int("k", k), check_positive_int("batch_size", batch_size)
    x = _images(model, x)
    x_dim = x[0].numel()
    out = []
    with check.data_checked():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(_device(model))
            kc = _chunk(k, len(xb), x_dim, k_chunk)
            out.append(torch.cat([model.log_weights(xb, min(kc, k - j), generator=generator).float().cpu()
                                  for j in range(0, k, kc)], dim=0))  # (k, b)
    return torch.cat(out, dim=1)


@torch.no_grad()
def log_likelihood(model: nn.Module, x: Tensor, k: int = 1000, *, batch_size: int = 100, k_chunk: int | None = None,
                   generator: torch.Generator | None = None) -> LogLikelihood:
    r"""The IWAE bound :math:`\mathcal L_k` per image of ``x`` ``(N, C, H, W)``: a lower bound on
    :math:`\log p(x)` that tightens as ``k`` grows. Memory stays bounded for any ``k``: at most
    ``k_chunk`` samples per image are decoded at once and the chunks' bounds are merged by a weighted log-mean-exp.
    """
    k, batch_size = check_positive_int("k", k), check_positive_int("batch_size", batch_size)
    model.eval()
    x = _images(model, x)
    x_dim = x[0].numel()
    result = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(_device(model))
        kc = _chunk(k, len(xb), x_dim, k_chunk)
        sizes = [min(kc, k - j) for j in range(0, k, kc)]
        # each chunk's own bound L_kc, then their average weighted by chunk size: the same L_k, in bounded memory
        with check.data_checked():
            chunks = torch.stack([log_mean_exp(model.log_weights(xb, size, generator=generator).double(), dim=0,
                                               validate=False) for size in sizes])
        share = torch.tensor(sizes, dtype=torch.float64, device=chunks.device).div(k).log()  # (n_chunks,)
        result.append(log_mean_exp(chunks, dim=0, log_weights=share, validate=False).float().cpu())
    log_px = torch.cat(result)
    mean = float(log_px.mean())
    return LogLikelihood(log_px, k, mean, float(bits_per_dim(mean, x_dim)))


def iwae_curve(model: nn.Module, x: Tensor, ks: tuple[int, ...] = (1, 10, 100, 1000), *,
               generator: torch.Generator | None = None, batch_size: int = 100) -> dict[int, float]:
    """Mean :math:`\\mathcal L_k` over ``x`` for each k in ``ks``, from prefixes of one set of max(ks) draws."""
    if isinstance(ks, (str, bytes)) or not hasattr(ks, "__iter__") or not list(ks):
        raise ValueError(f"ks: got {ks!r}; need a non-empty tuple of sample counts such as (1, 10, 100)")
    ks = [check_positive_int(f"ks[{i}]", k) for i, k in enumerate(ks)]
    lw = log_weights(model, x, max(ks), generator=generator, batch_size=batch_size)  # (K, N)
    return {k: float(log_mean_exp(lw[:k], dim=0, validate=False).mean()) for k in sorted(ks)}


@torch.no_grad()
def elbo_per_example(model: nn.Module, x: Tensor, *, n_samples: int = 1, batch_size: int = 500) -> Tensor:
    """``model.elbo(x).elbo`` for every image ``(N,)``, in batches (nats)."""
    batch_size, n_samples = check_positive_int("batch_size", batch_size), check_positive_int("n_samples", n_samples)
    x = _images(model, x)
    model.eval()
    with check.data_checked():
        return torch.cat([model.elbo(x[i:i + batch_size].to(_device(model)), n_samples=n_samples).elbo.cpu()
                          for i in range(0, len(x), batch_size)])


@torch.no_grad()
def encode_all(model: nn.Module, x: Tensor, *, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    r"""``(mu, logvar)`` of :math:`q(z\mid x)` for every image of ``x``: two ``(N, m)`` tensors (on the CPU)."""
    batch_size = check_positive_int("batch_size", batch_size)
    x = _images(model, x)
    model.eval()
    mus, lvs = [], []
    with check.data_checked():
        for i in range(0, len(x), batch_size):
            q = model.encode(x[i:i + batch_size].to(_device(model)))
            mus.append(q.mu.cpu())
            lvs.append(q.logvar.cpu())
    return torch.cat(mus), torch.cat(lvs)


@torch.no_grad()
def linear_gaussian_log_marginal(model: nn.Module, x: Tensor) -> Tensor:
    r"""Exact :math:`\log p(x) = \log\mathcal N(x; b, WW^\top + \sigma^2 I)` of a VAE with
    ``arch="linear"``, a Gaussian likelihood and a fixed variance (the decoder is :math:`x = Wz + b + \sigma\varepsilon`)."""
    c = model.config
    if c.arch != "linear" or c.likelihood != "gaussian" or c.decoder_var != "fixed":
        raise ValueError(f"model: got arch={c.arch!r}, likelihood={c.likelihood!r}, decoder_var={c.decoder_var!r}; the "
                         "exact marginal needs arch='linear', likelihood='gaussian', decoder_var='fixed'")
    lin = model.decoder.linear
    sigma = math.exp(0.5 * float(model.head._logvar(model.head.a)))
    lg = LinearGaussianModel(lin.weight.detach().double().cpu(), lin.bias.detach().double().cpu(), sigma)
    return lg.log_marginal(x.detach().double().cpu().flatten(1)).float()


# ---------------------------------------------------------------- what p(x) buys: scoring other images
def shift_images(x: Tensor, dx: int, dy: int) -> Tensor:
    """Images ``(N, C, H, W)`` translated by ``dx`` pixels right and ``dy`` down; uncovered pixels are 0."""
    check.tensor("x", x)
    if x.dim() != 4:
        raise ValueError(f"x: got shape {tuple(x.shape)}; need images (N, C, H, W)")
    for name, v in (("dx", dx), ("dy", dy)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name}: got {v!r} of type {type(v).__name__}; need an int number of pixels")
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        return out
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def invert_images(x: Tensor) -> Tensor:
    """``1 - x``: white digits on black become black on white. ``x``: pixels in [0, 1], any shape."""
    return 1.0 - check.pixels("x", x)


def auroc(scores_in: Tensor, scores_out: Tensor) -> float:
    r"""Area under the ROC curve for telling ``scores_in`` (should be higher) from ``scores_out``:
    :math:`P(s_{in} > s_{out}) + \tfrac12 P(s_{in} = s_{out})` over all pairs. 1 separates perfectly, 0.5 is chance."""
    for name, s in (("scores_in", scores_in), ("scores_out", scores_out)):
        check.log_values(name, s)  # log-likelihood scores: -inf (impossible) is a valid score
        if s.numel() == 0:
            raise ValueError(f"{name}: got an empty tensor; need at least one score")
    a, b = scores_in.detach().double().flatten(), scores_out.detach().double().flatten()
    diff = a[:, None] - b[None, :]
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


# sample quality in the features of a digit classifier, documented in vae_course.quality (not in __all__ here, so the
# API page lists it once); vc.evaluate.sample_quality(images) is the same function
from .quality import SampleQuality, sample_quality  # noqa: E402,F401
