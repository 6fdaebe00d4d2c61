"""vc.mixtures: the threshold mixture, marginals by quadrature and Monte Carlo, maximum-likelihood fits,
the single Gaussian, and the naive estimator, against closed forms and brute-force references."""
import math

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal, Normal

import vae_course as vc
from vae_course import mixtures as M


def _gen(hidden=(8,), sigma=0.5, z_dim=1, x_dim=1, seed=0):
    torch.manual_seed(seed)
    return vc.generators.ProbabilisticGenerator(z_dim, x_dim, covariance="isotropic", sigma=sigma, hidden=hidden)


# --- tier 1: shapes and errors -------------------------------------------------------------

def test_shapes(gen):
    g = _gen(x_dim=2)
    x, z = torch.randn(7, 2, generator=gen), torch.randn(5, 1, generator=gen)
    assert M.log_likelihood_matrix(g, x, z).shape == (7, 5)
    assert M.log_marginal_quadrature(g, x, 32).shape == (7,)
    assert M.log_marginal_mc(g, x, 100, generator=gen, batch_size=30).shape == (7,)
    assert M.threshold_density(torch.zeros(3, 4), 0.2).shape == (3, 4)
    assert M.ThresholdGenerator(0.4).sample(11, generator=gen).shape == (11,)
    grid = M.latent_grid(6, 2, rule="gauss_hermite")
    assert grid.z.shape == (36, 2) and grid.log_w.shape == (36,)
    est = M.naive_marginal_estimate(vc.linear_gaussian.LinearGaussianModel.orthonormal(3), torch.randn(4, 3, dtype=torch.float64), 50, generator=gen)
    assert est.log_p.shape == est.ess.shape == est.max_weight.shape == (4,)
    assert M.naive_marginal_repeats(vc.linear_gaussian.LinearGaussianModel.orthonormal(2), torch.zeros(3, 2), 5, 7, generator=gen).shape == (3, 7)
    assert M.effective_sample_size(torch.zeros(2, 3, 9)).shape == (2, 3)
    fit = M.fit_single_gaussian(torch.randn(20, 3, generator=gen))
    assert fit.mean.shape == (3,) and fit.cov.shape == (3, 3) and fit.log_prob(torch.zeros(4, 3)).shape == (4,)


@pytest.mark.parametrize("call, match", [
    (lambda: M.threshold_density(torch.zeros(2), 1.5), "theta: got 1.5"),
    (lambda: M.ThresholdGenerator(-0.1), "theta"),
    (lambda: M.threshold_density(torch.zeros(2), "a"), "theta: got 'a'"),
    (lambda: M.mixture_density(torch.zeros(2), [0.5, 0.6], [0, 1], [1, 1]), "weights"),
    (lambda: M.mixture_density(torch.zeros(2), [0.5, 0.5], [0, 1], [1, 0]), "stds"),
    (lambda: M.mixture_density(torch.zeros(2), [1.0], [0, 1], [1, 1]), "same length"),
    (lambda: M.latent_grid(8, rule="simpson"), "rule: got 'simpson'"),
    (lambda: M.latent_grid(64, 4), r"n\*\*dim"),
    (lambda: M.latent_grid(0), "n: got 0"),
    (lambda: M.latent_grid(200, rule="gauss_hermite"), "n: got 200"),
    (lambda: M.latent_grid(8, half_width=0.0), "half_width"),
    (lambda: M.fit_marginal_likelihood(_gen(), torch.zeros(5), steps=2, n_mc=8, batch_size=0), "batch_size"),
    (lambda: M.capacity_study("moons"), "target: got 'moons'"),
    (lambda: M.fit_marginal_likelihood(_gen(), torch.zeros(5), steps=2), "n_quadrature / n_mc: .*neither"),
    (lambda: M.fit_marginal_likelihood(_gen(), torch.zeros(5), steps=2, n_quadrature=8, n_mc=8), "both"),
    (lambda: M.fit_marginal_likelihood(_gen(), torch.zeros(5), steps=2, lr=-1.0, n_mc=8), "lr"),
    (lambda: M.log_marginal_quadrature(_gen(), torch.zeros(2, 3, 1)), r"x: got shape \(2, 3, 1\)"),
    (lambda: M.log_likelihood_matrix(_gen(), torch.zeros(4, 2), torch.zeros(3, 1)), "x: got points of dimension 2"),
    (lambda: M.fit_single_gaussian(torch.zeros(1, 2)), "at least 2"),
    (lambda: vc.linear_gaussian.LinearGaussianModel.orthonormal(3, 2), "x_dim: got 2"),
    (lambda: M.naive_marginal_estimate(vc.linear_gaussian.LinearGaussianModel.orthonormal(2), torch.zeros(3, 2), 0), "n_samples: got 0"),
    (lambda: M.quantile_generator_1d(torch.exp, torch.zeros(3), lo=1.0, hi=0.0), "lo, hi"),
    (lambda: M.FunctionNet(3), "fn: got int"),
])
def test_errors_name_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# --- tier 2: against exact and brute-force references ---------------------------------------

