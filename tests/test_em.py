"""Tests for vae_course.em (chapter 3): EM on the linear-Gaussian model. (1) errors; (2) the properties the chapter
derives, each against an independent reference: the E-step closes the bound (the exact log p(x) of
torch.distributions), the log-likelihood never decreases, the M-step is a stationary point of the ELBO (autograd),
and EM reaches the closed-form maximum-likelihood solution of probabilistic PCA (Tipping & Bishop, 1999)."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from vae_course import em
from vae_course.inference import elbo_closed_form
from vae_course.linear_gaussian import LinearGaussianModel

F64 = torch.float64


def _data(n=300, seed=0):
    W = torch.tensor([[1.0, 0.9], [0.9, 1.0], [1.2, 1.0], [0.4, 0.6], [-0.5, -0.3]], dtype=F64)
    truth = LinearGaussianModel(W, torch.tensor([0.5, -0.3, 0.2, 0.0, 0.1], dtype=F64), 0.5)
    return truth.sample(n, generator=torch.Generator().manual_seed(seed))


def _init(seed=1):
    return LinearGaussianModel.random(5, 2, sigma=1.0, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: em.em_step(object(), torch.zeros(3, 5, dtype=F64)), TypeError, "model"),
    (lambda: em.em_step(_init(), torch.zeros(3, 4, dtype=F64)), ValueError, "x: got shape"),
    (lambda: em.em_step(_init(), torch.zeros(5, dtype=F64)), ValueError, "x"),
    (lambda: em.fit_em(_init(), torch.zeros(3, 5, dtype=F64), steps=0), ValueError, "steps"),
    (lambda: em.ppca_maximum_likelihood(torch.zeros(3, 5, dtype=F64), 5), ValueError, "z_dim"),
])
def test_errors_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_e_step_makes_the_elbo_equal_the_exact_log_likelihood():
    x, model = _data(), _init()
    step = em.em_step(model, x)
    reference = MultivariateNormal(model.b, covariance_matrix=model.W @ model.W.T + model.sigma**2 * torch.eye(5, dtype=F64))
    assert step.log_px == pytest.approx(reference.log_prob(x).mean().item(), abs=1e-10)
    assert step.elbo_e == pytest.approx(step.log_px, abs=1e-9)


def test_log_likelihood_never_decreases_and_each_step_obeys_the_chain_of_inequalities():
    x = _data()
    fit = em.fit_em(_init(), x, steps=40)
    lp = fit.log_px + [fit.final_log_px]
    assert all(b >= a - 1e-10 for a, b in zip(lp, lp[1:])), "log p(x) went down in an EM step"
    assert lp[-1] - lp[0] > 3.0  # from a random start EM climbs several nats per point
    for k in range(40):  # log p(x; new) >= ELBO(q, new) >= ELBO(q, old) = log p(x; old)
        assert fit.elbo_e[k] == pytest.approx(fit.log_px[k], abs=1e-9)
        assert fit.elbo_m[k] >= fit.elbo_e[k] - 1e-10
        assert lp[k + 1] >= fit.elbo_m[k] - 1e-10


def test_m_step_is_a_stationary_point_of_the_elbo_with_q_fixed():
    """The gradient of E_q log p(x, z), written out here by hand, vanishes at the M-step's W, b, sigma (autograd)."""
    x, model = _data(), _init()
    post = model.posterior(x)
    new = em.em_step(model, x).model
    W = new.W.clone().requires_grad_(True)
    b = new.b.clone().requires_grad_(True)
    log_s2 = torch.tensor(2 * math.log(new.sigma), dtype=F64, requires_grad=True)
    sq = (x - post.mu @ W.T - b).pow(2).sum(-1) + torch.trace(W @ post.cov @ W.T)  # E_q ||x - Wz - b||^2, (N,)
    expected = -0.5 * 5 * (math.log(2 * math.pi) + log_s2) - 0.5 * sq / log_s2.exp()  # E_q log p(x | z), (N,)
    gW, gb, gs = torch.autograd.grad(expected.mean(), (W, b, log_s2))
    assert max(gW.abs().max(), gb.abs().max(), gs.abs()) < 1e-9
    before = elbo_closed_form(model, x, post.mu, cov_q=post.cov).elbo.mean()
    after = elbo_closed_form(new, x, post.mu, cov_q=post.cov).elbo.mean()
    assert after.item() > before.item()


def test_closed_form_ppca_solution_is_a_stationary_point_of_the_exact_log_likelihood():
    """The gradient of the mean log p(x) (torch's MultivariateNormal, autograd) vanishes at the closed form."""
    x = _data(n=400, seed=3)
    ml = em.ppca_maximum_likelihood(x, 2)
    W = ml.W.clone().requires_grad_(True)
    b = ml.b.clone().requires_grad_(True)
    log_s2 = torch.tensor(2 * math.log(ml.sigma), dtype=F64, requires_grad=True)
    cov = W @ W.T + log_s2.exp() * torch.eye(5, dtype=F64)
    ll = MultivariateNormal(b, covariance_matrix=cov).log_prob(x).mean()
    grads = torch.autograd.grad(ll, (W, b, log_s2))
    assert max(g.abs().max().item() for g in grads) < 1e-8
    perturbed = LinearGaussianModel(ml.W * 1.05, ml.b, ml.sigma)
    assert perturbed.log_marginal(x).mean() < ml.log_marginal(x).mean()


def test_em_converges_to_the_closed_form_ppca_maximum_likelihood():
    x = _data(n=400, seed=3)
    fit = em.fit_em(_init(seed=2), x, steps=400)
    ml = em.ppca_maximum_likelihood(x, 2)
    assert fit.final_log_px == pytest.approx(ml.log_marginal(x).mean().item(), abs=1e-6)
    assert fit.model.sigma == pytest.approx(ml.sigma, rel=1e-4)
    torch.testing.assert_close(fit.model.b, ml.b, atol=1e-3, rtol=0)  # b_ML is the sample mean (z averages to 0)
    torch.testing.assert_close(fit.model.W @ fit.model.W.T, ml.W @ ml.W.T, atol=1e-4, rtol=0)  # W up to a rotation


def test_em_step_leaves_the_input_model_unchanged():
    x, model = _data(), _init()
    W, b, s = model.W.clone(), model.b.clone(), model.sigma
    em.em_step(model, x)
    assert torch.equal(model.W, W) and torch.equal(model.b, b) and model.sigma == s


def test_em_plot_draws_the_steps_and_the_distance_to_the_maximum():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vae_course.plotting import plot_em_steps

    x = _data()
    fit = em.fit_em(_init(), x, steps=12)
    best = em.ppca_maximum_likelihood(x, 2).log_marginal(x).mean().item()
    left, right = plot_em_steps(fit, best, steps_shown=4)
    circles = next(line for line in left.lines if line.get_marker() == "o")
    assert list(circles.get_ydata()) == pytest.approx(fit.log_px[:5])  # log p(x) before steps 1..5
    gaps = right.lines[0].get_ydata()
    assert len(gaps) == 13 and gaps[0] > gaps[-1] > 0  # 12 steps + the final model; the distance shrinks
    plt.close("all")
