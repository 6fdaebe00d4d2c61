"""Tests for vae_course.checks.ch02: the reference and independent solutions pass, every classic mistake fails
with its own hint.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import math

import pytest
import torch

from vae_course.checks import FAIL, PASS, ch02

CHECKS = {
    "threshold": (ch02.check_threshold_density, ch02._threshold_ref, ch02._THRESHOLD_MISTAKES),
    "lme": (ch02.check_log_marginal_from_samples, ch02._lme_ref, ch02._LME_MISTAKES),
    "ess": (ch02.check_effective_sample_size, ch02._ess_ref, ch02._ESS_MISTAKES),
    "gauss": (ch02.check_gaussian_mle_loglik, ch02._gauss_ref, ch02._GAUSS_MISTAKES),
}


# ---------------------------------------------------------------- independent solutions pass
def threshold_density(x, theta):
    N = torch.distributions.Normal
    return theta * N(0.0, 1.0).log_prob(x).exp() + (1 - theta) * N(1.0, 1.0).log_prob(x).exp()


def log_marginal_from_samples(log_lik):
    m = log_lik.max(-1, keepdim=True).values
    return (m + torch.log(torch.exp(log_lik - m).mean(-1, keepdim=True))).squeeze(-1)


def effective_sample_size(log_w):
    w = torch.softmax(log_w, -1)
    return 1.0 / (w * w).sum(-1)


def gaussian_mle_loglik(x):
    dist = torch.distributions.Normal(x.mean(), x.std(unbiased=False))
    return dist.log_prob(x).mean()


@pytest.mark.parametrize("check, fn", [
    (ch02.check_threshold_density, threshold_density),
    (ch02.check_log_marginal_from_samples, log_marginal_from_samples),
    (ch02.check_effective_sample_size, effective_sample_size),
    (ch02.check_gaussian_mle_loglik, gaussian_mle_loglik),
])
def test_independent_solution_passes(check, fn):
    res = check(fn)
    assert res.status == PASS, res.message


@pytest.mark.parametrize("name", CHECKS)
def test_the_reference_itself_is_refused_as_calling_the_answer(name):
    # the package's reference is switched off while a student's function runs (it used to pass)
    check, ref, _ = CHECKS[name]
    res = check(ref)
    assert res.status == FAIL and "calls the package's own" in res.message, res.message


def test_float32_solution_passes():
    res = ch02.check_log_marginal_from_samples(lambda a: log_marginal_from_samples(a.float()))
    assert res.status == PASS, res.message


# ---------------------------------------------------------------- each classic mistake is recognised
@pytest.mark.parametrize("name, i", [(n, i) for n, (_, _, ms) in CHECKS.items() for i in range(len(ms))])
def test_each_mistake_fails_with_its_hint(name, i):
    check, _, mistakes = CHECKS[name]
    res = check(mistakes[i].fn)
    assert res.status == FAIL
    assert mistakes[i].hint in res.message, f"mistake {i} of {name} got: {res.message}"


def test_hand_written_mistakes_in_student_style():
    """Mistakes written the way students write them (not the module's own lambdas) are still named."""
    def swapped(x, theta):
        c = 1 / math.sqrt(2 * math.pi)
        return (1 - theta) * c * torch.exp(-x**2 / 2) + theta * c * torch.exp(-(x - 1) ** 2 / 2)

    def jensen(log_lik):
        return torch.mean(log_lik, dim=1)

    def naive(log_lik):
        return torch.exp(log_lik).mean(dim=1).log()

    def unnormalised(log_w):
        w = log_w.exp()
        return 1 / (w**2).sum(dim=1)

    def unbiased(x):
        return torch.distributions.Normal(x.mean(), x.std()).log_prob(x).mean()

    assert "swapped" in ch02.check_threshold_density(swapped).message
    assert "Jensen" in ch02.check_log_marginal_from_samples(jensen).message
    msg = ch02.check_log_marginal_from_samples(naive).message
    assert "NaN or inf" in msg and "logsumexp" in msg
    assert "NORMALISED" in ch02.check_effective_sample_size(unnormalised).message
    assert "N - 1" in ch02.check_gaussian_mle_loglik(unbiased).message
