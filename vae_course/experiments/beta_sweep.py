r"""``vae-course sweep-beta``: train and score beta-VAEs and beta-TCVAEs on the sprites over weights and seeds (chapter 6).

:func:`train_beta_vae` trains one beta-VAE (or a capacity-controlled one, or a beta-TCVAE) with
:func:`vae_course.train.fit`; :func:`sweep_beta` trains one per (objective, weight, seed) and scores each with
:func:`vae_course.disentangle.score_model` (rate, distortion, the KL split, MIG and its gap per factor, DCI, active
latents). The sweep the book shows is stored with the package (``vae_course/stored/beta_sweep.csv``, read by
:func:`vae_course.disentangle.read_sweep`), with one of its models (``--save-model``, read by
:func:`vae_course.disentangle.load_stored_model`); ``vae-course sweep-beta`` regenerates both and a test re-runs a
tiny slice of it.
"""
from __future__ import annotations

import argparse
import math
import copy
import csv
import os
import sys
import time
from typing import NamedTuple

import torch
from torch import nn

from .. import _validate as check
from .._args import device, nonnegative_float, nonnegative_int, positive_float, positive_int, writable_file
from ..checkpoint import save_checkpoint
from ..disentangle import SWEEP_COLUMNS, SWEEP_PATH, format_levels, parse_levels, read_sweep, score_model
from ..history import History
from ..models import VAE
from ..objectives import capacity_schedule
from ..sprites import sprites, sprites_grid
from ..train import fit

__all__ = ["BetaRun", "train_beta_vae", "sweep_data", "sweep_beta", "write_sweep", "add_arguments", "run", "OBJECTIVES"]

OBJECTIVES = ("beta-vae", "beta-tcvae")  # weight on the whole KL; weight on its total-correlation part (beta = 1)


class BetaRun(NamedTuple):
    """A trained model and its :class:`~vae_course.history.History`."""

    model: nn.Module
    history: History


def train_beta_vae(data, *, beta: float = 1.0, seed: int = 0, epochs: int = 30, z_dim: int = 8, arch: str = "mlp",
                   hidden: int = 200, batch_size: int = 64, lr: float = 1e-3, capacity: float | None = None,
                   tc: float | None = None, device=None, progress: bool = False) -> BetaRun:
    r"""Train a beta-VAE (Bernoulli pixels) on ``data`` (e.g. :func:`vae_course.sprites.sprites`) with
    :func:`vae_course.train.fit`. ``seed`` fixes the initial weights, the batches and the noise.

    With ``capacity`` (nats) the VAE is trained on :math:`D + \beta|R - C|`, :math:`C` annealed from 0 to
    ``capacity`` (:func:`~vae_course.objectives.capacity_schedule`, ``gamma = beta``); with ``tc`` it is a
    beta-TCVAE: weight ``beta`` on the index-code MI and the dimension-wise KL, ``tc`` on the total correlation
    (estimated on each batch of the ``len(data.x_train)`` training images, :mod:`vae_course.tc`); otherwise the
    beta-ELBO. ``arch="conv"`` uses ReLU convolutions with (16, 32) channels, ``"mlp"`` one tanh layer.
    """
    check.positive_float("beta", beta, allow_zero=True)
    if tc is not None and capacity is not None:
        raise ValueError(f"tc / capacity: got {tc!r} and {capacity!r}; train with one of them")
    x_train = data.x_train if hasattr(data, "x_train") else data
    x_shape = tuple(x_train.shape[1:])
    torch.manual_seed(seed)
    model = VAE(x_shape=x_shape, z_dim=z_dim, arch=arch, hidden=hidden, activation="relu" if arch == "conv" else "tanh",
                channels=(16, 32))
    if capacity is not None:
        kwargs = capacity_schedule(capacity, gamma=float(beta))
    elif tc is not None:
        kwargs = {"beta": float(beta), "tc": float(tc), "dataset_size": len(x_train)}
    else:
        kwargs = {"beta": float(beta)}
    history = fit(model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                  loss_kwargs=kwargs, progress=progress)
    return BetaRun(model, history)


