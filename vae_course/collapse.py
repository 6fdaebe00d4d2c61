r"""Posterior collapse: detect it, and the remedies that plug into :func:`vae_course.train.fit` (chapter 7).

A VAE has **collapsed** when its posterior equals the prior, :math:`q_w(z\mid x) = p(z)` for every
:math:`x`: the latent carries no information about the image and the decoder models the data on its own.
Samples do not show it (a strong decoder still draws good digits); these detectors do.

* the KL per dimension (:func:`vae_course.objectives.kl_per_dimension`, or the prior's
  ``kl(q, per_dimension=True)``): :math:`\mathrm{KL}(q(z_j\mid x)\,\|\,\mathcal N(0,1))` for each coordinate :math:`j`;
  collapse is a KL of (almost) 0 in every coordinate.
* :func:`active_units` (Burda et al., 2016): unit :math:`u` is active if
  :math:`A_u = \mathrm{Cov}_x\big(\mathbb E_{q(z\mid x)}[z_u]\big) > 0.01`, the variance **over the data**
  of the posterior mean; a collapsed unit gives every image the same mean.
* :func:`mutual_information`: :math:`I(x; z)` under the aggregate posterior
  :math:`q(z) = \frac1N\sum_n q(z\mid x_n)`, i.e. :math:`\mathbb E_x\,\mathrm{KL}(q(z\mid x)\,\|\,q(z))`.
  Since :math:`\mathbb E_x\mathrm{KL}(q(z\mid x)\|p(z)) = I(x;z) + \mathrm{KL}(q(z)\|p(z))`, the KL term of the
  ELBO is an upper bound on the information the latent carries (Hoffman & Johnson, 2016; Alemi et al., 2018).
* :func:`latent_swap_test`: the lecture's test. Compare the reconstruction loss with the encoder's latent
  against the loss with a latent that has nothing to do with the image (drawn from the prior, or another
  image's latent): if the two agree, the decoder ignores :math:`z`.
* :func:`sample_dependence`: decode several latents with the **same** decoder noise; after collapse the
  images are identical.

Remedies live in :mod:`vae_course.objectives`: :func:`~vae_course.objectives.kl_warmup` (Bowman et al., 2016) as a
``loss_kwargs`` schedule, free bits (:func:`~vae_course.objectives.free_bits_kl`, Kingma et al., 2016) as the loss
option ``free_bits``, and :math:`\beta < 1` as ``loss_kwargs={"beta": 0.2}``, on every VAE of the course. The
free-bits sweep behind the chapter's widget is :mod:`vae_course.experiments.free_bits_sweep`.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from . import _validate as check
from .distributions import DiagonalGaussian, log_mean_exp
from .evaluate import encode_all, iwae_bound, log_weights
from .utils import check_positive_int, stored_file

__all__ = ["ActiveUnits", "active_units", "mutual_information", "SwapTest", "latent_swap_test",
           "SampleDependence", "sample_dependence", "CollapseReport", "collapse_report", "ReportTable", "report_table",
           "AU_THRESHOLD", "SWEEP_PATH", "load_sweep", "summarize_sweep"]

AU_THRESHOLD = 0.01  # Burda et al. (2016): a unit is active if Cov_x(E_q[z_u]) > 0.01
SWEEP_PATH = str(stored_file("ch07_free_bits.json"))  # the stored free-bits sweep behind the chapter's widget


# ---------------------------------------------------------------- detectors
def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _check_images(model: nn.Module, x: Tensor) -> None:
    """Images ``x`` checked once as the model's input (moved to its device for the check)."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x: got {type(x).__name__}{' of dtype ' + str(x.dtype) if isinstance(x, Tensor) else ''}; "
                        "need a floating tensor of images (N, C, H, W)")
    check.non_empty("x", x, "image")
    model.check_input(x.to(_device(model)), "x")


class ActiveUnits(NamedTuple):
    """``activity`` ``(m,)``: :math:`A_u = \\mathrm{Var}_x(\\mu_u(x))`; ``active`` ``(m,)`` bool; ``count``: how many."""

    activity: Tensor
    active: Tensor
    count: int


