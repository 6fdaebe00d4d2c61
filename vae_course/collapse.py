r"""Posterior collapse: detect it, and the remedies that plug into :func:`vae_course.train.fit` (chapter 7).

A VAE has **collapsed** when its posterior equals the prior, :math:`q_w(z\mid x) = p(z)` for every
:math:`x`: the latent carries no information about the image and the decoder models the data on its own.
Samples do not show it (a strong decoder still draws good digits); these detectors do.

* :func:`kl_per_dimension`: :math:`\mathrm{KL}(q(z_j\mid x)\,\|\,\mathcal N(0,1))` for each coordinate
  :math:`j`; collapse is a KL of (almost) 0 in every coordinate.
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

Remedies: :func:`kl_warmup` (Bowman et al., 2016) as a ``loss_kwargs`` schedule, :func:`free_bits_kl`
(Kingma et al., 2016) as a loss option, and :math:`\beta < 1` as ``loss_kwargs={"beta": 0.2}``.
"""
from __future__ import annotations

import math
import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor, nn

from .utils import check_positive_int

__all__ = ["kl_per_dimension", "free_bits_kl", "warmup_beta", "kl_warmup", "WARMUP_KINDS", "encode_all",
           "ActiveUnits", "active_units", "mutual_information", "SwapTest", "latent_swap_test",
           "SampleDependence", "sample_dependence", "CollapseReport", "collapse_report", "ReportTable", "report_table",
           "AU_THRESHOLD",
           "CHAPTER_FIT", "free_bits_sweep", "summarize_sweep", "load_sweep", "add_arguments", "run"]

AU_THRESHOLD = 0.01  # Burda et al. (2016): a unit is active if Cov_x(E_q[z_u]) > 0.01
WARMUP_KINDS = ("linear", "sigmoid")
CHAPTER_FIT = {"epochs": 20, "batch_size": 128, "lr": 3e-3}  # chapter 7's training run on the 8x8 digits
SIGMOID_SLOPE = 10.0  # the sigmoid warm-up rises from 0 to 1 over [0, n_steps] like sigmoid(10 (t - 1/2))


