"""The official solution of a registered exercise, taken from its ``solutions/NN_topic.ipynb``.

No kernel: the notebook's first code cell after the Colab setup cell (imports and setup) and the cells that define the
notebook's exercise functions up to this one run with ``exec`` in a fresh namespace, in notebook
order, as a student's kernel would have run them (``mig`` in chapter 6 calls the
``mutual_information`` written one exercise earlier). Shared by the registry and contract tests.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Callable

import nbformat

from vae_course.checks import Exercise, exercises_for
from vae_course.notebook_setup import TAG

os.environ.setdefault("MPLBACKEND", "Agg")  # a setup cell may import matplotlib.pyplot

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"


@functools.lru_cache(maxsize=None)
def code_cells(notebook: str, folder: str = "solutions") -> tuple[str, ...]:
    """The sources of the code cells of ``ROOT/folder/notebook``, in order, without the Colab setup cell (it only
    installs the package where it is missing: :mod:`vae_course.notebook_setup`)."""
    nb = nbformat.read(ROOT / folder / notebook, as_version=4)
    return tuple(c.source for c in nb.cells
                 if c.cell_type == "code" and TAG not in c.get("metadata", {}).get("tags", []))


def defining_cell(notebook: str, function: str) -> str:
    """The one code cell of the solution notebook that defines ``function`` (a line ``def function(``)."""
    pattern = re.compile(rf"^def {re.escape(function)}\(", re.M)
    found = [src for src in code_cells(notebook) if pattern.search(src)]
    if len(found) != 1:
        raise LookupError(f"solutions/{notebook}: {len(found)} code cells define `{function}`; expected exactly one")
    return found[0]


@functools.lru_cache(maxsize=None)
def solution(exercise: Exercise) -> Callable:
    """The function ``exercise.function`` as ``solutions/<exercise.notebook>`` defines it."""
    namespace: dict = {"__name__": f"solution_{exercise.notebook[:-6]}"}
    cells = [code_cells(exercise.notebook)[0]]
    cells += [defining_cell(e.notebook, e.function) for e in exercises_for(exercise.notebook) if e.number <= exercise.number]
    for source in cells:
        exec(compile(source, f"solutions/{exercise.notebook}", "exec"), namespace)  # noqa: S102 (our own notebook)
    fn = namespace.get(exercise.function)
    if not callable(fn):
        raise LookupError(f"solutions/{exercise.notebook}: running its cells did not define a function `{exercise.function}`")
    return fn
