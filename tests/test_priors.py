"""The prior seam: every VAE-like model has ``model.prior``; swapping it is one argument, and the ELBO, the loss
options and the importance weights follow the prior that is plugged in.

Statistical tests are seeded; each states its tolerance (a multiple of the Monte-Carlo standard error).
"""
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal, kl_divergence

import vae_course as vc
from vae_course.distributions import DiagonalGaussian
from vae_course.models import AutoregressiveVAE, MixturePrior, StandardNormalPrior, VAE


def _x(n, shape=(1, 8, 8), seed=0):
    return torch.bernoulli(torch.full((n, *shape), 0.3), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("model", [VAE(), AutoregressiveVAE(), VAE(arch="conv", x_shape=(1, 8, 8))],
                         ids=["VAE", "AutoregressiveVAE", "conv VAE"])
def test_every_vae_has_a_standard_normal_prior_by_default(model):
    assert isinstance(model.prior, StandardNormalPrior) and model.prior.z_dim == model.config.z_dim


def test_standard_normal_prior_matches_torch_distributions():
    prior, g = StandardNormalPrior(3), torch.Generator().manual_seed(0)
    z = torch.randn(5, 3, generator=g)
    ref = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    assert torch.allclose(prior.log_prob(z), ref.log_prob(z), atol=1e-5)
    q = DiagonalGaussian(torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g))
    torch_kl = kl_divergence(Independent(Normal(q.mu, q.std), 1), ref)
    assert torch.allclose(prior.kl(q), torch_kl, atol=1e-5)
    assert torch.allclose(prior.kl(q, per_dimension=True).sum(-1), torch_kl, atol=1e-5)
    draws = prior.sample(200_000, generator=g)  # mean: s.e. 1/sqrt(2e5) = 0.0022; 0.01 is > 4 s.e.
    assert draws.shape == (200_000, 3) and draws.mean(0).abs().max() < 0.01 and (draws.var(0) - 1).abs().max() < 0.02


def _torch_mixture(prior: MixturePrior) -> MixtureSameFamily:
    return MixtureSameFamily(Categorical(logits=prior.logits.detach()),
                             Independent(Normal(prior.means.detach(), prior.logvars.detach().mul(0.5).exp()), 1))


def test_mixture_prior_log_prob_and_samples_match_torch_distributions():
    prior = MixturePrior(2, 4, seed=3)
    with torch.no_grad():
        prior.logvars.copy_(torch.tensor([[-1.0, 0.5], [0.0, 0.0], [1.0, -2.0], [0.3, 0.3]]))
        prior.logits.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
    ref = _torch_mixture(prior)
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(1)) * 2
    assert torch.allclose(prior.log_prob(z), ref.log_prob(z), atol=1e-5)
    draws = prior.sample(100_000, generator=torch.Generator().manual_seed(2))
    se = ref.variance.sqrt() / math.sqrt(100_000)
    assert ((draws.mean(0) - ref.mean).abs() < 5 * se).all()  # 5 standard errors
    assert prior.kl(DiagonalGaussian(torch.zeros(1, 2), torch.zeros(1, 2))) is None  # no closed form


def test_swapping_the_prior_is_one_argument_and_the_elbo_uses_a_monte_carlo_kl():
    """With a mixture prior the ELBO's KL is the Monte-Carlo mean of log q(z|x) - log p(z) over the ELBO's own draws;
    checked against an independent 200,000-sample estimate of KL(q || p) from torch.distributions (4 s.e.)."""
    torch.manual_seed(0)
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16, prior="mixture", prior_components=5)
    assert isinstance(model.prior, MixturePrior) and model.prior.n_components == 5
    x = _x(3)
    with torch.no_grad():
        t = model.elbo(x, n_samples=20_000, generator=torch.Generator().manual_seed(4))
        q = model.encode(x)
        qd = Independent(Normal(q.mu, q.std), 1)
        z = qd.sample((200_000,))  # (S, B, m)
        terms = qd.log_prob(z) - _torch_mixture(model.prior).log_prob(z)  # (S, B)
    kl, se = terms.mean(0), terms.std(0) / math.sqrt(200_000)
    se_elbo = terms.std(0) / math.sqrt(20_000)
    assert ((t.kl - kl).abs() < 4 * (se + se_elbo)).all(), (t.kl, kl)
    assert torch.allclose(t.elbo, t.recon - t.kl)


