"""vae_course: the reference implementations behind the VAE Course book.

Chapters import it as ``import vae_course as vc`` and call ``vc.<module>.<function>``; each module holds one
concept and names the chapter that teaches it. Submodules load on first use (PEP 562), so ``import vae_course``
is quick and ``vc.plotting`` brings in matplotlib only when a figure is drawn.

The layers point down: math (``distributions``, ``information``, ``linear_gaussian``, ``nets``), chapter
modules and ``objectives``, then ``models``, the engine (``train``, ``history``, ``checkpoint``, ``evaluate``),
then ``experiments`` and the tools (``plotting``, ``widgets``, ``checks``, ``grade``, ``release``, ``cli``).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

SUBMODULES = (
    "utils", "data", "distributions", "information", "discriminative", "nets", "generators", "mixtures",
    "linear_gaussian", "inference", "em", "estimators", "objectives", "models", "history", "checkpoint", "train",
    "schedules", "quality", "evaluate", "aggregate", "sprites", "tc", "disentangle", "collapse", "vq", "flows", "beyond",
    "families", "pretrained", "experiments", "plotting", "widgets", "checks", "release", "notebook_setup",
    "notebook_run", "grade", "cli",
)
__all__ = ["__version__", *SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        return importlib.import_module(f".{name}", __name__)  # cached in sys.modules and as an attribute
    raise AttributeError(f"module 'vae_course' has no attribute {name!r}; its submodules are {', '.join(SUBMODULES)}")


def __dir__() -> list[str]:
    return sorted([*globals(), *SUBMODULES])