def active_units(mu: Tensor, threshold: float = AU_THRESHOLD) -> ActiveUnits:
    r"""Active units of Burda et al. (2016): :math:`A_u = \mathrm{Cov}_x\big(\mathbb E_{q(z\mid x)}[z_u]\big) > 0.01`.

    ``mu`` ``(N, m)``: the posterior means of N images (rows). The variance is taken over the **images**
    (dim 0, one value per unit); the variance across the units of one image, or the posterior variance
    :math:`\sigma^2_u(x)`, measure something else.
    """
    check.tensor("mu", mu)
    if mu.dim() != 2 or mu.shape[0] < 2:
        raise ValueError(f"mu: got shape {tuple(mu.shape)}; need (N, m) posterior means of N >= 2 images")
    check.positive_float("threshold", threshold, allow_zero=True)
    activity = mu.double().var(0, unbiased=False).to(mu.dtype)  # (m,)
    active = activity > threshold
    return ActiveUnits(activity, active, int(active.sum()))


def _log_q_matrix(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    r""":math:`\log q(z_a\mid x_b)` for all pairs: ``z`` ``(A, m)``, ``mu``, ``logvar`` ``(N, m)`` -> ``(A, N)``."""
    var = logvar.exp()
    d = (z[:, None, :] - mu[None]) ** 2 / var[None]  # (A, N, m)
    return -0.5 * (d + logvar[None] + math.log(2 * math.pi)).sum(-1)


@torch.no_grad()
def mutual_information(mu: Tensor, logvar: Tensor, *, n_samples: int = 1,
                       generator: torch.Generator | None = None) -> float:
    r"""Estimate :math:`I(x; z)` under the aggregate posterior of N images (nats).

    .. math:: \hat I = \frac1{NS}\sum_{n,s}\Big[\log q(z_{ns}\mid x_n) - \log\frac1N\sum_{k=1}^N q(z_{ns}\mid x_k)\Big],
              \qquad z_{ns}\sim q(z\mid x_n),

    the Monte Carlo form of :math:`\mathbb E_x\,\mathrm{KL}(q(z\mid x)\,\|\,q(z))` with :math:`q(z)` the mixture of the
    N posteriors (as in He et al., 2019). It is 0 when all posteriors are equal and at most :math:`\log N`
    (the latent can at best tell the N images apart), so use a few hundred images or more.

    Args: ``mu``, ``logvar``: ``(N, m)``; ``n_samples``: draws S per image.
    """
    check.tensor("mu", mu)
    check.tensor("logvar", logvar)
    if mu.dim() != 2 or mu.shape != logvar.shape or mu.shape[0] < 2:
        raise ValueError(f"mu, logvar: got shapes {tuple(mu.shape)} and {tuple(logvar.shape)}; need equal (N, m), N >= 2")
    mu, logvar = mu.double(), logvar.double()
    total = 0.0
    for _ in range(check_positive_int("n_samples", n_samples)):
        z = DiagonalGaussian(mu, logvar).sample(generator=generator)  # (N, m), z_n ~ q(z | x_n)
        log_q = _log_q_matrix(z, mu, logvar)  # (N, N): log q(z_n | x_k)
        log_agg = log_mean_exp(log_q, dim=1, validate=False)  # (N,): log q(z_n), the aggregate posterior
        total += float((log_q.diagonal() - log_agg).mean())
    return total / n_samples


class SwapTest(NamedTuple):
    """The lecture's collapse test, nats per image: ``loss_encoder`` :math:`-\\log p(x\\mid z)` with
    :math:`z\\sim q(z\\mid x)`; ``loss_other`` with an unrelated z; ``gap = loss_other - loss_encoder`` (~0: collapse)."""

    loss_encoder: float
    loss_other: float
    gap: float


@torch.no_grad()
def latent_swap_test(model: nn.Module, x: Tensor, *, source: str = "prior", generator: torch.Generator | None = None,
                     batch_size: int = 500) -> SwapTest:
    r"""Reconstruction loss with the encoder's latent against the loss with a latent unrelated to the image.

    ``source="prior"``: :math:`z\sim p(z)`, the model's prior (the lecture's "independent latent");
    ``source="shuffle"``: the encoder's latent of another image of the batch (stays where the decoder was trained).
    Uses ``model.encode(x)`` and ``model.decode(z).log_prob(x)``, so it works for every VAE of the course.
    """
    if source not in ("prior", "shuffle"):
        raise ValueError(f"source: got {source!r}; need 'prior' or 'shuffle'")
    batch_size = check_positive_int("batch_size", batch_size)
    _check_images(model, x)
    model.eval()
    own, other = 0.0, 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(_device(model))
        q = model.encode(xb)
        z = q.sample(generator=generator)  # (B, m), z ~ q(z | x)
        if source == "prior":
            z_other = model.prior.sample(len(xb), generator=generator)  # (B, m), independent of the images
        else:
            z_other = z[torch.roll(torch.arange(len(xb)), 1)]  # each image gets its neighbour's latent
        own -= float(model.decode(z).log_prob(xb).sum())
        other -= float(model.decode(z_other).log_prob(xb).sum())
    own, other = own / len(x), other / len(x)
    return SwapTest(own, other, other - own)


class SampleDependence(NamedTuple):
    """``images`` ``(n_noise, n_z, C, H, W)``: row r uses decoder noise r, column c latent c.
    ``changed_z``: mean fraction of pixels that differ between two columns of a row (same noise, other z; 0: z is
    ignored); ``changed_noise``: between two rows of a column (same z, other noise), the yardstick."""

    images: Tensor
    changed_z: float
    changed_noise: float


def _mean_disagreement(flat: Tensor) -> float:
    """``flat`` ``(R, K, D)``: mean over r of the fraction of the D pixels that differ between two of the K images."""
    k = flat.shape[1]
    if k < 2:
        return 0.0
    diff = (flat[:, :, None] != flat[:, None, :]).double().mean(-1)  # (R, K, K), zero diagonal
    return float(diff.sum((1, 2)).mean() / (k * (k - 1)))


@torch.no_grad()
def sample_dependence(model: nn.Module, n_z: int = 8, n_noise: int = 4, *,
                      generator: torch.Generator | None = None) -> SampleDependence:
    r"""Decode ``n_z`` latents from the prior with the same decoder noise (``n_noise`` noise draws): does z matter?

    Needs ``model.sample(n, z=..., noise=...)`` (the autoregressive VAE: each pixel is
    :math:`1[u_i < p(x_i = 1\mid x_{<i}, z)]` with shared uniforms :math:`u`), so differences along a row come from z
    alone. A small change in one pixel's probability can flip it and, through the later pixels' context, change more,
    so compare ``changed_z`` with ``changed_noise`` rather than with 0.
    """
    n_z, n_noise = check_positive_int("n_z", n_z), check_positive_int("n_noise", n_noise)
    c = model.config
    z = model.prior.sample(n_z, generator=generator).cpu().repeat(n_noise, 1)  # (n_noise * n_z, m): row-major
    u = torch.rand(n_noise, 1, *c.x_shape, generator=generator).expand(n_noise, n_z, *c.x_shape)
    images = model.sample(n_noise * n_z, z=z, noise=u.reshape(-1, *c.x_shape)).cpu().reshape(n_noise, n_z, *c.x_shape)
    flat = images.flatten(2)  # (n_noise, n_z, D)
    return SampleDependence(images, _mean_disagreement(flat), _mean_disagreement(flat.transpose(0, 1)))


class CollapseReport(NamedTuple):
    r"""One row of chapter 7's table: the IWAE bound :math:`\mathcal L_k` and the ELBO (nats, higher is better), KL,
    active units, MI, swap-test gap and the fraction of sampled pixels that change with z, plus the KL per dimension ``(m,)``."""

    bound: float
    elbo: float
    kl: float
    active: int
    mi: float
    gap: float
    changed: float
    kl_dims: Tensor

    def row(self) -> dict[str, float]:
        """The scalar fields as a dict (for a table)."""
        return {"test bound": self.bound, "test ELBO": self.elbo, "KL": self.kl, "active units": self.active, "MI": self.mi,
                "swap gap": self.gap, "samples change with z": self.changed}


@torch.no_grad()
def collapse_report(model: nn.Module, x: Tensor, *, k: int = 50, seed: int = 0, dependence: bool = True) -> CollapseReport:
    r"""Every detector on test images ``x``: the IWAE bound :math:`\mathcal L_k` and the ELBO (both from the same k
    importance samples per image), mean KL and its split per dimension, active units, :math:`I(x;z)`, the swap-test
    gap, and (if ``dependence``) :func:`sample_dependence`."""
    _check_images(model, x)
    if len(x) < 2:
        raise ValueError(f"x: got {len(x)} image(s); the collapse report needs N >= 2 (active units and I(x; z) compare images)")
    g = torch.Generator().manual_seed(check.seed("seed", seed))
    mu, logvar = encode_all(model, x)
    kl_dims = model.prior.kl(DiagonalGaussian(mu, logvar), per_dimension=True)
    if kl_dims is None:
        raise ValueError("model: its prior has no closed-form KL per dimension; the collapse report needs one")
    kl_dims = kl_dims.mean(0)  # (m,)
    log_w = log_weights(model, x, check_positive_int("k", k), generator=g, batch_size=max(1, 500 // k))  # (k, N)
    bound, elbo = float(iwae_bound(log_w).mean()), float(log_w.mean())  # L_k and L_1 (the ELBO) from the same draws
    au = active_units(mu)
    mi = mutual_information(mu, logvar, generator=g)
    gap = latent_swap_test(model, x, generator=g).gap
    changed = sample_dependence(model, generator=g).changed_z if dependence else float("nan")
    return CollapseReport(bound, elbo, float(kl_dims.sum()), au.count, mi, gap, changed, kl_dims)


class ReportTable:
    """Rows of :class:`CollapseReport` shown as a table: HTML in a notebook (and the book), aligned text otherwise."""

    HEAD = ("model", "test bound (IWAE)", "test ELBO", "KL", "active units", "I(x; z)", "swap gap", "pixels changed by z")

    def __init__(self, reports: dict[str, CollapseReport]):
        self.reports = dict(reports)

    def cells(self) -> list[list[str]]:
        """The table body as strings, one list per model (in the order of :attr:`HEAD`)."""
        out = []
        for name, r in self.reports.items():
            changed = "-" if math.isnan(r.changed) else f"{r.changed:.3f}"
            out.append([name, f"{r.bound:.2f}", f"{r.elbo:.2f}", f"{r.kl:.2f}", f"{r.active} / {len(r.kl_dims)}",
                        f"{r.mi:.2f}", f"{r.gap:.2f}", changed])
        return out

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.HEAD)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.cells())
        return f'<table class="table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def __repr__(self) -> str:
        rows = [list(self.HEAD), *self.cells()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEAD))]
        return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                         for r in rows)