def test_importance_weights_use_the_prior_that_is_plugged_in():
    torch.manual_seed(1)
    model = VAE(x_shape=(1, 8, 8), z_dim=3, hidden=16, prior="mixture")
    x = _x(4, seed=1)
    with torch.no_grad():
        lw = model.log_weights(x, 7, generator=torch.Generator().manual_seed(5))
        q = model.encode(x)
        z = q.sample(7, generator=torch.Generator().manual_seed(5))
        want = model.decode(z).log_prob(x) + _torch_mixture(model.prior).log_prob(z) - q.log_prob(z)
    assert torch.allclose(lw, want, atol=1e-4)
    ll = vc.evaluate.log_likelihood(model, x, k=2000, generator=torch.Generator().manual_seed(6))
    elbo = vc.evaluate.elbo_per_example(model, x, n_samples=2000)
    assert (ll.log_px >= elbo - 0.05).all()  # L_k >= L_1, up to Monte-Carlo noise of the ELBO estimate


def test_free_bits_needs_a_closed_form_kl_and_says_so():
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=8, prior="mixture")
    with pytest.raises(ValueError, match="free_bits"):
        model.loss(_x(4), free_bits=0.5)


def test_every_vae_accepts_beta_free_bits_and_capacity():
    x = _x(6, seed=2)
    for model in (VAE(x_shape=(1, 8, 8), z_dim=3, hidden=16), AutoregressiveVAE(z_dim=3, hidden=16)):
        torch.manual_seed(7)
        with torch.no_grad():
            fb = model.loss(x, beta=0.5, free_bits=0.4)
            torch.manual_seed(7)
            t = model.elbo(x)
            kl_dims = model.prior.kl(model.encode(x), per_dimension=True)
        floor = vc.objectives.free_bits_kl(kl_dims, 0.4)
        assert math.isclose(float(fb.loss), float(-(t.recon - 0.5 * floor).mean()), rel_tol=1e-5)
        torch.manual_seed(8)
        with torch.no_grad():
            cap = model.loss(x, beta=20.0, capacity=1.5)
        assert math.isclose(float(cap.loss), float(-cap.terms["recon"] + 20.0 * (cap.terms["kl"] - 1.5).abs()), rel_tol=1e-5)
        with pytest.raises(ValueError, match="capacity / free_bits"):
            model.loss(x, free_bits=0.1, capacity=1.0)
        with pytest.raises(ValueError, match="beta"):
            model.loss(x, beta=-1.0)


def test_sample_draws_latents_from_the_prior():
    torch.manual_seed(2)
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=8, prior="mixture")
    a = model.sample(5, generator=torch.Generator().manual_seed(9))
    z = model.prior.sample(5, generator=torch.Generator().manual_seed(9))
    assert torch.allclose(a, model.sample(5, z=z))
    with pytest.raises(ValueError, match=r"z: got \(4, 2\); need latents of shape \(5, 2\)"):
        model.sample(5, z=torch.zeros(4, 2))


def test_a_vae_with_a_mixture_prior_trains_and_checkpoints(tmp_path):
    data = vc.data.digits(binarize="dynamic")
    torch.manual_seed(3)
    model = VAE(x_shape=(1, 8, 8), z_dim=4, hidden=64, prior="mixture", prior_components=4)
    before = model.prior.means.detach().clone()
    h = vc.train.fit(model, data, epochs=4, batch_size=64, lr=3e-3, progress=False, checkpoint=tmp_path / "m.pt")
    assert h.test["loss"][-1] < h.test["loss"][0] - 2.0  # learns (about 10 nats in 4 epochs here)
    assert not torch.equal(model.prior.means.detach(), before)  # the prior is trained with the model
    loaded = vc.checkpoint.load_checkpoint(tmp_path / "m.pt").model
    assert isinstance(loaded.prior, MixturePrior) and torch.equal(loaded.prior.means, model.prior.means.cpu())
