"""``type=`` validators for the command-line options of every ``vae-course`` subcommand (no torch: the parser stays quick).

Each one turns the option's text into a value or raises ``argparse.ArgumentTypeError`` with the house message
(what it got, what it needs); argparse prefixes the option's name, and :func:`vae_course.cli.main` prints it on one
line and exits with status 2, so a user's mistake never ends in a traceback::

    vae-course train: error: argument --epochs: got '-1'; need an int >= 1
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

__all__ = ["positive_int", "nonnegative_int", "finite_float", "positive_float", "nonnegative_float", "writable_dir",
           "writable_file", "device"]


def _int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; need an int >= {low}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"got {text!r}; need an int >= {low}")
    return value


def positive_int(text: str) -> int:
    """An int >= 1 (epochs, batch sizes, sample counts)."""
    return _int(text, 1)


def nonnegative_int(text: str) -> int:
    """An int >= 0 (seeds)."""
    return _int(text, 0)


def _float(text: str, *, allow_zero: bool) -> float:
    need = f"a finite number {'>=' if allow_zero else '>'} 0"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; need {need}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise argparse.ArgumentTypeError(f"got {text!r}; need {need}")
    return value


def finite_float(text: str) -> float:
    """A finite number of any sign (the command then checks its range, as ``vae-course grade`` does for ``--timeout``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; need a finite number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"got {text!r}; need a finite number")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, time limits)."""
    return _float(text, allow_zero=False)


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (KL weights, free-bits floors, optional durations)."""
    return _float(text, allow_zero=True)


def _creatable(folder: Path) -> str | None:
    """Why ``folder`` cannot be (made and) written, or None: the nearest existing ancestor must be a writable folder."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return f"no part of {folder} exists"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def writable_dir(text: str) -> str:
    """A folder that exists and is writable, or can be created."""
    why = _creatable(Path(text).expanduser())
    if why:
        raise argparse.ArgumentTypeError(f"got {text!r}, but {why}; need a folder that can be written")
    return text


def writable_file(text: str) -> str:
    """A file path whose folder is (or can be made) writable, and that is not itself a folder."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"got {text!r}, which is a folder; need a file path")
    why = _creatable(path.parent)
    if why:
        raise argparse.ArgumentTypeError(f"got {text!r}, but {why}; need a file path in a folder that can be written")
    return text


def device(text: str) -> str:
    """A device this machine has (cpu, cuda, cuda:1, mps); torch is imported only when the option is given."""
    from .utils import get_device  # the subcommands that take --device load torch anyway

    try:
        get_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"got {text!r}; {str(err).split('; ', 1)[-1]}") from None
    return text
