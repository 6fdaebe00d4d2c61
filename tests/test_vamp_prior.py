"""The VampPrior (vae_course.models.priors.VampPrior) through the prior seam: its log-density against
torch.distributions.MixtureSameFamily, its samples, its wiring to the model's encoder (weights saved once, rebuilt by
checkpoints from the config), the Monte-Carlo KL of the ELBO, and a short training run that moves the pseudo-inputs.
Statistical tests are seeded and state their tolerance."""
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

import vae_course as vc
from vae_course.models import VAE, VampPrior, build_prior, equal_mixture_log_prob


def _torch_equal_mixture(mu, logvar) -> MixtureSameFamily:
    k = mu.shape[0]
    return MixtureSameFamily(Categorical(logits=torch.zeros(k)), Independent(Normal(mu, logvar.mul(0.5).exp()), 1))


def _x(n, seed=0):
    return torch.bernoulli(torch.full((n, 1, 8, 8), 0.3), generator=torch.Generator().manual_seed(seed))


def test_equal_mixture_log_prob_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    z = 2 * torch.randn(4, 5, 3, generator=g)
    assert torch.allclose(equal_mixture_log_prob(z, mu, logvar), _torch_equal_mixture(mu, logvar).log_prob(z), atol=1e-5)
    far = torch.full((1, 3), 60.0)  # every component's density underflows: still finite, in log space
    assert torch.isfinite(equal_mixture_log_prob(far, mu, logvar)).all()


def test_the_vamp_prior_is_the_encoders_mixture_at_the_pseudo_inputs():
    torch.manual_seed(1)
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16, prior="vamp", prior_components=6)
    prior = model.prior
    assert isinstance(prior, VampPrior) and prior.encoder is model.encoder and prior.n_components == 6
    with torch.no_grad():
        q = model.encoder(torch.sigmoid(prior.pseudo_logits))  # the components, computed independently
        z = torch.randn(50, 2, generator=torch.Generator().manual_seed(2)) * 1.5
        assert torch.allclose(prior.log_prob(z), _torch_equal_mixture(q.mu, q.logvar).log_prob(z), atol=1e-5)
    draws = prior.sample(100_000, generator=torch.Generator().manual_seed(3))
    ref = _torch_equal_mixture(q.mu, q.logvar)
    se = ref.variance.sqrt() / math.sqrt(100_000)
    assert draws.shape == (100_000, 2) and ((draws.mean(0) - ref.mean).abs() < 5 * se).all()  # 5 standard errors
    assert ((draws.var(0) - ref.variance).abs() < 0.03 * ref.variance).all()  # 3 % (the s.e. of a variance is ~0.5 %)
    assert prior.kl(q) is None


def test_the_encoder_is_saved_once_and_a_checkpoint_rebuilds_the_prior(tmp_path):
    torch.manual_seed(4)
    model = VAE(x_shape=(1, 8, 8), z_dim=3, hidden=16, prior="vamp", prior_components=4)
    keys = list(model.state_dict())
    assert "prior.pseudo_logits" in keys and not any(k.startswith("prior.encoder") or k.startswith("prior._enc") for k in keys)
    assert len(list(model.parameters())) == len(keys)
    with torch.no_grad():
        model.prior.pseudo_logits.normal_(generator=torch.Generator().manual_seed(5))
    vc.checkpoint.save_checkpoint(tmp_path / "vamp.pt", model)
    loaded = vc.checkpoint.load_checkpoint(tmp_path / "vamp.pt").model
    assert isinstance(loaded.prior, VampPrior) and loaded.prior.encoder is loaded.encoder
    z = torch.randn(10, 3, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(loaded.prior.log_prob(z), model.prior.log_prob(z))


def test_the_elbo_of_a_vamp_vae_uses_a_monte_carlo_kl_of_its_own_draws():
    """KL estimated by the ELBO with 20,000 draws against an independent 200,000-draw estimate from torch.distributions
    (tolerance 4 combined standard errors); the importance weights use the same prior."""
    torch.manual_seed(7)
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16, prior="vamp", prior_components=5)
    x = _x(3)
    with torch.no_grad():
        t = model.elbo(x, n_samples=20_000, generator=torch.Generator().manual_seed(8))
        q = model.encode(x)
        comps = model.prior.components()
        qd = Independent(Normal(q.mu, q.std), 1)
        z = qd.sample((200_000,))
        terms = qd.log_prob(z) - _torch_equal_mixture(comps.mu, comps.logvar).log_prob(z)
        lw = model.log_weights(x, 5, generator=torch.Generator().manual_seed(9))
        z5 = q.sample(5, generator=torch.Generator().manual_seed(9))
        want = model.decode(z5).log_prob(x) + _torch_equal_mixture(comps.mu, comps.logvar).log_prob(z5) - q.log_prob(z5)
    se = terms.std(0) * (1 / math.sqrt(200_000) + 1 / math.sqrt(20_000))
    assert ((t.kl - terms.mean(0)).abs() < 4 * se).all()
    assert torch.allclose(lw, want, atol=1e-4)


def test_init_from_sets_the_pseudo_inputs_to_images_and_checks_their_shape():
    model = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=8, prior="vamp", prior_components=3)
    x = _x(5, seed=1)
    model.prior.init_from(x)
    assert torch.allclose(model.prior.pseudo_inputs, x[:3].clamp(0.02, 0.98), atol=1e-5)
    with pytest.raises(ValueError, match=r"x: got shape \(2, 1, 8, 8\); need at least 3 images"):
        model.prior.init_from(x[:2])


def test_build_prior_needs_the_encoder_for_a_vamp_prior():
    with pytest.raises(ValueError, match="vamp"):
        build_prior("vamp", 2)
    with pytest.raises(TypeError, match="encoder"):
        VampPrior(object(), (1, 8, 8))
    with pytest.raises(ValueError, match="z_dim"):
        build_prior("vamp", 3, encoder=VAE(x_shape=(1, 8, 8), z_dim=2, hidden=8).encoder, x_shape=(1, 8, 8))


def test_a_vamp_vae_trains_and_moves_its_pseudo_inputs():
    data = vc.data.digits(binarize="dynamic")
    torch.manual_seed(10)
    model = VAE(x_shape=(1, 8, 8), z_dim=4, hidden=64, prior="vamp", prior_components=10)
    model.prior.init_from(data.x_train[:10])
    before = model.prior.pseudo_logits.detach().clone()
    h = vc.train.fit(model, data, epochs=4, batch_size=64, lr=3e-3, progress=False)
    assert h.test["loss"][-1] < h.test["loss"][0] - 1.0  # learns (1.7 nats from epoch 1 to 4 here)
    assert (model.prior.pseudo_logits.detach() - before).abs().max() > 0.05  # the prior is trained with the model
