"""The feedback engine: three outcomes, messages in words, never a traceback from student code."""
import torch

from vae_course.checks import FAIL, MIME_TYPE, NOT_IMPLEMENTED, PASS, Case, Mistake, check_function, check_value


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


def test_numpy_and_float_outputs_accepted():
    res = check_function("e", lambda x: float(x.sum()), lambda x: x.sum(), [Case((torch.tensor([1.0, 2.0]),))])
    assert res.status == PASS


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
