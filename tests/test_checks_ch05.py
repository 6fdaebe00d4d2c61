"""Chapter 5 checks: each classic mistake fails with its hint, detached samples fail the gradient test.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import math

import pytest
import torch
import torch.nn.functional as F

from vae_course.checks import FAIL
from vae_course.checks import ch05


def _bce(x, l, red="sum"):
    t = F.binary_cross_entropy_with_logits(l, x, reduction="none")
    return t.sum(-1) if red == "sum" else t.mean(-1)


def _kl(mu, lv):
    return 0.5 * (lv.exp() + mu**2 - 1 - lv).sum(-1)


MISTAKES = [
    (ch05.check_reparameterize, lambda mu, lv, eps: mu + torch.exp(lv) * eps, "exp(logvar), which is the variance"),
    (ch05.check_reparameterize, lambda mu, lv, eps: mu + lv * eps, "multiplied eps by logvar"),
    (ch05.check_reparameterize, lambda mu, lv, eps: mu + torch.exp(-0.5 * lv) * eps, "1 / sigma"),
    (ch05.check_negative_elbo, lambda x, l, mu, lv: _bce(x, l) - _kl(mu, lv), "KL has the wrong sign"),
    (ch05.check_negative_elbo, lambda x, l, mu, lv: _bce(x, l, "mean") + _kl(mu, lv), "averaged the reconstruction"),
    (ch05.check_negative_elbo, lambda x, l, mu, lv: _bce(x, l), "KL term is missing"),
    (ch05.check_negative_elbo, lambda x, l, mu, lv: _bce(x, l) + 0.5 * (lv.exp() ** 2 + mu**2 - 1 - lv).sum(-1),
     "exp(logvar) as the standard deviation"),
    (ch05.check_iwae_bound, lambda lw: lw.mean(0), "mean of logs"),
    (ch05.check_iwae_bound, lambda lw: torch.logsumexp(lw, 0), "log k is missing"),
    (ch05.check_iwae_bound, lambda lw: torch.logsumexp(lw, 0) + math.log(lw.shape[0]), "wrong sign"),
]


@pytest.mark.parametrize("check,wrong,hint", MISTAKES, ids=[m[2] for m in MISTAKES])
def test_each_classic_mistake_fails_with_its_hint(check, wrong, hint):
    result = check(wrong)
    assert result.status == FAIL
    assert hint in result.message, result.message


def test_naive_log_mean_exp_is_caught_by_the_extreme_cases():
    result = ch05.check_iwae_bound(lambda lw: lw.exp().mean(0).log())
    assert result.status == FAIL and "NaN or inf" in result.message


def test_detached_sample_fails_the_gradient_test():
    result = ch05.check_reparameterize(lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).detach())
    assert result.status == FAIL and "gradient" in result.message
