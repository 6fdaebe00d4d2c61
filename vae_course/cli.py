"""The ``vae-course`` command line: instructor chores and experiments.

    vae-course info                  versions and the device that would be used
    vae-course release [--check]     regenerate exercises/ from solutions/
    vae-course setup-cells [--repo-url URL] [--check]   the Colab setup cell of every notebook
    vae-course grade DIR --out CSV   run submitted notebooks; one CSV row per submission and exercise
    vae-course train [...]           train a VAE; writes checkpoint, history and PNG grids to --out
    vae-course evaluate CKPT --k K   IWAE log-likelihood of a checkpoint on its test set
    vae-course bench                 samples/s of the fit engine vs a DataLoader baseline vs the GEMM roofline
    vae-course sweep-beta [...]      chapter 6: beta sweep over seeds (the CSV stored with the package)
    vae-course collapse-sweep        chapter 7's free-bits sweep (the JSON stored with the package)
    vae-course hierarchy-sweep       chapter 9's two-level against one-level VAE study (the JSON stored with the package)
    vae-course diagrams [--check]    the book's schematic diagrams, as SVG files in book/figures
    vae-course pretrain NAME         train a long run stored with the package (vc.pretrained; --list)

Every subcommand has ``--help``. The parser imports only the module of the subcommand that runs, so
``vae-course --help`` answers at once and ``vae-course grade`` does not load the training code.

A user's mistake never ends in a traceback: the options are checked by the ``type=`` validators of
``vae_course._args``, and a bad option, or a ``ValueError`` or ``OSError`` while the command runs (a missing
file, a folder that cannot be written), is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import platform
import sys
from typing import NamedTuple

__all__ = ["main", "build_parser", "COMMANDS", "Command"]


class Command(NamedTuple):
    """One subcommand: the module that implements it, its functions that add the arguments and run it, and
    the help texts."""

    module: str
    add_arguments: str
    run: str
    help: str
    description: str


COMMANDS: dict[str, Command] = {
    "info": Command("vae_course.cli", "_info_arguments", "_info", "show versions and the compute device",
                    "Show versions and the compute device."),
    "release": Command("vae_course.release", "add_arguments", "run", "generate exercises/ from solutions/",
                       "Generate the student notebooks in exercises/ from the solution notebooks in solutions/."),
    "setup-cells": Command("vae_course.notebook_setup", "add_arguments", "run",
                           "write the Colab setup cell (with the repository address) into every notebook",
                           "Give every notebook of book/, solutions/ and exercises/ the setup cell that installs the "
                           "course package where it is missing (Colab), from --repo-url."),
    "grade": Command("vae_course.grade", "add_arguments", "run",
                     "grade a folder of submitted exercise notebooks into a CSV file",
                     "Run each submitted notebook in a fresh kernel and write its check results to a CSV file."),
    "train": Command("vae_course.experiments.train_vae", "add_train_arguments", "train_command",
                     "train a VAE and write checkpoint, history and sample grids",
                     "Train a VAE with vae_course.train.fit; outputs go to --out. Speed: `vae-course bench`'s engine "
                     "figure trains on grey pixels with nothing else; this command draws binary pixels afresh for every "
                     "batch (--binarize dynamic, about a fifth of a step of the default MLP), scores the test set every "
                     "epoch (--test-every) and writes a checkpoint every 30 s (--checkpoint-every), so it runs at about "
                     "four fifths of that figure (`vae-course bench --train-overhead` measures each part on your "
                     "machine)."),
    "evaluate": Command("vae_course.experiments.train_vae", "add_evaluate_arguments", "evaluate_command",
                        "IWAE log-likelihood of a checkpoint on its test set",
                        "Estimate log p(x) on the test set with the importance-weighted bound (Burda et al., 2016)."),
    "bench": Command("vae_course.experiments.train_vae", "add_bench_arguments", "bench_command",
                     "samples/s: fit engine vs a DataLoader baseline vs the GEMM roofline",
                     "Benchmark the 784-400-20 MLP VAE at batch 128 on mnist5k (see vae_course/experiments/bench.py)."),
    "sweep-beta": Command("vae_course.experiments.beta_sweep", "add_arguments", "run",
                          "chapter 6: beta-VAE sweep over betas and seeds on the sprites, written as CSV",
                          "Train one beta-VAE per (beta, seed) on the sprites grid; score rate, distortion, MIG and "
                          "DCI; write the rows to --out (rows of the same --config are replaced)."),
    "pretrain": Command("vae_course.experiments.pretrain", "add_arguments", "run",
                        "train a long run stored with the package (vc.pretrained)",
                        "Train one of the models stored in vae_course/stored/ (vae-course pretrain --list names them)."),
    "collapse-sweep": Command("vae_course.experiments.free_bits_sweep", "add_arguments", "run",
                              "chapter 7: free-bits sweep over floors and seeds, written as JSON",
                              "Train the chapter-7 autoregressive VAE for several free-bits floors and seeds; write "
                              "the results as JSON."),
    "hierarchy-sweep": Command("vae_course.experiments.hierarchy_sweep", "add_arguments", "run",
                               "chapter 9: two-level vs one-level VAE at equal size, with remedies, written as JSON",
                               "Train chapter 9's two-level (ladder) VAE and a one-level VAE with as many parameters, "
                               "with and without free bits or warm-up, over seeds; merge the scores into the JSON."),
    "diagrams": Command("vae_course.plotting.diagrams", "add_arguments", "run",
                        "draw the book's schematic diagrams as SVG files (book/figures)",
                        "Draw the schematic diagrams that the chapters include (vae_course.plotting.diagrams) and "
                        "write them as SVG files to --out; --check only compares."),
}


def _info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="device to check (cpu, cuda, mps); default: best available")


def _info(args: argparse.Namespace) -> int:
    import torch  # only this subcommand needs it: `vae-course --help` stays quick

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


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr (no usage block), then exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the arguments of a subcommand are added (and its module imported) only if ``argv`` names it,
    or for every subcommand when ``argv`` is None."""
    parser = _Parser(prog="vae-course", description="Tools for the VAE Course: release and grade "
                     "exercises, train and evaluate models, regenerate the stored results.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = set(COMMANDS) if argv is None else {a for a in argv if a in COMMANDS}
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.description)
        if name in wanted:
            module = importlib.import_module(cmd.module)
            getattr(module, cmd.add_arguments)(p)
            p.set_defaults(func=getattr(module, cmd.run))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser([first] if first in COMMANDS else [])
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # a user's mistake found while running (a bad file, an unwritable folder)
        print(f"vae-course {args.command}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
