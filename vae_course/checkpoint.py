"""Checkpoints that load with ``torch.load(..., weights_only=True)`` and fail with a clear message.

A checkpoint is a dict of tensors and plain Python values only::

    {"format": "vae_course.checkpoint/1", "model_class": "VAE", "config": {...plain values...},
     "state_dict": {name: tensor}, "history": History.to_dict() or None, "extra": {...}}

so loading never unpickles code (``weights_only=True`` refuses anything else). The model is
rebuilt from its registered class name and config (:func:`vae_course.models.build_model`), then
the weights are loaded strictly. Writing is atomic: the file is written next to the target and
moved over it with ``os.replace``, so a crash mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .history import History
from .models.base import MODELS, build_model, config_to_dict

__all__ = ["save_checkpoint", "load_checkpoint", "Checkpoint", "FORMAT"]

FORMAT = "vae_course.checkpoint/1"
_REQUIRED = ("format", "model_class", "config", "state_dict")
_PLAIN = (str, int, float, bool, type(None), Tensor)


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns: the rebuilt model (eval mode), its config and its history."""

    model: nn.Module
    config: Any
    history: History | None


def _check_plain(value: Any, where: str) -> None:
    """Raise TypeError unless ``value`` is made of tensors, numbers, strings, None, lists, tuples and str-keyed dicts."""
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is a {type(k).__name__}; checkpoint dicts need str keys")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where}: got a {type(value).__name__}; a checkpoint holds only tensors, numbers, strings, "
                    "None, lists, tuples and dicts (so that weights_only=True can load it)")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: Any = None, history: History | None = None,
                    extra: dict | None = None) -> Path:
    """Write ``model`` (its registered class, config and weights), ``history`` and ``extra`` to ``path`` atomically.

    Args:
        config: the model's config dataclass (default: ``model.config``).
        extra: plain values to keep with the weights (e.g. which data set it was trained on).
    Returns the path written.
    """
    name = type(model).__name__
    if MODELS.get(name) is not type(model):
        raise ValueError(f"model: {name} is not registered; decorate its class with "
                         "@vae_course.models.register_model so a checkpoint can rebuild it")
    config = config if config is not None else getattr(model, "config", None)
    payload = {
        "format": FORMAT,
        "model_class": name,
        "config": config_to_dict(config),
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()},
        "history": history.to_dict() if history is not None else None,
        "extra": dict(extra or {}),
        "torch_version": str(torch.__version__),
    }
    _check_plain(payload["config"], "config")
    _check_plain(payload["extra"], "extra")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old or the new file, never half
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = None) -> dict:
    """The raw checkpoint dict, loaded with ``weights_only=True``; ValueError naming the file if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: {path} does not exist (or is not a file)")
    try:
        payload = torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except Exception as err:  # truncated zip, random bytes, pickled objects that weights_only refuses
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith("WeightsUnpickler error")), lines[0] if lines else "")
        raise ValueError(f"checkpoint {path}: cannot be read ({type(err).__name__}: {first}); the file is corrupt, "
                         "truncated, or not a vae_course checkpoint") from None
    if not isinstance(payload, dict):
        raise ValueError(f"checkpoint {path}: holds a {type(payload).__name__}, not a vae_course checkpoint dict")
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"checkpoint {path}: missing key(s) {missing}; a vae_course checkpoint has {list(_REQUIRED)}")
    if payload["format"] != FORMAT:
        raise ValueError(f"checkpoint {path}: format {payload['format']!r}; this version reads {FORMAT!r}")
    return payload


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = None, *,
                    return_extra: bool = False):
    """Rebuild the model saved by :func:`save_checkpoint`; returns ``Checkpoint(model, config, history)``
    (and ``extra`` as a fourth item if ``return_extra``). The model is in eval mode on ``map_location``
    (default CPU).

    Raises ValueError naming the file for a corrupt file, missing keys, an unknown model class, a
    config the class rejects, or weights whose names or shapes do not fit the rebuilt model.
    """
    payload = read_checkpoint(path, map_location)
    try:
        model = build_model(payload["model_class"], payload["config"])
    except (ValueError, TypeError) as err:
        raise ValueError(f"checkpoint {path}: cannot rebuild the model: {err}") from None
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        detail = " ".join(str(err).split())
        raise ValueError(f"checkpoint {path}: its weights do not fit a {payload['model_class']} built from its "
                         f"config: {detail[:600]}") from None
    if map_location is not None:
        model.to(map_location)
    model.eval()
    history = History.from_dict(payload["history"]) if payload.get("history") else None
    result = Checkpoint(model, model.config, history)
    return (*result, payload.get("extra", {})) if return_extra else result
