"""What the grader takes from a submitted notebook: the student's definitions and answers, nothing else.

For each registered exercise of the notebook (:func:`vae_course.checks.exercises_for`) the grader needs the
student's function or class (``"function"`` and ``"build"`` exercises) or number (``"value"`` exercises). The
notebook's other cells, the outputs it displays and anything they may have patched are left behind:

* from every code cell, only ``import`` statements, ``def`` and ``class`` statements, and assignments of a name
  to an arithmetic expression (:func:`safe_number`) are kept, in cell order (a later definition replaces an
  earlier one, as in a kernel run top to bottom); everything else (calls, attribute assignments such as
  ``vc.checks.ch03.check_kl_normal_std = ...``, ``vc = ...``, displays) is dropped;
* a derivation's answer must be a number or an arithmetic expression of numbers (``0.5 * math.log(45 / 29)``;
  the functions and constants of ``math`` only), evaluated without builtins;
* the setup (imports) comes from the instructor's reference notebook, not from the submission.

:func:`extract` returns the kept source and, per exercise, the cell that defines it and the first later cell
that calls its check, so the grader can tell which exercises a run that stopped early never reached.
"""
from __future__ import annotations

import ast
import math
import types  # noqa: F401  (the return annotation of safe_number)
from dataclasses import dataclass, field

import nbformat

from ..checks import Exercise
from ..notebook_setup import TAG

__all__ = ["Answer", "Extracted", "extract", "safe_number", "setup_source", "SAFE_MATH"]

SAFE_MATH = frozenset({"log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "pi", "e", "tau", "cos", "sin", "tan",
                       "atan", "atan2", "asin", "acos", "tanh", "sinh", "cosh", "erf", "erfc", "lgamma", "gamma",
                       "fabs", "pow"})
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.FloorDiv, ast.USub, ast.UAdd)


@dataclass
class Answer:
    """Where one exercise's answer is in the submission (cell indices of the whole notebook, or None)."""

    exercise: Exercise
    cell: int | None = None        # the cell that (last) defines it
    check_cell: int | None = None  # the first code cell after it that calls its check
    value_source: str = ""         # a derivation: the expression assigned to the name
    problem: str = ""              # why it cannot be graded (e.g. an answer that is not a number)


@dataclass
class Extracted:
    """The kept statements of a submission, in order, each as ``(name it defines or "", source)``, and one
    :class:`Answer` per registered exercise."""

    sources: list[tuple[str, str]] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)

    @property
    def source(self) -> str:
        """All kept statements as one block of code."""
        return "\n\n".join(src for _, src in self.sources)


def _is_safe(node: ast.AST) -> bool:
    if isinstance(node, ast.Expression):
        return _is_safe(node.body)
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool) or node.value is Ellipsis
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, _OPS) and _is_safe(node.left) and _is_safe(node.right)
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, _OPS) and _is_safe(node.operand)
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id == "math" and node.attr in SAFE_MATH
    if isinstance(node, ast.Call):
        return (_is_safe(node.func) and isinstance(node.func, ast.Attribute) and not node.keywords
                and all(_is_safe(a) for a in node.args))
    return False


def safe_number(source: str) -> "float | types.EllipsisType":
    """Evaluate ``source``, a number or an arithmetic expression of numbers and ``math`` functions; ``...`` stays
    ``...`` (not answered). Raises ValueError (with a sentence for the student) for anything else."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"`{source.strip()}` is not a valid expression") from None
    if not _is_safe(tree):
        raise ValueError(f"the answer must be a number or an arithmetic expression of numbers (math.log, math.sqrt, "
                         f"math.pi, ... allowed), worked out by hand; got `{source.strip()}`")
    value = eval(compile(tree, "<answer>", "eval"), {"__builtins__": {}, "math": math})  # noqa: S307 (checked above)
    return value if value is Ellipsis else float(value)


def setup_source(reference: nbformat.NotebookNode) -> str:
    """The instructor's setup: the first code cell of the reference notebook after its Colab setup cell (the cell
    tagged :data:`vae_course.notebook_setup.TAG` installs the package; the grader's environment has it)."""
    return next((c.source for c in reference.cells
                 if c.cell_type == "code" and TAG not in c.get("metadata", {}).get("tags", [])), "")


def _kept(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return _is_safe(ast.Expression(node.value))
    return False


def _defines(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return None


def extract(nb: nbformat.NotebookNode, exercises: tuple[Exercise, ...] | list[Exercise]) -> Extracted:
    """The kept source of ``nb`` and where each of ``exercises`` is answered (module docstring)."""
    out = Extracted(answers=[Answer(e) for e in exercises])
    by_name = {a.exercise.function: a for a in out.answers}
    kept: list[tuple[str, str]] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue  # the cell could not run either; the notebook's execution reports it
        for node in tree.body:
            name = _defines(node)
            answer = by_name.get(name) if name else None
            if answer is not None and answer.exercise.kind == "value" and isinstance(node, ast.Assign):
                answer.cell, answer.check_cell = index, None
                answer.value_source = ast.get_source_segment(cell.source, node.value) or ""
                answer.problem = "" if _is_safe(ast.Expression(node.value)) else (
                    "the answer must be a number or an arithmetic expression of numbers (math.log, math.sqrt, math.pi, "
                    f"... allowed), worked out by hand; got `{answer.value_source}`")
                continue
            if not _kept(node):
                continue
            kept.append((name if not isinstance(node, (ast.Import, ast.ImportFrom)) else "",
                         ast.get_source_segment(cell.source, node, padded=True) or ""))
            if answer is not None and answer.exercise.kind != "value":
                answer.cell, answer.check_cell = index, None
        calls = cell.source
        for answer in out.answers:
            if answer.cell is not None and answer.check_cell is None and index > answer.cell and \
                    f"{answer.exercise.check.__name__}(" in calls:
                answer.check_cell = index
    out.sources = kept
    return out
