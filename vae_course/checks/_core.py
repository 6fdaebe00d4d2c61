"""The feedback engine behind every exercise check cell.

A check calls the student's function on a set of inputs, compares each answer with the reference
implementation in ``vae_course`` and returns a :class:`CheckResult` with one of three outcomes:

* ``not_implemented``: the function still raises ``NotImplementedError`` (the generated stub).
  The result is shown, nothing is raised, so an unsolved notebook runs from top to bottom.
* ``fail``: the answer is wrong. The message names the input, says where the result differs from the
  expected one (the first differing entries and the largest difference, with enough digits to see it) and,
  when the answer matches a known classic mistake, which one. A function that raises, returns the wrong type,
  shape or dtype, returns NaN, changes its inputs in place, cuts the gradient where one must flow, or calls the
  package's own answer also gets a ``fail`` with a message, never a traceback.
* ``pass``: correct on every input.

The contract :func:`check_function` enforces, besides the values: the result's type (a ``torch.Tensor``, or a
Python float where the exercise says so; a numpy array is refused), its dtype, inputs left unchanged, gradients
that reach the arguments named in ``grads`` and equal the reference's, and the package's reference
implementations named in ``forbidden`` switched off while the student's code runs (:mod:`._guard`). The
expectations are computed from private copies of the inputs, so a student function that overwrites its
arguments cannot change what it is compared with. Besides the fixed cases, ``random_cases`` draws inputs at
random within the documented domain; under :func:`set_strict` (``vae-course grade --strict``) more are drawn
from a seed that is not in the student's copy of the checks.

A result displays itself in a notebook (plain text, coloured HTML, and a JSON record under the MIME
type :data:`MIME_TYPE`), so a check cell ends with the check call. The grader does not read these records: it
runs the checks again itself (:mod:`vae_course.grade`).
"""
from __future__ import annotations

import copy
import html
import inspect
import numbers
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from ._feedback import difference, index_text, scalar_pair, short
from ._guard import ReferenceUsed, Unavailable, guarded

__all__ = ["Case", "Mistake", "CheckResult", "check_function", "check_value", "call_student", "StudentError",
           "set_strict", "strict_seed", "MIME_TYPE", "PASS", "FAIL", "NOT_IMPLEMENTED", "GRAPH_CUT"]

MIME_TYPE = "application/vnd.vae-course.check+json"
PASS, FAIL, NOT_IMPLEMENTED = "pass", "fail", "not_implemented"
_ICON = {PASS: "✅", FAIL: "❌", NOT_IMPLEMENTED: "⏳"}
_COLOUR = {PASS: "#1a7f37", FAIL: "#cf222e", NOT_IMPLEMENTED: "#9a6700"}
N_RANDOM, N_RANDOM_STRICT = 2, 8  # random cases drawn per check, and the extra ones under --strict
GRAPH_CUT = ("something cut the graph between them: .detach(), .item() or float(), numpy, torch.no_grad(), or "
             "torch.tensor([...]) of tensors (which copies their values without their history; use torch.stack "
             "or torch.cat)")

_STRICT: int | None = None


def set_strict(seed: int | None) -> None:
    """Strict grading: every check with ``random_cases`` also draws ``N_RANDOM_STRICT`` cases from ``seed``
    (chosen by the instructor, so not in the student's copy); ``None`` turns it off."""
    global _STRICT
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"seed: got {type(seed).__name__}; need an int or None")
    _STRICT = seed


def strict_seed() -> int | None:
    """The seed of strict grading, or None."""
    return _STRICT


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
        parts = [short(a) for a in self.args] + [f"{k}={short(v)}" for k, v in self.kwargs.items()]
        return ", ".join(parts)


@dataclass
class Mistake:
    """A classic wrong implementation (same signature as the reference) and the ``hint`` shown
    when the student's answers match it on every input."""

    fn: Callable[..., Any]
    hint: str


