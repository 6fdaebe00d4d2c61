"""vae_course.beyond, chapter 9's measurements: the linear-Gaussian VAE at the best diagonal q (chapter 3's 0.908 nats),
the ELBO and IWAE from one set of weights, the aggregate posterior against the prior (against closed forms for
Gaussians), sizes for equal-parameter comparisons, the exact log p(x) of a 2-D latent by quadrature, analogies,
inpainting, and the stored two-level study with the command that reproduces its tiny rows."""
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

import vae_course as vc
from vae_course import beyond
from vae_course.models import VAE, StandardNormalPrior


def _chapter3_model():
    W2 = torch.tensor([[1.0, 0.9], [0.9, 1.0], [1.2, 1.0], [0.4, 0.6], [-0.5, -0.3]])
    return vc.linear_gaussian.LinearGaussianModel(W2, b=torch.tensor([0.5, -0.3, 0.2, 0.0, 0.1]), sigma=0.5)


# ---------------------------------------------------------------- richer posteriors
def test_the_linear_gaussian_vae_starts_at_the_best_diagonal_q_and_its_gap_is_the_mean_field_gap():
    lg = _chapter3_model()
    x = lg.sample(50, generator=torch.Generator().manual_seed(0))
    vae = beyond.linear_gaussian_vae(lg)
    q = vae.encode(x)
    mu, logvar = vc.inference.mean_field_optimum(lg, x)
    assert torch.allclose(q.mu, mu, atol=1e-5) and torch.allclose(q.logvar, logvar, atol=1e-5)
    exact = vc.inference.bound_gap(lg, x, mu, logvar)
    assert torch.allclose(vc.evaluate.linear_gaussian_log_marginal(vae, x), exact.log_px, atol=1e-4)
    est = beyond.bound_terms(vae, x, k=4000, generator=torch.Generator().manual_seed(1))
    assert abs(est.elbo - float(exact.elbo.mean())) < 4 * est.elbo_se  # the Monte-Carlo ELBO, 4 standard errors
    Lam = lg.posterior_precision()
    analytic = 0.5 * float(Lam.diagonal().log().sum() - torch.logdet(Lam))
    assert math.isclose(float(exact.gap.mean()), analytic, rel_tol=1e-4) and math.isclose(analytic, 0.908, abs_tol=5e-4)
    assert not any(p.requires_grad for p in vae.decoder.parameters())


def test_bound_terms_are_the_mean_and_the_log_mean_exp_of_the_same_weights():
    torch.manual_seed(2)
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16)
    x = torch.bernoulli(torch.full((7, 1, 8, 8), 0.3), generator=torch.Generator().manual_seed(3))
    t = beyond.bound_terms(model, x, k=50, generator=torch.Generator().manual_seed(4))
    lw = vc.evaluate.log_weights(model, x, 50, generator=torch.Generator().manual_seed(4)).double()
    assert math.isclose(t.elbo, float(lw.mean()), rel_tol=1e-6)
    assert math.isclose(t.iwae, float((torch.logsumexp(lw, 0) - math.log(50)).mean()), rel_tol=1e-6)
    assert t.iwae >= t.elbo and t.per_image_elbo.shape == (7,)
    assert math.isclose(t.elbo_se, float((lw.var(0) / 50).sum().sqrt() / 7), rel_tol=1e-6)