@pytest.mark.parametrize("theta", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_threshold_density_integrates_to_one(theta):
    x = torch.linspace(-12.0, 13.0, 50_001, dtype=torch.float64)
    # trapezoid rule on a 5e-4 grid of a smooth density: error ~ 1e-8; the tails beyond are < 1e-30
    assert abs(float(torch.trapezoid(M.threshold_density(x, theta), x)) - 1.0) < 1e-7


def test_threshold_density_is_the_two_component_mixture():
    x = torch.linspace(-4, 5, 101, dtype=torch.float64)
    mix = MixtureSameFamily(Categorical(torch.tensor([0.3, 0.7], dtype=torch.float64)),
                            Normal(torch.tensor([0.0, 1.0], dtype=torch.float64), torch.ones(2, dtype=torch.float64)))
    assert torch.allclose(M.threshold_density(x, 0.3), mix.log_prob(x).exp(), atol=1e-12)
    assert torch.allclose(M.ThresholdGenerator(0.3).log_density(x), mix.log_prob(x), atol=1e-10)


@pytest.mark.parametrize("theta", [0.2, 0.7])
def test_threshold_samples_match_the_exact_density(theta):
    n = 200_000
    x, z = M.ThresholdGenerator(theta).sample(n, generator=torch.Generator().manual_seed(3), return_z=True)
    # P(mu = 0) = P(z < theta) = theta: binomial sd sqrt(theta(1-theta)/n) <= 0.0011; allow 5 sd
    assert abs(float((z < theta).double().mean()) - theta) < 5 * math.sqrt(theta * (1 - theta) / n)
    # mean 1 - theta, variance 1 + theta(1 - theta): sd of the mean ~ 1.1 / sqrt(n) = 0.0025
    assert abs(float(x.double().mean()) - (1 - theta)) < 0.0125
    assert abs(float(x.double().var()) - (1 + theta * (1 - theta))) < 0.02
    # bin probabilities against the integral of the exact density over each bin (binomial sd <= 0.0011)
    edges = torch.linspace(-3, 4, 29, dtype=torch.float64)
    counts = torch.histc(x.double(), bins=28, min=-3, max=4) / n
    fine = torch.linspace(-3, 4, 28 * 200 + 1, dtype=torch.float64)
    dens = M.threshold_density(fine, theta)
    probs = torch.stack([torch.trapezoid(dens[i * 200:(i + 1) * 200 + 1], fine[i * 200:(i + 1) * 200 + 1])
                         for i in range(28)])
    assert edges.shape == (29,)
    assert float((counts - probs).abs().max()) < 0.0055


def test_mixture_log_density_is_stable_far_out():
    x = torch.tensor([60.0, -60.0], dtype=torch.float64)
    lp = M.mixture_log_density(x, [0.5, 0.5], [0.0, 1.0], [1.0, 1.0])
    ref = torch.logaddexp(Normal(0.0, 1.0).log_prob(x), Normal(1.0, 1.0).log_prob(x)) + math.log(0.5)
    assert torch.isfinite(lp).all() and torch.allclose(lp, ref)


@pytest.mark.parametrize("rule", ["gauss_hermite", "uniform", "quantile"])
def test_latent_grid_moments(rule):
    """E z^2 = 1 and E z^4 = 3 under N(0, 1): exact for Gauss-Hermite (degree <= 2n - 1), and to rounding
    for the trapezoid rule on [-8, 8] (spectrally accurate for a Gaussian integrand); the quantile
    midpoint rule misses the tails, so it underestimates both."""
    g = M.latent_grid(40, rule=rule, dtype=torch.float64)
    w, z = g.log_w.exp(), g.z[:, 0]
    m2, m4 = float((w * z**2).sum()), float((w * z**4).sum())
    assert abs(float(w.sum()) - 1) < 1e-12
    if rule == "quantile":
        assert 0.9 < m2 < 1.0 and 2.0 < m4 < 3.0  # measured 0.96 and 2.52
    else:
        assert abs(m2 - 1) < 1e-10 and abs(m4 - 3) < 1e-10


def test_quadrature_matches_the_exact_linear_gaussian_marginal(gen):
    """1-D latent, 2-D data: P(x) = N(b, W W^T + s^2 I) exactly. The trapezoid grid is exact to rounding;
    Gauss-Hermite needs many nodes because the integrand's Gaussian factor is not a polynomial
    (measured errors: 2e-3 with 64 nodes, 1e-7 with 150); the quantile rule misses the tails."""
    model = vc.inference.LinearGaussianModel(torch.tensor([[1.5], [-0.7]], dtype=torch.float64),
                                             torch.tensor([0.3, 0.1], dtype=torch.float64), 0.4)
    x = model.sample(50, generator=gen)
    exact = model.log_marginal(x)
    assert (M.log_marginal_quadrature(model, x, 256) - exact).abs().max() < 1e-12
    assert (M.log_marginal_quadrature(model, x, 150, rule="gauss_hermite") - exact).abs().max() < 1e-6
    assert (M.log_marginal_quadrature(model, x, 64, rule="gauss_hermite") - exact).abs().max() < 1e-2
    assert (M.log_marginal_quadrature(model, x, 512, rule="quantile") - exact).abs().max() > 1e-2


def test_quadrature_of_a_linear_generator_is_its_gaussian_marginal(gen):
    """A ProbabilisticGenerator with hidden=() is G(z) = a z + b, so P(x) = N(b, a^2 + s^2)."""
    model = _gen(hidden=(), sigma=0.3)
    a, b = float(model.net.layers[0].weight.detach()), float(model.net.layers[0].bias.detach())
    x = torch.randn(40, 1, generator=gen) * 2
    exact = Normal(b, math.sqrt(a**2 + 0.3**2)).log_prob(x[:, 0])
    with torch.no_grad():
        assert (M.log_marginal_quadrature(model, x, 256) - exact).abs().max() < 1e-4  # float32 arithmetic


def test_quadrature_matches_brute_force_monte_carlo():
    """A nonlinear G: 4096-node quadrature vs 10^6 prior samples. The MC log-estimate has standard error
    sd(w) / (mean(w) sqrt(K)); allow 5 of them (plus 1e-4 for float32 arithmetic)."""
    model = _gen(hidden=(16,), sigma=0.3, seed=1)
    x = torch.tensor([[-1.0], [0.0], [0.4], [1.5]])
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        quad = M.log_marginal_quadrature(model, x, 4096)
        z = torch.randn(1_000_000, 1, generator=g)
        w = M.log_likelihood_matrix(model, x, z).double().exp()  # (4, 10^6)
    mc = w.mean(1).log()
    se = w.std(1) / w.mean(1) / 1000.0
    assert ((quad.double() - mc).abs() < 5 * se + 1e-4).all(), (quad, mc, se)
    with torch.no_grad():
        mc2 = M.log_marginal_mc(model, x, 1_000_000, generator=torch.Generator().manual_seed(5), batch_size=250_000)
    assert ((quad - mc2).abs().double() < 5 * se + 1e-4).all()


def test_log_mean_exp_is_stable_and_correct_with_and_without_weights():
    a = torch.tensor([[-1000.0, -1001.0], [0.5, 1.5]], dtype=torch.float64)
    out = vc.distributions.log_mean_exp(a, dim=-1)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[1], torch.log((torch.exp(a[1])).mean()))
    assert torch.allclose(out[0], -1000 + torch.log((1 + torch.exp(torch.tensor(-1.0, dtype=torch.float64))) / 2))
    log_w = torch.log(torch.tensor([0.25, 0.75], dtype=torch.float64))
    expected = torch.tensor(math.log(0.25 * math.exp(0.5) + 0.75 * math.exp(1.5)), dtype=torch.float64)
    assert torch.allclose(vc.distributions.log_mean_exp(a[1:], dim=-1, log_weights=log_w), expected)


