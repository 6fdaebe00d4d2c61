r"""``vae-course hierarchy-sweep``: chapter 9's two-level VAE against a one-level VAE of the same size, with remedies.

:func:`hierarchy_sweep` trains, on the dynamically binarised mnist5k digits and for each seed, the configurations of
:data:`CONFIGS`: a one-level :class:`~vae_course.models.VAE` with :math:`m_1 + m_2` latents and as many parameters as
the two-level :class:`~vae_course.models.LadderVAE` (:func:`vae_course.beyond.one_level_hidden`), each without a
remedy and with free bits, and the ladder also with a KL warm-up. Every run is scored on the test digits: the ELBO
and the IWAE bound from the same importance weights (:func:`vae_course.beyond.bound_terms`), the KL of each level,
and the active units of each level (chapter 7). The result the book shows is stored with the package
(``vae_course/stored/ch09_hierarchy.json``, read by :func:`vae_course.beyond.load_hierarchy_study`); a test re-runs
its short "tiny" rows.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..beyond import HIERARCHY_PATH, bound_terms, one_level_hidden, parameter_count
from ..collapse import active_units
from ..data import mnist5k
from ..evaluate import encode_all
from ..models import VAE, LadderVAE
from ..objectives import kl_warmup
from ..train import fit
from ..utils import check_positive_int

__all__ = ["LADDER", "CONFIGS", "STUDY_FIT", "hierarchy_sweep", "add_arguments", "run"]

LADDER = {"z1_dim": 16, "z2_dim": 8, "hidden": 400, "hidden2": 128}  # the two-level model of chapter 9
CONFIGS = ("one-level", "one-level + free bits", "two-level", "two-level + warm-up", "two-level + free bits")
STUDY_FIT = {"epochs": 30, "batch_size": 128, "lr": 3e-3}
FREE_BITS = 0.25  # nats per latent dimension
WARMUP_FRACTION = 1 / 3  # the KL weight rises linearly over the first third of the steps


def _model(config: str) -> torch.nn.Module:
    ladder = LadderVAE(**LADDER)
    if config.startswith("two-level"):
        return ladder
    z_dim = LADDER["z1_dim"] + LADDER["z2_dim"]
    return VAE(z_dim=z_dim, hidden=one_level_hidden(parameter_count(ladder), 784, z_dim))


def _loss_kwargs(config: str, n_steps: int):
    if config.endswith("free bits"):
        return {"free_bits": FREE_BITS}
    if config.endswith("warm-up"):
        return kl_warmup("linear", max(1, round(WARMUP_FRACTION * n_steps)))
    return None


def hierarchy_sweep(configs: tuple[str, ...] = CONFIGS, seeds: tuple[int, ...] = (0, 1), *,
                    epochs: int = STUDY_FIT["epochs"], k: int = 500, n_test: int = 500) -> list[dict[str, Any]]:
    """Train and score each configuration (one of :data:`CONFIGS`) for each seed on the CPU; returns one row of plain
    values per run: ``config, seed, epochs, params, elbo, iwae, kl_bottom, kl_top, active_bottom, active_top, k, n_test,
    seconds``
    (a one-level model has no levels: its KL and active units are reported as the bottom level's)."""
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f"configs: got {unknown}; need some of {CONFIGS}")
    epochs = check_positive_int("epochs", epochs)
    data = mnist5k(binarize="dynamic")
    x = data.x_test[:check_positive_int("n_test", n_test)]
    steps = epochs * -(-len(data.x_train) // STUDY_FIT["batch_size"])
    rows = []
    for config in configs:
        for seed in seeds:
            torch.manual_seed(seed)
            model = _model(config)
            t0 = time.perf_counter()
            fit(model, data, epochs=epochs, batch_size=STUDY_FIT["batch_size"], lr=STUDY_FIT["lr"], seed=seed,
                device="cpu", progress=False, test_every=epochs, loss_kwargs=_loss_kwargs(config, steps))
            seconds = time.perf_counter() - t0
            bounds = bound_terms(model, x, k=k, generator=torch.Generator().manual_seed(seed))
            active = active_units(encode_all(model, x)[0]).activity > 0.01  # (m,)
            if isinstance(model, LadderVAE):
                m1 = model.config.z1_dim
                kl_bottom, kl_top = model.kl_per_level(x, generator=torch.Generator().manual_seed(seed))
                act_bottom, act_top = int(active[:m1].sum()), int(active[m1:].sum())
            else:
                with torch.no_grad():
                    kl_bottom = float(model.elbo(x).kl.mean())
                kl_top, act_bottom, act_top = 0.0, int(active.sum()), 0
            rows.append({"config": config, "seed": int(seed), "epochs": epochs, "params": parameter_count(model),
                         "elbo": round(bounds.elbo, 3), "iwae": round(bounds.iwae, 3), "kl_bottom": round(kl_bottom, 3),
                         "kl_top": round(kl_top, 3), "active_bottom": act_bottom, "active_top": act_top,
                         "k": k, "n_test": len(x), "seconds": round(seconds, 1)})
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vae-course hierarchy-sweep``."""
    parser.add_argument("--out", default=HIERARCHY_PATH, help="JSON file to update (default: the stored study)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS, metavar="CONFIG",
                        help=f"configurations to train (default: all of {', '.join(CONFIGS)})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    parser.add_argument("--epochs", type=int, default=STUDY_FIT["epochs"], help="epochs per run")
    parser.add_argument("--k", type=int, default=500, help="importance samples of the test bound")
    parser.add_argument("--n-test", type=int, default=500, help="test digits scored")


def run(args: argparse.Namespace) -> int:
    """``vae-course hierarchy-sweep``: run :func:`hierarchy_sweep` and merge its rows into ``--out`` (a row replaces a
    stored row with the same config, seed and epochs); about a minute per run on a laptop CPU."""
    try:
        rows = hierarchy_sweep(tuple(args.configs), tuple(args.seeds), epochs=args.epochs, k=args.k, n_test=args.n_test)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    old = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {"rows": []}
    key = lambda r: (r["config"], r["seed"], r["epochs"])  # noqa: E731
    new = {key(r) for r in rows}
    merged = [r for r in old["rows"] if key(r) not in new] + rows
    settings = {"batch_size": STUDY_FIT["batch_size"], "lr": STUDY_FIT["lr"], "ladder": LADDER, "free_bits": FREE_BITS,
                "warmup_fraction": round(WARMUP_FRACTION, 4), "data": "mnist5k(binarize='dynamic')", "device": "cpu",
                "command": "vae-course hierarchy-sweep [--configs ...] [--seeds ...] [--epochs N]"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"settings": settings, "rows": merged}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(rows)} runs ({len(merged)} stored)")
    return 0
