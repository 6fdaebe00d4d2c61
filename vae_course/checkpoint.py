"""Checkpoints that load with ``torch.load(..., weights_only=True)`` and fail with a clear message.

A checkpoint is a dict of tensors and plain Python values only::

    {"format": "vae_course.checkpoint/1", "model_class": "VAE", "config": {...plain values...},
     "state_dict": {name: tensor}, "weights_sha256": "...", "history": History.to_dict() or None, "extra": {...}}

so loading never unpickles code (``weights_only=True`` refuses anything else). The model is
rebuilt from its registered class name and config (:func:`vae_course.models.build_model`), then
the weights are loaded strictly. Writing is atomic: the file is written next to the target and
moved over it with ``os.replace``, so a crash mid-write leaves the previous checkpoint intact.

**Integrity.** ``torch.load`` does not verify the zip archive's CRCs, so a flipped byte inside a weight tensor
would load silently. ``weights_sha256`` is the SHA-256 of every tensor of the state dict (its name, dtype, shape
and bytes, in name order; :func:`weights_digest`); :func:`load_checkpoint` recomputes it and refuses a file whose
weights do not match. Weights that are NaN or inf are never written (:func:`save_checkpoint` refuses them) and
never loaded (a ValueError naming the file). A checkpoint written before the checksum existed (no
``weights_sha256`` key) still loads, with a ``UserWarning`` that it cannot be verified: the checksum guards
against corruption, not tampering (``weights_only=True`` is what keeps code out).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .history import History
from .models.base import MODELS, build_model, config_to_dict

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint", "weights_digest", "Checkpoint", "FORMAT"]

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


def weights_digest(state_dict: dict[str, Tensor]) -> str:
    """SHA-256 (hex) of a state dict: for each tensor in name order, its name, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _nonfinite(state_dict: dict[str, Tensor]) -> list[str]:
    return [k for k, v in state_dict.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: Any = None, history: History | None = None,
                    extra: dict | None = None) -> Path:
    """Write ``model`` (its registered class, config and weights), ``history`` and ``extra`` to ``path`` atomically.

    Args:
        config: the model's config dataclass (default: ``model.config``).
        extra: plain values to keep with the weights (e.g. which data set it was trained on).
    Returns the path written. Raises ValueError (and writes nothing) if a weight is NaN or inf.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: got {type(path).__name__}; need a file path (str or os.PathLike)")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: got {type(model).__name__}; need a torch.nn.Module")
    if history is not None and not isinstance(history, History):
        raise TypeError(f"history: got {type(history).__name__}; need None or a vae_course.history.History")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra: got {type(extra).__name__}; need None or a dict of plain values")
    name = type(model).__name__
    if MODELS.get(name) is not type(model):
        raise ValueError(f"model: {name} is not registered; decorate its class with "
                         "@vae_course.models.register_model so a checkpoint can rebuild it")
    config = config if config is not None else getattr(model, "config", None)
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    bad = _nonfinite(state)
    if bad:
        raise ValueError(f"model: got non-finite weights (NaN or inf) in {', '.join(bad[:5])}; a checkpoint holds "
                         "finite weights only (nothing was written to " + os.fspath(path) + ")")
    payload = {
        "format": FORMAT,
        "model_class": name,
        "config": config_to_dict(config),
        "state_dict": state,
        "weights_sha256": weights_digest(state),
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


def _verify(path: str | os.PathLike, payload: dict) -> None:
    """The checksum of the weights, then their finiteness; a ValueError naming the file if either fails."""
    stored = payload.get("weights_sha256")
    if stored is None:
        warnings.warn(f"checkpoint {path}: has no weights checksum (written by an older vae_course), so its weights "
                      "cannot be verified; save it again to add one", UserWarning, stacklevel=3)
    elif stored != weights_digest(payload["state_dict"]):
        raise ValueError(f"checkpoint {path}: its weights do not match their SHA-256 checksum (stored {str(stored)[:12]}..., "
                         f"computed {weights_digest(payload['state_dict'])[:12]}...); the file is corrupt")
    bad = _nonfinite(payload["state_dict"])
    if bad:
        raise ValueError(f"checkpoint {path}: holds non-finite weights (NaN or inf) in {', '.join(bad[:5])}; refusing "
                         "to load them")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = None, *,
                    return_extra: bool = False):
    """Rebuild the model saved by :func:`save_checkpoint`; returns ``Checkpoint(model, config, history)``
    (and ``extra`` as a fourth item if ``return_extra``). The model is in eval mode on ``map_location``
    (default CPU).

    Raises ValueError naming the file for a corrupt file, missing keys, an unknown model class, a
    config the class rejects, weights whose names or shapes do not fit the rebuilt model, weights that do not
    match their SHA-256 checksum, or weights that are NaN or inf (see the module doc).
    """
    payload = read_checkpoint(path, map_location)
    if not isinstance(payload["state_dict"], dict) or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in payload["state_dict"].items()):
        raise ValueError(f"checkpoint {path}: its state_dict is not a dict of named tensors")
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
    _verify(path, payload)
    if map_location is not None:
        model.to(map_location)
    model.eval()
    history = History.from_dict(payload["history"]) if payload.get("history") else None
    result = Checkpoint(model, model.config, history)
    return (*result, payload.get("extra", {})) if return_extra else result