@dataclass
class CheckResult:
    """Outcome of one check: ``exercise`` names it, ``status`` is pass / fail / not_implemented.

    A build task also reports the number it measured and the band it had to reach (``measured``, ``band``); a
    derivation reports the student's answer as ``measured``."""

    exercise: str
    status: str
    message: str
    measured: float | None = None
    band: str = ""

    def __bool__(self) -> bool:
        return self.status == PASS

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __str__(self) -> str:
        return f"{_ICON[self.status]} {self.exercise}: {self.message}"

    __repr__ = __str__

    def record(self) -> dict:
        """The JSON record (exercise, status, message, measured, band)."""
        return {"exercise": self.exercise, "status": self.status, "message": self.message,
                "measured": self.measured, "band": self.band}

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        body = html.escape(self.message).replace("\n", "<br>")
        return {
            "text/plain": str(self),
            "text/html": (
                f'<div style="border-left:4px solid {_COLOUR[self.status]};padding:4px 10px">'
                f"{_ICON[self.status]} <b>{html.escape(self.exercise)}</b>: {body}</div>"
            ),
            MIME_TYPE: self.record(),
        }


class StudentError(Exception):
    """A problem with the student's code, already worded for the student (``message``)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


_StudentError = StudentError  # the old private name


def _clone(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().clone()
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _same(a: Any, b: Any) -> bool:
    """Whether the student's copy ``b`` of the input ``a`` is unchanged (NaN equal to NaN)."""
    if isinstance(a, Tensor):
        if not isinstance(b, Tensor) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point():
            return bool(torch.equal(torch.isnan(a), torch.isnan(b))) and bool(torch.equal(a.nan_to_num(), b.nan_to_num()))
        return bool(torch.equal(a, b))
    return True


def _arg_names(fn: Callable, case: Case) -> list[str]:
    try:
        bound = inspect.signature(fn).bind(*case.args, **case.kwargs)
        return list(bound.arguments)[: len(case.args)] + list(case.kwargs)
    except (TypeError, ValueError):
        return [f"argument {i + 1}" for i in range(len(case.args))] + list(case.kwargs)


