r"""beta-VAE, capacity control and disentanglement metrics (chapter 6).

**The beta-ELBO** (Higgins et al., 2017) weights the KL term of the ELBO by :math:`\beta`:

.. math:: \mathcal L_\beta(x) = \mathbb E_{q(z\mid x)}\big[\log p(x\mid z)\big] - \beta\,\mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big).

The KL is the **rate** :math:`R` (nats the code spends on each image), minus the reconstruction term is
the **distortion** :math:`D`, and maximising :math:`\mathcal L_\beta` minimises :math:`D + \beta R`: one
point on a rate-distortion curve per :math:`\beta` (Alemi et al., 2018). Every VAE of the course takes
``beta``; pass it through ``fit(..., loss_kwargs={"beta": 4.0})``.

**Capacity control** (Burgess et al., 2018) minimises :math:`D + \gamma\,|R - C|`, a large weight
:math:`\gamma` that holds the rate near a target :math:`C` (nats), while :math:`C` grows from 0 to
:math:`C_{\max}` during training: the loss option ``capacity`` of every VAE, annealed by
:func:`vae_course.objectives.capacity_schedule`. Both objectives are in :mod:`vae_course.objectives`;
the beta sweep that trains and scores many models is :mod:`vae_course.experiments.beta_sweep`.

**Metrics** compare codes :math:`z` of a trained model (:func:`latent_codes`) with the known factors :math:`v` of
the sprites:

* the Mutual Information Gap (Chen et al., 2018), :func:`mig`:
  :math:`\frac1K\sum_k \frac{I(z_{j^{(1)}}; v_k) - I(z_{j^{(2)}}; v_k)}{H(v_k)}`, with :math:`j^{(1)}, j^{(2)}` the
  latents of largest and second-largest mutual information with factor :math:`k`; 1 when each factor
  is stored in one latent alone, 0 when it is shared equally;
* DCI (Eastwood & Williams, 2018), :func:`dci`: fit a random forest per factor on the codes, read off
  the importance :math:`R_{jk}` of latent :math:`j` for factor :math:`k`; *disentanglement* is high when each
  latent matters for one factor, *completeness* when each factor is captured by one latent,
  *informativeness* is the forest's test accuracy.
"""
from __future__ import annotations

import csv
import math
import os
from typing import NamedTuple

import torch
from sklearn.ensemble import RandomForestClassifier
from torch import Tensor, nn

from . import _validate as check
from ._validate import tensor as _tensor
from .distributions import DiagonalGaussian
from .checkpoint import load_checkpoint
from .evaluate import encode_all
from .sprites import FACTORS, LEVELS
from .tc import KLDecomposition, kl_decomposition
from .utils import check_positive_int, stored_file

__all__ = ["kl_per_latent", "latent_codes", "discretize", "mi_matrix", "factor_entropy", "MIG", "mig",
           "mig_from_discrete", "DCI", "dci", "kl_split", "score_model", "read_sweep", "parse_levels", "format_levels",
           "load_stored_model", "summarize_sweep", "SWEEP_COLUMNS", "SWEEP_PATH", "MODEL_PATH"]

SWEEP_PATH = str(stored_file("beta_sweep.csv"))  # the stored sweep the chapter shows
MODEL_PATH = str(stored_file("beta_sweep_best.pt"))  # the sweep's run of highest MIG, for the chapter's traversal
SWEEP_SETTINGS = ("levels", "epochs", "z_dim", "arch", "hidden", "batch_size", "lr")  # stored in every row of a sweep
GAP_COLUMNS = tuple(f"gap_{name}" for name in FACTORS)  # the MIG's normalised gap of each factor
SWEEP_COLUMNS = ("config", "objective", "beta", "tc", "seed", *SWEEP_SETTINGS, "rate", "distortion", "elbo", "mi",
                 "total_correlation", "dim_kl", "mig", *GAP_COLUMNS, "dci_d", "dci_c", "dci_i", "active", "seconds")


# ------------------------------------------------------------------ codes of a trained model
def kl_per_latent(model: nn.Module, x: Tensor, *, batch_size: int = 1000) -> Tensor:
    r"""Mean over ``x`` of :math:`\mathrm{KL}(q(z_j\mid x)\,\|\,p(z_j))` per latent :math:`j`: ``(m,)`` nats.

    Summed over :math:`j` it is the rate; a latent with KL near 0 carries no information about x. Uses the
    model's prior (its closed-form KL per dimension) and :func:`vae_course.evaluate.encode_all`."""
    kl = model.prior.kl(DiagonalGaussian(*encode_all(model, x, batch_size=batch_size)), per_dimension=True)
    if kl is None:
        raise ValueError("model: its prior has no closed-form KL per latent dimension; kl_per_latent needs one")
    return kl.mean(0)


