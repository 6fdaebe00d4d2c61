"""Tests for vae_course.checks.ch03: solutions written independently pass; every classic mistake fails with its
hint; detached gradients fail.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import math

import pytest
import torch

from vae_course.checks import ch03
from vae_course.checks._core import FAIL, PASS


# solutions written as a student would, independently of the package
def kl_normal_std(mu, logvar):
    return 0.5 * (torch.exp(logvar) + mu**2 - 1 - logvar).sum(-1)


def elbo_mc(x, W, b, sigma, mu_q, logvar_q, eps):
    z = mu_q + torch.exp(0.5 * logvar_q) * eps  # (S, N, m)
    mean = z @ W.T + b  # (S, N, d)
    d = x.shape[-1]
    log_lik = -0.5 * (d * math.log(2 * math.pi * sigma**2) + ((x - mean) ** 2).sum(-1) / sigma**2)  # (S, N)
    return log_lik.mean(0) - kl_normal_std(mu_q, logvar_q)


def log_marginal(x, W, b, sigma):
    d = x.shape[-1]
    cov = W @ W.T + sigma**2 * torch.eye(d, dtype=W.dtype)
    diff = x - b
    sol = torch.linalg.solve(cov, diff.T).T
    return -0.5 * (d * math.log(2 * math.pi) + torch.logdet(cov) + (diff * sol).sum(-1))


CHECKS = {
    "kl": (ch03.check_kl_normal_std, kl_normal_std, ch03._KL_MISTAKES),
    "elbo": (ch03.check_elbo_mc, elbo_mc, ch03._ELBO_MISTAKES),
    "marginal": (ch03.check_log_marginal, log_marginal, ch03._MARGINAL_MISTAKES),
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
    """The mistakes the brief names, written out as a student would make them."""
    slide = ch03.check_kl_normal_std(lambda mu, lv: 0.5 * (lv + torch.exp(-lv) + mu**2 - 1).sum(-1))
    assert slide.status == FAIL and "lecture 003" in slide.message
    sign = ch03.check_kl_normal_std(lambda mu, lv: 0.5 * (torch.exp(lv) + mu**2 - 1 + lv).sum(-1))
    assert "sign" in sign.message
    averaged = ch03.check_kl_normal_std(lambda mu, lv: 0.5 * (torch.exp(lv) + mu**2 - 1 - lv).mean(-1))
    assert "averaged" in averaged.message
    not_summed = ch03.check_kl_normal_std(lambda mu, lv: 0.5 * (torch.exp(lv) + mu**2 - 1 - lv))
    assert not_summed.status == FAIL and "shape" in not_summed.message

    def var_as_scale(x, W, b, sigma, mu_q, logvar_q, eps):
        return elbo_mc(x, W, b, sigma, mu_q, logvar_q, eps * torch.exp(0.5 * logvar_q))  # z = mu + exp(logvar) eps

    assert "exp(0.5 * logvar)" in ch03.check_elbo_mc(var_as_scale).message

    def no_entropy(x, W, b, sigma, mu_q, logvar_q, eps):
        z = mu_q + torch.exp(0.5 * logvar_q) * eps
        log_lik = -0.5 * (x.shape[-1] * math.log(2 * math.pi * sigma**2) + ((x - z @ W.T - b) ** 2).sum(-1) / sigma**2)
        log_prior = -0.5 * (z.shape[-1] * math.log(2 * math.pi) + (z**2).sum(-1))
        return (log_lik + log_prior).mean(0)

    assert "entropy" in ch03.check_elbo_mc(no_entropy).message


def test_detached_elbo_fails_on_gradients():
    result = ch03.check_elbo_mc(lambda *a: elbo_mc(*(t.detach() if isinstance(t, torch.Tensor) else t for t in a)))
    assert result.status == FAIL and "gradient" in result.message