def _where(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    return f" (line {frames[-1].lineno}: `{frames[-1].line}`)" if len(frames) > 1 and frames[-1].line else ""


def reference_used_message(name: str, used: str) -> str:
    return (f"`{name}` calls the package's own `{used}`, the answer this exercise asks you to write. The check runs "
            "your function with the package's version switched off: write it with torch operations.")


def call_student(fn: Callable, args: tuple = (), kwargs: dict | None = None, *, name: str | None = None,
                 describe: str = "", returns: str = "tensor") -> Any:
    """Call the student's ``fn`` and enforce the result's type; problems become :class:`StudentError`.

    ``returns``: ``"tensor"`` (a ``torch.Tensor``), ``"float"`` (a Python number) or ``"any"``.
    ``NotImplementedError`` passes through (the check reports "not implemented")."""
    kwargs = kwargs or {}
    name = name or getattr(fn, "__name__", "your function")
    on = f" on input {describe}" if describe else ""
    Unavailable.used.clear()
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except ReferenceUsed as err:
        raise StudentError(reference_used_message(name, err.name)) from None
    except StudentError:
        raise
    except Exception as err:  # the student's code: report it, do not crash the notebook
        raise StudentError(f"`{name}` raised {type(err).__name__}: {err}{_where(err)}{on}.") from None
    if Unavailable.used:
        raise StudentError(reference_used_message(name, sorted(Unavailable.used)[0]))
    if out is None:
        raise StudentError(f"`{name}` returned None{on}; did you forget `return`?")
    if returns == "tensor" and not isinstance(out, Tensor):
        raise StudentError(f"`{name}` returned {_kind(out)}{on}; need a torch.Tensor. {_why_tensor(out)}".rstrip())
    if returns == "float" and (isinstance(out, bool) or not isinstance(out, numbers.Real)):
        raise StudentError(f"`{name}` returned {_kind(out)}{on}; need a Python float"
                           + (" (float(...) or .item() turns a 0-dim tensor into one)." if isinstance(out, Tensor) else "."))
    return out


def _kind(out: Any) -> str:
    if isinstance(out, Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, np.ndarray):
        return f"a numpy array of shape {out.shape}"
    if isinstance(out, np.generic):
        return f"a numpy {type(out).__name__}"
    return f"a {type(out).__name__}"


def _why_tensor(out: Any) -> str:
    if isinstance(out, (np.ndarray, np.generic)):
        return "Numpy (.numpy(), np.* functions) leaves PyTorch: the result loses its gradient. Use torch operations."
    if isinstance(out, numbers.Number):
        return "A Python number (.item(), float(), math.* on a tensor) loses the gradient and the batch: keep a tensor."
    return ""


def _dtype_problem(out: Tensor, ref: Tensor, dtype: Any) -> str | None:
    if isinstance(dtype, torch.dtype):
        if out.dtype != dtype:
            return (f"dtype {out.dtype}; need {dtype} (a tensor made with dtype=torch.float64, torch.tensor of Python "
                    f"floats with another default, or numpy changes it)")
        return None
    if ref.is_floating_point() and not out.is_floating_point():
        return f"dtype {out.dtype}; need a floating dtype ({ref.dtype})"
    return None


def _compare(out: Tensor, ref: Tensor, case: Case, name: str, rtol: float, atol: float, dtype: Any = None) -> str | None:
    """None if ``out`` matches ``ref``, else a sentence saying how it differs."""
    ref = ref.detach()
    on = f"on input {case.describe()}"
    if tuple(out.shape) != tuple(ref.shape):
        return f"`{name}` returned shape {tuple(out.shape)} {on}; expected shape {tuple(ref.shape)}."
    wrong = _dtype_problem(out, ref, dtype)
    if wrong:
        return f"`{name}` returned {wrong}, {on}."
    o = out.detach().to("cpu", torch.float64)
    r = ref.to("cpu", torch.float64)
    bad = ~torch.isfinite(o) & torch.isfinite(r)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0].tolist())
        where = f" at {index_text(first)} ({int(bad.sum())} of {o.numel()} entries)" if o.dim() else ""
        return (f"`{name}` returned NaN or inf{where} {on}, where the answer is finite ({short(r)}). "
                "Look for log(0), 0/0 or exp overflow.")
    if not torch.allclose(o, r, rtol=rtol, atol=atol, equal_nan=True):
        return f"wrong value {on}: {difference(o, r, rtol=rtol, atol=atol)}."
    return None


def _seed_for(exercise: str) -> int:
    return zlib.crc32(exercise.encode())


def _all_cases(exercise: str, cases: Sequence[Case], random_cases: Callable | None) -> list[Case]:
    out = list(cases)
    if random_cases is not None:
        out += random_cases(torch.Generator().manual_seed(_seed_for(exercise)), N_RANDOM)
        if _STRICT is not None:
            out += random_cases(torch.Generator().manual_seed(_STRICT * 1_000_003 + _seed_for(exercise)), N_RANDOM_STRICT)
    return out


