r"""``vae-course pretrain NAME``: train one of the long runs stored with the package (:mod:`vae_course.pretrained`).

    vae-course pretrain --list
    vae-course pretrain vae-mnist                      # writes vae_course/stored/vae_mnist.pt
    vae-course pretrain vqvae-prior --device cuda --out runs/prior.pt
    vae-course pretrain vae-2d --stop-after 2 --out /tmp/check.pt   # only the first 2 epochs of the same run

Each recipe below is the whole run: data, model, batch size, and a cosine learning-rate schedule over its
epochs (:class:`~vae_course.schedules.CosineSchedule`), trained by :func:`vae_course.train.fit`. ``--stop-after
N`` runs the first N epochs of exactly that schedule, which is what ``tests/test_pretrained.py`` compares with
the stored history. The prior ``vqvae-prior`` is trained on the code maps of the *stored* ``vqvae``, so
retrain ``vqvae`` first if you change it. The times in each file's ``extra["seconds"]`` are from the machine
that wrote it (recorded with its thread count).
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .. import data as datasets
from .. import pretrained, quality, vq
from ..evaluate import log_likelihood
from ..history import History
from ..models import VAE, VQVAE, CodePrior
from ..schedules import CosineSchedule
from ..train import fit, make_optimizer
from ..utils import check_positive_int, get_device

__all__ = ["Recipe", "RECIPES", "train_stored", "iwae_of_stored", "add_arguments", "run"]


@dataclass(frozen=True)
class Recipe:
    """A stored long run: ``build()`` makes the untrained model (after ``torch.manual_seed(seed)``), ``data()`` the
    training data; ``epochs`` with ``batch_size`` and a cosine schedule peaking at ``lr`` after ``warmup`` steps."""

    build: Callable[[], nn.Module]
    data: Callable[[], datasets.ImageData]
    epochs: int
    batch_size: int
    lr: float
    warmup: int = 100
    seed: int = 0
    half: bool = True
    notes: dict[str, Any] = field(default_factory=dict)


def _codes() -> datasets.ImageData:
    """The code maps of mnist5k under the stored VQ-VAE (the data of ``vqvae-prior``)."""
    return vq.code_data(pretrained.load("vqvae").model, datasets.mnist5k())


VQ_ARCH = dict(n_codes=64, code_dim=8, channels=(32, 64), codebook="ema", restart_every=10)  # chapter 8's, wider
RECIPES: dict[str, Recipe] = {
    "vae-mnist": Recipe(lambda: VAE(arch="conv", activation="relu", hidden=256, channels=(32, 32), z_dim=16),
                        lambda: datasets.mnist5k(binarize="dynamic"), epochs=150, batch_size=128, lr=2e-3),
    "vae-2d": Recipe(lambda: VAE(z_dim=2, hidden=400), lambda: datasets.mnist5k(binarize="dynamic"),
                     epochs=400, batch_size=128, lr=2e-3),
    "vqvae": Recipe(lambda: VQVAE(**VQ_ARCH), datasets.mnist5k, epochs=60, batch_size=128, lr=2e-3),
    "vqvae-prior": Recipe(lambda: CodePrior(n_codes=64, map_shape=(7, 7), hidden=64, n_layers=5, first_kernel=5,
                                            kernel=3), _codes, epochs=10, batch_size=64, lr=2e-3),  # longer overfits: test bits rise after 10
}
NAMES = ("digit-features", *RECIPES)


def _train_features(stop_after: int | None) -> tuple[nn.Module, History, dict]:
    epochs = 8
    result = quality.train_feature_net(epochs=stop_after or epochs)
    history = History(train={"loss": result.losses})
    return result.model, history, {"test_accuracy": result.test_accuracy, "epochs": epochs}


def train_stored(name: str, *, stop_after: int | None = None, device: str | torch.device | None = None,
                 progress: bool = False) -> tuple[nn.Module, History, dict]:
    """Run recipe ``name`` (all of it, or its first ``stop_after`` epochs); returns ``(model, history, extra)``.

    ``extra`` records the recipe, the wall time and the thread count, for the stored file.
    """
    if name not in NAMES:
        raise ValueError(f"name: got {name!r}; the stored models are {NAMES}")
    if stop_after is not None:
        check_positive_int("stop_after", stop_after)
    t0, cpu0 = time.perf_counter(), time.process_time()
    if name == "digit-features":
        model, history, extra = _train_features(stop_after)
    else:
        r = RECIPES[name]
        data = r.data()
        torch.manual_seed(r.seed)
        model = r.build()
        opt = make_optimizer(model, r.lr)
        steps = r.epochs * math.ceil(len(data.x_train) / r.batch_size)
        schedule = CosineSchedule(opt, r.lr, steps, warmup=r.warmup)
        history = fit(model, data, epochs=min(stop_after or r.epochs, r.epochs), batch_size=r.batch_size, lr=r.lr,
                      seed=r.seed, device=get_device(device), optimizer=opt, loss_kwargs=schedule, progress=progress,
                      test_every=1 if stop_after else 5)
        extra = {"epochs": r.epochs, "batch_size": r.batch_size, "lr": r.lr, "warmup": r.warmup, "seed": r.seed,
                 "schedule": "cosine", "data": data.name, "binarize": data.binarize, **r.notes}
    extra.update(seconds=round(time.perf_counter() - t0, 1), cpu_seconds=round(time.process_time() - cpu0, 1),
                 threads=torch.get_num_threads(), load_average=round(os.getloadavg()[0], 2),
                 device=str(get_device(device)) if name != "digit-features" else "cpu", machine=platform.machine(),
                 torch_version=str(torch.__version__), stopped_after=stop_after)
    return model.cpu().eval(), history, extra


IWAE_K, IWAE_SEED = 1000, 0  # the stored log-likelihood of vae-mnist: L_1000 on every mnist5k test image


def iwae_of_stored(model: nn.Module, *, n: int | None = None, k: int = IWAE_K) -> list[float]:
    r"""The IWAE bound :math:`\mathcal L_k` of each of the first ``n`` (default all 1,000) binarised mnist5k test
    images under ``model`` with its weights rounded to half precision, as stored (seeded: ``IWAE_SEED``)."""
    stored = copy.deepcopy(model).cpu().half().float().eval()
    x = datasets.mnist5k(binarize="dynamic").x_test
    x = x if n is None else x[:n]
    return log_likelihood(stored, x, k=k, generator=torch.Generator().manual_seed(IWAE_SEED)).log_px.tolist()


def _evaluate(name: str, model: nn.Module) -> dict:
    """Results stored with a finished run that a chapter cannot afford to compute (the full IWAE of vae-mnist)."""
    if name != "vae-mnist":
        return {}
    t0 = time.perf_counter()
    log_px = iwae_of_stored(model)
    return {"iwae_k": IWAE_K, "iwae_seed": IWAE_SEED, "iwae_log_px": log_px, "iwae_mean": sum(log_px) / len(log_px),
            "iwae_seconds": round(time.perf_counter() - t0, 1)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``vae-course pretrain``."""
    p.add_argument("name", nargs="?", choices=NAMES, help="the stored model to train")
    p.add_argument("--list", action="store_true", help="list the stored models and exit")
    p.add_argument("--out", default=None, help="file to write (default: the package's vae_course/stored/ file)")
    p.add_argument("--stop-after", type=int, default=None, metavar="EPOCHS",
                   help="run only the first EPOCHS epochs of the recipe's schedule (a check, not a stored model)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def run(args: argparse.Namespace) -> int:
    """``vae-course pretrain``: train the recipe and write its checkpoint (with history and timings)."""
    if args.list or args.name is None:
        for name, entry in pretrained.STORED.items():
            print(f"{name:15s} ch. {entry.chapter}  {entry.description}\n{'':15s}       {entry.command}")
        return 0 if args.list else 2
    if args.stop_after is not None and args.out is None:
        print("error: --stop-after writes a partial run; give --out so the stored model is not overwritten",
              file=sys.stderr)
        return 2
    try:
        model, history, extra = train_stored(args.name, stop_after=args.stop_after, device=args.device,
                                             progress=args.progress)
    except (ValueError, TypeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.stop_after is None:
        extra.update(_evaluate(args.name, model))
    out = pretrained.stored_path(args.name) if args.out is None else args.out
    half = RECIPES[args.name].half if args.name in RECIPES else False  # the classifier stays float32
    path = pretrained.save(out, model, history, {"name": args.name, **extra}, half=half)
    size = path.stat().st_size / 2**20
    last = history.test.get("loss", history.train["loss"])[-1]
    print(f"{args.name}: {history.epochs or len(history.train['loss'])} epoch(s) in {extra['seconds']:.0f} s wall, "
          f"{extra['cpu_seconds']:.0f} s CPU ({extra['threads']} threads, load {extra['load_average']}); "
          f"last loss {last:.3f}; wrote {path} ({size:.2f} MB)")
    return 0
