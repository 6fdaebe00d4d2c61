"""vae_course.models.autoregressive_vae: the VAE with a PixelCNN decoder conditioned on z (chapter 7)."""
import itertools
import math

import pytest
import torch

import vae_course as vc
from vae_course import objectives as O
from vae_course import distributions as D
from vae_course.models import AutoregressiveVAE, AutoregressiveVAEConfig, build_model


def _model(**kw):
    torch.manual_seed(0)
    return AutoregressiveVAE(x_shape=(1, 4, 4), z_dim=3, hidden=16, pixel_hidden=8, **kw)


def _x(n=6, seed=0):
    return torch.bernoulli(torch.full((n, 1, 4, 4), 0.4), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- shapes and errors
@pytest.mark.parametrize("cond_map", [0, 2])
def test_shapes_terms_and_the_decode_protocol(cond_map):
    model = _model(cond_map=cond_map)
    x = _x()
    out = model.loss(x)
    assert set(out.terms) == {"loss", "elbo", "recon", "kl"} and out.loss.dim() == 0
    q = model.encode(x)
    assert q.mu.shape == (6, 3)
    assert model.decode(q.mu).log_prob(x).shape == (6,)
    assert model.log_weights(x, 5).shape == (5, 6)
    z = torch.randn(4, 6, 3)  # (S, B, m): S draws per image, as in log_weights
    lp = model.decode(z).log_prob(x)
    assert lp.shape == (4, 6)
    assert torch.allclose(lp[2], model.decode(z[2]).log_prob(x), atol=1e-5)
    assert model.sample(5).shape == (5, 1, 4, 4)
    assert model.sample(2, z=torch.zeros(2, 3), noise=torch.rand(1, 1, 4, 4)).shape == (2, 1, 4, 4)
    assert model.loss(x.flatten(1)).loss.isfinite()  # flat images are accepted


@pytest.mark.parametrize("kwargs,match", [({"z_dim": 0}, "z_dim"), ({"x_shape": (8, 8)}, "x_shape"),
                                          ({"activation": "swish"}, "activation"), ({"cond_map": -1}, "cond_map")])
def test_bad_config_names_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AutoregressiveVAEConfig(**kwargs)


def test_bad_inputs_are_named():
    model = _model()
    with pytest.raises(ValueError, match="x"):
        model.loss(torch.zeros(2, 1, 5, 5))
    with pytest.raises(TypeError, match="x"):
        model.loss(torch.zeros(2, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="z"):
        model.decode(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="z"):
        model.sample(2, z=torch.zeros(3, 3))


# ---------------------------------------------------------------- the objective
def test_elbo_terms_and_the_closed_form_kl():
    model = _model()
    x = _x()
    torch.manual_seed(1)
    t = model.elbo(x)
    q = model.encode(x)
    assert torch.allclose(t.kl, D.kl_normal_std(q.mu, q.logvar), atol=1e-5)
    assert torch.allclose(t.elbo, t.recon - t.kl) and torch.allclose(t.total, t.elbo)
    torch.manual_seed(1)
    t2 = model.elbo(x, beta=0.3)
    assert torch.allclose(t2.total, t.recon - 0.3 * t.kl, atol=1e-5)


def test_free_bits_changes_the_objective_not_the_reported_elbo():
    model = _model()
    x = _x()
    torch.manual_seed(2)
    plain = model.elbo(x)
    torch.manual_seed(2)
    fb = model.elbo(x, free_bits=0.4, beta=0.5)
    q = model.encode(x)
    floor = O.free_bits_kl(O.kl_per_dimension(q.mu, q.logvar), 0.4)
    assert torch.allclose(fb.elbo, plain.elbo) and torch.allclose(fb.kl, plain.kl)
    assert torch.allclose(fb.total, plain.recon - 0.5 * floor, atol=1e-5)
    assert float(floor.detach()) >= 3 * 0.4 - 1e-6  # at least lambda per dimension


def test_iwae_bound_is_above_the_elbo_on_average():
    # L_k >= L_1 in expectation; with k = 200 the gap on an untrained model is clearly positive
    model = _model()
    x = _x(20, seed=3)
    g = torch.Generator().manual_seed(0)
    lk = vc.evaluate.log_likelihood(model, x, k=200, generator=g).mean
    elbo = float(torch.stack([model.elbo(x).elbo.mean() for _ in range(20)]).mean())
    assert lk > elbo


def test_checkpoint_rebuilds_the_model(tmp_path):
    model = _model(cond_map=2)
    path = tmp_path / "ar.pt"
    vc.checkpoint.save_checkpoint(path, model)
    loaded = vc.checkpoint.load_checkpoint(path).model
    assert isinstance(loaded, AutoregressiveVAE) and loaded.config == model.config
    x = _x()
    z = torch.randn(6, 3)
    assert torch.allclose(loaded.decode(z).log_prob(x), model.decode(z).log_prob(x))
    assert isinstance(build_model("AutoregressiveVAE", {"z_dim": 2}), AutoregressiveVAE)


def test_decoder_is_a_normalised_distribution_for_every_z():
    model = AutoregressiveVAE(x_shape=(1, 2, 3), z_dim=2, hidden=8, pixel_hidden=8, cond_map=1)

    allx = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6))).reshape(-1, 1, 2, 3)
    z = torch.randn(1, 2).expand(len(allx), 2)
    with torch.no_grad():
        total = torch.logsumexp(model.decode(z).log_prob(allx), 0).exp()
    assert math.isclose(float(total), 1.0, rel_tol=1e-5)


# ---------------------------------------------------------------- a short run
def test_training_improves_the_bound():
    data = vc.data.digits(binarize="static")
    torch.manual_seed(0)
    model = AutoregressiveVAE()
    h = vc.train.fit(model, data, epochs=3, batch_size=128, progress=False, device="cpu")
    assert h.test["elbo"][-1] > h.test["elbo"][0] > -45.0  # nats per 8x8 image; 64 log 2 = 44.4 is a coin flip
