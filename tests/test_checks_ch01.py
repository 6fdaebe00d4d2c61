"""Tests for vae_course.checks.ch01: the reference and independent solutions pass, every classic mistake fails
with its own hint.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import math

import pytest
import torch

from vae_course.checks import FAIL, PASS, ch01

CHECKS = {
    "sample": (ch01.check_sample_mvn, ch01._sample_ref, ch01._SAMPLE_MISTAKES),
    "diag": (ch01.check_log_normal_diag, ch01._diag_ref, ch01._DIAG_MISTAKES),
    "full": (ch01.check_log_normal_full, ch01._full_ref, ch01._FULL_MISTAKES),
}


# ---------------------------------------------------------------- independent solutions pass
def sample_mvn(mu, cov, eps):
    L = torch.linalg.cholesky(cov)
    return mu + torch.einsum("...ij,...j->...i", L, eps)


def log_normal_diag(x, mu, logvar):
    return torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)


def log_normal_full(x, mu, cov):
    return torch.distributions.MultivariateNormal(mu, covariance_matrix=cov).log_prob(x)


@pytest.mark.parametrize("check, fn", [(ch01.check_sample_mvn, sample_mvn), (ch01.check_log_normal_diag, log_normal_diag),
                                       (ch01.check_log_normal_full, log_normal_full)])
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
    res = ch01.check_log_normal_diag(lambda x, mu, logvar: log_normal_diag(x.float(), mu.float(), logvar.float()))
    assert res.status == PASS, res.message


# ---------------------------------------------------------------- each classic mistake is recognised
@pytest.mark.parametrize("name, i", [(n, i) for n, (_, _, ms) in CHECKS.items() for i in range(len(ms))])
def test_each_mistake_fails_with_its_hint(name, i):
    check, _, mistakes = CHECKS[name]
    res = check(mistakes[i].fn)
    assert res.status == FAIL
    assert mistakes[i].hint in res.message, f"mistake {i} of {name} got: {res.message}"


def test_slide_normaliser_message_and_d1_agreement():
    """The slide's (2 pi |S|)^{d/2} equals the correct normaliser at d = 1 but not at d = 2."""
    slide = ch01._FULL_MISTAKES[0].fn
    x1, m1, c1 = torch.tensor([2.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64), torch.tensor([[0.25]], dtype=torch.float64)
    assert torch.allclose(slide(x1, m1, c1), ch01._full_ref(x1, m1, c1))
    x2, m2 = torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    c2 = torch.diag(torch.tensor([2.0, 3.0], dtype=torch.float64))
    assert not torch.allclose(slide(x2, m2, c2), ch01._full_ref(x2, m2, c2))
    assert "(2 pi)^(d/2) |Sigma|^(1/2)" in ch01.check_log_normal_full(slide).message


def test_hand_written_mistakes_in_student_style():
    """Mistakes written the way students write them (not the module's own lambdas) are still named."""
    def upper(mu, cov, eps):  # upper Cholesky factor
        U = torch.linalg.cholesky(cov, upper=True)
        return mu + (U @ eps.unsqueeze(-1)).squeeze(-1)

    def sigma_as_std(x, mu, logvar):
        s = torch.exp(logvar)
        return (-torch.log(s) - 0.5 * math.log(2 * math.pi) - 0.5 * ((x - mu) / s) ** 2).sum(-1)

    def logdet_of_L(x, mu, cov):
        L = torch.linalg.cholesky(cov)
        u = torch.linalg.solve_triangular(L, (x - mu).unsqueeze(-1), upper=False).squeeze(-1)
        return -0.5 * (x.shape[-1] * math.log(2 * math.pi) + u.pow(2).sum(-1)) - torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1) / 2

    assert "L^T" in ch01.check_sample_mvn(upper).message
    assert "exp(0.5 * logvar)" in ch01.check_log_normal_diag(sigma_as_std).message
    assert "2 * sum_j log L_jj" in ch01.check_log_normal_full(logdet_of_L).message
