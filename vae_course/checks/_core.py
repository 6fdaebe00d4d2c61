"""The feedback engine behind every exercise check cell.

A check calls the student's function on a set of inputs, compares each answer with the reference
implementation in ``vae_course`` and returns a :class:`CheckResult` with one of three outcomes:

* ``not_implemented``: the function still raises ``NotImplementedError`` (the generated stub).
  The result is shown, nothing is raised, so an unsolved notebook runs from top to bottom.
* ``fail``: the answer is wrong. The message names the input, the expected and the received value
  and, when the answer matches a known classic mistake (a flipped sign, a variance passed where a
  standard deviation belongs), says which one. A function that raises, returns the wrong shape or
  dtype, or returns NaN also gets a ``fail`` with a message, never a traceback.
* ``pass``: correct on every input.

A result displays itself in a notebook (plain text, coloured HTML, and a JSON record under the MIME
type :data:`MIME_TYPE` that the grader reads), so a check cell ends with the check call.
"""
from __future__ import annotations

import copy
import html
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["Case", "Mistake", "CheckResult", "check_function", "check_value", "MIME_TYPE", "PASS", "FAIL", "NOT_IMPLEMENTED"]

MIME_TYPE = "application/vnd.vae-course.check+json"
PASS, FAIL, NOT_IMPLEMENTED = "pass", "fail", "not_implemented"
_ICON = {PASS: "✅", FAIL: "❌", NOT_IMPLEMENTED: "⏳"}
_COLOUR = {PASS: "#1a7f37", FAIL: "#cf222e", NOT_IMPLEMENTED: "#9a6700"}


@dataclass
class Case:
    """One input to a student function: positional ``args``, keyword ``kwargs`` and a ``label``
    that describes the input to the student in words (e.g. ``"mu=0, logvar=1"``)."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def describe(self) -> str:
        if self.label:
            return self.label
        parts = [_short(a) for a in self.args] + [f"{k}={_short(v)}" for k, v in self.kwargs.items()]
        return ", ".join(parts)


@dataclass
class Mistake:
    """A classic wrong implementation (same signature as the reference) and the ``hint`` shown
    when the student's answers match it on every input."""

    fn: Callable[..., Any]
    hint: str


@dataclass
class CheckResult:
    """Outcome of one check: ``exercise`` names it, ``status`` is pass / fail / not_implemented."""

    exercise: str
    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == PASS

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __str__(self) -> str:
        return f"{_ICON[self.status]} {self.exercise}: {self.message}"

    __repr__ = __str__

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        body = html.escape(self.message).replace("\n", "<br>")
        return {
            "text/plain": str(self),
            "text/html": (
                f'<div style="border-left:4px solid {_COLOUR[self.status]};padding:4px 10px">'
                f"{_ICON[self.status]} <b>{html.escape(self.exercise)}</b>: {body}</div>"
            ),
            MIME_TYPE: {"exercise": self.exercise, "status": self.status, "message": self.message},
        }


class _StudentError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _short(value: Any, digits: int = 4) -> str:
    """A compact, readable rendering of an input or output for feedback messages."""
    if isinstance(value, Tensor):
        v = value.detach().cpu()
        if v.numel() == 1:
            return f"{v.item():.{digits}g}"
        if v.numel() <= 6:
            return np.array2string(v.numpy(), precision=digits, separator=", ", suppress_small=True).replace("\n", "")
        return f"tensor of shape {tuple(v.shape)}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if callable(value):
        return getattr(value, "__name__", "a function")
    return repr(value)


def _clone(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().clone()
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _call_student(fn: Callable, case: Case, name: str) -> Tensor:
    args = tuple(_clone(a) for a in case.args)
    kwargs = {k: _clone(v) for k, v in case.kwargs.items()}
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as err:  # the student's code: report it, do not crash the notebook
        frames = traceback.extract_tb(err.__traceback__)
        where = f" (line {frames[-1].lineno}: `{frames[-1].line}`)" if len(frames) > 1 and frames[-1].line else ""
        raise _StudentError(f"`{name}` raised {type(err).__name__}: {err}{where} on input {case.describe()}.") from None
    if out is None:
        raise _StudentError(f"`{name}` returned None on input {case.describe()}; did you forget `return`?")
    if isinstance(out, (float, int, np.floating, np.integer, np.ndarray)) and not isinstance(out, bool):
        out = torch.as_tensor(out)
    if not isinstance(out, Tensor):
        raise _StudentError(f"`{name}` returned a {type(out).__name__} on input {case.describe()}; need a torch.Tensor.")
    return out


def _compare(out: Tensor, ref: Tensor, case: Case, name: str, rtol: float, atol: float) -> str | None:
    """None if ``out`` matches ``ref``, else a sentence saying how it differs."""
    ref = ref.detach()
    if tuple(out.shape) != tuple(ref.shape):
        return f"`{name}` returned shape {tuple(out.shape)} on input {case.describe()}; expected shape {tuple(ref.shape)}."
    if ref.is_floating_point() and not out.is_floating_point():
        return f"`{name}` returned dtype {out.dtype} on input {case.describe()}; expected a floating dtype ({ref.dtype})."
    o = out.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(o).all()) and bool(torch.isfinite(ref).all()):
        return f"`{name}` returned NaN or inf on input {case.describe()}; expected {_short(ref)}. Look for log(0), 0/0 or exp overflow."
    if not torch.allclose(o, ref.to("cpu", torch.float64), rtol=rtol, atol=atol, equal_nan=True):
        return f"wrong value on input {case.describe()}: expected {_short(ref)}, got {_short(o)}."
    return None


