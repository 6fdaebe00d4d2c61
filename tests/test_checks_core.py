"""The feedback engine: three outcomes, messages in words, never a traceback from student code; the contract
(type, dtype, inputs unchanged, gradients, references switched off), feedback that says where results differ,
random and strict cases."""
import math

import pytest
import torch

import vae_course.information as info
from vae_course.checks import (FAIL, MIME_TYPE, NOT_IMPLEMENTED, PASS, Case, Mistake, check_function, check_value,
                               set_strict, strict_seed)


def reference(x):
    return x.pow(2).sum(-1)


def flipped(x):
    return -x.pow(2).sum(-1)


CASES = [Case((torch.tensor([1.0, 2.0]),), label="x=[1, 2]"), Case((torch.tensor([[0.5, -1.0], [3.0, 0.0]]),))]
MISTAKES = [Mistake(flipped, "the sign is flipped")]


def run(fn, **kw):
    return check_function("Exercise 1 (square norm)", fn, reference, CASES, mistakes=MISTAKES, **kw)


def test_pass():
    res = run(lambda x: (x * x).sum(-1))
    assert res.status == PASS and res.passed and bool(res)
    assert "correct on all 2" in res.message


def test_not_implemented_does_not_raise():
    def stub(x):
        raise NotImplementedError("Exercise: write `stub`")

    res = run(stub)
    assert res.status == NOT_IMPLEMENTED and not res
    assert "not implemented yet" in res.message and "`stub`" in res.message


def test_wrong_value_names_input_expected_and_got():
    res = run(lambda x: x.pow(2).sum(-1) + 1)
    assert res.status == FAIL
    assert "x=[1, 2]" in res.message and "expected 5" in res.message and "got 6" in res.message
    assert "Likely mistake" not in res.message


def test_classic_mistake_recognised():
    res = run(flipped)
    assert res.status == FAIL and "Likely mistake: the sign is flipped" in res.message


def test_student_exception_becomes_feedback():
    def broken(x):
        return x.foo()

    res = run(broken)
    assert res.status == FAIL and "AttributeError" in res.message and "x=[1, 2]" in res.message


def test_none_shape_dtype_nan():
    assert "forget `return`" in run(lambda x: None).message
    assert "shape (2,)" in run(lambda x: x.pow(2)).message or "shape" in run(lambda x: x.pow(2)).message
    assert "dtype" in run(lambda x: x.pow(2).sum(-1).long()).message
    assert "NaN" in run(lambda x: x.pow(2).sum(-1) * float("nan")).message
    assert "torch.Tensor" in run(lambda x: "five").message


def test_student_cannot_corrupt_inputs():
    def mutating(x):
        x.mul_(0)
        return x.sum(-1)

    res = run(mutating)
    assert res.status == FAIL
    assert CASES[0].args[0].tolist() == [1.0, 2.0]


def test_extra_check_runs_after_values_match():
    res = run(lambda x: x.pow(2).sum(-1), extra=lambda fn: "gradients do not reach x")
    assert res.status == FAIL and res.message == "gradients do not reach x"


def test_numpy_and_python_float_outputs_are_refused_where_a_tensor_is_documented():
    # they used to be accepted (converted with torch.as_tensor); they lose the gradient and, for numpy, leave torch
    cases = [Case((torch.tensor([1.0, 2.0]),))]
    number = check_function("e", lambda x: float(x.sum()), lambda x: x.sum(), cases)
    array = check_function("e", lambda x: x.numpy() * 2, lambda x: x * 2, cases)
    assert number.status == FAIL and "returned a float" in number.message and ".item()" in number.message
    assert array.status == FAIL and "numpy array" in array.message
    assert check_function("e", lambda x: x.sum(), lambda x: x.sum(), cases).status == PASS


def test_a_python_float_is_required_where_the_exercise_returns_one():
    cases = [Case((3,))]
    assert check_function("e", lambda n: n / 2, lambda n: n / 2, cases, returns="float").status == PASS
    res = check_function("e", lambda n: torch.tensor(n / 2), lambda n: n / 2, cases, returns="float")
    assert res.status == FAIL and "need a Python float" in res.message


def test_a_larger_tensor_is_described_by_where_it_differs():
    ref = lambda x: x * 2  # noqa: E731
    x = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    res = check_function("e", lambda x: torch.where(x == 5, 0.0, x * 2), ref, [Case((x,), label="x")])
    assert res.status == FAIL and "tensor of shape" not in res.message
    assert "1 of 12 entries" in res.message and "at [1, 1] expected 10, got 0" in res.message
    assert "largest difference 10 at [1, 1]" in res.message


def test_scalars_get_enough_digits_to_differ():
    res = check_function("e", lambda x: x.sum() * (1 + 3e-4), lambda x: x.sum(), [Case((torch.tensor([0.0701]),))])
    assert res.status == FAIL
    expected, got = res.message.split("expected ")[1].split(", got ")
    assert expected.rstrip(".") != got.rstrip("."), res.message  # not "expected 0.0701, got 0.0701"


def test_an_input_changed_in_place_fails_naming_it_even_with_the_right_value():
    def in_place(mu, eps):
        return eps.mul_(2).add_(mu)  # the right value, built inside the caller's eps

    res = check_function("e", in_place, lambda mu, eps: mu + 2 * eps,
                         [Case((torch.tensor([1.0]), torch.tensor([0.5])), label="mu = [1], eps = [0.5]")])
    assert res.status == FAIL and "changed its argument `eps` in place" in res.message