# ---------------------------------------------------------------- KL per dimension and free bits
def kl_per_dimension(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""One KL per latent coordinate, :math:`\tfrac12(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)`: ``(..., m)``.

    Their sum over :math:`j` is the ELBO's KL term; their mean over the data is the per-dimension KL plotted
    in chapter 7. ``mu``, ``logvar``: ``(..., m)``.
    """
    return 0.5 * (torch.exp(logvar) + mu.pow(2) - 1 - logvar)


def free_bits_kl(kl_per_dim: Tensor, lam: float, *, group_size: int = 1) -> Tensor:
    r"""The free-bits KL of Kingma et al. (2016): a floor :math:`\lambda` on the batch-mean KL of each group.

    .. math:: R_\lambda = \sum_{g} \max\Big(\lambda,\ \frac1B\sum_{b=1}^{B}\sum_{j\in g}\mathrm{KL}_{bj}\Big)

    A group whose mean KL is below :math:`\lambda` costs a constant and gets **no gradient**, so the optimiser
    stops pushing it towards the prior; the first :math:`\lambda` nats of each group are free. The floor is
    per dimension (``group_size=1``) or per group of ``group_size`` consecutive dimensions, and on the
    **batch mean** (a per-example floor would let every image keep :math:`\lambda` nats of noise).

    Args:
        kl_per_dim: ``(B, m)`` KL of each example and coordinate (:func:`kl_per_dimension`).
        lam: the floor :math:`\lambda \ge 0` in nats per group.
        group_size: dimensions per group; must divide m.
    Returns: a scalar (nats per example), equal to the mean KL when no group is below the floor.
    """
    if kl_per_dim.dim() != 2:
        raise ValueError(f"kl_per_dim: got shape {tuple(kl_per_dim.shape)}; need (B, m)")
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam: got {lam!r}; need a float >= 0 (nats per group)")
    m = kl_per_dim.shape[1]
    g = check_positive_int("group_size", group_size)
    if m % g:
        raise ValueError(f"group_size: got {g}; need a divisor of the latent size m = {m}")
    per_group = kl_per_dim.mean(0).reshape(m // g, g).sum(1)  # (m / g,): batch mean, then sum within a group
    return torch.clamp(per_group, min=lam).sum()


# ---------------------------------------------------------------- KL warm-up schedules
def warmup_beta(kind: str, step: int | float, n_steps: int, *, beta_max: float = 1.0) -> float:
    r"""The KL weight after ``step`` optimiser steps of a warm-up lasting ``n_steps`` (Bowman et al., 2016).

    ``"linear"``: :math:`\beta = \beta_{\max}\min(1, t)`, :math:`t = \text{step}/n_\text{steps}`;
    ``"sigmoid"``: :math:`\beta = \beta_{\max}\,\dfrac{s(t) - s(0)}{s(1) - s(0)}` for :math:`t\le 1`, with
    :math:`s(t) = 1/(1 + e^{-10(t - 1/2)})`: slow start, fast middle, slow end, exactly 0 at the start and
    :math:`\beta_{\max}` from ``n_steps`` on.
    """
    if kind not in WARMUP_KINDS:
        raise ValueError(f"kind: got {kind!r}; need one of {WARMUP_KINDS}")
    n_steps = check_positive_int("n_steps", n_steps)
    t = min(max(float(step) / n_steps, 0.0), 1.0)
    if kind == "linear":
        return beta_max * t
    s = lambda u: 1.0 / (1.0 + math.exp(-SIGMOID_SLOPE * (u - 0.5)))  # noqa: E731
    return beta_max * (s(t) - s(0.0)) / (s(1.0) - s(0.0))


def kl_warmup(kind: str = "linear", n_steps: int = 1000, *, beta_max: float = 1.0,
              **fixed) -> Callable[[int, int, int], dict]:
    r"""A ``loss_kwargs`` schedule for :func:`vae_course.train.fit`: ``callable(epoch, step, n_steps) -> {"beta": ...}``.

    The KL weight rises from 0 to ``beta_max`` over the first ``n_steps`` optimiser steps (:func:`warmup_beta`),
    then stays there. ``fixed`` keyword arguments are passed to the loss unchanged at every step (e.g.
    ``free_bits=0.1``). Example: ``fit(model, data, epochs=30, loss_kwargs=kl_warmup("sigmoid", 400))``.
    """
    warmup_beta(kind, 0, n_steps, beta_max=beta_max)  # validates kind and n_steps now, not at the first step

    def schedule(epoch: int, step: int, total_steps: int) -> dict:
        return {"beta": warmup_beta(kind, step, n_steps, beta_max=beta_max), **fixed}

    schedule.__name__ = f"kl_warmup_{kind}_{n_steps}"
    return schedule


# ---------------------------------------------------------------- detectors
def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_all(model: nn.Module, x: Tensor, *, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    r"""``(mu, logvar)`` of :math:`q(z\mid x)` for every image of ``x``: two ``(N, m)`` tensors (on the CPU)."""
    model.eval()
    mus, lvs = [], []
    for i in range(0, len(x), check_positive_int("batch_size", batch_size)):
        q = model.encode(x[i:i + batch_size].to(_device(model)))
        mus.append(q.mu.cpu())
        lvs.append(q.logvar.cpu())
    return torch.cat(mus), torch.cat(lvs)


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
    if mu.dim() != 2 or mu.shape[0] < 2:
        raise ValueError(f"mu: got shape {tuple(mu.shape)}; need (N, m) posterior means of N >= 2 images")
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
    if mu.dim() != 2 or mu.shape != logvar.shape or mu.shape[0] < 2:
        raise ValueError(f"mu, logvar: got shapes {tuple(mu.shape)} and {tuple(logvar.shape)}; need equal (N, m), N >= 2")
    mu, logvar = mu.double(), logvar.double()
    n = mu.shape[0]
    total = 0.0
    for _ in range(check_positive_int("n_samples", n_samples)):
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps  # (N, m), z_n ~ q(z | x_n)
        log_q = _log_q_matrix(z, mu, logvar)  # (N, N): log q(z_n | x_k)
        log_agg = torch.logsumexp(log_q, dim=1) - math.log(n)  # (N,): log q(z_n)
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

    ``source="prior"``: :math:`z\sim\mathcal N(0, I)` (the lecture's "independent latent");
    ``source="shuffle"``: the encoder's latent of another image of the batch (stays where the decoder was trained).
    Uses ``model.encode(x)`` and ``model.decode(z).log_prob(x)``, so it works for every VAE of the course.
    """
    if source not in ("prior", "shuffle"):
        raise ValueError(f"source: got {source!r}; need 'prior' or 'shuffle'")
    model.eval()
    own, other = 0.0, 0.0
    for i in range(0, len(x), check_positive_int("batch_size", batch_size)):
        xb = x[i:i + batch_size].to(_device(model))
        q = model.encode(xb)
        eps = torch.randn(q.mu.shape, generator=generator).to(xb.device)
        z = q.mu + q.std * eps  # (B, m)
        if source == "prior":
            z_other = torch.randn(q.mu.shape, generator=generator).to(xb.device)
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
    r"""Decode ``n_z`` prior latents with the same decoder noise (``n_noise`` noise draws): does z matter?

    Needs ``model.sample(n, z=..., noise=...)`` (the autoregressive VAE: each pixel is
    :math:`1[u_i < p(x_i = 1\mid x_{<i}, z)]` with shared uniforms :math:`u`), so differences along a row come from z
    alone. A small change in one pixel's probability can flip it and, through the later pixels' context, change more,
    so compare ``changed_z`` with ``changed_noise`` rather than with 0.
    """
    n_z, n_noise = check_positive_int("n_z", n_z), check_positive_int("n_noise", n_noise)
    c = model.config
    z = torch.randn(n_z, c.z_dim, generator=generator).repeat(n_noise, 1)  # (n_noise * n_z, m): row-major
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
    from .evaluate import iwae_bound, log_weights

    g = torch.Generator().manual_seed(seed)
    mu, logvar = encode_all(model, x)
    kl_dims = kl_per_dimension(mu, logvar).mean(0)  # (m,)
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
        import html

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


# ---------------------------------------------------------------- the free-bits sweep behind chapter 7's widget
def free_bits_sweep(lams: tuple[float, ...] = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0), seeds: tuple[int, ...] = (0, 1, 2), *,
                    epochs: int = CHAPTER_FIT["epochs"], k: int = 50) -> dict[str, Any]:
    r"""Train chapter 7's :class:`~vae_course.models.AutoregressiveVAE` on the static-binarised digits with each free-bits
    floor :math:`\lambda` and seed (CPU), and evaluate it with :func:`collapse_report` on the test digits.

    Returns ``{"settings": ..., "rows": [{"lam", "seed", "bound", "elbo", "kl", "kl_dims", "active", "mi", "gap"}, ...]}``
    (plain values, written as JSON by ``vae-course collapse-sweep``).
    """
    from .data import digits
    from .models import AutoregressiveVAE
    from .train import fit

    data = digits(binarize="static")
    settings = {**CHAPTER_FIT, "epochs": check_positive_int("epochs", epochs), "k": k, "data": "digits(binarize='static')",
                "model": "AutoregressiveVAE()", "device": "cpu"}
    rows = []
    for lam in lams:
        for seed in seeds:
            torch.manual_seed(seed)
            model = AutoregressiveVAE()
            fit(model, data, epochs=settings["epochs"], batch_size=CHAPTER_FIT["batch_size"], lr=CHAPTER_FIT["lr"],
                seed=seed, device="cpu", progress=False, test_every=settings["epochs"],
                loss_kwargs={"free_bits": float(lam)} if lam else None)
            r = collapse_report(model, data.x_test, k=k, seed=seed, dependence=False)
            rows.append({"lam": float(lam), "seed": int(seed), "bound": round(r.bound, 4), "elbo": round(r.elbo, 4),
                         "kl": round(r.kl, 4), "kl_dims": [round(v, 4) for v in r.kl_dims.tolist()],
                         "active": r.active, "mi": round(r.mi, 4), "gap": round(r.gap, 4)})
    return {"settings": settings, "rows": rows}


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
    """Read a sweep written by ``vae-course collapse-sweep``; default: the book's ``book/data/ch07_free_bits.json``."""
    path = Path(path) if path is not None else Path(__file__).resolve().parents[1] / "book" / "data" / "ch07_free_bits.json"
    if not path.is_file():
        raise ValueError(f"path: {path} does not exist; create it with `vae-course collapse-sweep --out {path}`")
    data = json.loads(path.read_text(encoding="utf-8"))
    if "rows" not in data or not data["rows"]:
        raise ValueError(f"path: {path} holds no sweep rows")
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vae-course collapse-sweep``."""
    parser.add_argument("--out", default="book/data/ch07_free_bits.json", help="JSON file to write")
    parser.add_argument("--lams", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.25, 0.5, 1.0],
                        help="free-bits floors in nats per dimension (0: no floor)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--epochs", type=int, default=CHAPTER_FIT["epochs"], help="epochs per run")
    parser.add_argument("--k", type=int, default=50, help="importance samples of the test bound")


def run(args: argparse.Namespace) -> int:
    """``vae-course collapse-sweep``: run :func:`free_bits_sweep` and write its JSON (about 5 s per run on a CPU)."""
    try:
        sweep = free_bits_sweep(tuple(args.lams), tuple(args.seeds), epochs=args.epochs, k=args.k)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sweep["settings"]["command"] = ("vae-course collapse-sweep --lams " + " ".join(map(str, args.lams)) + " --seeds "
                                    + " ".join(map(str, args.seeds)) + f" --epochs {args.epochs} --k {args.k}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(sweep, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(sweep['rows'])} runs")
    return 0