def latent_codes(model: nn.Module, x: Tensor, *, sample: bool = False, generator: torch.Generator | None = None,
                 batch_size: int = 1000) -> Tensor:
    r"""Codes of images ``x`` for the metrics: the encoder means :math:`\mu(x)` ``(N, m)``, or with ``sample`` one draw
    :math:`z = \mu + \sigma\odot\varepsilon` per image (CPU; ``generator`` seeds :math:`\varepsilon`).

    The MIG is defined with :math:`z\sim q(z\mid x)` (Chen et al., 2018). That matters for collapsed latents: their
    means may still drift a little with a factor, which an equal-width histogram magnifies into spurious
    information, while their draws are pure prior noise and carry none."""
    q = DiagonalGaussian(*encode_all(model, x, batch_size=batch_size))
    return q.sample(generator=generator) if sample else q.mu  # (N, m)


# ------------------------------------------------------------------ mutual information gap
def _codes_factors(codes: Tensor, factors: Tensor) -> tuple[Tensor, Tensor]:
    codes = _tensor("codes", codes, min_dim=2)
    if codes.dim() != 2:
        raise ValueError(f"codes: got shape {tuple(codes.shape)}; need (N, m)")
    if not isinstance(factors, Tensor) or factors.dtype != torch.int64 or factors.dim() != 2:
        raise TypeError(f"factors: got {getattr(factors, 'dtype', type(factors).__name__)} of shape "
                        f"{tuple(getattr(factors, 'shape', ()))}; need int64 level indices (N, K)")
    if len(factors) != len(codes):
        raise ValueError(f"factors: got {len(factors)} rows; need one per code ({len(codes)})")
    if not len(codes):
        raise ValueError(f"codes: got shape {tuple(codes.shape)}, which is empty; need at least one code")
    if bool((factors < 0).any()):
        raise ValueError("factors: got negative level indices; need indices >= 0")
    return codes, factors


def _levels(name: str, t: Tensor) -> Tensor:
    """Discrete values: int64 ``(N, K)``, N >= 1, entries >= 0."""
    if not isinstance(t, Tensor) or t.dtype != torch.int64 or t.dim() != 2:
        raise TypeError(f"{name}: got {getattr(t, 'dtype', type(t).__name__)} of shape {tuple(getattr(t, 'shape', ()))}; "
                        "need int64 level indices (N, K)")
    if not len(t) or not t.shape[1]:
        raise ValueError(f"{name}: got shape {tuple(t.shape)}, which is empty; need (N, K) with N, K >= 1")
    return check.index_tensor(name, t, 2**62)


def _varying(h: Tensor) -> Tensor:
    """The MIG of constant factors is 0/0: refuse, as :func:`dci` does, when no factor varies."""
    if not bool((h > 0).any()):
        raise ValueError("factors: every factor is constant; the MIG needs at least one that varies")
    return h


def discretize(codes: Tensor, n_bins: int = 20) -> Tensor:
    """Equal-width histogram bins per column: ``(N, m)`` float -> ``(N, m)`` int64 in ``[0, n_bins)``.

    Each column's range [min, max] is cut into ``n_bins`` bins (as in Locatello et al., 2019); a constant
    column falls in bin 0."""
    codes = _tensor("codes", codes, min_dim=2)
    n_bins = check_positive_int("n_bins", n_bins)
    lo, hi = codes.min(0).values, codes.max(0).values
    width = (hi - lo).clamp(min=1e-12) / n_bins
    return ((codes - lo) / width).floor().clamp(0, n_bins - 1).long()


def mi_matrix(a: Tensor, b: Tensor) -> Tensor:
    r"""Plug-in :math:`I(a_j; b_k) = \sum p(a,b)\log\frac{p(a,b)}{p(a)p(b)}` (nats) for every column pair of
    discrete ``a`` ``(N, m)`` and ``b`` ``(N, K)`` (int64 >= 0): returns ``(m, K)``."""
    a, b = _levels("a", a), _levels("b", b)
    if len(a) != len(b):
        raise ValueError(f"a, b: got {len(a)} and {len(b)} rows; need one row of b per row of a")
    n = len(a)
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    out = torch.zeros(a.shape[1], b.shape[1], dtype=torch.float64)
    for j in range(a.shape[1]):
        for k in range(b.shape[1]):
            joint = torch.bincount(a[:, j] * nb + b[:, k], minlength=na * nb).reshape(na, nb).double() / n
            pa, pb = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
            nz = joint > 0
            out[j, k] = (joint[nz] * (joint[nz] / (pa * pb).expand_as(joint)[nz]).log()).sum()
    return out


