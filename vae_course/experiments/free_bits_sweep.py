r"""``vae-course collapse-sweep``: chapter 7's free-bits sweep over floors and seeds, behind the chapter's widget.

:func:`free_bits_sweep` trains chapter 7's :class:`~vae_course.models.AutoregressiveVAE` (a PixelCNN decoder that
collapses without a remedy) once per free-bits floor :math:`\lambda` and seed, and evaluates each with
:func:`vae_course.collapse.collapse_report`. The result the book shows is stored with the package
(``vae_course/stored/ch07_free_bits.json``, read by :func:`vae_course.collapse.load_sweep`); a test re-runs a slice
of it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from .. import _validate as check
from .._args import nonnegative_float, nonnegative_int, positive_int, writable_file
from ..collapse import SWEEP_PATH, collapse_report
from ..data import digits
from ..models import AutoregressiveVAE
from ..train import fit
from ..utils import check_positive_int

__all__ = ["CHAPTER_FIT", "free_bits_sweep", "add_arguments", "run"]

CHAPTER_FIT = {"epochs": 20, "batch_size": 128, "lr": 3e-3}  # chapter 7's training run on the 8x8 digits


def free_bits_sweep(lams: tuple[float, ...] = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0), seeds: tuple[int, ...] = (0, 1, 2), *,
                    epochs: int = CHAPTER_FIT["epochs"], k: int = 50) -> dict[str, Any]:
    r"""Train chapter 7's :class:`~vae_course.models.AutoregressiveVAE` on the static-binarised digits with each free-bits
    floor :math:`\lambda` and seed (CPU), and evaluate it with :func:`~vae_course.collapse.collapse_report` on the test digits.

    Returns ``{"settings": ..., "rows": [{"lam", "seed", "bound", "elbo", "kl", "kl_dims", "active", "mi", "gap"}, ...]}``
    (plain values, written as JSON by ``vae-course collapse-sweep``).
    """
    lams = [check.positive_float(f"lams[{i}]", lam, allow_zero=True) for i, lam in enumerate(lams)]
    seeds = [check.seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)]
    if not lams or not seeds:
        raise ValueError(f"lams, seeds: got {len(lams)} floor(s) and {len(seeds)} seed(s); need at least one of each")
    data = digits(binarize="static")
    settings = {**CHAPTER_FIT, "epochs": check_positive_int("epochs", epochs), "k": check_positive_int("k", k), "data": "digits(binarize='static')",
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vae-course collapse-sweep``."""
    parser.add_argument("--out", type=writable_file, default=SWEEP_PATH, help="JSON file to write (default: the stored sweep)")
    parser.add_argument("--lams", type=nonnegative_float, nargs="+", default=[0.0, 0.05, 0.1, 0.25, 0.5, 1.0],
                        help="free-bits floors in nats per dimension (0: no floor)")
    parser.add_argument("--seeds", type=nonnegative_int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--epochs", type=positive_int, default=CHAPTER_FIT["epochs"], help="epochs per run")
    parser.add_argument("--k", type=positive_int, default=50, help="importance samples of the test bound")


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