def test_fit_posterior_trains_only_what_requires_gradients():
    lg = _chapter3_model()
    x = lg.sample(40, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(6)
    vae = beyond.linear_gaussian_vae(lg, flow="planar", flow_layers=1)
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    h = beyond.fit_posterior(vae, x, steps=50)
    after = vae.state_dict()
    assert torch.equal(before["decoder.linear.weight"], after["decoder.linear.weight"])
    assert not torch.equal(before["flow.layers.0.u"], after["flow.layers.0.u"])
    assert h.epochs >= 2  # two stages: lr, then lr / 10
    with pytest.raises(ValueError, match="steps"):
        beyond.fit_posterior(vae, x, steps=0)


# ---------------------------------------------------------------- the aggregate posterior against the prior
def test_the_aggregate_density_is_the_mixture_of_the_encoded_gaussians():
    g = torch.Generator().manual_seed(7)
    mu, logvar = torch.randn(30, 2, generator=g), torch.randn(30, 2, generator=g) - 1
    z = torch.randn(1000, 2, generator=g) * 2
    ref = MixtureSameFamily(Categorical(logits=torch.zeros(30)), Independent(Normal(mu, logvar.mul(0.5).exp()), 1))
    assert torch.allclose(beyond.aggregate_log_density(z, mu, logvar, chunk=64), ref.log_prob(z), atol=1e-4)


@pytest.mark.parametrize("a, s", [(0.6, 0.5), (1.2, 0.4)])
def test_prior_hole_terms_match_closed_forms_for_a_gaussian_aggregate(a, s):
    """x ~ N(0, 1) and q(z|x) = N(a x, s^2) give the aggregate posterior N(0, a^2 + s^2); against p = N(0, 1) both KLs
    are closed form and the uncovered mass is a 1-D integral (by quadrature). 4,000 encoded points, 20,000 prior
    draws; tolerance 0.02 (a few Monte-Carlo standard errors of these estimates)."""
    g = torch.Generator().manual_seed(8)
    x = torch.randn(4000, 1, generator=g, dtype=torch.float64)
    mu, logvar = a * x, torch.full_like(x, 2 * math.log(s))
    v = a**2 + s**2
    got = beyond.prior_hole_terms(mu, logvar, StandardNormalPrior(1).double(), n_draws=20_000, generator=g)
    assert math.isclose(got.kl_q_p, 0.5 * (v - 1 - math.log(v)), abs_tol=0.02), got
    assert math.isclose(got.kl_p_q, 0.5 * (1 / v - 1 + math.log(v)), abs_tol=0.02), got
    t = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    p, q = Normal(0.0, 1.0).log_prob(t).exp(), Normal(0.0, math.sqrt(v)).log_prob(t).exp()
    assert math.isclose(got.uncovered, float((p - q).clamp_min(0).sum() * (t[1] - t[0])), abs_tol=0.02), got


def test_a_prior_hole_is_measured_where_the_codes_leave_the_prior_empty():
    g = torch.Generator().manual_seed(9)
    clusters = torch.tensor([[-2.0, 0.0], [2.0, 0.0]]).repeat(500, 1)  # codes only near two points
    hole = beyond.prior_hole_terms(clusters, torch.full_like(clusters, -3.0), StandardNormalPrior(2), generator=g)
    filled = beyond.prior_hole_terms(torch.randn(1000, 2, generator=g) * 0.95, torch.full((1000, 2), math.log(0.1)),
                                     StandardNormalPrior(2), generator=g)
    assert hole.uncovered > 0.8 and filled.uncovered < 0.25 and hole.kl_q_p > filled.kl_q_p + 1


# ---------------------------------------------------------------- equal sizes, exact log p(x) in 2-D
@pytest.mark.parametrize("x_dim, z_dim, hidden", [(784, 24, 430), (64, 12, 180), (784, 2, 37)])
def test_one_level_hidden_inverts_the_parameter_count_of_a_vae(x_dim, z_dim, hidden):
    side = int(math.isqrt(x_dim))
    n = beyond.parameter_count(VAE(x_shape=(1, side, side), z_dim=z_dim, hidden=hidden))
    assert n == hidden * (2 * x_dim + 3 * z_dim + 2) + 2 * z_dim + x_dim
    assert beyond.one_level_hidden(n, x_dim, z_dim) == hidden


def test_the_latent_grid_gives_the_p_x_that_the_importance_weights_estimate():
    """A 2-D latent: log p(x) by quadrature (the fast matrix product for Bernoulli pixels, and pixel by pixel) must agree,
    and the importance weights, an unbiased estimate of p(x), must average to it: mean of w / p(x) over 100,000 draws
    within 5 standard errors of 1. The ELBO lies below log p(x)."""
    torch.manual_seed(10)
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=32)
    x = torch.bernoulli(torch.full((3, 1, 8, 8), 0.3), generator=torch.Generator().manual_seed(11))
    grid = beyond.latent_grid(model, x, limit=6, n=241)
    slow = beyond.latent_grid(model, x, limit=6, n=61, chunk=500)
    coarse_fast = beyond.latent_grid(model, x, limit=6, n=61)
    assert torch.allclose(slow.log_px, coarse_fast.log_px, atol=1e-4) and grid.log_joint.shape == (3, 241 * 241)
    lw = vc.evaluate.log_weights(model, x, 100_000, generator=torch.Generator().manual_seed(12)).double()
    ratio = torch.exp(lw - grid.log_px.double())  # (k, B): w / p(x)
    mean, se = ratio.mean(0), ratio.std(0) / math.sqrt(len(ratio))
    assert ((mean - 1).abs() < 5 * se).all() and (se < 0.01).all(), (mean, se)
    assert (lw.mean(0) < grid.log_px).all()
    with pytest.raises(ValueError, match="2-D latent"):
        beyond.latent_grid(VAE(x_shape=(1, 8, 8), z_dim=3, hidden=8), x)