def report_table(reports: dict[str, CollapseReport]) -> ReportTable:
    """The reports as a table, one row per model (displays as HTML in a notebook; ``print`` gives aligned text)."""
    return ReportTable(reports)


# ---------------------------------------------------------------- the stored free-bits sweep
def summarize_sweep(sweep: dict[str, Any]) -> dict[float, dict[str, Any]]:
    """Mean (and spread) over seeds for each floor: ``{lam: {"bound", "bound_sd", "kl", "mi", "gap", "active",
    "kl_dims" (list), "n"}}``, floors in increasing order."""
    out: dict[float, dict[str, Any]] = {}
    for lam in sorted({r["lam"] for r in sweep["rows"]}):
        rows = [r for r in sweep["rows"] if r["lam"] == lam]
        mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
        sd = lambda key: math.sqrt(sum((r[key] - mean(key)) ** 2 for r in rows) / max(1, len(rows) - 1))  # noqa: E731
        dims = torch.tensor([r["kl_dims"] for r in rows]).mean(0).tolist()
        out[lam] = {"bound": mean("bound"), "bound_sd": sd("bound"), "kl": mean("kl"), "mi": mean("mi"),
                    "gap": mean("gap"), "active": mean("active"), "elbo": mean("elbo"), "kl_dims": dims, "n": len(rows)}
    return out


def load_sweep(path: str | Path | None = None) -> dict[str, Any]:
    """Read a sweep written by ``vae-course collapse-sweep`` (:mod:`vae_course.experiments.free_bits_sweep`); default:
    the stored one, :data:`SWEEP_PATH`."""
    path = Path(path) if path is not None else Path(SWEEP_PATH)
    if not path.is_file():
        raise ValueError(f"path: {path} does not exist; create it with `vae-course collapse-sweep --out {path}`")
    data = json.loads(path.read_text(encoding="utf-8"))
    if "rows" not in data or not data["rows"]:
        raise ValueError(f"path: {path} holds no sweep rows")
    return data