def _gradients(name: str, student: Callable, reference: Callable, cases: Sequence[Case], grads: Sequence[str],
               rtol: float, atol: float) -> str | None:
    """Gradients of a fixed random weighting of the output with respect to the arguments ``grads`` must exist and
    equal the reference's; every tensor used for the expectation is a private copy."""
    for case in cases:
        names = _arg_names(reference, case)
        picks = [i for i, n in enumerate(names) if n in grads and i < len(case.args)
                 and isinstance(case.args[i], Tensor) and case.args[i].is_floating_point()]
        if not picks:
            continue
        mine = [_clone(a) for a in case.args]
        theirs = [_clone(a) for a in case.args]
        for i in picks:
            mine[i].requires_grad_(True)
            theirs[i].requires_grad_(True)
        out = call_student(student, tuple(mine), {k: _clone(v) for k, v in case.kwargs.items()}, name=name,
                           describe=case.describe())
        ref = reference(*theirs, **{k: _clone(v) for k, v in case.kwargs.items()})
        w = torch.randn(ref.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(ref.dtype)
        wanted = torch.autograd.grad((ref * w).sum(), [theirs[i] for i in picks], allow_unused=True, materialize_grads=True)
        label = ", ".join(f"`{names[i]}`" for i in picks)
        if not out.requires_grad:
            return (f"the values are right, but no gradient reaches {label} on input {case.describe()}: your result is "
                    f"not connected to its inputs; {GRAPH_CUT}.")
        got = torch.autograd.grad((out * w.to(out.dtype)).sum(), [mine[i] for i in picks], allow_unused=True,
                                  materialize_grads=True)
        for i, g, want in zip(picks, got, wanted):
            if not bool(g.abs().gt(0).any()) and bool(want.abs().gt(0).any()):
                return (f"the values are right, but no gradient reaches `{names[i]}` on input {case.describe()}; "
                        f"{GRAPH_CUT}.")
            if not torch.allclose(g.double(), want.double(), rtol=max(rtol, 1e-4), atol=max(atol, 1e-6)):
                return (f"the values are right, but the gradient with respect to `{names[i]}` is wrong on input "
                        f"{case.describe()}: {difference(g, want, rtol=max(rtol, 1e-4), atol=max(atol, 1e-6))}. "
                        "A value computed on the side and put back (e.g. through .detach() or .data) changes the "
                        "gradient without changing the value.")
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
    random_cases: Callable[[torch.Generator, int], list[Case]] | None = None,
    returns: str = "tensor",
    dtype: torch.dtype | None = None,
    grads: Sequence[str] = (),
    forbidden: Sequence[str] = (),
) -> CheckResult:
    """Compare ``student_fn`` with ``reference_fn`` on ``cases`` and enforce the contract (module docstring).

    Args:
        exercise: the name shown to the student, e.g. ``"Exercise 1 (entropy)"``.
        student_fn, reference_fn: functions with the same signature, returning tensors.
        cases: the inputs; each case's label is how the input is described in feedback.
        mistakes: classic wrong implementations; if the student's answers equal one of them on
            every case, its hint is added to the message.
        rtol, atol: tolerance of the comparison (``torch.allclose`` in float64).
        extra: an optional further test run after all values match (e.g. "gradients flow back to
            mu"); it gets the student function and returns None or the sentence to report.
        random_cases: ``(generator, n) -> n cases`` drawn within the documented domain; ``N_RANDOM`` are added
            with a fixed seed, and ``N_RANDOM_STRICT`` more under :func:`set_strict`.
        returns: ``"tensor"`` or ``"float"`` (a Python number, for a schedule).
        dtype: the exact dtype the result must have (e.g. float32 for a convolution's mask); None: any floating
            dtype where the reference is floating (the comparison's tolerance catches a precision too low).
        grads: argument names (of ``reference_fn``) through which the gradient must flow and match the reference's.
        forbidden: reference implementations (``"information.entropy"``, under ``vae_course``) switched off while
            the student's code runs.
    """
    name = getattr(student_fn, "__name__", "your function")
    if not callable(student_fn):
        return CheckResult(exercise, FAIL, f"expected a function, got {type(student_fn).__name__}.")
    student = guarded(student_fn, forbidden)
    cases = _all_cases(exercise, cases, random_cases)
    outputs: list[Any] = []
    problem: str | None = None
    try:
        for case in cases:
            private = [_clone(a) for a in case.args]
            given = tuple(_clone(a) for a in case.args)
            out = call_student(student, given, {k: _clone(v) for k, v in case.kwargs.items()}, name=name,
                               describe=case.describe(), returns=returns)
            changed = [n for n, a, b in zip(_arg_names(student_fn, case), private, given) if not _same(a, b)]
            if changed:
                raise StudentError(
                    f"`{name}` changed its argument `{changed[0]}` in place on input {case.describe()} (an in-place "
                    f"operation such as {changed[0]}.mul_(...), {changed[0]} += ..., or {changed[0]}[...] = ...). "
                    "Compute a new tensor instead: the caller still needs its input.")
            if returns == "float":
                out = torch.tensor(float(out), dtype=torch.float64)
            outputs.append(out)
            if problem is None:
                ref = reference_fn(*(_clone(a) for a in private), **{k: _clone(v) for k, v in case.kwargs.items()})
                ref = torch.tensor(float(ref), dtype=torch.float64) if returns == "float" else torch.as_tensor(ref)
                problem = _compare(out, ref, case, name, rtol, atol, dtype)
        if problem is not None:
            for mistake in mistakes:
                if _matches(mistake.fn, cases, outputs, rtol, atol):
                    return CheckResult(exercise, FAIL, f"{problem}\nLikely mistake: {mistake.hint}")
            return CheckResult(exercise, FAIL, problem)
        note = _extra(extra, student, name) if extra is not None else None  # the exercise's own, worded test first
        if note is None and grads:
            note = _gradients(name, student, reference_fn, cases, grads, rtol, atol)
    except NotImplementedError:
        return CheckResult(
            exercise, NOT_IMPLEMENTED,
            f"not implemented yet: replace `raise NotImplementedError` in `{name}` with your code, run that cell, then this one.",
        )
    except StudentError as err:
        return CheckResult(exercise, FAIL, err.message)
    if note:
        return CheckResult(exercise, FAIL, note)
    return CheckResult(exercise, PASS, f"correct on all {len(cases)} test inputs.")


