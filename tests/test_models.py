"""vae_course.models: shapes and errors; the ELBO's pieces against torch.distributions and Monte Carlo."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

import vae_course as vc
from vae_course.distributions import DiagonalGaussian, reparameterize
from vae_course.models import (VAE, BernoulliPixels, GaussianPixels, LossTerms, StandardNormalPrior, VAEConfig, build_model,
                               register_model)


def _x(n=6, shape=(1, 28, 28), seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)).bernoulli()


# ---------------------------------------------------------------- tier 1: shapes and errors
def test_default_vae_shapes():
    m = VAE()
    x = _x()
    q = m.encode(x)
    assert q.mu.shape == q.logvar.shape == (6, 20)
    assert m.decode(q.mu).logits.shape == (6, 1, 28, 28)
    t = m.elbo(x)
    assert all(v.shape == (6,) for v in t[:4]) and t.tc is None  # tc: only with the beta-TCVAE option
    out = m.loss(x)
    assert isinstance(out, LossTerms) and out.loss.dim() == 0 and set(out.terms) == {"loss", "elbo", "recon", "kl"}
    assert m.sample(5).shape == (5, 1, 28, 28)
    assert m.reconstruct(x).shape == x.shape
    assert m.log_weights(x, 7).shape == (7, 6)
    assert m.elbo(x.flatten(1)).elbo.shape == (6,)  # flat images are accepted
    assert m.elbo(x, n_samples=4).recon.shape == (6,)


@pytest.mark.parametrize("arch", ["mlp", "conv", "linear"])
@pytest.mark.parametrize("lik,var", [("bernoulli", "fixed"), ("gaussian", "fixed"), ("gaussian", "shared"),
                                     ("gaussian", "learned")])
def test_every_variant_gives_finite_loss_and_gradients(arch, lik, var):
    m = VAE(x_shape=(1, 8, 8), z_dim=3, hidden=32, arch=arch, likelihood=lik, decoder_var=var, channels=(4, 8))
    x = _x(5, (1, 8, 8))
    loss = m.loss(x).loss
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert m.sample(3).shape == (3, 1, 8, 8)


@pytest.mark.parametrize("kwargs,match", [
    ({"arch": "resnet"}, "arch"), ({"likelihood": "poisson"}, "likelihood"), ({"decoder_var": "learned"}, "decoder_var"),
    ({"z_dim": 0}, "z_dim"), ({"x_shape": (28, 28)}, "x_shape"), ({"activation": "swish"}, "activation"),
    ({"posterior_var": "abs"}, "posterior_var"),
])
def test_bad_config_names_the_field(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        VAEConfig(**kwargs)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="x_shape"):
        VAE(x_shape=(1, 10, 10), arch="conv")
    with pytest.raises(ValueError, match="decoder_std"):
        VAE(likelihood="gaussian", decoder_std=-1.0)
    with pytest.raises(ValueError, match="min_decoder_std"):
        VAE(likelihood="gaussian", decoder_std=0.1, min_decoder_std=0.2)
    m = VAE()
    with pytest.raises(ValueError, match="x: got shape"):
        m.elbo(torch.rand(3, 1, 8, 8))
    with pytest.raises(TypeError, match="x"):
        m.elbo(torch.ones(3, 784, dtype=torch.int64))
    with pytest.raises(ValueError, match="eps"):
        reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), eps=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="deterministic"):
        VAE(deterministic=True).log_weights(_x(), 3)


def test_registry_rebuilds_from_dict_and_rejects_unknowns():
    m = build_model("VAE", {"z_dim": 3, "x_shape": [1, 8, 8], "channels": [4, 8]})
    assert m.config.x_shape == (1, 8, 8) and m.config.channels == (4, 8)
    with pytest.raises(ValueError, match="registered models"):
        build_model("NoSuchModel", {})
    with pytest.raises(ValueError, match="unknown field"):
        build_model("VAE", {"zdim": 3})
    with pytest.raises(TypeError, match="config_class"):
        register_model(type("Bare", (torch.nn.Module,), {}))


# ---------------------------------------------------------------- tier 2: the formulas
def test_reparameterize_uses_the_standard_deviation():
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[math.log(4.0), math.log(0.25)]])
    eps = torch.tensor([[1.0, 2.0]])
    # z = mu + exp(logvar / 2) * eps = [0.5 + 2, -1 + 0.5 * 2]
    assert torch.allclose(reparameterize(mu, logvar, eps=eps), torch.tensor([[2.5, 0.0]]))
    z = reparameterize(mu, logvar, n_samples=200_000, generator=torch.Generator().manual_seed(0))  # (S, 1, 2)
    # Monte Carlo: standard error of the mean sigma / sqrt(2e5) <= 0.0045; of the variance ~ var * sqrt(2/2e5)
    assert torch.allclose(z.mean(0), mu, atol=0.02)
    assert torch.allclose(z.var(0), logvar.exp(), rtol=0.02)


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    q = DiagonalGaussian(torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g))
    ref = kl_divergence(Normal(q.mu, q.std), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(StandardNormalPrior(5).kl(q), ref, atol=1e-5)
    z = q.sample(generator=g)
    assert torch.allclose(q.log_prob(z), Normal(q.mu, q.std).log_prob(z).sum(-1), atol=1e-5)


def test_pixel_log_probs_match_torch_distributions():
    g = torch.Generator().manual_seed(2)
    logits, x = torch.randn(3, 1, 4, 4, generator=g), _x(3, (1, 4, 4))
    ref = Bernoulli(logits=logits).log_prob(x).sum((-3, -2, -1))
    assert torch.allclose(BernoulliPixels(logits).log_prob(x), ref, atol=1e-5)
    mean, logvar = torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)
    ref = Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).sum((-3, -2, -1))
    assert torch.allclose(GaussianPixels(mean, logvar).log_prob(x), ref, atol=1e-4)


def test_elbo_closed_form_kl_agrees_with_monte_carlo_log_weights():
    # ELBO = E_q[log p(x|z)] - KL (closed form) must equal E_q[log p(x|z) + log p(z) - log q(z|x)]
    torch.manual_seed(3)
    m = VAE(x_shape=(1, 8, 8), z_dim=4, hidden=32)
    x = _x(4, (1, 8, 8))
    with torch.no_grad():
        elbo = m.elbo(x, n_samples=20_000).elbo
        mc = m.log_weights(x, 20_000).mean(0)
    # both are means of 2e4 draws; the per-draw std is a few nats -> standard error < 0.05 nats
    assert torch.allclose(elbo, mc, atol=0.15)


def test_beta_weights_the_kl_only():
    torch.manual_seed(4)
    m = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16)
    x = _x(3, (1, 8, 8))
    torch.manual_seed(5)
    t = m.elbo(x, beta=0.25)
    assert torch.allclose(t.total, t.recon - 0.25 * t.kl)
    assert torch.allclose(t.elbo, t.recon - t.kl)
    torch.manual_seed(7)
    loss = m.loss(x, beta=0.0).loss
    torch.manual_seed(7)  # the same z: at beta = 0 the loss is the reconstruction term alone
    assert torch.allclose(loss, -m.elbo(x).recon.mean())


def test_decoder_variance_floor_and_fixed_value():
    fixed = VAE(likelihood="gaussian", decoder_var="fixed", decoder_std=0.3, x_shape=(1, 8, 8), z_dim=2)
    p = fixed.decode(torch.zeros(1, 2))
    assert torch.allclose(p.std, torch.full_like(p.mean, 0.3), atol=1e-6)
    floored = VAE(likelihood="gaussian", decoder_var="learned", min_decoder_std=0.05, x_shape=(1, 8, 8), z_dim=2)
    raw = torch.full((1, 2, 8, 8), -1e4)  # the network asks for sigma -> 0
    assert torch.allclose(floored.head(raw).std, torch.full((1, 1, 8, 8), 0.05), rtol=1e-4)
    bare = VAE(likelihood="gaussian", decoder_var="learned", min_decoder_std=0.0, x_shape=(1, 8, 8), z_dim=2)
    assert float(bare.head(torch.full((1, 2, 8, 8), -60.0)).std.max()) < 1e-10  # no floor: sigma can vanish


@pytest.mark.parametrize("kind", ["exp", "softplus"])
def test_posterior_variance_is_positive_and_finite_for_extreme_outputs(kind):
    m = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=8, posterior_var=kind)
    with torch.no_grad():
        m.encoder.head.bias.copy_(torch.tensor([0.0, 0.0, -1e4, 1e4]))
    q = m.encode(_x(2, (1, 8, 8)))
    var = q.logvar.exp()
    assert (var > 0).all() and torch.isfinite(var).all() and torch.isfinite(m.prior.kl(q)).all()


def test_vanilla_autoencoder_is_the_noise_free_kl_free_special_case():
    torch.manual_seed(6)
    ae = VAE(x_shape=(1, 8, 8), z_dim=2, hidden=16, deterministic=True)
    x = _x(4, (1, 8, 8))
    t = ae.elbo(x)
    assert (t.kl == 0).all()
    assert torch.allclose(t.recon, ae.decode(ae.encode(x).mu).log_prob(x))
    assert torch.equal(ae.reconstruct(x), ae.reconstruct(x, sample_latent=True))  # no noise anywhere
