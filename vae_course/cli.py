"""The ``vae-course`` command line: instructor chores and experiments.

    vae-course info                  versions and the device that would be used
    vae-course release [--check]     regenerate exercises/ from solutions/
    vae-course grade DIR --out CSV   run submitted notebooks; one CSV row per submission and exercise

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
