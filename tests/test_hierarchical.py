"""vae_course.models.hierarchical: precision weighting against the normalised product of densities, the ladder prior
against torch.distributions, the two-level ELBO (closed-form KLs per level) against a brute-force Monte-Carlo ELBO and
against log p(x) by quadrature on a tiny model, the per-level KL that free bits floors, checkpoints, and a short
training run. Statistical tests are seeded and state their tolerance."""
import math

import pytest
import torch
from torch.distributions import Independent, Normal

import vae_course as vc
from vae_course.distributions import DiagonalGaussian
from vae_course.models import LadderPrior, LadderVAE, precision_weighted


def _x(n, shape=(1, 8, 8), seed=0):
    return torch.bernoulli(torch.full((n, *shape), 0.3), generator=torch.Generator().manual_seed(seed))


def _normal(q: DiagonalGaussian) -> Independent:
    return Independent(Normal(q.mu, q.std), 1)


def test_precision_weighting_is_the_normalised_product_of_the_two_densities():
    g = torch.Generator().manual_seed(0)
    a = DiagonalGaussian(torch.randn(1, generator=g, dtype=torch.float64), torch.randn(1, generator=g, dtype=torch.float64))
    b = DiagonalGaussian(torch.randn(1, generator=g, dtype=torch.float64), torch.randn(1, generator=g, dtype=torch.float64))
    c = precision_weighted(a, b)
    z = torch.linspace(-12, 12, 24001, dtype=torch.float64)[:, None]
    log_prod = _normal(a).log_prob(z) + _normal(b).log_prob(z)
    dz = z[1, 0] - z[0, 0]
    want = log_prod - torch.logsumexp(log_prod, 0) - torch.log(dz)  # normalised by quadrature
    assert torch.allclose(_normal(c).log_prob(z), want, atol=1e-6)


def test_the_ladder_prior_matches_torch_distributions_and_samples_top_down():
    torch.manual_seed(1)
    prior = LadderPrior(3, 2, hidden=8)
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        p1 = prior.conditional(z[:, 3:])
        want = Independent(Normal(torch.zeros(2), torch.ones(2)), 1).log_prob(z[:, 3:]) + _normal(p1).log_prob(z[:, :3])
        assert torch.allclose(prior.log_prob(z), want, atol=1e-5)
    draws = prior.sample(100_000, generator=torch.Generator().manual_seed(3))
    assert draws.shape == (100_000, 5)
    assert draws[:, 3:].mean(0).abs().max() < 0.02 and (draws[:, 3:].var(0) - 1).abs().max() < 0.03  # > 4 s.e.
    z2 = torch.zeros(4, 2)
    fixed = prior.sample(4, generator=torch.Generator().manual_seed(4), z2=z2)
    assert torch.equal(fixed[:, 3:], z2)


def test_the_two_level_elbo_equals_a_brute_force_monte_carlo_elbo():
    """The model's ELBO uses closed-form KLs for each level; the brute force averages log p(x, z1, z2) - log q(z1, z2|x)
    over 100,000 draws built with torch.distributions from the model's pieces. Tolerance: 4 combined standard errors."""
    torch.manual_seed(5)
    model = LadderVAE(x_shape=(1, 4, 4), z1_dim=2, z2_dim=2, hidden=8, hidden2=8)
    x = _x(3, (1, 4, 4), seed=1)
    n = 100_000
    with torch.no_grad():
        fast = model.elbo(x, n_samples=20_000, generator=torch.Generator().manual_seed(6))
        est1, q2 = model._bottom_up(x)
        z2 = _normal(q2).sample((n,))
        p1 = model.prior.conditional(z2)
        q1 = precision_weighted(est1, p1)
        z1 = _normal(q1).sample()
        log_p = (model.decode(torch.cat([z1, z2], -1)).log_prob(x) + _normal(p1).log_prob(z1)
                 + Independent(Normal(torch.zeros(2), torch.ones(2)), 1).log_prob(z2))
        terms = log_p - _normal(q1).log_prob(z1) - _normal(q2).log_prob(z2)  # (n, B)
    se = terms.std(0) * (1 / math.sqrt(n) + 1 / math.sqrt(20_000))
    assert ((fast.elbo - terms.mean(0)).abs() < 4 * se).all(), (fast.elbo, terms.mean(0), se)


