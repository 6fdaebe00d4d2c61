r"""The model protocol shared by every model of the course, and the registry that rebuilds models.

A model plugs into :func:`vae_course.train.fit` and into checkpoints by providing three things:

* ``loss(x, **loss_kwargs) -> LossTerms``: the scalar to minimise (mean over the batch, in nats
  per example) and named scalar terms for the history (``recon``, ``kl``, ``elbo``, ...);
* a ``config`` attribute, a dataclass of plain Python values (ints, floats, strings, tuples);
* a class attribute ``config_class`` and a constructor ``Model(config)``, and the class is
  registered with :func:`register_model`, so a checkpoint can rebuild it from its name and config.

Optionally, ``check_input(x, name="x") -> Tensor``: ``x`` checked as the model's input (shape, values, device) and
returned in the model's dtype. ``fit`` calls it once on its whole data set and then runs its steps inside
``vae_course._validate.data_checked()``, where the model may skip its per-batch checks; every model of the course
has one (images with pixels in [0, 1] for Bernoulli pixels, code maps in ``[0, K)`` for the code prior).

Chapters 6-8 (beta-VAE, posterior collapse, VQ-VAE) add their models this way, without copying
the training loop. Keeping configs to plain values is what lets ``torch.load(..., weights_only=True)``
read a checkpoint: no pickled classes, only tensors, dicts, lists, tuples, strings and numbers.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, NamedTuple

from torch import Tensor, nn

__all__ = ["LossTerms", "register_model", "MODELS", "build_model", "config_to_dict", "config_from_dict"]

MODELS: dict[str, type] = {}  # class name -> model class, filled by @register_model


class LossTerms(NamedTuple):
    """What ``model.loss(x)`` returns.

    ``loss``: a scalar tensor to minimise (mean over the batch, nats per example; carries gradients).
    ``terms``: named scalar tensors for the history, e.g. ``{"loss", "recon", "kl", "elbo"}``
    (means over the batch; :func:`vae_course.train.fit` detaches them).
    """

    loss: Tensor
    terms: dict[str, Tensor]


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` loadable from checkpoints by its ``__name__``.

    ``cls`` needs a ``config_class`` attribute (a dataclass) and ``__init__(self, config)``.
    """
    config_class = getattr(cls, "config_class", None)
    if config_class is None or not dataclasses.is_dataclass(config_class):
        raise TypeError(f"register_model: {cls.__name__} needs a class attribute `config_class` that is a dataclass")
    if not issubclass(cls, nn.Module):
        raise TypeError(f"register_model: {cls.__name__} must be a torch.nn.Module")
    MODELS[cls.__name__] = cls
    return cls


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as a dict of plain values (tuples stay tuples, safe for ``weights_only``)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config: got {type(config).__name__}; need a dataclass instance such as VAEConfig(...)")
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def config_from_dict(config_class: type, values: dict[str, Any]) -> Any:
    """Rebuild ``config_class`` from :func:`config_to_dict` output; lists become tuples where the field is a tuple.

    Raises ValueError naming unknown or missing fields.
    """
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"config: unknown field(s) {unknown} for {config_class.__name__}; known: {sorted(fields)}")
    hints = typing.get_type_hints(config_class)
    clean = {}
    for name, value in values.items():
        if isinstance(value, list) and "tuple" in str(hints.get(name, "")).lower():
            value = tuple(value)
        clean[name] = value
    try:
        return config_class(**clean)
    except TypeError as err:  # a required field is missing
        raise ValueError(f"config: cannot build {config_class.__name__}: {err}") from None


def build_model(name: str, config: dict[str, Any] | Any) -> nn.Module:
    """Instantiate the registered model class ``name`` from a config (dataclass or dict)."""
    if name not in MODELS:
        raise ValueError(f"model: got {name!r}; registered models are {sorted(MODELS)}")
    cls = MODELS[name]
    if isinstance(config, dict):
        config = config_from_dict(cls.config_class, config)
    return cls(config)

