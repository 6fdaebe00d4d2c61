r"""Long runs stored with the package: the converged models that a chapter cannot train in its time budget.

A chapter trains the short version of a model live (the mechanics and the curves), then loads the long run
with :func:`load` to show the converged result. :func:`available` lists what is stored and the ``vae-course``
command that made each; ``vae-course pretrain NAME`` (:mod:`vae_course.experiments.pretrain`) retrains it, in
a few minutes on a laptop CPU and unchanged on a GPU. Each file is a checkpoint of
:mod:`vae_course.checkpoint` (readable with ``torch.load(..., weights_only=True)``) with the training history;
the generative models are stored in half precision (:func:`save`), which changes their outputs by far less than
anything visible (``tests/test_pretrained.py`` bounds the change of the decoded images), and are loaded back
into float32 weights.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from . import models  # noqa: F401  (registers every model class a checkpoint may name)
from . import quality  # noqa: F401  (registers the FeatureNet of the stored digit classifier)
from .checkpoint import load_checkpoint, save_checkpoint
from .history import History
from .utils import get_device, stored_file

__all__ = ["StoredModel", "STORED", "available", "Pretrained", "load", "save", "stored_path"]


@dataclass(frozen=True)
class StoredModel:
    """One stored long run: its ``file`` in ``vae_course/stored/``, the ``command`` that writes it, the ``chapter``
    that shows it and what it is."""

    name: str
    file: str
    command: str
    chapter: int
    description: str


def _stored(name: str, chapter: int, description: str) -> StoredModel:
    return StoredModel(name, f"{name.replace('-', '_')}.pt", f"vae-course pretrain {name}", chapter, description)


STORED: dict[str, StoredModel] = {m.name: m for m in (
    _stored("digit-features", 5, "the digit classifier behind vc.quality's scores (mnist5k training split)"),
    _stored("vae-mnist", 5, "the chapter-5 VAE trained to convergence on mnist5k (dynamic binarisation)"),
    _stored("vae-2d", 5, "a chapter-5 VAE with a 2-D latent space, trained long, for the latent map"),
    _stored("vqvae", 8, "chapter 8's VQ-VAE (EMA codebook with restarts) trained long on mnist5k"),
    _stored("vqvae-prior", 8, "the PixelCNN prior over the stored VQ-VAE's code maps, trained long"),
)}


def available() -> dict[str, str]:
    """The stored models: ``{name: the vae-course command that made it}``."""
    return {name: m.command for name, m in STORED.items()}


def _entry(name: str) -> StoredModel:
    if name not in STORED:
        raise ValueError(f"name: got {name!r}; stored models are {sorted(STORED)} (vc.pretrained.available())")
    return STORED[name]


def stored_path(name: str) -> Path:
    """The file of stored model ``name`` inside the installed package."""
    return stored_file(_entry(name).file)


class Pretrained(NamedTuple):
    """What :func:`load` returns: the ``model`` (eval mode, float32, on the device asked for), its training
    ``history``, the ``command`` that made it, and ``extra`` (the recipe: data, epochs, seconds, ...)."""

    model: nn.Module
    history: History | None
    command: str
    extra: dict[str, Any]


def load(name: str, map_location: str | torch.device | None = None, *,
         path: str | os.PathLike | None = None) -> Pretrained:
    """Load stored model ``name`` (one of :func:`available`), ready to sample: eval mode, float32 weights, on
    ``map_location`` (default the CPU; any name :func:`vae_course.utils.get_device` accepts). ``path`` reads a
    file written by ``vae-course pretrain NAME --out PATH`` instead of the stored one."""
    entry = _entry(name)
    device = torch.device("cpu") if map_location is None else get_device(map_location)
    file = stored_path(name) if path is None else Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{name}: {file} does not exist; `{entry.command}` writes it")
    model, _, history, extra = load_checkpoint(file, map_location="cpu", return_extra=True)
    model.float().to(device).eval()
    return Pretrained(model, history, entry.command, dict(extra))


def save(path: str | os.PathLike, model: nn.Module, history: History | None, extra: dict | None = None, *,
         half: bool = True) -> Path:
    """Write ``model`` with :func:`vae_course.checkpoint.save_checkpoint`, its floating weights and buffers in half
    precision if ``half`` (the model itself is left as it is). Returns the path written."""
    stored = copy.deepcopy(model).cpu()
    if half:
        stored.half()
    return save_checkpoint(path, stored, history=history, extra={**(extra or {}), "half_precision": bool(half)})
