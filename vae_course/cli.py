"""The ``vae-course`` command line: instructor chores and experiments.

    vae-course info                  versions and the device that would be used
    vae-course release [--check]     regenerate exercises/ from solutions/
    vae-course grade DIR --out CSV   run submitted notebooks; one CSV row per submission and exercise
    vae-course train [...]           train a VAE; writes checkpoint, history and PNG grids to --out
    vae-course evaluate CKPT --k K   IWAE log-likelihood of a checkpoint on its test set
    vae-course bench                 samples/s of the fit engine vs a DataLoader baseline vs the GEMM roofline
    vae-course sweep-beta [...]      chapter 6: beta sweep over seeds (the CSV stored in book/data/)
    vae-course collapse-sweep        chapter 7's free-bits sweep (the JSON stored in book/data/)

Every subcommand has ``--help``.
"""
from __future__ import annotations

import argparse
import platform
import sys

from . import grade as _grade
from . import release as _release

__all__ = ["main", "build_parser"]


def _info(args: argparse.Namespace) -> int:
    import torch

    from . import __version__
    from .utils import get_device

    print(f"vae_course {__version__}")
    print(f"python     {platform.python_version()} ({sys.executable})")
    print(f"torch      {torch.__version__} (threads: {torch.get_num_threads()})")
    try:
        device = get_device(args.device)
    except ValueError as err:
        print(f"device     error: {err}")
        return 2
    print(f"device     {device}  (cuda available: {torch.cuda.is_available()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vae-course",
        description="Tools for the VAE Course: release exercises, inspect the setup.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="show versions and the compute device", description="Show versions and the compute device.")
    p.add_argument("--device", default=None, help="device to check (cpu, cuda, mps); default: best available")
    p.set_defaults(func=_info)

    p = sub.add_parser(
        "release",
        help="generate exercises/ from solutions/",
        description="Generate the student notebooks in exercises/ from the solution notebooks in solutions/.",
    )
    _release.add_arguments(p)
    p.set_defaults(func=_release.run)

    p = sub.add_parser(
        "grade",
        help="grade a folder of submitted exercise notebooks into a CSV file",
        description="Run each submitted notebook in a fresh kernel and write its check results to a CSV file.",
    )
    _grade.add_arguments(p)
    p.set_defaults(func=_grade.run)

    from . import disentangle as _dis

    p = sub.add_parser(
        "sweep-beta",
        help="chapter 6: beta-VAE sweep over betas and seeds on the sprites, written as CSV",
        description="Train one beta-VAE per (beta, seed) on the sprites grid; score rate, distortion, MIG and DCI; "
        "write the rows to --out (rows of the same --config are replaced).",
    )
    _dis.add_arguments(p)
    p.set_defaults(func=_dis.run)

    from . import collapse as _collapse

    p = sub.add_parser(
        "collapse-sweep",
        help="chapter 7: free-bits sweep over floors and seeds, written as JSON",
        description="Train the chapter-7 autoregressive VAE for several free-bits floors and seeds; write the results as JSON.",
    )
    _collapse.add_arguments(p)
    p.set_defaults(func=_collapse.run)

    from . import experiments as _exp  # train / evaluate / bench (chapter 5)

    _exp.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