def factor_entropy(factors: Tensor) -> Tensor:
    r""":math:`H(v_k) = -\sum_v p(v)\log p(v)` (nats) of each column of ``factors`` ``(N, K)`` int64: ``(K,)``."""
    factors = _levels("factors", factors)
    out = []
    for k in range(factors.shape[1]):
        p = torch.bincount(factors[:, k]).double() / len(factors)
        p = p[p > 0]
        out.append(-(p * p.log()).sum())
    return torch.stack(out)


class MIG(NamedTuple):
    """``score``: the MIG; ``gaps`` ``(K,)``: normalised gap per factor; ``mi`` ``(m, K)`` nats; ``entropy`` ``(K,)`` nats."""

    score: float
    gaps: Tensor
    mi: Tensor
    entropy: Tensor


def mig_from_discrete(codes_discrete: Tensor, factors: Tensor) -> Tensor:
    r"""MIG of already discretised codes ``(N, m)`` int64 against ``factors`` ``(N, K)`` int64: a 0-dim tensor.

    .. math:: \mathrm{MIG} = \frac1K\sum_{k=1}^K \frac{I(z_{j^{(1)}_k}; v_k) - I(z_{j^{(2)}_k}; v_k)}{H(v_k)}

    (Chen et al., 2018); needs m >= 2 latents. Constant factors (:math:`H = 0`) are left out of the mean."""
    if _levels("codes_discrete", codes_discrete).shape[1] < 2:
        raise ValueError(f"codes_discrete: got {codes_discrete.shape[1]} latent(s); the MIG needs at least 2")
    mi = mi_matrix(codes_discrete, factors)  # (m, K)
    top2 = mi.topk(2, dim=0).values  # (2, K): largest and second-largest over latents
    h = _varying(factor_entropy(factors))
    return ((top2[0] - top2[1])[h > 0] / h[h > 0]).mean()


def mig(codes: Tensor, factors: Tensor, *, n_bins: int = 20) -> MIG:
    r"""Mutual Information Gap of continuous ``codes`` ``(N, m)`` against ``factors`` ``(N, K)`` int64, after
    :func:`discretize` with ``n_bins`` bins per latent. For a VAE pass draws of :math:`q(z\mid x)`
    (:func:`latent_codes` with ``sample=True``). A constant factor has nothing to disentangle: its gap is NaN
    and it is left out of the score; when every factor is constant there is no score and a ValueError says so."""
    codes, factors = _codes_factors(codes, factors)
    zd = discretize(codes, n_bins)
    mi = mi_matrix(zd, factors)
    h = _varying(factor_entropy(factors))
    top2 = mi.topk(min(2, mi.shape[0]), dim=0).values
    gaps = (top2[0] - (top2[1] if len(top2) > 1 else 0.0)) / h.where(h > 0, torch.nan)
    return MIG(float(gaps[h > 0].mean()), gaps.float(), mi.float(), h.float())


# ------------------------------------------------------------------ DCI
class DCI(NamedTuple):
    """Disentanglement, completeness and informativeness (test accuracy, mean over factors), each in [0, 1];
    ``importance`` ``(m, K')``: the forests' importance of latent j for each varying factor (columns sum to 1)."""

    disentanglement: float
    completeness: float
    informativeness: float
    importance: Tensor


def _normalised_entropy(p: Tensor, dim: int, base: int) -> Tensor:
    p = p / p.sum(dim, keepdim=True).clamp(min=1e-12)
    return -(p * p.clamp(min=1e-12).log()).sum(dim) / math.log(base)


