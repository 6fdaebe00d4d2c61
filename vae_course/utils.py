"""Device selection and seeding.

Every chapter starts with two lines::

    device = vc.utils.get_device()      # cuda > mps > cpu, or what you ask for
    vc.utils.seed_everything(0)         # the same numbers on every CPU run

The device order follows what is fastest where it exists. Override it per call
(`get_device("cpu")`) or for a whole session with the environment variable
``VAE_COURSE_DEVICE`` (e.g. ``VAE_COURSE_DEVICE=cuda jupyter lab``). The chapters call
``get_device(default="cpu")``: the CPU, whose numbers the book prints, unless the variable names another device.
"""
from __future__ import annotations

import importlib.resources
import inspect
import os
import random
from pathlib import Path

import numpy as np
import torch
from IPython.display import Markdown

__all__ = ["get_device", "available_devices", "seed_everything", "make_generator", "check_positive_int", "show_source", "stored_file"]

_KNOWN = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def get_device(prefer: str | torch.device | None = None, *, default: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    Args:
        prefer: a device to use: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``. None: the
            environment variable ``VAE_COURSE_DEVICE`` if it is set, else ``default``.
        default: the device when neither ``prefer`` nor ``VAE_COURSE_DEVICE`` names one; None picks the best
            available (cuda > mps > cpu). The book's chapters pass ``default="cpu"``, so their numbers come from the
            CPU unless the reader sets ``VAE_COURSE_DEVICE``.

    Raises:
        ValueError: for an unknown device name, or a device that this machine does not have.
    """
    if prefer is None:
        prefer = os.environ.get("VAE_COURSE_DEVICE") or default
        name = "VAE_COURSE_DEVICE" if os.environ.get("VAE_COURSE_DEVICE") else "default"
    else:
        name = "prefer"
    if prefer is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{name}: got {prefer!r}; need one of {_KNOWN} (optionally with an index, e.g. 'cuda:0')") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}: got {prefer!r} but this machine has no CUDA GPU; use 'cpu' or None")
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"{name}: got {prefer!r} but MPS is not available here; use 'cpu' or None")
    if device.type not in _KNOWN:
        raise ValueError(f"{name}: got {prefer!r}; need one of {_KNOWN}")
    return device


def available_devices() -> list[torch.device]:
    """Every device this machine can compute on: the CPU, then CUDA and MPS where present (the tests run the
    device-dependent code on each)."""
    out = [torch.device("cpu")]
    if torch.cuda.is_available():
        out.append(torch.device("cuda"))
    if _mps_available():
        out.append(torch.device("mps"))
    return out


def seed_everything(seed: int, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a CPU generator seeded the same.

    With ``deterministic=True`` PyTorch is asked for deterministic kernels, so two CPU runs with
    the same seed, thread count and PyTorch version give bit-identical results. GPU kernels without
    a deterministic version only warn (exact GPU reproducibility is not promised by PyTorch).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: got {seed!r} of type {type(seed).__name__}; need an int")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed: got {seed}; need an int in [0, 2**32)")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA/MPS device
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
    return make_generator(seed)


def make_generator(seed: int | None = None, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device``, seeded with ``seed`` (random if None)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def check_positive_int(name: str, value: object, *, allow_zero: bool = False) -> int:
    """Validate a count argument and return it as an int (shared by every public function)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: got {value!r} of type {type(value).__name__}; need an int")
    low = 0 if allow_zero else 1
    if value < low:
        raise ValueError(f"{name}: got {value}; need an int >= {low}")
    return int(value)


def show_source(obj: object):
    """Display the source code of a package function or class in a notebook (as highlighted Markdown).

    The book shows the package's own code this way, so what students read is what runs.
    """
    try:
        src = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise TypeError(f"obj: got {obj!r}; need a function, class or module defined in Python source") from err
    return Markdown(f"```python\n{src}```")


def stored_file(name: str) -> Path:
    """The path of a result stored with the package (``vae_course/stored/<name>``, installed as package data).

    Stored results are what a chapter cannot compute within its time budget; each is written by a documented
    ``vae-course`` command, and a test re-runs a slice of that command against it.
    """
    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        raise ValueError(f"name: got {name!r}; need the file name of a stored result, e.g. 'beta_sweep.csv'")
    return Path(str(importlib.resources.files("vae_course") / "stored" / name))
