"""Tests for vae_course.inference (chapter 3): (1) shapes and errors; (2) seeded checks of every
formula the chapter shows against independent references (torch.distributions, brute-force
integrals on a grid, Monte Carlo) with stated tolerances; (3) short optimisation runs that must show
the per-sample loop beating (or matching) the amortised encoder."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

import vae_course as vc
from vae_course import inference as I
from vae_course.distributions import kl_normal_diag, kl_normal_full, kl_normal_std

F64 = torch.float64


def model(d=4, m=2, sigma=0.6, seed=0, dtype=F64):
    return I.LinearGaussianModel.random(d, m, sigma=sigma, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def correlated_model(dtype=torch.float32):
    """Two latent dimensions with strongly correlated posterior: a visible mean-field gap."""
    W = torch.tensor([[1.0, 0.9], [0.9, 1.0], [1.2, 1.0], [0.4, 0.6], [-0.5, -0.3]], dtype=dtype)
    return I.LinearGaussianModel(W, torch.tensor([0.5, -0.3, 0.2, 0.0, 0.1], dtype=dtype), 0.5)


# ---------------------------------------------------------------- tier 1: shapes and errors
def test_shapes(gen):
    M = model()
    x, z = M.sample(7, generator=gen, return_z=True)
    assert x.shape == (7, 4) and z.shape == (7, 2) and x.dtype == F64
    assert M.log_marginal(x).shape == (7,)
    post = M.posterior(x)
    assert post.mu.shape == (7, 2) and post.cov.shape == (2, 2)
    assert M.log_joint(x, z).shape == (7,)
    assert M.log_likelihood(x[0], torch.randn(5, 3, 2, dtype=F64)).shape == (5, 3)  # broadcasting
    est = I.elbo_gaussian(M, x, post.mu, torch.zeros(7, 2, dtype=F64), eps=torch.randn(11, 7, 2, dtype=F64))
    assert est.elbo.shape == est.recon.shape == est.kl.shape == (7,)
    assert I.elbo_closed_form(M, x, post.mu, cov_q=post.cov).elbo.shape == (7,)
    one_x_many_q = I.bound_gap(M, x[0], torch.zeros(9, 2, dtype=F64), torch.zeros(9, 2, dtype=F64))
    assert one_x_many_q.log_px.shape == one_x_many_q.gap.shape == (9,)
    mc = I.kl_normal_diag_monte_carlo(torch.zeros(3, 2), torch.zeros(3, 2), n_samples=10, generator=gen)
    assert mc.value.shape == mc.std_error.shape == (3,)
    enc = I.AmortizedEncoder(4, 2, (8,), generator=gen, dtype=F64)
    out = enc(x)
    assert out.mu.shape == out.logvar.shape == (7, 2)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: I.LinearGaussianModel(torch.ones(3), torch.ones(3), 1.0), ValueError, "W"),
    (lambda: I.LinearGaussianModel(torch.ones(3, 2), torch.ones(4), 1.0), ValueError, "b"),
    (lambda: I.LinearGaussianModel(torch.ones(3, 2), torch.ones(3), 0.0), ValueError, "sigma"),
    (lambda: I.LinearGaussianModel(torch.ones(3, 2), torch.ones(3), -1.0), ValueError, "sigma"),
    (lambda: model().log_marginal(torch.ones(2, 3, dtype=F64)), ValueError, "x: got last dimension 3"),
    (lambda: model().log_joint(torch.ones(4, dtype=F64), torch.ones(3, dtype=F64)), ValueError, "z: got last dimension"),
    (lambda: model().sample(0), ValueError, "n"),
    (lambda: I.elbo_gaussian(model(), torch.ones(4), torch.zeros(2), torch.zeros(2), eps=torch.zeros(5, 3)),
     ValueError, "eps"),
    (lambda: I.elbo_gaussian(model(), torch.ones(4), torch.zeros(3), torch.zeros(3)), ValueError, "mu_q"),
    (lambda: I.elbo_closed_form(model(), torch.ones(4), torch.zeros(2)), ValueError, "logvar_q / cov_q"),
    (lambda: I.elbo_closed_form(object(), torch.ones(4), torch.zeros(2), torch.zeros(2)), TypeError, "model"),
    (lambda: I.optimize_per_sample(model(), torch.ones(3, 4), estimator="exactly"), ValueError, "estimator"),
    (lambda: I.optimize_per_sample(model(), torch.ones(3, 4), steps=0), ValueError, "steps"),
    (lambda: I.fit_amortized(model(), torch.ones(3, 4), encoder="mlp"), TypeError, "encoder"),
    (lambda: I.u_minus_log_u(torch.tensor([1.0, 0.0])), ValueError, "u"),
    (lambda: I.kl_normal_diag_monte_carlo([0.0], torch.zeros(1)), TypeError, "mu_q"),
])
def test_errors_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------- tier 2: exact quantities vs independent references
def test_log_marginal_matches_torch_multivariate_normal(gen):
    M = model(d=5, m=3)
    x = M.sample(20, generator=gen)
    ref = MultivariateNormal(M.b, M.W @ M.W.T + M.sigma**2 * torch.eye(5, dtype=F64)).log_prob(x)
    torch.testing.assert_close(M.log_marginal(x), ref)  # float64 default tolerances (~1e-7 relative)


def _grid(M, x, lo=-8.0, hi=8.0, n=20001):
    z = torch.linspace(lo, hi, n, dtype=F64)
    log_joint = M.log_joint(x, z[:, None])  # (n,)
    return z, log_joint


def test_log_marginal_and_posterior_match_brute_force_bayes_on_a_grid(gen):
    """m = 1: p(x) = integral of p(x|z) p(z) dz and p(z|x) = p(x, z) / p(x), by the trapezoid rule."""
    M = model(d=3, m=1, sigma=0.7)
    for x in M.sample(3, generator=gen):
        z, log_joint = _grid(M, x)
        joint = log_joint.exp()
        evidence = torch.trapezoid(joint, z)
        assert abs(math.log(evidence) - M.log_marginal(x).item()) < 1e-8  # grid spacing 8e-4 on a smooth density
        dens = joint / evidence
        mean = torch.trapezoid(z * dens, z)
        var = torch.trapezoid((z - mean) ** 2 * dens, z)
        post = M.posterior(x)
        assert abs(mean - post.mu.item()) < 1e-8 and abs(var - post.cov.item()) < 1e-8
        torch.testing.assert_close(M.log_posterior(z[::500, None], x), dens[::500].log(), rtol=1e-7, atol=1e-7)


def test_posterior_matches_gaussian_conditioning(gen):
    """Independent route: condition the joint Gaussian of (z, x): mu = W^T C^-1 (x - b), cov = I - W^T C^-1 W."""
    M = model(d=5, m=3)
    x = M.sample(6, generator=gen)
    C = M.marginal_cov()
    post = M.posterior(x)
    torch.testing.assert_close(post.mu, torch.linalg.solve(C, (x - M.b).T).T @ M.W)
    torch.testing.assert_close(post.cov, torch.eye(3, dtype=F64) - M.W.T @ torch.linalg.solve(C, M.W))


def test_bayes_identity_log_joint_equals_log_px_plus_log_posterior(gen):
    M = model()
    x = M.sample(8, generator=gen)
    z = torch.randn(8, 2, generator=gen, dtype=F64)
    torch.testing.assert_close(M.log_joint(x, z), M.log_marginal(x) + M.log_posterior(z, x))


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-4), (F64, 1e-10)])
def test_elbo_equals_log_px_at_the_true_posterior_and_is_below_elsewhere(gen, dtype, tol):
    M = model(dtype=dtype)
    x = M.sample(10, generator=gen)
    post = M.posterior(x)
    at_post = I.bound_gap(M, x, post.mu, cov_q=post.cov.expand(10, 2, 2))
    assert at_post.gap.abs().max() < tol  # the bound is tight: equality to rounding error
    mu = post.mu + 0.3 * torch.randn(10, 2, generator=gen, dtype=dtype)
    lv = 0.5 * torch.randn(10, 2, generator=gen, dtype=dtype)
    elsewhere = I.bound_gap(M, x, mu, lv)
    assert (elsewhere.gap > 0).all()


def test_gap_equals_kl_to_posterior_computed_independently(gen):
    M = model()
    x = M.sample(10, generator=gen)
    mu = torch.randn(10, 2, generator=gen, dtype=F64)
    lv = torch.randn(10, 2, generator=gen, dtype=F64)
    res = I.bound_gap(M, x, mu, lv)
    post = M.posterior(x)
    kl_pkg = kl_normal_full(mu, torch.diag_embed(lv.exp()), post.mu, post.cov)
    kl_torch = kl_divergence(MultivariateNormal(mu, torch.diag_embed(lv.exp())), MultivariateNormal(post.mu, post.cov))
    torch.testing.assert_close(res.gap, kl_pkg)
    torch.testing.assert_close(res.gap, kl_torch)
    torch.testing.assert_close(res.kl_posterior, kl_torch)


def test_closed_form_elbo_full_and_diagonal_agree(gen):
    M = model()
    x = M.sample(5, generator=gen)
    mu, lv = torch.randn(5, 2, generator=gen, dtype=F64), torch.randn(5, 2, generator=gen, dtype=F64)
    torch.testing.assert_close(I.elbo_closed_form(M, x, mu, lv).elbo,
                               I.elbo_closed_form(M, x, mu, cov_q=torch.diag_embed(lv.exp())).elbo)


def test_monte_carlo_elbo_is_unbiased_for_the_closed_form(gen):
    """Both MC forms (recon - closed-form KL, and E_q[log p(x,z) - log q(z)]) agree with the exact ELBO
    to within 4 standard errors over S = 20000 samples."""
    M = model()
    x = M.sample(4, generator=gen)
    mu, lv = torch.randn(4, 2, generator=gen, dtype=F64), torch.randn(4, 2, generator=gen, dtype=F64) - 1
    exact = I.elbo_closed_form(M, x, mu, lv).elbo
    eps = torch.randn(20000, 4, 2, generator=gen, dtype=F64)
    z = mu + torch.exp(0.5 * lv) * eps
    recon_terms = M.log_likelihood(x, z)  # (S, 4)
    est = I.elbo_gaussian(M, x, mu, lv, eps=eps)
    se = recon_terms.std(0) / math.sqrt(20000)
    assert ((est.elbo - exact).abs() < 4 * se).all()
    joint_terms = M.log_joint(x, z) - vc.distributions.log_normal_diag(z, mu, lv)
    se2 = joint_terms.std(0) / math.sqrt(20000)
    assert ((joint_terms.mean(0) - exact).abs() < 4 * se2).all()


def test_elbo_gaussian_uses_the_standard_deviation_and_is_reproducible_with_eps(gen):
    M = model()
    x = M.sample(3, generator=gen)
    mu, lv, eps = torch.zeros(3, 2, dtype=F64), torch.full((3, 2), 2.0, dtype=F64), torch.randn(4, 3, 2, generator=gen, dtype=F64)
    by_hand = M.log_likelihood(x, mu + math.exp(1.0) * eps).mean(0) - kl_normal_std(mu, lv)  # exp(0.5 * 2) = e
    torch.testing.assert_close(I.elbo_gaussian(M, x, mu, lv, eps=eps).elbo, by_hand)
    a = I.elbo_gaussian(M, x, mu, lv, 5, generator=torch.Generator().manual_seed(1)).elbo
    b = I.elbo_gaussian(M, x, mu, lv, 5, generator=torch.Generator().manual_seed(1)).elbo
    torch.testing.assert_close(a, b)


def test_jensen_first_step_importance_weights_average_to_p_x(gen):
    """p(x) = E_q[p(x,z)/q(z)] for any q covering the posterior: the log of the average of S = 200000
    weights is within 0.01 nats of log p(x), and above the ELBO (Jensen)."""
    M = model(d=3, m=1)
    x = M.sample(1, generator=gen)[0]
    mu, lv = torch.tensor([0.2], dtype=F64), torch.tensor([0.5], dtype=F64)
    z = mu + torch.exp(0.5 * lv) * torch.randn(200000, 1, generator=gen, dtype=F64)
    log_w = M.log_joint(x, z) - vc.distributions.log_normal_diag(z, mu, lv)
    log_avg = torch.logsumexp(log_w, 0) - math.log(len(log_w))
    assert abs(log_avg - M.log_marginal(x)) < 0.01
    assert log_avg > I.elbo_closed_form(M, x, mu, lv).elbo + 0.1


def test_mean_field_optimum_is_stationary_and_its_gap_is_analytic(gen):
    M = model(d=4, m=3)
    x = M.sample(5, generator=gen)
    mu, lv = I.mean_field_optimum(M, x)
    mu, lv = mu.clone().requires_grad_(True), lv.clone().requires_grad_(True)
    elbo = I.elbo_closed_form(M, x, mu, lv).elbo
    g_mu, g_lv = torch.autograd.grad(elbo.sum(), (mu, lv))
    assert g_mu.abs().max() < 1e-10 and g_lv.abs().max() < 1e-10  # a stationary point of a concave objective
    Lam = M.posterior_precision()
    analytic = 0.5 * (torch.log(torch.diagonal(Lam)).sum() - torch.logdet(Lam))
    torch.testing.assert_close(M.log_marginal(x) - elbo.detach(), analytic.expand(5))
    assert analytic > 0


# ---------------------------------------------------------------- the KL to N(0, I): closed form, MC, and the slides
def test_kl_monte_carlo_matches_closed_form_within_4_standard_errors(gen):
    mu, lv = torch.randn(6, 3, generator=gen, dtype=F64), torch.randn(6, 3, generator=gen, dtype=F64)
    mc = I.kl_normal_diag_monte_carlo(mu, lv, n_samples=50000, generator=gen)
    assert ((mc.value - kl_normal_std(mu, lv)).abs() < 4 * mc.std_error).all()
    mu_p, lv_p = torch.randn(6, 3, generator=gen, dtype=F64), torch.randn(6, 3, generator=gen, dtype=F64)
    mc2 = I.kl_normal_diag_monte_carlo(mu, lv, mu_p, lv_p, n_samples=50000, generator=gen)
    assert ((mc2.value - kl_normal_diag(mu, lv, mu_p, lv_p)).abs() < 4 * mc2.std_error).all()


def test_package_kls_match_torch_kl_divergence(gen):
    mu, lv = torch.randn(5, 3, generator=gen, dtype=F64), torch.randn(5, 3, generator=gen, dtype=F64)
    q = Normal(mu, torch.exp(0.5 * lv))
    torch.testing.assert_close(kl_normal_std(mu, lv), kl_divergence(q, Normal(0.0, 1.0)).sum(-1))
    torch.testing.assert_close(I.kl_std_a_form(mu, lv.exp()), kl_normal_std(mu, lv))


def test_lecture_001_derivation_steps(gen):
    """KL = E_q[-1/2 sum(log s^2 + (z - eta)^2 / s^2 - z^2)] = -1/2 sum(log s^2 + 1 - eta^2 - s^2) (brackets around
    the whole sum), checked by Monte Carlo (4 standard errors) and exactly."""
    eta, lv = torch.tensor([0.7, -1.2], dtype=F64), torch.tensor([-0.5, 0.8], dtype=F64)
    z = eta + torch.exp(0.5 * lv) * torch.randn(100000, 2, generator=gen, dtype=F64)
    terms = -0.5 * (lv + (z - eta) ** 2 / lv.exp() - z**2).sum(-1)
    closed = -0.5 * (lv + 1 - eta**2 - lv.exp()).sum()
    assert abs(terms.mean() - closed) < 4 * terms.std() / math.sqrt(len(terms))
    torch.testing.assert_close(closed, kl_normal_std(eta, lv))


def test_slide_003_kl_is_wrong_and_is_the_kl_at_the_reciprocal_variance(gen):
    mu, lv = torch.randn(50, 2, generator=gen, dtype=F64), 2 * torch.randn(50, 2, generator=gen, dtype=F64)
    wrong = I.kl_std_inverted_variance(mu, lv)
    # exactly the correct formula with sigma^2 replaced by 1 / sigma^2 ...
    torch.testing.assert_close(wrong, kl_normal_std(mu, -lv))
    torch.testing.assert_close(wrong, kl_divergence(Normal(mu, torch.exp(-0.5 * lv)), Normal(0.0, 1.0)).sum(-1))
    # ... which is not the reverse KL either: KL(N(0,1) || N(mu, s^2)) has mu^2 / s^2
    reverse = kl_divergence(Normal(0.0, 1.0), Normal(mu, torch.exp(0.5 * lv))).sum(-1)
    torch.testing.assert_close(reverse, 0.5 * (lv + torch.exp(-lv) + mu**2 * torch.exp(-lv) - 1).sum(-1))
    assert not torch.allclose(wrong, reverse)
    # ... and it disagrees with Monte Carlo by far more than the noise, except at unit variance
    one = (torch.tensor([0.8], dtype=F64), torch.tensor([1.5], dtype=F64))
    mc = I.kl_normal_diag_monte_carlo(*one, n_samples=50000, generator=gen)
    assert abs(I.kl_std_inverted_variance(*one) - mc.value) > 20 * mc.std_error
    assert abs(kl_normal_std(*one) - mc.value) < 4 * mc.std_error
    torch.testing.assert_close(I.kl_std_inverted_variance(mu, torch.zeros_like(lv)), kl_normal_std(mu, torch.zeros_like(lv)))


# ---------------------------------------------------------------- tier 3: optimisation runs
def test_per_sample_loop_is_the_same_as_fitting_each_point_alone(gen):
    """The vectorised outer loop equals the literal one (exact gradients, so no sampling noise)."""
    M = model(dtype=F64)
    x = M.sample(3, generator=gen)
    together = I.optimize_per_sample(M, x, steps=40, lr=0.1, estimator="exact")
    for j in range(3):
        alone = I.optimize_per_sample(M, x[j:j + 1], steps=40, lr=0.1, estimator="exact")
        torch.testing.assert_close(together.mu[j:j + 1], alone.mu)
        torch.testing.assert_close(together.logvar[j:j + 1], alone.logvar)


def test_per_sample_loop_reaches_the_best_diagonal_q():
    M = correlated_model()
    x = M.sample(64, generator=torch.Generator().manual_seed(0))
    best = I.elbo_closed_form(M, x, *I.mean_field_optimum(M, x)).elbo
    exact = I.optimize_per_sample(M, x, steps=300, lr=0.2, estimator="exact")
    assert (best - exact.elbo).abs().max() < 1e-3
    mc = I.optimize_per_sample(M, x, steps=300, lr=0.1, n_samples=8, generator=torch.Generator().manual_seed(1))
    assert mc.history[-1] > mc.history[0] + 1.0  # it learned
    assert (best - mc.elbo).mean() < 0.03  # within 0.03 nats of the optimum despite MC gradients
    assert (M.log_marginal(x) - mc.elbo).min() > 0  # still a lower bound


def test_amortised_encoder_is_below_the_per_sample_optimum_after_training():
    M = correlated_model()
    gen = torch.Generator().manual_seed(0)
    x = M.sample(64, generator=gen)
    per_sample = I.optimize_per_sample(M, x, steps=200, lr=0.1, n_samples=8, generator=gen)
    amortised = I.fit_amortized(M, x, hidden=(16,), steps=300, lr=1e-2, generator=gen)
    assert amortised.history[-1] > amortised.history[0] + 1.0  # the encoder learned
    gaps = I.inference_gaps(M.log_marginal(x), per_sample.elbo, amortised.elbo)
    assert per_sample.elbo.mean() >= amortised.elbo.mean()
    assert gaps.amortization > 0 and gaps.approximation > 0.5  # this model's mean-field gap is ~0.91 nats
    assert gaps.inference == pytest.approx(gaps.approximation + gaps.amortization)


def test_a_linear_encoder_can_close_the_amortisation_gap_in_this_model():
    """The posterior mean is linear in x and the best diagonal variances are constant, so a linear encoder
    trained with exact gradients reaches the per-sample optimum (gap < 1e-3 nats)."""
    M = correlated_model()
    x = M.sample(64, generator=torch.Generator().manual_seed(2))
    fit = I.fit_amortized(M, x, hidden=(), steps=600, lr=0.3, estimator="exact", generator=torch.Generator().manual_seed(3))
    best = I.elbo_closed_form(M, x, *I.mean_field_optimum(M, x)).elbo
    assert (best - fit.elbo).mean() < 1e-3


# ---------------------------------------------------------------- figures and widget run and draw
def test_plots_and_widget_smoke():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    M1 = I.LinearGaussianModel(torch.tensor([[1.0], [0.6]]), torch.tensor([0.5, -0.5]), 0.8)
    x = torch.tensor([2.0, 1.5])
    t = torch.linspace(-2, 2, 21)
    post = M1.posterior(x)
    res = I.bound_gap(M1, x, post.mu + t[:, None], post.cov.diag().log().expand(21, 1))
    axes = vc.plotting.plot_bound_gap(t, res, mark=0.0)
    assert len(axes) == 2 and len(axes[0].lines) >= 2
    axes = vc.plotting.plot_q_vs_posterior(M1, x, 0.3, -0.5)
    assert len(axes[0].lines) == 2
    with pytest.raises(ValueError, match="z_dim"):
        vc.plotting.plot_q_vs_posterior(correlated_model(), torch.zeros(5), 0.0, 0.0)
    lv = torch.linspace(-2, 2, 13)
    ax = vc.plotting.plot_kl_comparison(lv, {"correct": kl_normal_std(lv[:, None] * 0, lv[:, None]),
                                             "wrong": I.kl_std_inverted_variance(lv[:, None] * 0, lv[:, None])},
                                        mc=I.kl_normal_diag_monte_carlo(lv[:, None] * 0, lv[:, None], n_samples=100))
    assert len(ax.lines) >= 2
    M2 = correlated_model()
    xs = M2.sample(16, generator=torch.Generator().manual_seed(0))
    ps = I.optimize_per_sample(M2, xs, steps=5)
    am = I.fit_amortized(M2, xs, steps=5, hidden=(4,))
    axes = vc.plotting.plot_inference_gaps(ps, am, M2.log_marginal(xs))
    assert len(axes) == 2
    w = vc.widgets.q_posterior_widget(M1, x)
    assert len(w.children) >= 2
    plt.close("all")


# ---------------------------------------------------------------- the aggregate posterior (section 3.6)
def _random_encoder(M, seed=0):
    g = torch.Generator().manual_seed(seed)
    m, d = M.z_dim, M.x_dim
    L = torch.randn(m, m, generator=g, dtype=F64) * 0.3 + torch.eye(m, dtype=F64) * 0.5
    return vc.linear_gaussian.LinearEncoder(torch.randn(m, d, generator=g, dtype=F64) * 0.4,
                                            torch.randn(m, generator=g, dtype=F64) * 0.5, L @ L.T)


def test_posterior_encoder_is_the_exact_posterior():
    M = correlated_model(F64)
    x = M.sample(6, generator=torch.Generator().manual_seed(4))
    enc, post = M.posterior_encoder(), M.posterior(x)
    torch.testing.assert_close(x @ enc.A.T + enc.c, post.mu)
    torch.testing.assert_close(enc.cov, post.cov)


def test_exact_posterior_averages_to_the_prior():
    M = correlated_model(F64)
    split = I.aggregate_split(M, M.posterior_encoder())
    torch.testing.assert_close(split.q_mean, torch.zeros(2, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(split.q_cov, torch.eye(2, dtype=F64), atol=1e-12, rtol=0)
    assert abs(split.marginal_kl.item()) < 1e-12
    assert split.average_kl.item() == pytest.approx(split.mutual_information.item(), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aggregate_split_matches_monte_carlo_and_torch(seed):
    """Each term against an independent estimate (200,000 data points drawn from the model; 5 standard errors),
    and the identity average = I + KL(q(z) || p(z)) to rounding."""
    M = model(d=4, m=2, seed=seed)
    enc = _random_encoder(M, seed)
    split = I.aggregate_split(M, enc)
    assert split.average_kl.item() == pytest.approx((split.mutual_information + split.marginal_kl).item(), abs=1e-10)
    g = torch.Generator().manual_seed(10 + seed)
    x = M.sample(200_000, generator=g)
    mean_q = x @ enc.A.T + enc.c  # (N, m)
    kl_each = kl_normal_full(mean_q, enc.cov, torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64))
    assert abs(kl_each.mean() - split.average_kl) < 5 * kl_each.std() / 200_000**0.5
    q_z = MultivariateNormal(x.mean(0) @ enc.A.T + enc.c, covariance_matrix=torch.cov(mean_q.T) + enc.cov)
    torch.testing.assert_close(q_z.loc, split.q_mean, atol=0.02, rtol=0)
    torch.testing.assert_close(q_z.covariance_matrix, split.q_cov, atol=0.02, rtol=0)
    z = mean_q + torch.randn(200_000, 2, generator=g, dtype=F64) @ torch.linalg.cholesky(enc.cov).T
    exact_q = MultivariateNormal(split.q_mean, covariance_matrix=split.q_cov)
    mi_terms = MultivariateNormal(mean_q, covariance_matrix=enc.cov).log_prob(z) - exact_q.log_prob(z)
    assert abs(mi_terms.mean() - split.mutual_information) < 5 * mi_terms.std() / 200_000**0.5
    prior = MultivariateNormal(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64))
    assert split.marginal_kl.item() == pytest.approx(kl_divergence(exact_q, prior).item(), abs=1e-10)


def test_a_mean_field_encoder_averages_to_a_narrower_distribution_than_the_prior():
    M = correlated_model(F64)
    exact = M.posterior_encoder()
    mean_field = exact._replace(cov=torch.diag(1 / torch.diagonal(M.posterior_precision())))
    split = I.aggregate_split(M, mean_field)
    assert split.marginal_kl.item() > 0.05
    # q_cov = I - Lambda^-1 + diag(1/Lambda_ii): each coordinate narrower than the prior's, and correlated
    torch.testing.assert_close(split.q_cov, torch.eye(2, dtype=F64) - torch.linalg.inv(M.posterior_precision()) + mean_field.cov)
    assert bool((torch.diagonal(split.q_cov) < 1).all()) and split.q_cov[0, 1].abs() > 0.1


def test_aggregate_split_errors_name_the_argument():
    M = correlated_model(F64)
    with pytest.raises(TypeError, match="encoder"):
        I.aggregate_split(M, (torch.zeros(2, 5), torch.zeros(2), torch.eye(2)))
    with pytest.raises(ValueError, match="encoder: got A"):
        I.aggregate_split(M, vc.linear_gaussian.LinearEncoder(torch.zeros(2, 4, dtype=F64), torch.zeros(2, dtype=F64),
                                                              torch.eye(2, dtype=F64)))