def test_effective_sample_size():
    K = 10
    assert torch.allclose(M.effective_sample_size(torch.zeros(K)), torch.tensor(float(K)))
    assert abs(float(M.effective_sample_size(torch.tensor([0.0] + [-1e4] * (K - 1)))) - 1.0) < 1e-6
    lw = torch.randn(5, K, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = lw.exp()
    direct = w.sum(-1) ** 2 / (w**2).sum(-1)
    assert torch.allclose(M.effective_sample_size(lw), direct)
    assert torch.allclose(M.effective_sample_size(lw + 900.0), direct)  # scale-free, no overflow


def test_naive_estimate_streaming_equals_one_shot():
    """Chunks of 7 latents (running log-sum-exps) give what the full (N, K) matrix gives for the same draws."""
    model = vc.linear_gaussian.LinearGaussianModel.orthonormal(3, sigma=0.6)
    x = model.sample(4, generator=torch.Generator().manual_seed(1))
    est = M.naive_marginal_estimate(model, x, 30, generator=torch.Generator().manual_seed(2), batch_size=7)
    g = torch.Generator().manual_seed(2)
    z = torch.cat([torch.randn(k, 3, generator=g).double() for k in (7, 7, 7, 7, 2)])  # drawn as the estimator does
    lw = M.log_likelihood_matrix(model, x, z)  # (4, 30)
    assert torch.allclose(est.log_p, torch.logsumexp(lw, -1) - math.log(30))
    assert torch.allclose(est.ess, M.effective_sample_size(lw))
    assert torch.allclose(est.max_weight, torch.softmax(lw, -1).max(-1).values)


def test_naive_estimator_is_unbiased_in_p_not_in_log_p():
    """m = 2, K = 10, 20 000 repeats: mean of P_hat / P within 4 standard errors of 1, while the mean of
    log P_hat - log P is clearly negative (Jensen)."""
    model = vc.linear_gaussian.LinearGaussianModel.orthonormal(2, sigma=0.5)
    x = model.sample(3, generator=torch.Generator().manual_seed(1))
    reps = M.naive_marginal_repeats(model, x, 10, 20_000, generator=torch.Generator().manual_seed(2))  # (3, R)
    gap = reps - model.log_marginal(x)[:, None]
    ratio = gap.exp()
    se = ratio.std(1) / math.sqrt(20_000)
    assert ((ratio.mean(1) - 1).abs() < 4 * se).all(), (ratio.mean(1), se)
    assert (gap.mean(1) + 4 * gap.std(1) / math.sqrt(20_000) < -0.05).all(), gap.mean(1)


def test_naive_relative_variance_matches_monte_carlo():
    model = vc.linear_gaussian.LinearGaussianModel.orthonormal(2, sigma=0.5, seed=3)
    x = model.sample(3, generator=torch.Generator().manual_seed(4))
    z = torch.randn(400_000, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    r = (M.log_likelihood_matrix(model, x, z) - model.log_marginal(x)[:, None]).exp()  # (3, K): P(x|z) / P(x)
    exact = M.naive_relative_variance(model, x)
    # relative variances of ~5-15; the sample variance of heavy-ish weights: allow 10 %
    assert torch.allclose(r.var(1), exact, rtol=0.10), (r.var(1), exact)


def test_naive_estimator_collapses_with_dimension():
    low, high = M.naive_estimator_study(1, 500, n_points=50), M.naive_estimator_study(16, 500, n_points=50)
    assert low.ess > 100 and high.ess < 3
    assert low.rel_error < 0.1 and high.rel_error > 0.9
    assert high.k_needed > 1e4 * low.k_needed
    assert high.log_gap < low.log_gap < 0.01


def test_single_gaussian_is_the_closed_form_mle(gen):
    A = torch.tensor([[2.0, 0.5], [0.0, 0.7]], dtype=torch.float64)
    x = torch.randn(500, 2, generator=gen, dtype=torch.float64) @ A
    fit = M.fit_single_gaussian(x)
    assert torch.allclose(fit.mean, x.mean(0))
    assert torch.allclose(fit.cov, torch.cov(x.T, correction=0))  # divisor N, not N - 1
    ll = fit.log_prob(x)
    assert torch.allclose(ll, MultivariateNormal(fit.mean, fit.cov).log_prob(x))
    # at the MLE the average log-likelihood is -(d log 2 pi + log|S| + d) / 2
    assert abs(float(ll.mean()) + 0.5 * (2 * math.log(2 * math.pi) + float(torch.logdet(fit.cov)) + 2)) < 1e-10
    # and any other Gaussian does worse on the same data
    assert float(MultivariateNormal(fit.mean + 0.1, fit.cov * 1.1).log_prob(x).mean()) < float(ll.mean())


def test_quantile_generator_maps_normal_to_the_target():
    z = torch.linspace(-2.5, 2.5, 11, dtype=torch.float64)
    normal = M.quantile_generator_1d(lambda t: Normal(0.0, 1.0).log_prob(t).exp(), z, lo=-9, hi=9)
    assert torch.allclose(normal, z, atol=1e-3)
    unif = M.quantile_generator_1d(lambda t: vc.data.toy_1d_density("uniform", t), z, lo=-1.5, hi=1.5)
    assert torch.allclose(unif, 2 * torch.special.ndtr(z) - 1, atol=1e-3)


def test_infinite_mixture_converges_with_the_number_of_components():
    model = vc.generators.ProbabilisticGenerator(1, 1, covariance="isotropic", sigma=0.4,
                                                 net=M.FunctionNet(lambda z: 2 * torch.tanh(2 * z)))
    x = torch.linspace(-4, 4, 200)
    with torch.no_grad():
        dense = M.log_marginal_quadrature(model, x, 4096).exp()
        errs = [float((M.log_marginal_quadrature(model, x, k, rule="quantile").exp() - dense).abs().max())
                for k in (2, 8, 64)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.01


# --- tier 3: short training runs -------------------------------------------------------------

def test_fit_beats_the_single_gaussian_on_the_bimodal_target():
    x, x_test = vc.data.toy_1d("bimodal", 500, seed=1), vc.data.toy_1d("bimodal", 1000, seed=2)
    single = float(M.fit_single_gaussian(x).log_prob(x_test).mean())
    model = _gen(hidden=(8,), sigma=0.2)
    hist = M.fit_marginal_likelihood(model, x, steps=150, lr=0.03, n_quadrature=128)
    with torch.no_grad():
        fitted = float(M.log_marginal_quadrature(model, x_test, 2048).mean())
    assert len(hist.losses) == 150 and hist.losses[-1] < hist.losses[0]
    assert fitted > single + 0.4, (fitted, single)  # measured: about -1.5 vs -2.14


def test_linear_generator_reaches_the_single_gaussian():
    """A linear G can only make one Gaussian: its fit converges to the closed-form MLE's log-likelihood."""
    x = vc.data.toy_1d("skewed", 500, seed=1)
    single = float(M.fit_single_gaussian(x).log_prob(x).mean())
    model = _gen(hidden=(), sigma=0.2)
    hist = M.fit_marginal_likelihood(model, x, steps=250, lr=0.03, n_quadrature=128)
    assert abs(-hist.final_loss - single) < 0.01 and -hist.final_loss < single + 1e-3


def test_minibatch_fit_learns_and_capacity_study_runs():
    x = vc.data.toy_1d("bimodal", 1000, seed=1)
    single = float(M.fit_single_gaussian(x).log_prob(x).mean())
    model = _gen(hidden=(8,), sigma=0.2)
    M.fit_marginal_likelihood(model, x, steps=150, lr=0.03, n_quadrature=96, half_width=5.0, batch_size=200)
    with torch.no_grad():
        assert float(M.log_marginal_quadrature(model, x, 1024).mean()) > single + 0.4
    st = M.capacity_study("uniform", hiddens=((),), n_train=300, n_test=300, steps=150, n_quadrature=96)
    assert set(st.test_ll) == {"single Gaussian", "linear G", "target"}
    assert abs(st.train_ll["linear G"] - st.train_ll["single Gaussian"]) < 0.01  # a linear G is one Gaussian
    assert abs(st.grid_ll["linear G"] - st.train_ll["linear G"]) < 1e-3  # training grid vs fine grid
    assert abs(st.test_ll["target"] - math.log(0.5)) < 1e-9  # every held-out point has density 1/2


def test_monte_carlo_fit_also_learns():
    x = vc.data.toy_1d("bimodal", 300, seed=1)
    single = float(M.fit_single_gaussian(x).log_prob(x).mean())
    model = _gen(hidden=(8,), sigma=0.2)
    hist = M.fit_marginal_likelihood(model, x, steps=150, lr=0.03, n_mc=256, seed=0)
    assert hist.method == "mc" and hist.n_latent == 256
    with torch.no_grad():
        assert float(M.log_marginal_quadrature(model, x, 1024).mean()) > single + 0.3


# --- figures and widgets run and draw ----------------------------------------------------------

def test_plots_and_widgets_smoke():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = vc.plotting.threshold_histogram(0.3, n=500)
    assert len(ax.lines) == 3 and "theta = 0.30" in ax.get_title()
    bump = vc.generators.ProbabilisticGenerator(1, 1, covariance="isotropic", sigma=0.4,
                                                net=M.FunctionNet(lambda z: 2 * torch.tanh(2 * z)))
    assert len(vc.plotting.infinite_mixture(bump, 5).lines) == 5 + 2
    x = vc.data.toy_1d("bimodal", 200, seed=0)
    fit = M.fit_single_gaussian(x)
    ax = vc.plotting.fitted_density_1d(x, {"bump": bump, "single": fit},
                                       target=lambda t: vc.data.toy_1d_density("bimodal", t))
    assert len(ax.lines) == 3
    xy = vc.data.toy_2d("two_moons", 100, seed=0)
    curve = _gen(x_dim=2)
    vc.plotting.fitted_density_2d(M.fit_single_gaussian(xy), data=xy, n_grid=20)
    vc.plotting.fitted_density_2d(curve, data=xy, n_grid=20, curve=curve)
    vc.plotting.generator_maps_1d({"bump": bump}, ideal=torch.linspace(-1, 1, 300))
    hist = M.fit_marginal_likelihood(_gen(), x, steps=3, n_quadrature=16)
    vc.plotting.marginal_fit_losses({"a": hist}, reference={"single": 2.0})
    rows = [M.naive_estimator_study(m, 50, n_points=10) for m in (1, 2)]
    axes = vc.plotting.naive_estimator_curves(rows)
    assert len(axes) == 2
    with pytest.raises(ValueError, match="against"):
        vc.plotting.naive_estimator_curves(rows, against="K")
    with pytest.raises(ValueError, match="z_dim"):
        vc.plotting.fitted_density_2d(_gen(z_dim=3, x_dim=2))
    w = vc.widgets.threshold_widget(n=200)
    assert hasattr(w, "children")
    assert hasattr(vc.widgets.infinite_mixture_widget(bump, max_components=8), "children")
    plt.close("all")
