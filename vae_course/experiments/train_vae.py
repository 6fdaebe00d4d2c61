"""``vae-course train``, ``evaluate`` and ``bench``: train a chapter-5 VAE, score a checkpoint, time the engine.

    vae-course train --data mnist5k --z-dim 20 --epochs 30 --out runs/vae20
    vae-course train --idx-dir ~/data/mnist --epochs 50 --device cuda --out runs/full
    vae-course train --beta 4 --minutes 5 --out runs/beta4     # a beta-VAE, trained for 5 minutes of wall time
    vae-course evaluate runs/vae20/checkpoint.pt --k 1000
    vae-course bench [--quality 10] [--train-overhead]

``train`` writes ``checkpoint.pt`` (loadable with ``weights_only=True``), ``history.json``,
``loss.png``, ``samples.png`` and ``reconstructions.png`` to ``--out``. The checkpoint remembers the
data set, so ``evaluate`` scores the same test images.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure

from .. import data as datasets
from .._args import device, nonnegative_float, nonnegative_int, positive_float, positive_int, writable_dir
from ..checkpoint import load_checkpoint
from ..evaluate import elbo_per_example, log_likelihood
from ..models import VAE, VAEConfig
from ..plotting import history_curves, image_grid
from ..train import fit
from ..utils import get_device
from .bench import compare_at_equal_time, run_bench, train_overhead

__all__ = ["load_data", "find_idx_files", "add_train_arguments", "add_evaluate_arguments", "add_bench_arguments",
           "train_command", "evaluate_command", "bench_command"]

DATA = ("mnist5k", "digits", "mnist")
MAX_EPOCHS = 100_000  # --minutes without --epochs: the time budget ends the run
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def find_idx_files(idx_dir: str | os.PathLike) -> list[Path]:
    """The four MNIST IDX files in ``idx_dir`` (plain or ``.gz``; ``-`` or ``.`` before ``idx``), in IDX_NAMES order."""
    folder = Path(idx_dir).expanduser()
    if not folder.is_dir():
        raise ValueError(f"--idx-dir: {folder} is not a folder")
    found = []
    for name in IDX_NAMES:
        candidates = [folder / f"{n}{gz}" for n in (name, name.replace("-idx", ".idx")) for gz in ("", ".gz")]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            raise ValueError(f"--idx-dir: {folder} has no {name} (or .gz); need the four MNIST IDX files {IDX_NAMES}")
        found.append(hit)
    return found


def load_data(name: str = "mnist5k", *, idx_dir: str | None = None, binarize: str = "dynamic", seed: int = 0):
    """``mnist5k`` (default), ``digits`` (8x8, fastest) or ``mnist`` (full MNIST from IDX files in ``idx_dir``)."""
    if name == "digits":
        return datasets.digits(binarize=binarize, seed=seed)
    if name == "mnist5k":
        return datasets.mnist5k(binarize=binarize, seed=seed)
    if name == "mnist":
        if idx_dir is None:
            raise ValueError("--data mnist: needs --idx-dir pointing at the MNIST IDX files (nothing is downloaded)")
        tr_x, tr_y, te_x, te_y = find_idx_files(idx_dir)
        return datasets.mnist_idx(tr_x, tr_y, test_images_path=te_x, test_labels_path=te_y, binarize=binarize, seed=seed)
    raise ValueError(f"--data: got {name!r}; need one of {DATA}")


def _save_grid(images, path: Path, title: str, nrow: int = 8) -> None:
    fig = Figure(figsize=(6, 6 * (len(images) // nrow) / nrow + 0.4))
    image_grid(images.clamp(0, 1).cpu(), nrow=nrow, ax=fig.subplots(), title=title)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def train_command(args: argparse.Namespace) -> int:
    """``vae-course train``: train a VAE with :func:`vae_course.train.fit`; write checkpoint, history and grids."""
    name = args.data or ("mnist" if args.idx_dir else "mnist5k")
    binarize = args.binarize or ("dynamic" if args.likelihood == "bernoulli" else "none")
    try:
        data = load_data(name, idx_dir=args.idx_dir, binarize=binarize, seed=args.seed)
        device = get_device(args.device)
        config = VAEConfig(x_shape=data.image_shape, z_dim=args.z_dim, hidden=args.hidden, arch=args.arch,
                           activation=args.activation or ("relu" if args.arch == "conv" else "tanh"),
                           likelihood=args.likelihood, decoder_var=args.decoder_var,
                           deterministic=args.model == "ae")
    except (ValueError, TypeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"error: --out: cannot create {out}: {err.strerror or err}", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    model = VAE(config)
    extra = {"data": name, "binarize": binarize, "seed": args.seed, "idx_dir": args.idx_dir, "beta": args.beta}
    epochs = args.epochs or (MAX_EPOCHS if args.minutes else 10)
    budget = f" for {epochs} epoch(s)" if not args.minutes else \
        f" for {args.minutes:g} minute(s)" + (f" or {epochs} epoch(s), whichever ends first" if args.epochs else "")
    objective = "" if args.beta == 1 else f", beta={args.beta:g}"
    print(f"training {config.arch} VAE (z_dim={config.z_dim}, {config.likelihood}{objective}) on {data!r}{budget} "
          f"on {device}")
    t0 = time.perf_counter()
    history = fit(model, data, epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                  device=device, checkpoint=out / "checkpoint.pt", progress=not args.no_progress,
                  checkpoint_extra=extra, loss_kwargs={"beta": args.beta} if args.beta != 1 else None,
                  test_every=args.test_every, time_limit=60 * args.minutes if args.minutes else None,
                  checkpoint_every=args.checkpoint_every)
    wall = time.perf_counter() - t0
    (out / "history.json").write_text(json.dumps(history.to_dict(), indent=1))
    fig = Figure(figsize=(5, 3.5))
    history_curves(history, "loss", ax=fig.subplots())
    fig.savefig(out / "loss.png", dpi=100, bbox_inches="tight")
    model.eval()
    g = torch.Generator(device=device).manual_seed(args.seed)
    _save_grid(model.sample(64, generator=g), out / "samples.png", "decoder means of z ~ N(0, I)")
    x = data.x_test[:32].to(device)
    _save_grid(torch.cat([x, model.reconstruct(x)]), out / "reconstructions.png",
               "test images (top 4 rows) and their reconstructions")
    if history.stopped:
        print(f"warning: {history.stopped}", file=sys.stderr)
    elif history.note:
        print(f"note: {history.note}")
    term = "-ELBO" if args.beta == 1 else f"-beta-ELBO, beta={args.beta:g}"
    print(f"done: {history.epochs} epoch(s) in {wall:.1f} s; {history.samples_per_second:.0f} samples/s in the "
          f"training steps, {sum(history.samples) / wall:.0f} samples/s over the whole run (test set, checkpoints); "
          f"test loss ({term}) {history.last('loss'):.2f} nats; wrote {out}/checkpoint.pt, history.json, loss.png, "
          "samples.png, reconstructions.png")
    return 1 if history.stopped else 0


def evaluate_command(args: argparse.Namespace) -> int:
    """``vae-course evaluate``: the ELBO and the IWAE bound of a checkpoint on its test set."""
    try:
        device = get_device(args.device)
        model, config, _, extra = load_checkpoint(args.checkpoint, map_location=device, return_extra=True)
        name = args.data or extra.get("data", "mnist5k")
        data = load_data(name, idx_dir=args.idx_dir or extra.get("idx_dir"), binarize=extra.get("binarize", "dynamic"),
                         seed=extra.get("seed", 0))
    except (ValueError, TypeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if getattr(config, "deterministic", False):
        print(f"error: {args.checkpoint} is a deterministic autoencoder (--model ae): it has no q(z|x) and no "
              "likelihood to estimate", file=sys.stderr)
        return 2
    x = data.x_test if args.n is None else data.x_test[:args.n]
    g = torch.Generator(device=device).manual_seed(args.seed)
    t0 = time.perf_counter()
    elbo = float(elbo_per_example(model, x.to(device)).mean())
    ll = log_likelihood(model, x, k=args.k, generator=g)
    d = x[0].numel()
    print(f"{args.checkpoint}: {len(x)} test images of {name} ({d} pixels each)")
    print(f"ELBO (k=1)        {elbo:10.2f} nats   {-elbo / (d * 0.6931471805599453):.4f} bits/dim")
    print(f"IWAE bound k={args.k:<5d}{ll.mean:10.2f} nats   {ll.bits_per_dim:.4f} bits/dim   ({time.perf_counter() - t0:.1f} s)")
    if getattr(args, "quality", 0) >= 2 and tuple(x.shape[1:]) == (1, 28, 28):
        from ..quality import real_digits, sample_quality  # the digit classifier is only needed here

        samples = model.sample(args.quality, generator=torch.Generator(device=device).manual_seed(args.seed)).clamp(0, 1)
        print(f"samples (decoder means of z ~ p(z)): {sample_quality(samples.cpu())}")
        print(f"real digits (the floor):             {sample_quality(real_digits()[:args.quality])}")
    elif getattr(args, "quality", 0) >= 2:
        print("sample quality: skipped (the digit classifier behind it scores 28x28 digits only)")
    return 0


def bench_command(args: argparse.Namespace) -> int:
    """``vae-course bench``: samples/s of the engine, a DataLoader baseline and the GEMM roofline."""
    result = run_bench(rounds=args.rounds, device=args.device)
    print(f"load average (1, 5, 15 min) at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(result.report())
    if args.quality:
        q = compare_at_equal_time(args.quality, device=args.device)
        print(q.report())
    if args.train_overhead:
        print(train_overhead(rounds=args.rounds, device=args.device).report())
    return 0


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``vae-course train``."""
    p.add_argument("--data", choices=DATA, default=None, help="data set (default mnist5k, or mnist with --idx-dir)")
    p.add_argument("--idx-dir", default=None, help="folder with the MNIST IDX files (train-images-idx3-ubyte[.gz], ...)")
    p.add_argument("--binarize", choices=("none", "static", "dynamic"), default=None,
                   help="pixel binarisation (default: dynamic for bernoulli, none for gaussian)")
    p.add_argument("--model", choices=("vae", "ae"), default="vae", help="vae, or ae: the deterministic autoencoder")
    p.add_argument("--arch", choices=("mlp", "conv", "linear"), default="mlp", help="encoder/decoder networks (default mlp)")
    p.add_argument("--activation", default=None, help="hidden nonlinearity (default tanh for mlp, relu for conv)")
    p.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default="bernoulli", help="p(x|z) (default bernoulli)")
    p.add_argument("--decoder-var", choices=("fixed", "shared", "learned"), default="fixed",
                   help="gaussian decoder variance (default fixed)")
    p.add_argument("--z-dim", type=positive_int, default=20, help="latent size (default 20)")
    p.add_argument("--hidden", type=positive_int, default=400, help="hidden units (default 400)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="epochs (default 10; with --minutes, an upper bound, default none)")
    p.add_argument("--minutes", type=positive_float, default=None,
                   help="wall-time budget: no epoch starts that would end past it (the first always runs)")
    p.add_argument("--beta", type=nonnegative_float, default=1.0,
                   help="weight of the KL term: beta > 1 a beta-VAE, beta < 1 a weaker KL (default 1, the ELBO)")
    p.add_argument("--test-every", type=positive_int, default=1,
                   help="score the test set every N epochs and after the last one (default 1)")
    p.add_argument("--checkpoint-every", type=nonnegative_float, default=30.0, metavar="SECONDS",
                   help="write the checkpoint at most every SECONDS, after the last epoch and on an early stop "
                        "(default 30; 0: every epoch)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default 128)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed for data split, initialisation and noise (default 0)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--out", type=writable_dir, default="runs/vae", help="output folder (default runs/vae)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``vae-course evaluate``."""
    p.add_argument("checkpoint", help="a checkpoint.pt written by `vae-course train`")
    p.add_argument("--k", type=positive_int, default=1000, help="importance samples per image (default 1000)")
    p.add_argument("--n", type=positive_int, default=None, help="use only the first N test images")
    p.add_argument("--data", choices=DATA, default=None, help="override the data set stored in the checkpoint")
    p.add_argument("--idx-dir", default=None, help="folder with the MNIST IDX files (for --data mnist)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the importance samples (default 0)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--quality", type=nonnegative_int, default=500, metavar="N", help="also score N samples with vc.evaluate."
                   "sample_quality (Frechet distance, classifier score; 28x28 data only; 0 skips; default 500)")


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``vae-course bench``."""
    p.add_argument("--rounds", type=positive_int, default=5, help="alternating rounds; the best of each is kept (default 5)")
    p.add_argument("--quality", type=nonnegative_float, default=0.0, metavar="SECONDS",
                   help="also train engine and baseline for SECONDS of wall time each and compare test bounds")
    p.add_argument("--train-overhead", action="store_true",
                   help="also time the extras of `vae-course train` (binarisation, test set, checkpoints, progress bar)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, mps (default: best available)")