def check_function(
    exercise: str,
    student_fn: Callable[..., Any],
    reference_fn: Callable[..., Any],
    cases: Sequence[Case],
    *,
    mistakes: Iterable[Mistake] = (),
    rtol: float = 1e-4,
    atol: float = 1e-5,
    extra: Callable[[Callable], str | None] | None = None,
) -> CheckResult:
    """Compare ``student_fn`` with ``reference_fn`` on ``cases``.

    Args:
        exercise: the name shown to the student, e.g. ``"Exercise 1 (entropy)"``.
        student_fn, reference_fn: functions with the same signature, returning tensors.
        cases: the inputs; each case's label is how the input is described in feedback.
        mistakes: classic wrong implementations; if the student's answers equal one of them on
            every case, its hint is added to the message.
        rtol, atol: tolerance of the comparison (``torch.allclose`` in float64).
        extra: an optional further test run after all values match (e.g. "gradients flow back to
            mu"); it gets the student function and returns None or the sentence to report.
    """
    name = getattr(student_fn, "__name__", "your function")
    if not callable(student_fn):
        return CheckResult(exercise, FAIL, f"expected a function, got {type(student_fn).__name__}.")
    outputs: list[Tensor | None] = []
    problem: str | None = None
    for case in cases:
        try:
            out = _call_student(student_fn, case, name)
        except NotImplementedError:
            return CheckResult(
                exercise, NOT_IMPLEMENTED,
                f"not implemented yet: replace `raise NotImplementedError` in `{name}` with your code, run that cell, then this one.",
            )
        except _StudentError as err:
            return CheckResult(exercise, FAIL, err.message)
        outputs.append(out)
        if problem is None:
            ref = reference_fn(*(_clone(a) for a in case.args), **{k: _clone(v) for k, v in case.kwargs.items()})
            problem = _compare(out, torch.as_tensor(ref), case, name, rtol, atol)
    if problem is not None:
        for mistake in mistakes:
            if _matches(mistake.fn, cases, outputs, rtol, atol):
                return CheckResult(exercise, FAIL, f"{problem}\nLikely mistake: {mistake.hint}")
        return CheckResult(exercise, FAIL, problem)
    if extra is not None:
        try:
            note = extra(student_fn)
        except NotImplementedError:
            note = f"`{name}` raised NotImplementedError in a further test."
        except Exception as err:
            note = f"`{name}` raised {type(err).__name__}: {err} in a further test."
        if note:
            return CheckResult(exercise, FAIL, note)
    return CheckResult(exercise, PASS, f"correct on all {len(cases)} test inputs.")


def _matches(fn: Callable, cases: Sequence[Case], outputs: Sequence[Tensor], rtol: float, atol: float) -> bool:
    for case, out in zip(cases, outputs):
        try:
            wrong = torch.as_tensor(fn(*(_clone(a) for a in case.args), **{k: _clone(v) for k, v in case.kwargs.items()}))
        except Exception:
            return False
        if wrong.shape != out.shape or not torch.allclose(
            out.detach().to("cpu", torch.float64), wrong.detach().to("cpu", torch.float64), rtol=rtol, atol=atol, equal_nan=True
        ):
            return False
    return True


def check_value(exercise: str, value: Any, expected: float | Tensor, *, rtol: float = 1e-3, atol: float = 1e-6,
                hints: dict[str, float] | None = None, what: str = "your answer") -> CheckResult:
    """Check a number the student computed (``value``); ``...`` or None means not answered yet.

    ``hints`` maps a sentence to the wrong value a classic mistake produces.
    """
    if value is None or value is Ellipsis:
        return CheckResult(exercise, NOT_IMPLEMENTED, f"not answered yet: set {what} and run this cell again.")
    try:
        got = torch.as_tensor(value, dtype=torch.float64)
    except Exception:
        return CheckResult(exercise, FAIL, f"{what} should be a number; got {type(value).__name__}.")
    exp = torch.as_tensor(expected, dtype=torch.float64)
    if got.shape != exp.shape:
        return CheckResult(exercise, FAIL, f"{what} has shape {tuple(got.shape)}; expected shape {tuple(exp.shape)}.")
    if torch.allclose(got, exp, rtol=rtol, atol=atol):
        return CheckResult(exercise, PASS, f"correct ({_short(got)}).")
    for hint, wrong in (hints or {}).items():
        if torch.allclose(got, torch.as_tensor(wrong, dtype=torch.float64), rtol=rtol, atol=atol):
            return CheckResult(exercise, FAIL, f"{what} is {_short(got)}, not the expected value. Likely mistake: {hint}")
    return CheckResult(exercise, FAIL, f"{what} is {_short(got)}; that is not right (tolerance {rtol:g} relative).")