def test_on_a_tiny_model_the_importance_weights_average_to_p_x_by_quadrature():
    """One latent per level: p(x) is a 2-D integral over (z1, z2), computed by quadrature on a 301 x 301 grid. The
    importance weights w = p(x, z1, z2) / q(z1, z2 | x) are an unbiased estimate of it: their mean over 200,000 draws
    must be within 5 standard errors; the ELBO stays below log p(x)."""
    torch.manual_seed(7)
    model = LadderVAE(x_shape=(1, 3, 3), z1_dim=1, z2_dim=1, hidden=8, hidden2=8).double()
    x = _x(2, (1, 3, 3), seed=2).double()
    axis = torch.linspace(-7, 7, 301, dtype=torch.float64)
    z = torch.cartesian_prod(axis, axis)  # (G, 2): (z1, z2)
    with torch.no_grad():
        log_joint = model.decode(z[:, None]).log_prob(x) + model.prior.log_prob(z)[:, None]  # (G, B)
        exact = torch.logsumexp(log_joint, 0) + 2 * torch.log(axis[1] - axis[0])
        w = model.log_weights(x, 200_000, generator=torch.Generator().manual_seed(8)).exp()  # (k, B)
        elbo = model.elbo(x, n_samples=5000).elbo
    mean, se = w.mean(0), w.std(0) / math.sqrt(len(w))
    assert ((mean - exact.exp()).abs() < 5 * se).all() and (se < 0.05 * mean).all(), (mean, exact.exp(), se)
    assert (elbo < exact).all()


def test_the_kl_per_coordinate_is_split_by_level_and_free_bits_floors_it():
    torch.manual_seed(9)
    model = LadderVAE(x_shape=(1, 8, 8), z1_dim=4, z2_dim=2, hidden=16, hidden2=8)
    x = _x(5, seed=3)
    with torch.no_grad():
        d = model.posterior_draws(model._images(x), generator=torch.Generator().manual_seed(10))
        t = model.elbo(x, generator=torch.Generator().manual_seed(10))
        bottom, top = model.kl_per_level(x, generator=torch.Generator().manual_seed(10))
        fb = model.loss(x, free_bits=10.0)  # a floor above every coordinate's KL: the rate is 6 x 10 nats
    assert d.kl_dims.shape == (5, 6) and torch.allclose(t.kl, d.kl_dims.sum(-1))
    assert math.isclose(bottom + top, float(t.kl.mean()), rel_tol=1e-5)
    with torch.no_grad():
        want_top = float(vc.distributions.kl_normal_std(*model._bottom_up(x)[1]).mean())
    assert math.isclose(top, want_top, rel_tol=1e-5)
    assert math.isclose(float(fb.loss), float(-fb.terms["recon"]) + 60.0, rel_tol=1e-4)


def test_shapes_sampling_encoding_and_checkpoints(tmp_path):
    torch.manual_seed(11)
    model = LadderVAE(x_shape=(1, 8, 8), z1_dim=4, z2_dim=2, hidden=16, hidden2=8)
    x = _x(4, seed=4)
    assert model.encode(x).mu.shape == (4, 6) and model.log_weights(x, 3).shape == (3, 4)
    assert model.sample(5).shape == (5, 1, 8, 8) and model.sample_levels(2, 3).shape == (2, 3, 1, 8, 8)
    vc.checkpoint.save_checkpoint(tmp_path / "l.pt", model)
    loaded = vc.checkpoint.load_checkpoint(tmp_path / "l.pt").model
    with torch.no_grad():
        assert torch.allclose(loaded.log_weights(x, 3, generator=torch.Generator().manual_seed(12)),
                              model.log_weights(x, 3, generator=torch.Generator().manual_seed(12)), atol=1e-5)
    with pytest.raises(ValueError, match="z2_dim"):
        LadderVAE(z2_dim=0)


def test_a_ladder_vae_trains_and_free_bits_keep_its_top_level_in_use():
    data = vc.data.digits(binarize="dynamic")
    kl_top = {}
    for floor in (0.0, 0.5):
        torch.manual_seed(13)
        model = LadderVAE(x_shape=(1, 8, 8), z1_dim=4, z2_dim=2, hidden=64, hidden2=32)
        h = vc.train.fit(model, data, epochs=5, batch_size=64, lr=3e-3, progress=False,
                         loss_kwargs={"free_bits": floor} if floor else None)
        assert h.test["elbo"][-1] > h.test["elbo"][0] + 1.0  # learns
        kl_top[floor] = model.kl_per_level(data.x_test, generator=torch.Generator().manual_seed(14))[1]
    assert kl_top[0.5] > 0.6  # near the floor of 2 x 0.5 nats for the top level's two coordinates
    assert kl_top[0.5] > kl_top[0.0]
