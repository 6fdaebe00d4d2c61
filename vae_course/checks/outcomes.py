"""Build tasks: the student writes part of a model or of a training procedure, the check trains it and judges the
**outcome** against a stated band, and says what went wrong when it misses.

A build check runs in three stages (:func:`run_build`):

1. **probe** (no training, well under a second): the student's piece is called on a few small inputs and its
   results are checked for type, shape and finiteness. The generated stub raises ``NotImplementedError`` here,
   so an unsolved notebook reports "not implemented" at once instead of training for a minute.
2. **train**: with the package's engine (:func:`vae_course.train.fit`, or the chapter's own fitting function), a
   fixed seed and a time of at most about 60 s on a laptop CPU (a few seconds for most tasks).
3. **judge**: one number is measured (a held-out bound, a gap, a variance ratio, a perplexity), compared with its
   :class:`Band`, and diagnosed: a KL near 0 is a collapse ("your model ignores z"), NaN is a variance that
   reached 0 or a log of 0, a bound outside the band is broken down into its terms and compared with the
   reference run of the package's own implementation.

The student's code runs with the package's own answer switched off (:mod:`._guard`), and its errors, wherever
they happen (while probing or at step 312 of training), become a message, never a traceback. The result is a
:class:`~vae_course.checks.CheckResult` whose ``measured`` and ``band`` the grader writes to its CSV.
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from ._core import FAIL, GRAPH_CUT, NOT_IMPLEMENTED, PASS, CheckResult, StudentError
from ._guard import ReferenceUsed
from ._feedback import scalar_pair

__all__ = ["Band", "Outcome", "run_build", "quietly", "student_step", "NAN_HINT", "COLLAPSE_KL", "fmt", "scalar_loss"]

NAN_HINT = ("training produced NaN or inf: a variance reached 0 (a log-variance of -inf, or a division by a "
            "variance without a floor), or a log of 0 (log of a probability that underflowed; work with logits "
            "and logsumexp).")
COLLAPSE_KL = 0.1  # nats: a total KL below this means the latent carries (almost) no information


def fmt(x: float, digits: int = 4) -> str:
    """A number for a message: ``digits`` significant digits, NaN and inf spelled out."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NaN"
    return f"{x:.{digits}g}"


@dataclass(frozen=True)
class Band:
    """The accepted range ``[lo, hi]`` of the measured number (either end may be infinite), with its unit."""

    lo: float = -math.inf
    hi: float = math.inf
    unit: str = ""

    def __contains__(self, x: float) -> bool:
        return x is not None and math.isfinite(x) and self.lo <= x <= self.hi

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if math.isinf(self.lo) and math.isinf(self.hi):
            return "any finite value"
        if math.isinf(self.lo):
            return f"<= {fmt(self.hi)}{unit}"
        if math.isinf(self.hi):
            return f">= {fmt(self.lo)}{unit}"
        return f"[{fmt(self.lo)}, {fmt(self.hi)}]{unit}"

    def miss(self, x: float) -> str:
        """How far ``x`` is outside the band, in words."""
        if x is None or not math.isfinite(x):
            return f"the measured value is {fmt(x)}"
        if x < self.lo:
            a, b = scalar_pair(self.lo, x)
            return f"{b} is {fmt(self.lo - x, 3)} below the lower end {a}"
        a, b = scalar_pair(self.hi, x)
        return f"{b} is {fmt(x - self.hi, 3)} above the upper end {a}"


@dataclass
class Outcome:
    """What the judge found: the ``measured`` number, its ``band``, a sentence ``summary`` of the run, and a
    ``diagnosis`` (why it missed; shown only on a fail). ``problem`` fails the task even inside the band (a second
    condition, e.g. too few active units)."""

    measured: float
    band: Band
    summary: str
    diagnosis: str = ""
    problem: str = ""

    @property
    def passed(self) -> bool:
        return self.measured in self.band and not self.problem


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """No warnings from the engine in the student's notebook (the check words them itself)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def student_step(fn: Callable, *args, what: str, **kwargs) -> Any:
    """Call a piece of the student's code during training; its exceptions become a :class:`StudentError` that
    says where (``what``, e.g. ``"TinyVAE.loss at training step 12"``)."""
    try:
        return fn(*args, **kwargs)
    except (NotImplementedError, StudentError):
        raise
    except ReferenceUsed as err:
        raise StudentError(f"{what} calls the package's own `{err.name}`, which this task asks you to write; "
                           "it is switched off while the check runs.") from None
    except Exception as err:
        raise StudentError(f"{what} raised {type(err).__name__}: {err}.") from None


def run_build(exercise: str, student: Any, *, probe: Callable[[Any], Any], train: Callable[[Any], Any],
              judge: Callable[[Any], Outcome], name: str | None = None) -> CheckResult:
    """Probe, train and judge ``student`` (module docstring); every outcome is a :class:`CheckResult`."""
    name = name or getattr(student, "__name__", "your code")
    if not callable(student):
        return CheckResult(exercise, FAIL, f"expected a function or a class, got {type(student).__name__}.")
    start = time.perf_counter()
    try:
        with quietly():
            state = probe(student)
            trained = train(state)
            outcome = judge(trained)
    except NotImplementedError:
        return CheckResult(exercise, NOT_IMPLEMENTED,
                           f"not implemented yet: replace `raise NotImplementedError` in `{name}` with your code, run "
                           "that cell, then this one (nothing was trained).")
    except StudentError as err:
        return CheckResult(exercise, FAIL, err.message)
    seconds = time.perf_counter() - start
    measured = outcome.measured if outcome.measured is not None and math.isfinite(outcome.measured) else None
    if outcome.passed:
        return CheckResult(exercise, PASS, f"{outcome.summary}: inside the band {outcome.band} "
                                           f"(probe, training and evaluation took {seconds:.0f} s).",
                           measured, str(outcome.band))
    why = outcome.problem or f"outside the band {outcome.band}: {outcome.band.miss(outcome.measured)}"
    message = f"{outcome.summary}; {why}." + (f"\n{outcome.diagnosis}" if outcome.diagnosis else "")
    return CheckResult(exercise, FAIL, message, measured, str(outcome.band))


def finite(x: Any) -> bool:
    """Whether ``x`` (a number or a tensor) is finite everywhere."""
    if isinstance(x, torch.Tensor):
        return bool(torch.isfinite(x).all())
    return isinstance(x, (int, float)) and math.isfinite(x)


def scalar_loss(out, name: str) -> torch.Tensor:
    """A build task's loss function's result checked: a one-element tensor that carries a gradient, as a 0-dim one."""
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise StudentError(f"`{name}` returned {got}; need a scalar tensor (the batch's loss).")
    if torch.is_grad_enabled() and not out.requires_grad:
        raise StudentError(f"`{name}` returned a loss without a gradient; {GRAPH_CUT}.")
    return out.reshape(())
