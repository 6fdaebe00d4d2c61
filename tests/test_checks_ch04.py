"""Tests for vae_course.checks.ch04: references and independent solutions pass, every classic mistake
fails with its own hint, gradient-flow mistakes are caught after the values match.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import pytest
import torch

from vae_course.checks import FAIL, PASS, ch04

CHECKS = {
    "reparam": (ch04.check_reparameterize, ch04._reparam_ref, ch04._REPARAM_MISTAKES),
    "score": (ch04.check_score_gradient_mu, ch04._score_ref, ch04._SCORE_MISTAKES),
    "st": (ch04.check_straight_through, ch04._st_ref, ch04._ST_MISTAKES),
}


# ---------------------------------------------------------------- independent solutions pass
def reparameterize(mu, logvar, eps):
    return mu + torch.sqrt(torch.exp(logvar)) * eps


def score_gradient_mu(f, z, mu, logvar):
    # via autograd of the log-density (torch.distributions), independent of the package
    mu_ = mu.detach().clone().requires_grad_()
    logq = torch.distributions.Normal(mu_, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    (g,) = torch.autograd.grad((f.detach() * logq).mean(), mu_)
    return g


def straight_through(hard, soft):
    return soft - soft.detach() + hard.detach()


@pytest.mark.parametrize("check, fn", [(ch04.check_reparameterize, reparameterize),
                                       (ch04.check_score_gradient_mu, score_gradient_mu),
                                       (ch04.check_straight_through, straight_through)])
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
    res = ch04.check_reparameterize(lambda mu, logvar, eps: reparameterize(mu.float(), logvar.float(), eps.float()))
    assert res.status == PASS, res.message


# ---------------------------------------------------------------- classic mistakes
@pytest.mark.parametrize("name, i", [(n, i) for n, (_, _, ms) in CHECKS.items() for i in range(len(ms))])
def test_each_mistake_fails_with_its_hint(name, i):
    check, _, mistakes = CHECKS[name]
    res = check(mistakes[i].fn)
    assert res.status == FAIL
    assert mistakes[i].hint in res.message, f"mistake {i} of {name} got: {res.message}"


def test_mistakes_written_in_student_style():
    def variance_as_std(mu, logvar, eps):
        sigma = logvar.exp()
        return mu + sigma * eps

    def f_alone(f, z, mu, logvar):
        return torch.ones_like(mu) * f.sum() / len(f)

    def wrong_sign(f, z, mu, logvar):
        return (f.unsqueeze(1) * (mu - z) / logvar.exp()).mean(dim=0)

    def no_division(f, z, mu, logvar):
        return (f.unsqueeze(1) * (z - mu)).mean(dim=0)

    def st_detach_wrong(hard, soft):
        return hard + (soft - hard).detach()

    assert "exp(logvar), which is the variance" in ch04.check_reparameterize(variance_as_std).message
    assert "log-derivative is missing" in ch04.check_score_gradient_mu(f_alone).message
    assert "sign of the score is flipped" in ch04.check_score_gradient_mu(wrong_sign).message
    assert "forgot to divide by sigma^2" in ch04.check_score_gradient_mu(no_division).message
    assert "forward pass returns the soft values" in ch04.check_straight_through(st_detach_wrong).message


@pytest.mark.parametrize("fn, phrase", [
    (lambda hard, soft: hard, "goes to hard instead"),
    (lambda hard, soft: hard.detach(), "no gradient flows back at all"),
    (lambda hard, soft: (soft + (hard - soft)).detach(), "no gradient flows back at all"),
    (lambda hard, soft: soft.detach() + hard - soft.detach(), "goes to hard instead"),
    (lambda hard, soft: 2 * soft + (hard - 2 * soft).detach(), "upstream gradient unchanged"),
    (lambda hard, soft: hard + soft - soft.detach(), "a gradient also reaches hard"),
])
def test_straight_through_gradient_mistakes(fn, phrase):
    res = ch04.check_straight_through(fn)
    assert res.status == FAIL
    assert phrase in res.message, res.message


@pytest.mark.parametrize("fn, phrase", [
    (lambda mu, logvar, eps: (mu + torch.exp(0.5 * logvar) * eps).detach(), "no gradient reaches mu and logvar"),
    (lambda mu, logvar, eps: torch.tensor((mu + torch.exp(0.5 * logvar) * eps).tolist(), dtype=torch.float64),
     "no gradient reaches mu and logvar"),
    (lambda mu, logvar, eps: mu.detach() + torch.exp(0.5 * logvar) * eps, "dz/dmu"),
    (lambda mu, logvar, eps: mu + torch.exp(0.5 * logvar.detach()) * eps, "dz/dlogvar"),
])
def test_reparameterize_gradient_mistakes(fn, phrase):
    res = ch04.check_reparameterize(fn)
    assert res.status == FAIL
    assert phrase in res.message, res.message
