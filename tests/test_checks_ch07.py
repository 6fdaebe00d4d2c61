"""Chapter 7 checks: solutions written independently pass, each classic mistake fails with its hint, missing or
leaking gradients fail.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import math

import pytest
import torch

from vae_course.checks import FAIL, PASS
from vae_course.checks import ch07


def activity_ok(mu):
    return ((mu - mu.mean(0)) ** 2).mean(0)


def free_bits_ok(kl_per_dim, lam):
    return torch.maximum(kl_per_dim.mean(0), torch.tensor(lam, dtype=kl_per_dim.dtype)).sum()


def warmup_ok(step, n_steps, kind):
    t = min(step / n_steps, 1.0)
    if kind == "linear":
        return t
    s = lambda u: 1 / (1 + math.exp(-10 * (u - 0.5)))  # noqa: E731
    return (s(t) - s(0)) / (s(1) - s(0))


CHECKS = [(ch07.check_unit_activity, activity_ok), (ch07.check_free_bits_kl, free_bits_ok),
          (ch07.check_warmup_beta, warmup_ok)]


@pytest.mark.parametrize("check,solution", CHECKS)
def test_a_correct_solution_passes(check, solution):
    result = check(solution)
    assert result.status == PASS, result.message


def _sig(u):
    return 1 / (1 + math.exp(-10 * (u - 0.5)))


MISTAKES = [
    (ch07.check_unit_activity, lambda mu: mu.var(1, unbiased=False), "variance over the units of each image"),
    (ch07.check_unit_activity, lambda mu: (mu**2).mean(0), "without subtracting the mean"),
    (ch07.check_unit_activity, lambda mu: mu.std(0, unbiased=False), "standard deviation"),
    (ch07.check_unit_activity, lambda mu: mu.var(0), "unbiased (N - 1)"),
    (ch07.check_free_bits_kl, lambda kl, lam: torch.clamp(kl.sum(1).mean(), min=lam),
     "applied to the summed KL instead of per dimension"),
    (ch07.check_free_bits_kl, lambda kl, lam: torch.clamp(kl.sum(1).mean(), min=lam * kl.shape[1]),
     "applied to the summed KL instead of per dimension"),
    (ch07.check_free_bits_kl, lambda kl, lam: torch.clamp(kl, min=lam).sum(1).mean(), "to each example"),
    (ch07.check_free_bits_kl, lambda kl, lam: torch.clamp(kl.mean(0), max=lam).sum(), "min instead of max"),
    (ch07.check_free_bits_kl, lambda kl, lam: torch.clamp(kl.sum(0), min=lam).sum(), "summed over the batch"),
    (ch07.check_warmup_beta, lambda s, n, k: s / n if k == "linear" else (_sig(s / n) - _sig(0)) / (_sig(1) - _sig(0)),
     "keeps growing"),
    (ch07.check_warmup_beta, lambda s, n, k: min(s / n, 1.0) if k == "linear" else _sig(min(s / n, 1.0)), "not rescaled"),
    (ch07.check_warmup_beta, lambda s, n, k: 1 - warmup_ok(s, n, k), "backwards"),
]


@pytest.mark.parametrize("check,wrong,hint", MISTAKES, ids=[m[2] for m in MISTAKES])
def test_each_classic_mistake_fails_with_its_hint(check, wrong, hint):
    result = check(wrong)
    assert result.status == FAIL
    assert hint in result.message, result.message


def test_free_bits_without_gradient_or_with_gradient_below_the_floor_fails():
    no_grad = ch07.check_free_bits_kl(lambda kl, lam: torch.tensor(float(free_bits_ok(kl, lam).detach()), dtype=kl.dtype))
    assert no_grad.status == FAIL and "gradient" in no_grad.message
    # right values, but a gradient sneaks into the dimension below the floor
    leak = lambda kl: 0.01 * (kl - kl.detach()).sum()  # noqa: E731 (zero in value, a gradient in every dimension)
    leaky = ch07.check_free_bits_kl(lambda kl, lam: free_bits_ok(kl, lam) + leak(kl))
    assert leaky.status == FAIL and "NO gradient" in leaky.message
