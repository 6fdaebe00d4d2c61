r"""``vae-course sweep-beta``: train and score beta-VAEs on the sprites over betas and seeds (chapter 6).

:func:`train_beta_vae` trains one beta-VAE (or a capacity-controlled one) with :func:`vae_course.train.fit`;
:func:`sweep_beta` trains one per (beta, seed) and scores each with :func:`vae_course.disentangle.score_model`
(rate, distortion, MIG, DCI, active latents). The sweep the book shows is stored with the package
(``vae_course/stored/beta_sweep.csv``, read by :func:`vae_course.disentangle.read_sweep`); ``vae-course
sweep-beta`` regenerates it and a test re-runs a tiny slice of it.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from typing import NamedTuple

import torch
from torch import nn

from .. import _validate as check
from .._args import device, nonnegative_float, nonnegative_int, positive_float, positive_int, writable_file
from ..disentangle import SWEEP_COLUMNS, SWEEP_PATH, read_sweep, score_model
from ..history import History
from ..models import VAE
from ..objectives import capacity_schedule
from ..sprites import sprites, sprites_grid
from ..train import fit

__all__ = ["BetaRun", "train_beta_vae", "sweep_beta", "write_sweep", "add_arguments", "run"]


class BetaRun(NamedTuple):
    """A trained model and its :class:`~vae_course.history.History`."""

    model: nn.Module
    history: History


def train_beta_vae(data, *, beta: float = 1.0, seed: int = 0, epochs: int = 30, z_dim: int = 8, arch: str = "mlp",
                   hidden: int = 200, batch_size: int = 64, lr: float = 1e-3, capacity: float | None = None,
                   device=None, progress: bool = False) -> BetaRun:
    r"""Train a beta-VAE (Bernoulli pixels) on ``data`` (e.g. :func:`vae_course.sprites.sprites`) with
    :func:`vae_course.train.fit`. ``seed`` fixes the initial weights, the batches and the noise.

    With ``capacity`` (nats) the VAE is trained on :math:`D + \beta|R - C|`, :math:`C` annealed from 0 to
    ``capacity`` (:func:`~vae_course.objectives.capacity_schedule`, ``gamma = beta``); otherwise on the beta-ELBO.
    """
    check.positive_float("beta", beta, allow_zero=True)
    x_shape = tuple(data.x_train.shape[1:]) if hasattr(data, "x_train") else tuple(data.shape[1:])
    torch.manual_seed(seed)
    model = VAE(x_shape=x_shape, z_dim=z_dim, arch=arch, hidden=hidden, activation="relu" if arch == "conv" else "tanh",
                channels=(16, 32))
    kwargs = {"beta": float(beta)} if capacity is None else capacity_schedule(capacity, gamma=float(beta))
    history = fit(model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                  loss_kwargs=kwargs, progress=progress)
    return BetaRun(model, history)


def sweep_beta(betas, seeds, *, config: str = "sweep", epochs: int = 100, z_dim: int = 8, arch: str = "mlp",
               hidden: int = 200, batch_size: int = 64, lr: float = 1e-3, device=None, progress: bool = False,
               callback=None) -> list[dict]:
    """Train one beta-VAE per (beta, seed) on the full sprites grid (:func:`vae_course.sprites.sprites`, seed 0
    split) and score each on every grid image (:func:`~vae_course.disentangle.score_model`). Returns one dict per
    run with the keys :data:`SWEEP_COLUMNS`; ``callback(row)`` is called after each run (e.g. to print progress)."""
    betas, seeds = list(betas), [check.seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)]
    for i, beta in enumerate(betas):
        check.positive_float(f"betas[{i}]", beta, allow_zero=True)
    data = sprites(seed=0)
    images, factors = sprites_grid()
    rows = []
    for beta in betas:
        for seed in seeds:
            t0 = time.perf_counter()
            run = train_beta_vae(data, beta=beta, seed=seed, epochs=epochs, z_dim=z_dim, arch=arch, hidden=hidden,
                                 batch_size=batch_size, lr=lr, device=device, progress=progress)
            row = {"config": config, "beta": float(beta), "seed": int(seed), "epochs": epochs, "z_dim": z_dim,
                   "arch": arch, "hidden": hidden, "batch_size": batch_size, "lr": lr,
                   **score_model(run.model, images, factors, seed=seed)}
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            if callback is not None:
                callback(row)
    return rows


def write_sweep(rows: list[dict], path) -> None:
    """Write ``rows`` to ``path`` as CSV, replacing the rows of the same ``config`` already there and keeping others.
    Each row is a dict with (at least) the keys :data:`~vae_course.disentangle.SWEEP_COLUMNS`."""
    if not isinstance(path, (str, os.PathLike)) or os.path.isdir(path):
        raise TypeError(f"path: got {path!r}; need the path of a CSV file (str or os.PathLike)")
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(f"rows: got {type(rows).__name__}; need a list of dicts (the rows of sweep_beta)")
    for i, r in enumerate(rows):
        missing = [c for c in SWEEP_COLUMNS if c not in r]
        if missing:
            raise ValueError(f"rows[{i}]: got a row without the column(s) {missing}; need every one of {SWEEP_COLUMNS}")
    configs = {r["config"] for r in rows}
    kept = [r for r in read_sweep(path) if r["config"] not in configs] if os.path.exists(path) else []
    fmt = lambda v: f"{v:.6g}" if isinstance(v, float) else v  # noqa: E731
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=SWEEP_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in kept + rows:
            writer.writerow({k: fmt(r[k]) for k in SWEEP_COLUMNS})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vae-course sweep-beta``."""
    parser.add_argument("--betas", type=nonnegative_float, nargs="+", default=[1, 2, 4, 8, 16, 32],
                        help="KL weights (default 1 2 4 8 16 32)")
    parser.add_argument("--seeds", type=nonnegative_int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds per beta (default 0..4)")
    parser.add_argument("--epochs", type=positive_int, default=100, help="epochs over the 3,340 training sprites (default 100)")
    parser.add_argument("--z-dim", type=positive_int, default=8, help="latent size (default 8)")
    parser.add_argument("--arch", choices=("mlp", "conv"), default="mlp", help="encoder/decoder (default mlp)")
    parser.add_argument("--hidden", type=positive_int, default=200, help="hidden units (default 200)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="batch size (default 64)")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--config", default="sweep", help="name stored in the rows; rows of this name in --out are replaced")
    parser.add_argument("--out", type=writable_file, default=SWEEP_PATH, help="CSV file (default: the stored sweep, vae_course/stored/beta_sweep.csv)")
    parser.add_argument("--device", type=device, default=None, help="cpu, cuda, mps (default: best available)")


def run(args: argparse.Namespace) -> int:
    """``vae-course sweep-beta``: train and score a beta-VAE per (beta, seed); write the rows to ``--out``."""
    def report(row: dict) -> None:
        print(f"beta {row['beta']:g} seed {row['seed']}: rate {row['rate']:.2f} distortion {row['distortion']:.2f} "
              f"MIG {row['mig']:.3f} DCI-D {row['dci_d']:.3f} active {row['active']} ({row['seconds']:.0f} s)", flush=True)

    try:
        rows = sweep_beta(args.betas, args.seeds, config=args.config, epochs=args.epochs, z_dim=args.z_dim,
                          arch=args.arch, hidden=args.hidden, batch_size=args.batch_size, lr=args.lr,
                          device=args.device, callback=report)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_sweep(rows, args.out)
    print(f"wrote {len(rows)} rows (config {args.config!r}) to {args.out}")
    return 0
