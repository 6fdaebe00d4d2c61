"""Chapter 5 checks: the reference passes, each classic mistake fails with its hint, stubs and crashes are handled."""
import math

import pytest
import torch
import torch.nn.functional as F

from vae_course.checks import FAIL, NOT_IMPLEMENTED, PASS
from vae_course.checks import ch05


def reparam_ok(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps


def elbo_ok(x, x_logits, mu, logvar):
    recon = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").sum(-1)
    return recon + 0.5 * (logvar.exp() + mu**2 - 1 - logvar).sum(-1)


def iwae_ok(log_w):
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


CHECKS = [(ch05.check_reparameterize, reparam_ok), (ch05.check_negative_elbo, elbo_ok), (ch05.check_iwae_bound, iwae_ok)]


@pytest.mark.parametrize("check,solution", CHECKS)
def test_a_correct_solution_passes(check, solution):
    result = check(solution)
    assert result.status == PASS, result.message


def _bce(x, l, red="sum"):
    t = F.binary_cross_entropy_with_logits(l, x, reduction="none")
    return t.sum(-1) if red == "sum" else t.mean(-1)


def _kl(mu, lv):
    return 0.5 * (lv.exp() + mu**2 - 1 - lv).sum(-1)


MISTAKES = [
    (ch05.check_reparameterize, lambda mu, lv, eps: mu + torch.exp(lv) * eps, "exp(logvar) as the standard deviation"),
    (ch05.check_reparameterize, lambda mu, lv, eps: mu + lv * eps, "multiplied eps by logvar"),
    (ch05.check_reparameterize, lambda mu, lv, eps: mu + torch.exp(-0.5 * lv) * eps, "sign inside the exponential"),
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


@pytest.mark.parametrize("check,_", CHECKS)
def test_stub_crash_none_shape_and_nan_are_reported_not_raised(check, _):
    def stub(*a):
        raise NotImplementedError("Exercise")

    assert check(stub).status == NOT_IMPLEMENTED
    crash = check(lambda *a: 1 / 0)
    assert crash.status == FAIL and "ZeroDivisionError" in crash.message
    none = check(lambda *a: None)
    assert none.status == FAIL and "None" in none.message
    shape = check(lambda *a: torch.zeros(17, 3, dtype=torch.float64))
    assert shape.status == FAIL and "shape" in shape.message
    nan = check(lambda *a: torch.full_like(a[0], float("nan")).sum(-1) if a[0].dim() > 1 else a[0] * float("nan"))
    assert nan.status == FAIL