def dci(codes: Tensor, factors: Tensor, *, n_train: int | None = None, n_trees: int = 10, max_depth: int | None = None,
        seed: int = 0) -> DCI:
    r"""DCI scores (Eastwood & Williams, 2018) with random-forest importances.

    For each factor :math:`k` a forest predicts :math:`v_k` from the codes (all latents considered at every
    split, so the importances are not spread by chance); :math:`R_{jk}` is latent :math:`j`'s impurity importance.
    With :math:`P_{jk} = R_{jk}/\sum_{k'}R_{jk'}`: :math:`D_j = 1 - H_K(P_{j\cdot})`, disentanglement
    :math:`\sum_j\rho_jD_j` with :math:`\rho_j = \sum_kR_{jk}/\sum R`; completeness :math:`\frac1K\sum_k 1 - H_m(\tilde P_{\cdot k})`
    with :math:`\tilde P_{jk} = R_{jk}/\sum_{j'}R_{j'k}` (entropies in base K and m). ``n_train`` rows (default 80 %)
    fit the forests, the rest give the informativeness.
    """
    codes, factors = _codes_factors(codes, factors)
    n, m = codes.shape
    if m < 2:
        raise ValueError(f"codes: got {m} latent(s); DCI needs at least 2")
    n_train = int(0.8 * n) if n_train is None else check_positive_int("n_train", n_train)
    if not 1 <= n_train < n:
        raise ValueError(f"n_train: got {n_train}; need 1 <= n_train < {n} (the rest is the test part)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    tr, te = perm[:n_train], perm[n_train:]
    varying = [k for k in range(factors.shape[1]) if len(torch.unique(factors[:, k])) > 1]  # constant ones are skipped
    if not varying:
        raise ValueError("factors: every factor is constant; DCI needs at least one that varies")
    factors = factors[:, varying]
    z, v = codes.double().numpy(), factors.numpy()
    importance = torch.zeros(m, factors.shape[1], dtype=torch.float64)
    accuracy = []
    for k in range(factors.shape[1]):
        forest = RandomForestClassifier(n_estimators=check_positive_int("n_trees", n_trees), max_depth=max_depth,
                                        max_features=None, random_state=seed, n_jobs=1)
        forest.fit(z[tr], v[tr, k])
        importance[:, k] = torch.from_numpy(forest.feature_importances_)
        accuracy.append(forest.score(z[te], v[te, k]))
    d_j = 1 - _normalised_entropy(importance, 1, factors.shape[1])  # (m,)
    rho = importance.sum(1) / importance.sum().clamp(min=1e-12)
    c_k = 1 - _normalised_entropy(importance, 0, m)  # (K,)
    return DCI(float((rho * d_j).sum()), float(c_k.mean()), float(sum(accuracy) / len(accuracy)), importance.float())


# ------------------------------------------------------------------ scoring a trained model
@torch.no_grad()
def kl_split(model: nn.Module, images: Tensor, *, n_samples: int = 1, seed: int = 0,
             batch_size: int = 1000) -> KLDecomposition:
    r"""The rate of ``model`` on a whole small data set ``images`` split into index-code MI, total correlation and
    dimension-wise KL (Chen et al., 2018): :func:`vae_course.tc.kl_decomposition` of the encoder's posteriors,
    exact sums over the ``N`` images, ``n_samples`` seeded draws per image."""
    mu, logvar = encode_all(model, images, batch_size=batch_size)
    return kl_decomposition(mu.cpu(), logvar.cpu(), n_samples=n_samples, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def score_model(model: nn.Module, images: Tensor, factors: Tensor, *, seed: int = 0, dci_trees: int = 10) -> dict[str, float]:
    r"""Rate :math:`R` (mean KL), distortion :math:`D` (mean :math:`-\log p(x\mid z)`, one seeded draw of z), the
    ELBO, the split of the rate into ``mi``, ``total_correlation`` and ``dim_kl`` (:func:`kl_split`), MIG (of one
    draw :math:`z\sim q(z\mid x)` per image) with the gap of each factor (``gap_shape``, ... ; NaN for a constant
    factor), DCI (of the encoder means, as Eastwood & Williams) and the number of active latents (KL > 0.1 nats)
    of ``model`` on ``images`` with known ``factors`` (e.g. :func:`vae_course.sprites.sprites_grid`). Deterministic
    for a given ``seed``."""
    if not isinstance(images, Tensor) or images.dim() == 0 or not len(images):
        raise ValueError(f"images: got {getattr(images, 'shape', type(images).__name__)}; need a non-empty tensor of "
                         "images (N, C, H, W)")
    if len(_levels("factors", factors)) != len(images):
        raise ValueError(f"factors: got {len(factors)} rows; need one per image ({len(images)})")
    model.check_input(images.to(next(model.parameters()).device), "images")
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    recon, kl = [], []
    for i in range(0, len(images), 1000):
        t = model.elbo(images[i:i + 1000].to(device), generator=g)
        recon.append(t.recon.cpu())
        kl.append(t.kl.cpu())
    rate, distortion = float(torch.cat(kl).mean()), float(-torch.cat(recon).mean())
    draws = latent_codes(model, images, sample=True, generator=torch.Generator().manual_seed(seed))
    m = mig(draws, factors)
    d = dci(latent_codes(model, images), factors, n_trees=dci_trees, seed=seed)
    active = int((kl_per_latent(model, images) > 0.1).sum())
    split = kl_split(model, images, seed=seed)
    gaps = {name: float(g) for name, g in zip(GAP_COLUMNS, m.gaps.tolist())} if len(m.gaps) == len(FACTORS) else {}
    return {"rate": rate, "distortion": distortion, "elbo": -rate - distortion, "mi": split.mi,
            "total_correlation": split.tc, "dim_kl": float(split.dim_kl.sum()), "mig": m.score, **gaps,
            "dci_d": d.disentanglement, "dci_c": d.completeness, "dci_i": d.informativeness, "active": active}


# ------------------------------------------------------------------ the stored sweep and its model
def parse_levels(text: str | None) -> dict[str, int] | None:
    """``"rotation=1,x=4"`` -> ``{"rotation": 1, "x": 4}``; ``"default"``, ``""`` or None -> None (the full grid)."""
    if text is None or text.strip() in ("", "default"):
        return None
    out = {}
    for part in text.split(","):
        name, _, count = part.partition("=")
        name = name.strip()
        if name not in LEVELS or not count.strip().isdigit():
            raise ValueError(f"levels: got {text!r}; need comma-separated NAME=COUNT with NAME in {FACTORS}, "
                             "e.g. 'rotation=1'")
        out[name] = int(count)
    return out


def format_levels(levels: dict[str, int] | None) -> str:
    """The inverse of :func:`parse_levels`: ``{"rotation": 1}`` -> ``"rotation=1"``, None -> ``"default"``."""
    return ",".join(f"{k}={v}" for k, v in levels.items()) if levels else "default"


_TEXT = ("config", "objective", "arch", "levels")
_INTS = ("seed", "epochs", "z_dim", "hidden", "batch_size", "active")


def _typed(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if k in _TEXT:
            out[k] = v
        elif k in _INTS:
            out[k] = int(v)
        else:
            out[k] = float(v) if v not in ("", None) else float("nan")
    return out


def read_sweep(path=None, *, config: str | None = None) -> list[dict]:
    """Rows of a sweep CSV (written by ``vae-course sweep-beta``, :mod:`vae_course.experiments.beta_sweep`) with
    numbers parsed; only ``config`` if given. ``path`` defaults to the stored sweep, :data:`SWEEP_PATH`."""
    path = SWEEP_PATH if path is None else path
    if not os.path.isfile(path):
        raise ValueError(f"path: {path} does not exist; create it with `vae-course sweep-beta --out {path}`")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [_typed(r) for r in csv.DictReader(f)]
    return [r for r in rows if config is None or r["config"] == config]


def summarize_sweep(rows: list[dict], keys=("rate", "distortion", "mi", "total_correlation", "dim_kl", "mig", "dci_d")
                    ) -> list[dict]:
    """One dict per setting (``objective``, ``beta``, ``tc``) of a sweep: ``n`` (seeds), and for each of ``keys`` its
    mean over the seeds, ``<key>_sd`` (sample standard deviation), ``<key>_min`` and ``<key>_max``. beta-VAEs come
    first by beta, then beta-TCVAEs by their total-correlation weight."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["objective"] == "beta-tcvae", r["beta"], r["tc"]), []).append(r)
    out = []
    for (_, beta, tc), sel in sorted(groups.items()):
        summary = {"objective": sel[0]["objective"], "beta": beta, "tc": tc, "n": len(sel)}
        for k in keys:
            v = torch.tensor([float(r[k]) for r in sel], dtype=torch.float64)
            summary.update({k: float(v.mean()), f"{k}_sd": float(v.std()) if len(v) > 1 else 0.0,
                            f"{k}_min": float(v.min()), f"{k}_max": float(v.max())})
        out.append(summary)
    return out


def load_stored_model(path=None):
    """The model stored with the sweep (``vae-course sweep-beta --save-model``), as ``(model, row, history)``: the
    VAE in eval mode on the CPU (float32), its row of the sweep (settings and scores) and its training history.
    ``path`` defaults to :data:`MODEL_PATH`."""
    path = MODEL_PATH if path is None else path
    model, _, history, extra = load_checkpoint(path, return_extra=True)
    return model.float(), _typed({k: str(v) for k, v in extra["row"].items()}), history