def test_gradients_must_flow_where_the_check_says_and_equal_the_reference():
    ref = lambda a, b: (a * b).sum(-1)  # noqa: E731
    cases = [Case((torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0])), label="a, b")]
    assert check_function("e", lambda a, b: (a * b).sum(-1), ref, cases, grads=("a",)).status == PASS
    detached = check_function("e", lambda a, b: (a * b).sum(-1).detach(), ref, cases, grads=("a",))
    assert detached.status == FAIL and "no gradient reaches `a`" in detached.message and "torch.stack" in detached.message
    rebuilt = check_function("e", lambda a, b: torch.tensor((a * b).sum().item()), ref, cases, grads=("a",))
    assert rebuilt.status == FAIL and "torch.tensor([...])" in rebuilt.message
    wrong = check_function("e", lambda a, b: (a.detach() * b).sum(-1) + (a - a.detach()).sum(-1), ref, cases, grads=("a",))
    assert wrong.status == FAIL and "gradient with respect to `a` is wrong" in wrong.message


def test_calling_the_package_reference_is_refused_and_everything_is_restored():
    cases = [Case((torch.tensor([0.5, 0.5]),), label="p")]
    original = info.entropy
    res = check_function("e", lambda p: info.entropy(p), info.entropy, cases, forbidden=("information.entropy",))
    assert res.status == FAIL and "calls the package's own `vc.information.entropy`" in res.message
    assert info.entropy is original

    def sneaky(p):  # catches the error and falls back: still found out
        try:
            return info.entropy(p)
        except Exception:
            return -torch.xlogy(p, p).sum(-1)

    res = check_function("e", sneaky, info.entropy, cases, forbidden=("information.entropy",))
    assert res.status == FAIL and "vc.information.entropy" in res.message
    own = check_function("e", lambda p: -torch.xlogy(p, p).sum(-1), info.entropy, cases, forbidden=("information.entropy",))
    assert own.status == PASS and info.entropy is original


def test_a_reference_imported_into_the_students_namespace_is_switched_off_too():
    namespace = {"torch": torch}
    exec("from vae_course.information import entropy as h\ndef entropy(p):\n    return h(p)\n", namespace)  # noqa: S102
    res = check_function("e", namespace["entropy"], info.entropy, [Case((torch.tensor([0.5, 0.5]),))],
                         forbidden=("information.entropy",))
    assert res.status == FAIL and "calls the package's own" in res.message
    assert namespace["h"] is info.entropy


def test_random_cases_are_drawn_and_strict_mode_adds_cases_from_its_own_seed():
    drawn = []

    def random_cases(gen, n):
        out = [Case((torch.randn(3, generator=gen, dtype=torch.float64),)) for _ in range(n)]
        drawn.append([c.args[0].tolist() for c in out])
        return out

    def run():
        return check_function("Exercise 9 (x)", lambda x: x.pow(2).sum(-1), reference, CASES, random_cases=random_cases)

    assert run().message == "correct on all 4 test inputs." and strict_seed() is None
    try:
        set_strict(12345)
        assert run().message == "correct on all 12 test inputs."
        set_strict(999)
        run()
    finally:
        set_strict(None)
    assert drawn[0] == drawn[1] == drawn[3]  # the student's random cases are the same in every run
    assert drawn[2] != drawn[4]  # the strict ones depend on the instructor's seed
    with pytest.raises(TypeError, match="seed"):
        set_strict("12")


def test_an_exact_dtype_is_enforced_where_the_exercise_documents_one():
    ref = lambda k: torch.ones(k, k)  # noqa: E731
    res = check_function("e", lambda k: torch.ones(k, k, dtype=torch.float64), ref, [Case((3,))], dtype=torch.float32)
    assert res.status == FAIL and "dtype torch.float64; need torch.float32" in res.message
    assert check_function("e", lambda k: torch.ones(k, k), ref, [Case((3,))], dtype=torch.float32).status == PASS


def test_an_error_in_a_further_test_is_worded_without_attribute_errors():
    # the free-bits message "no .item()" used to end in "raised AttributeError ... in a further test"
    def extra(fn):
        from vae_course.checks import call_student
        out = call_student(fn, (torch.tensor([1.0]),))
        return None if out.requires_grad else "no gradient"

    res = check_function("e", lambda x: x.sum(), lambda x: x.sum(), [Case((torch.tensor([1.0]),))],
                         extra=lambda fn: extra(lambda x: x.sum().item()))
    assert res.status == FAIL and "AttributeError" not in res.message and "returned a float" in res.message


def test_display_bundle_carries_machine_readable_outcome():
    bundle = run(flipped)._repr_mimebundle_()
    assert bundle[MIME_TYPE]["status"] == FAIL
    assert bundle["text/plain"].startswith("❌ Exercise 1 (square norm)")
    assert "<b>Exercise 1 (square norm)</b>" in bundle["text/html"]


def test_check_value():
    assert check_value("q", 2.0, 2.0).status == PASS
    assert check_value("q", ..., 2.0).status == NOT_IMPLEMENTED
    res = check_value("q", 4.0, 2.0, hints={"you squared it": 4.0})
    assert res.status == FAIL and "you squared it" in res.message
    assert check_value("q", "abc", 2.0).status == FAIL


def test_check_value_reports_the_answer_and_the_band_and_refuses_non_numbers():
    res = check_value("q", 2.0004, 2.0, rtol=1e-3, unit="nats")
    assert res.status == PASS and res.measured == pytest.approx(2.0004) and res.band == "2 nats ± 0.1%"
    assert res._repr_mimebundle_()[MIME_TYPE]["measured"] == pytest.approx(2.0004)
    assert check_value("q", True, 1.0).status == FAIL
    assert check_value("q", math.nan, 1.0).status == FAIL
    assert check_value("q", None, 1.0).status == NOT_IMPLEMENTED
    assert "2.0004" in check_value("q", 2.0004, 2.0, rtol=1e-6).message