def _runs(betas, tcs) -> list[tuple[str, float, float]]:
    """(objective, beta, tc weight) of each setting: a beta-VAE per beta (its TC weighted by beta too), a
    beta-TCVAE per tc weight (beta = 1 on the rest of the KL)."""
    return [("beta-vae", float(b), float(b)) for b in betas] + [("beta-tcvae", 1.0, float(t)) for t in tcs]


def sweep_data(levels: dict[str, int] | None = None):
    """The data of every run of a sweep, ``(data, images, factors)``: the sprites with ``levels``
    (:func:`vae_course.sprites.sprites`, seed-0 split, 500 test images or a fifth of a smaller grid) to train on,
    and every image of the grid with its factors (:func:`vae_course.sprites.sprites_grid`) to score on."""
    images, factors = sprites_grid(levels=levels)
    data = sprites(seed=0, levels=levels, test_size=min(500, len(images) // 5))  # 500 of the full grid's 3,840
    return data, images, factors


def sweep_beta(betas, seeds, *, tcs=(), config: str = "sweep", epochs: int = 100, z_dim: int = 8, arch: str = "mlp",
               hidden: int = 200, batch_size: int = 64, lr: float = 1e-3, levels: dict[str, int] | None = None,
               device=None, progress: bool = False, callback=None, keep=None) -> list[dict]:
    """Train one beta-VAE per (beta, seed) and one beta-TCVAE per (tc weight, seed) on the sprites with ``levels``
    and score each on every image of the grid (:func:`sweep_data`, :func:`~vae_course.disentangle.score_model`). Returns one dict per run with the keys :data:`SWEEP_COLUMNS`;
    ``callback(row)`` is called after each run (e.g. to print progress), ``keep(row, model)`` too (e.g. to save one
    of the models)."""
    betas, tcs = list(betas), list(tcs)
    seeds = [check.seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)]
    for i, beta in enumerate(betas):
        check.positive_float(f"betas[{i}]", beta, allow_zero=True)
    for i, tc in enumerate(tcs):
        check.positive_float(f"tcs[{i}]", tc, allow_zero=True)
    data, images, factors = sweep_data(levels)
    rows = []
    for objective, beta, tc in _runs(betas, tcs):
        for seed in seeds:
            t0 = time.perf_counter()
            run = train_beta_vae(data, beta=beta, seed=seed, epochs=epochs, z_dim=z_dim, arch=arch, hidden=hidden,
                                 batch_size=batch_size, lr=lr, tc=tc if objective == "beta-tcvae" else None,
                                 device=device, progress=progress)
            row = {"config": config, "objective": objective, "beta": beta, "tc": tc, "seed": int(seed),
                   "levels": format_levels(levels), "epochs": epochs, "z_dim": z_dim, "arch": arch, "hidden": hidden,
                   "batch_size": batch_size, "lr": lr, **score_model(run.model, images, factors, seed=seed)}
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            if callback is not None:
                callback(row)
            if keep is not None:
                keep(row, run)
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


def save_half(path, run: BetaRun, extra: dict) -> None:
    """Save ``run``'s model in half precision (weights only; it loads back as float32) with its history and ``extra``."""
    save_checkpoint(path, copy.deepcopy(run.model).cpu().half(), history=run.history, extra=extra)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vae-course sweep-beta``."""
    parser.add_argument("--betas", type=nonnegative_float, nargs="*", default=[1, 2, 4, 8, 16, 32],
                        help="KL weights of the beta-VAEs (default 1 2 4 8 16 32)")
    parser.add_argument("--tcs", type=nonnegative_float, nargs="*", default=[],
                        help="total-correlation weights of the beta-TCVAEs, beta = 1 on the rest (default none)")
    parser.add_argument("--seeds", type=nonnegative_int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds per weight (default 0..4)")
    parser.add_argument("--epochs", type=positive_int, default=100, help="epochs over the training sprites (default 100)")
    parser.add_argument("--z-dim", type=positive_int, default=8, help="latent size (default 8)")
    parser.add_argument("--arch", choices=("mlp", "conv"), default="mlp", help="encoder/decoder (default mlp)")
    parser.add_argument("--hidden", type=positive_int, default=200, help="hidden units (default 200)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="batch size (default 64)")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--levels", default="default",
                        help="levels of some factors, e.g. 'rotation=1' (default: the full grid, vc.sprites.LEVELS)")
    parser.add_argument("--config", default="sweep", help="name stored in the rows; rows of this name in --out are replaced")
    parser.add_argument("--out", type=writable_file, default=SWEEP_PATH, help="CSV file (default: the stored sweep, vae_course/stored/beta_sweep.csv)")
    parser.add_argument("--save-model", default=None, metavar="PATH",
                        help="also save one model (half precision) as a checkpoint, the run chosen by --save-run")
    parser.add_argument("--save-run", default=None, metavar="OBJECTIVE,WEIGHT,SEED",
                        help="the run --save-model keeps, e.g. 'beta-tcvae,6,0' (weight: beta, or tc for a beta-TCVAE), "
                             "or 'best': the run of highest MIG")
    parser.add_argument("--device", type=device, default=None, help="cpu, cuda, mps (default: best available)")


def _chosen(spec: str | None) -> tuple[str, float, int] | str | None:
    if spec is None or spec == "best":
        return spec
    parts = spec.split(",")
    if len(parts) != 3 or parts[0] not in OBJECTIVES:
        raise ValueError(f"--save-run: got {spec!r}; need 'best' or OBJECTIVE,WEIGHT,SEED with OBJECTIVE in "
                         f"{OBJECTIVES}")
    try:
        return parts[0], float(parts[1]), int(parts[2])
    except ValueError:
        raise ValueError(f"--save-run: got {spec!r}; WEIGHT must be a number and SEED an integer") from None


def _command(args: argparse.Namespace) -> str:
    """The ``vae-course sweep-beta`` command line that reproduces the settings of ``args`` (without --out)."""
    def words(values):
        return [f"{v:g}" if isinstance(v, float) else str(v) for v in values]

    parts = ["vae-course", "sweep-beta", "--betas", *words(args.betas), "--tcs", *words(args.tcs), "--seeds",
             *words(args.seeds), "--epochs", str(args.epochs), "--z-dim", str(args.z_dim), "--arch", args.arch,
             "--hidden", str(args.hidden), "--batch-size", str(args.batch_size), "--lr", f"{args.lr:g}",
             "--levels", args.levels, "--config", args.config]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    """``vae-course sweep-beta``: train and score a model per (objective, weight, seed); write the rows to ``--out``."""
    def report(row: dict) -> None:
        weight = f"tc {row['tc']:g}" if row["objective"] == "beta-tcvae" else f"beta {row['beta']:g}"
        print(f"{row['objective']} {weight} seed {row['seed']}: rate {row['rate']:.2f} distortion "
              f"{row['distortion']:.2f} (MI {row['mi']:.2f}, TC {row['total_correlation']:.2f}, dim-KL "
              f"{row['dim_kl']:.2f}) MIG {row['mig']:.3f} DCI-D {row['dci_d']:.3f} active {row['active']} "
              f"({row['seconds']:.0f} s)", flush=True)

    try:
        levels = parse_levels(args.levels)
        chosen = _chosen(args.save_run)
        if (chosen is None) != (args.save_model is None):
            raise ValueError("--save-model / --save-run: give both (the file and the run it keeps) or neither")
        saved, best = [], [-math.inf]

        def keep(row: dict, trained: BetaRun) -> None:
            weight = row["tc"] if row["objective"] == "beta-tcvae" else row["beta"]
            if chosen == "best" and row["mig"] > best[0]:  # the highest MIG so far replaces the file
                best[0] = row["mig"]
            elif chosen is None or chosen == "best" or (row["objective"], weight, row["seed"]) != chosen:
                return
            save_half(args.save_model, trained, {"row": {k: row[k] for k in SWEEP_COLUMNS}, "command": _command(args)})
            saved[:] = [args.save_model]

        rows = sweep_beta(args.betas, args.seeds, tcs=args.tcs, config=args.config, epochs=args.epochs,
                          z_dim=args.z_dim, arch=args.arch, hidden=args.hidden, batch_size=args.batch_size, lr=args.lr,
                          levels=levels, device=args.device, callback=report, keep=keep)
        if chosen is not None and not saved:
            raise ValueError(f"--save-run: {args.save_run!r} is not one of the runs of this sweep; no model saved")
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_sweep(rows, args.out)
    print(f"wrote {len(rows)} rows (config {args.config!r}) to {args.out}" + (f"; model to {saved[0]}" if saved else ""))
    return 0
