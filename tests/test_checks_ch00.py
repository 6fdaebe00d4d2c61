"""Tests for vae_course.checks.ch00: solutions written independently pass; every classic mistake fails with its
hint; a wrong answer names its input.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import pytest
import torch
import torch.nn.functional as F

from vae_course.checks import ch00
from vae_course.checks._core import FAIL, PASS


# reference solutions written as a student would, independently of the package
def entropy(p):
    return -torch.where(p > 0, p * torch.log(p), torch.zeros_like(p)).sum(-1)


def kl_categorical(p, q):
    return torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros_like(p)).sum(-1)


def bernoulli_log_likelihood(x, logits):
    return (x * logits - F.softplus(logits)).sum(-1)


CHECKS = {
    "entropy": (ch00.check_entropy, entropy, ch00._ENTROPY_MISTAKES),
    "kl": (ch00.check_kl_categorical, kl_categorical, ch00._KL_MISTAKES),
    "bernoulli": (ch00.check_bernoulli_log_likelihood, bernoulli_log_likelihood, ch00._BERNOULLI_MISTAKES),
}


@pytest.mark.parametrize("name", CHECKS)
def test_correct_solution_passes(name):
    check, solution, _ = CHECKS[name]
    result = check(solution)
    assert result.status == PASS, result.message


@pytest.mark.parametrize("name, index", [(n, i) for n, (_, _, ms) in CHECKS.items() for i in range(len(ms))])
def test_each_classic_mistake_fails_with_its_hint(name, index):
    check, _, mistakes = CHECKS[name]
    mistake = mistakes[index]
    result = check(mistake.fn)
    assert result.status == FAIL
    assert mistake.hint in result.message, result.message


def test_named_mistakes_are_recognised():
    """The hints promised in the brief, by the mistake a student makes, written out here."""
    swapped = ch00.check_kl_categorical(lambda p, q: kl_categorical(q, p))
    assert "swapped" in swapped.message
    bits = ch00.check_entropy(lambda p: entropy(p) / torch.log(torch.tensor(2.0, dtype=p.dtype)))
    assert "bits" in bits.message
    nan = ch00.check_entropy(lambda p: -(p * torch.log(p)).sum(-1))
    assert "NaN" in nan.message and "0 log 0 = 0" in nan.message
    probs = ch00.check_bernoulli_log_likelihood(lambda x, l: bernoulli_log_likelihood(x, torch.sigmoid(l)))
    assert "sigmoid applied twice" in probs.message
    nll = ch00.check_bernoulli_log_likelihood(lambda x, l: -bernoulli_log_likelihood(x, l))
    assert "negative log-likelihood" in nll.message


def test_a_wrong_answer_says_which_input():
    result = ch00.check_entropy(lambda p: entropy(p) + 0.1)
    assert result.status == FAIL and "p = [0.5, 0.5] (a fair coin)" in result.message and "expected 0.6931" in result.message
