"""Drivers that train models and write files: the sweeps behind the stored results, the benchmark, and the
``vae-course train`` / ``evaluate`` commands. They sit above :mod:`vae_course.train` and import everything
below it; nothing in the package imports them except the command line.

* :mod:`vae_course.experiments.train_vae`: ``vae-course train``, ``evaluate``, ``bench``;
* :mod:`vae_course.experiments.bench`: the engine against a DataLoader baseline and the GEMM roofline;
* :mod:`vae_course.experiments.beta_sweep`: ``vae-course sweep-beta`` (chapter 6);
* :mod:`vae_course.experiments.free_bits_sweep`: ``vae-course collapse-sweep`` (chapter 7);
* :mod:`vae_course.experiments.hierarchy_sweep`: ``vae-course hierarchy-sweep`` (chapter 9);
* :mod:`vae_course.experiments.pretrain`: ``vae-course pretrain`` (the long runs of :mod:`vae_course.pretrained`);
* :mod:`vae_course.experiments.import_time`: what ``import vae_course`` costs beyond ``import torch``.
"""
from __future__ import annotations

import importlib
from typing import Any

SUBMODULES = ("train_vae", "bench", "beta_sweep", "free_bits_sweep", "hierarchy_sweep", "import_time", "pretrain")
__all__ = list(SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'vae_course.experiments' has no attribute {name!r}; its modules are {SUBMODULES}")
