"""The contract every exercise check keeps, tested over the whole registry (as Pyro runs one property
test over every distribution).

For each entry of ``vae_course.checks.EXERCISES`` the check, called on the student's function:

* reports the stub that ``vae-course release`` writes as ``not_implemented``, and says what to write;
* fails, with a message and without raising, a function that raises (naming the function and the
  exception), returns None, returns a str, returns a tensor of the wrong shape, or returns NaN
  where the answer is finite; and fails something that is not a function at all;
* passes the official solution, taken from ``solutions/NN_topic.ipynb`` (``tests/_solutions.py``);

and every result carries the exercise's registered display name. Every check takes one student
function, so every property applies to every exercise. The classic mistakes of each chapter stay
in ``tests/test_checks_chNN.py``.
"""
import math

import pytest
import torch

from vae_course.checks import EXERCISES, FAIL, NOT_IMPLEMENTED, PASS, CheckResult, Exercise

from _solutions import solution

each_exercise = pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)


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
    """The official solution's answer on the check's input, as a float64 tensor."""
    return torch.as_tensor(solution(exercise)(*args, **kwargs), dtype=torch.float64).detach()


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
    _fails_saying(exercise, _named(exercise.function, lambda *a, **k: "a string"), "returned a str", "need a torch.Tensor")


@each_exercise
def test_a_wrongly_shaped_tensor_fails_naming_the_expected_shape(exercise):
    def extra_dim(*args, **kwargs):
        answer = _answer(exercise, args, kwargs)
        return torch.zeros(*answer.shape, 3, dtype=torch.float64)

    _fails_saying(exercise, _named(exercise.function, extra_dim), "returned shape", "expected shape")


@each_exercise
def test_nan_of_the_right_shape_fails_naming_nan(exercise):
    def nan(*args, **kwargs):
        return torch.full_like(_answer(exercise, args, kwargs), math.nan)

    _fails_saying(exercise, _named(exercise.function, nan), "NaN")


@each_exercise
def test_something_that_is_not_a_function_fails(exercise):
    _fails_saying(exercise, 3, "expected a function")


@each_exercise
def test_the_official_solution_passes(exercise):
    result = _check(exercise, solution(exercise))
    assert result.status == PASS, result.message
