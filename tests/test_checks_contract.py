"""The contract every exercise check keeps, tested over the whole registry (as Pyro runs one property
test over every distribution), one set of properties per kind of exercise.

For each ``"function"`` entry of ``vae_course.checks.EXERCISES`` the check, called on the student's function:

* reports the stub that ``vae-course release`` writes as ``not_implemented``, and says what to write;
* fails, with a message and without raising, a function that raises (naming the function and the
  exception), returns None, returns a str, returns a tensor of the wrong shape, or returns NaN
  where the answer is finite; and fails something that is not a function at all;
* passes the official solution, taken from ``solutions/NN_topic.ipynb`` (``tests/_solutions.py``);

and every result carries the exercise's registered display name.

A ``"build"`` check reports the release stub as ``not_implemented`` at once, without training, and fails a
function or class that raises, returns None or a str, and something that is not callable; its official
solution, variants and broken versions train in ``tests/test_checks_builds.py``. A ``"value"`` check reports
``...`` (the release stub) and None as not answered, refuses what is not a number and NaN, passes the
official answer and fails a wrong one (each derivation's hints: ``tests/test_checks_derivations.py``).
The classic mistakes of each chapter stay in ``tests/test_checks_chNN.py``.
"""
import math
import time

import pytest
import torch

from vae_course.checks import EXERCISES, FAIL, NOT_IMPLEMENTED, PASS, CheckResult, Exercise

from _solutions import solution

FUNCTIONS = [e for e in EXERCISES if e.kind == "function"]
BUILDS = [e for e in EXERCISES if e.kind == "build"]
VALUES = [e for e in EXERCISES if e.kind == "value"]
each_exercise = pytest.mark.parametrize("exercise", FUNCTIONS, ids=lambda e: e.id)
each_build = pytest.mark.parametrize("exercise", BUILDS, ids=lambda e: e.id)
each_value = pytest.mark.parametrize("exercise", VALUES, ids=lambda e: e.id)


def _named(name: str, body):
    """``body`` under the student's function name, so the feedback can name it."""
    def fn(*args, **kwargs):
        return body(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    return fn


def _check(exercise: Exercise, fn) -> CheckResult:
    result = exercise.check(fn)
    assert isinstance(result, CheckResult)
    assert result.exercise == exercise.name
    return result


def _fails_saying(exercise: Exercise, fn, *phrases: str) -> None:
    result = _check(exercise, fn)
    assert result.status == FAIL, result
    for phrase in phrases:
        assert phrase in result.message, result.message


def _answer(exercise: Exercise, args, kwargs) -> torch.Tensor:
    """The official solution's answer on the check's input, as a tensor of the solution's dtype (float64 for a number)."""
    out = solution(exercise)(*args, **kwargs)
    return out.detach() if isinstance(out, torch.Tensor) else torch.as_tensor(out, dtype=torch.float64)


def _returns_float(exercise: Exercise) -> bool:
    """Whether the exercise documents a Python float as its result (a schedule), not a tensor."""
    return exercise.function == "warmup_beta"


@each_exercise
def test_the_release_stub_is_not_implemented_and_says_what_to_write(exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise: write `{exercise.function}`, then run the check cell below")

    result = _check(exercise, _named(exercise.function, stub))
    assert result.status == NOT_IMPLEMENTED
    assert "not implemented" in result.message and f"`{exercise.function}`" in result.message


@each_exercise
def test_a_function_that_raises_fails_naming_the_function_and_the_exception(exercise):
    _fails_saying(exercise, _named(exercise.function, lambda *a, **k: 1 / 0), f"`{exercise.function}` raised ZeroDivisionError")


@each_exercise
def test_returning_none_fails_and_mentions_none(exercise):
    _fails_saying(exercise, _named(exercise.function, lambda *a, **k: None), "returned None", "`return`")


@each_exercise
def test_returning_a_string_fails_asking_for_a_tensor(exercise):
    want = "need a Python float" if _returns_float(exercise) else "need a torch.Tensor"
    _fails_saying(exercise, _named(exercise.function, lambda *a, **k: "a string"), "returned a str", want)


@each_exercise
def test_a_wrongly_shaped_tensor_fails_naming_the_expected_shape(exercise):
    def extra_dim(*args, **kwargs):
        answer = _answer(exercise, args, kwargs)
        return torch.zeros(*answer.shape, 3, dtype=answer.dtype)

    if _returns_float(exercise):  # a tensor of any shape is refused where a float is documented
        _fails_saying(exercise, _named(exercise.function, extra_dim), "returned a tensor", "need a Python float")
    else:
        _fails_saying(exercise, _named(exercise.function, extra_dim), "returned shape", "expected shape")


@each_exercise
def test_nan_of_the_right_shape_fails_naming_nan(exercise):
    def nan(*args, **kwargs):
        return math.nan if _returns_float(exercise) else torch.full_like(_answer(exercise, args, kwargs), math.nan)

    _fails_saying(exercise, _named(exercise.function, nan), "NaN")


@each_exercise
def test_something_that_is_not_a_function_fails(exercise):
    _fails_saying(exercise, 3, "expected a function")


@each_exercise
def test_the_official_solution_passes(exercise):
    result = _check(exercise, solution(exercise))
    assert result.status == PASS, result.message


def test_every_kind_is_present_and_chapters_2_to_8_have_a_build_and_every_chapter_a_derivation():
    assert sorted({e.chapter for e in BUILDS}) == list(range(2, 9))
    assert sorted(e.chapter for e in VALUES) == list(range(11))


# ---------------------------------------------------------------- build tasks: the fast part of the contract
@each_build
def test_a_build_stub_is_not_implemented_at_once_without_training(exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise: write `{exercise.function}`, then run the check cell below")

    start = time.process_time()
    result = _check(exercise, _named(exercise.function, stub))
    assert result.status == NOT_IMPLEMENTED and "nothing was trained" in result.message
    assert f"`{exercise.function}`" in result.message
    assert time.process_time() - start < 3.0, "a stub must not start the training"


@each_build
def test_a_build_that_raises_fails_naming_the_function_and_the_exception(exercise):
    _fails_saying(exercise, _named(exercise.function, lambda *a, **k: 1 / 0), f"`{exercise.function}", "ZeroDivisionError")


@each_build
def test_a_build_returning_none_or_a_string_fails(exercise):
    _fails_saying(exercise, _named(exercise.function, lambda *a, **k: None), "returned None")
    _fails_saying(exercise, _named(exercise.function, lambda *a, **k: "a string"), "returned", "str")


@each_build
def test_a_build_that_is_not_callable_fails(exercise):
    _fails_saying(exercise, 3, "expected a function")


# ---------------------------------------------------------------- derivations
@each_value
def test_an_unanswered_derivation_is_not_implemented(exercise):
    for stub in (..., None):
        result = _check(exercise, stub)
        assert result.status == NOT_IMPLEMENTED and "not answered yet" in result.message


@each_value
def test_the_official_answer_passes_and_reports_itself(exercise):
    answer = solution(exercise)
    result = _check(exercise, answer)
    assert result.status == PASS, result.message
    assert result.measured == pytest.approx(float(answer)) and result.band


@each_value
def test_a_wrong_or_non_numeric_answer_fails(exercise):
    answer = float(solution(exercise))
    for wrong in (answer * 1.5 + 1.0, math.nan, "0.5", [answer, answer]):
        assert _check(exercise, wrong).status == FAIL, wrong