def _extra(extra: Callable, student: Callable, name: str) -> str | None:
    """Run a further test; its calls to the student go through :func:`call_student` (worded errors)."""
    try:
        return extra(student)
    except (NotImplementedError, StudentError):
        raise
    except ReferenceUsed as err:
        return reference_used_message(name, err.name)
    except Exception as err:
        return f"`{name}` raised {type(err).__name__}: {err}{_where(err)} in a further test."


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
                hints: dict[str, float] | None = None, what: str = "your answer", unit: str = "") -> CheckResult:
    """Check a number the student computed (``value``); ``...`` or None means not answered yet.

    ``hints`` maps a sentence to the wrong value a classic mistake produces. The result's ``measured`` is the
    student's number and ``band`` the accepted range, for the grader's CSV.
    """
    exp = torch.as_tensor(expected, dtype=torch.float64)
    band = f"{short(exp, 6)}{' ' + unit if unit else ''} ± {100 * rtol:g}%" if exp.numel() == 1 else ""
    if value is None or value is Ellipsis:
        return CheckResult(exercise, NOT_IMPLEMENTED, f"not answered yet: set {what} and run this cell again.", band=band)
    if isinstance(value, (str, bytes, bool)) or not isinstance(value, (numbers.Real, Tensor, list, tuple, np.ndarray)):
        return CheckResult(exercise, FAIL, f"{what} should be a number; got {type(value).__name__}.", band=band)
    try:
        got = torch.as_tensor(value, dtype=torch.float64).detach()
    except Exception:
        return CheckResult(exercise, FAIL, f"{what} should be a number; got {type(value).__name__}.", band=band)
    measured = float(got) if got.numel() == 1 else None
    if got.shape != exp.shape:
        return CheckResult(exercise, FAIL, f"{what} has shape {tuple(got.shape)}; expected shape {tuple(exp.shape)}.",
                           measured, band)
    if not bool(torch.isfinite(got).all()):
        return CheckResult(exercise, FAIL, f"{what} is {short(got)}; it must be a finite number.", measured, band)
    if torch.allclose(got, exp, rtol=rtol, atol=atol):
        return CheckResult(exercise, PASS, f"correct ({short(got, 6)}).", measured, band)
    shown = scalar_pair(float(exp), float(got))[1] if got.numel() == 1 else short(got, 6)
    for hint, wrong in (hints or {}).items():
        if torch.allclose(got, torch.as_tensor(wrong, dtype=torch.float64), rtol=rtol, atol=atol):
            return CheckResult(exercise, FAIL, f"{what} is {shown}, not the expected value. Likely mistake: {hint}",
                               measured, band)
    return CheckResult(exercise, FAIL, f"{what} is {shown}; that is not right (tolerance {rtol:g} relative).",
                       measured, band)