# ---------------------------------------------------------------- conditioning
def test_inpainting_an_unconditional_vae_keeps_the_observed_pixels():
    torch.manual_seed(13)
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16)
    x = torch.bernoulli(torch.full((4, 1, 8, 8), 0.4), generator=torch.Generator().manual_seed(14))
    mask = beyond.top_half((1, 8, 8))
    assert mask.sum() == 32 and mask[:, :4].all() and not mask[:, 4:].any()
    done = beyond.inpaint(model, x, mask, n_steps=4, generator=torch.Generator().manual_seed(15))
    assert torch.equal(done[:, mask], x[:, mask])
    with pytest.raises(TypeError, match="observed"):
        beyond.inpaint(model, x, mask.float())
    with pytest.raises(TypeError, match="ConditionalVAE"):
        beyond.analogies(model, x, torch.zeros(4, dtype=torch.long))


def test_classifier_confidence_reports_the_mean_top_probability_and_the_class_shares():
    clf = vc.discriminative.DigitClassifier(64, 10)
    x = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(16))
    conf, shares = beyond.classifier_confidence(clf, x)
    pred = vc.discriminative.predict(clf, x)
    assert math.isclose(conf, float(pred.confidence.mean()), rel_tol=1e-6)
    assert shares.shape == (10,) and math.isclose(float(shares.sum()), 1.0, rel_tol=1e-6)


# ---------------------------------------------------------------- the stored two-level study
def test_the_stored_study_has_every_configuration_for_two_seeds():
    study = beyond.load_hierarchy_study()
    main = [r for r in study["rows"] if r["epochs"] == 30]
    from vae_course.experiments.hierarchy_sweep import CONFIGS
    assert sorted((r["config"], r["seed"]) for r in main) == sorted((c, s) for c in CONFIGS for s in (0, 1))
    for r in main:
        assert r["iwae"] >= r["elbo"] and r["kl_bottom"] > 0
        assert (r["kl_top"] > 0) == r["config"].startswith("two-level")
    sizes = {r["params"] for r in main}
    assert max(sizes) - min(sizes) < 0.001 * max(sizes)  # equal parameter counts, to 0.1 %


def test_the_command_reproduces_the_stored_tiny_rows(tmp_path):
    """`vae-course hierarchy-sweep` re-run for the stored 2-epoch rows gives the same scores (CPU training is
    deterministic; 0.3 nats of slack for floating-point differences between machines)."""
    from vae_course import cli
    stored = [r for r in beyond.load_hierarchy_study()["rows"] if r["epochs"] == 2]
    assert stored, "vae_course/stored/ch09_hierarchy.json has no 2-epoch rows"
    out = tmp_path / "h.json"
    s = stored[0]
    argv = ["hierarchy-sweep", "--out", str(out), "--configs", *sorted({r["config"] for r in stored}),
            "--seeds", *sorted({str(r["seed"]) for r in stored}), "--epochs", "2", "--k", str(s["k"]),
            "--n-test", str(s["n_test"])]
    assert cli.main(argv) == 0
    new = {(r["config"], r["seed"]): r for r in beyond.load_hierarchy_study(out)["rows"]}
    assert len(new) == len(stored)
    for r in stored:
        got = new[(r["config"], r["seed"])]
        for key in ("elbo", "iwae", "kl_bottom", "kl_top"):
            assert got[key] == pytest.approx(r[key], abs=0.3), key
        assert got["params"] == r["params"]
