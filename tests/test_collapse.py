"""vae_course.collapse: each detector on constructed cases with known answers, the remedies' formulas, and a
short CPU run where the PixelCNN decoder collapses without a remedy and does not with free bits."""
import math

import pytest
import torch

import vae_course as vc
from vae_course import collapse as C
from vae_course import objectives as O
from vae_course.experiments import free_bits_sweep as FB
from vae_course import distributions as D
from vae_course.models import AutoregressiveVAE


def _g(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- KL per dimension and free bits
def test_kl_per_dimension_sums_to_the_elbo_kl_and_matches_torch():
    g = _g(0)
    mu, logvar = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    per_dim = O.kl_per_dimension(mu, logvar)
    assert per_dim.shape == (5, 4) and bool((per_dim >= 0).all())
    assert torch.allclose(per_dim.sum(-1), D.kl_normal_std(mu, logvar), atol=1e-6)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)),
                                            torch.distributions.Normal(0.0, 1.0))
    assert torch.allclose(per_dim, ref, atol=1e-5)


def test_free_bits_values_on_constructed_cases():
    kl = torch.tensor([[0.0, 2.0, 0.1], [0.2, 4.0, 0.1]])  # batch means per dimension: 0.1, 3.0, 0.1
    assert math.isclose(float(O.free_bits_kl(kl, 0.0)), 3.2, rel_tol=1e-6)  # no floor: the mean KL
    assert math.isclose(float(O.free_bits_kl(kl, 0.5)), 0.5 + 3.0 + 0.5, rel_tol=1e-6)
    assert math.isclose(float(O.free_bits_kl(kl, 5.0)), 15.0, rel_tol=1e-6)  # every dimension below the floor
    # the floor acts on the batch mean, not on each example: example 1 has 0.0 in dim 0, the mean is 0.1
    per_example = torch.clamp(kl, min=0.05).mean(0).sum()
    assert not math.isclose(float(O.free_bits_kl(kl, 0.05)), float(per_example))
    # per group: dims (0, 1) and (2, 3) of a 4-d latent
    kl4 = torch.tensor([[0.1, 0.1, 1.0, 2.0]])
    assert math.isclose(float(O.free_bits_kl(kl4, 0.5, group_size=2)), 0.5 + 3.0, rel_tol=1e-6)


def test_free_bits_stops_the_gradient_below_the_floor_only():
    kl = torch.tensor([[0.05, 2.0], [0.15, 1.0]], requires_grad=True)
    O.free_bits_kl(kl, 0.5).backward()
    assert torch.equal(kl.grad[:, 0], torch.zeros(2))  # dimension 0: mean 0.1 < 0.5, no gradient
    assert torch.allclose(kl.grad[:, 1], torch.full((2,), 0.5))  # dimension 1: d mean / d KL_b = 1 / B


@pytest.mark.parametrize("args,kwargs,match", [((torch.zeros(3), 0.1), {}, "kl_per_dim"),
                                               ((torch.zeros(2, 3), -0.1), {}, "lam"),
                                               ((torch.zeros(2, 3), 0.1), {"group_size": 2}, "group_size")])
def test_free_bits_errors_name_the_argument(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        O.free_bits_kl(*args, **kwargs)


# ---------------------------------------------------------------- warm-up schedules
def test_linear_and_sigmoid_warmup_values():
    assert O.warmup_beta("linear", 0, 100) == 0.0
    assert O.warmup_beta("linear", 25, 100) == 0.25
    assert O.warmup_beta("linear", 250, 100) == 1.0  # stays at beta_max after the warm-up
    assert O.warmup_beta("linear", 50, 100, beta_max=0.5) == 0.25
    assert O.warmup_beta("sigmoid", 0, 100) == 0.0 and math.isclose(O.warmup_beta("sigmoid", 100, 100), 1.0)
    assert math.isclose(O.warmup_beta("sigmoid", 50, 100), 0.5)  # symmetric about the middle
    s = lambda t: 1 / (1 + math.exp(-10 * (t - 0.5)))  # noqa: E731 (independent reference)
    assert math.isclose(O.warmup_beta("sigmoid", 20, 100), (s(0.2) - s(0)) / (s(1) - s(0)), rel_tol=1e-9)
    values = [O.warmup_beta("sigmoid", t, 100) for t in range(101)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert O.warmup_beta("sigmoid", 10, 100) < O.warmup_beta("linear", 10, 100)  # slow start


def test_kl_warmup_is_a_fit_schedule_that_passes_fixed_kwargs():
    schedule = O.kl_warmup("linear", 10, free_bits=0.2)
    assert schedule(0, 5, 1000) == {"beta": 0.5, "free_bits": 0.2}
    with pytest.raises(ValueError, match="kind"):
        O.kl_warmup("cosine", 10)
    with pytest.raises(ValueError, match="n_steps"):
        O.kl_warmup("linear", 0)


def test_fit_calls_the_schedule_with_the_step(monkeypatch):
    seen = []
    model = AutoregressiveVAE(x_shape=(1, 4, 4), z_dim=2, hidden=8, pixel_hidden=4)
    original = model.loss

    def spy(x, **kw):
        seen.append(kw["beta"])
        return original(x, **kw)

    monkeypatch.setattr(model, "loss", spy)
    vc.train.fit(model, torch.bernoulli(torch.full((40, 1, 4, 4), 0.3)), epochs=2, batch_size=10, progress=False,
                 loss_kwargs=O.kl_warmup("linear", 4), device="cpu")
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0]


# ---------------------------------------------------------------- active units
def test_active_units_on_constructed_means():
    g = _g(1)
    n = 2000
    mu = torch.stack([torch.randn(n, generator=g),  # variance 1: active
                      torch.full((n,), 3.0),  # the same mean for every image (large, but constant): inactive
                      0.07 * torch.randn(n, generator=g),  # variance 0.0049 < 0.01: inactive
                      0.2 * torch.randn(n, generator=g)], 1)  # variance 0.04: active
    au = C.active_units(mu)
    assert au.count == 2 and au.active.tolist() == [True, False, False, True]
    assert torch.allclose(au.activity, torch.tensor(mu.numpy().var(0), dtype=mu.dtype), rtol=1e-4)
    assert C.active_units(mu, threshold=0.001).count == 3


def test_active_units_errors():
    with pytest.raises(ValueError, match="mu"):
        C.active_units(torch.zeros(5))
    with pytest.raises(ValueError, match="mu"):
        C.active_units(torch.zeros(1, 3))


# ---------------------------------------------------------------- mutual information under the aggregate posterior
def test_mutual_information_is_zero_for_identical_posteriors():
    mu, logvar = torch.full((100, 3), 0.3), torch.full((100, 3), 0.2)
    assert abs(C.mutual_information(mu, logvar, generator=_g(2))) < 1e-9


def test_mutual_information_is_log_n_for_separated_posteriors():
    mu = 100 * torch.randn(50, 3, generator=_g(3))  # far apart, tiny variances: z identifies the image
    assert math.isclose(C.mutual_information(mu, torch.full((50, 3), -10.0), generator=_g(4)), math.log(50), rel_tol=1e-6)


def test_mutual_information_matches_the_linear_gaussian_value():
    # x ~ N(0, 1), q(z|x) = N(a x, s^2): I(x; z) = 0.5 log(1 + a^2 / s^2) = 0.754 nats. With N = 2000 images and
    # 2 draws each the Monte Carlo and finite-N error is about 0.03 (measured spread over seeds); tolerance 0.08.
    g = _g(5)
    a, s = 1.5, 0.8
    mu = a * torch.randn(2000, 1, generator=g)
    logvar = torch.full_like(mu, 2 * math.log(s))
    est = C.mutual_information(mu, logvar, n_samples=2, generator=g)
    assert abs(est - 0.5 * math.log(1 + a**2 / s**2)) < 0.08


def test_kl_term_bounds_the_mutual_information():
    # E_x KL(q(z|x) || p(z)) = I(x; z) + KL(q(z) || p(z)) >= I(x; z)
    g = _g(6)
    mu, logvar = torch.randn(500, 4, generator=g), torch.randn(500, 4, generator=g) - 1
    assert C.mutual_information(mu, logvar, generator=g) <= float(D.kl_normal_std(mu, logvar).mean())


# ---------------------------------------------------------------- the swap test and the dependence of samples on z
def _tiny(**kw):
    torch.manual_seed(0)
    return AutoregressiveVAE(x_shape=(1, 4, 4), z_dim=2, hidden=16, pixel_hidden=8, **kw)


def _ignore_z(model):
    with torch.no_grad():
        for name, p in model.decoder.named_parameters():
            if "cond" in name:
                p.zero_()
    return model


def test_swap_test_and_sample_dependence_are_zero_when_the_decoder_ignores_z():
    model = _ignore_z(_tiny())
    x = torch.bernoulli(torch.full((30, 1, 4, 4), 0.4), generator=_g(7))
    for source in ("prior", "shuffle"):
        swap = C.latent_swap_test(model, x, source=source, generator=_g(8))
        assert swap.gap == pytest.approx(0.0, abs=1e-4) and swap.loss_encoder > 0
    dep = C.sample_dependence(model, n_z=5, n_noise=2, generator=_g(9))
    assert dep.images.shape == (2, 5, 1, 4, 4) and dep.changed_z == 0.0 and dep.changed_noise > 0


def test_swap_test_and_sample_dependence_see_a_decoder_that_uses_z():
    model = _tiny()
    with torch.no_grad():  # a decoder driven by z: large weights on the conditioning, an encoder that copies x
        for name, p in model.decoder.named_parameters():
            if "cond" in name and p.dim() > 1:
                p.mul_(30)
    x = torch.bernoulli(torch.full((30, 1, 4, 4), 0.4), generator=_g(10))
    assert C.latent_swap_test(model, x, generator=_g(11)).gap != pytest.approx(0.0, abs=1e-2)
    assert C.sample_dependence(model, n_z=5, n_noise=2, generator=_g(12)).changed_z > 0.05


def test_swap_test_on_the_factorised_vae_and_errors():
    torch.manual_seed(0)
    model = vc.models.VAE(x_shape=(1, 4, 4), z_dim=2, hidden=8)
    x = torch.bernoulli(torch.full((10, 1, 4, 4), 0.4), generator=_g(13))
    assert isinstance(C.latent_swap_test(model, x, generator=_g(14)).gap, float)
    with pytest.raises(ValueError, match="source"):
        C.latent_swap_test(model, x, source="random")


# ---------------------------------------------------------------- tier 3: collapse happens, and free bits prevent it
@pytest.fixture(scope="module")
def digits():
    return vc.data.digits(binarize="static")


def _train(data, loss_kwargs):
    torch.manual_seed(0)
    model = AutoregressiveVAE()  # the chapter's decoder: a PixelCNN with z as one bias per channel
    history = vc.train.fit(model, data, epochs=12, batch_size=64, lr=2e-3, seed=0, progress=False, device="cpu",
                           loss_kwargs=loss_kwargs, test_every=12)
    return model, history


def test_pixelcnn_decoder_collapses_without_a_remedy_and_not_with_free_bits(digits):
    x = digits.x_test
    collapsed, h0 = _train(digits, None)
    mu, logvar = vc.evaluate.encode_all(collapsed, x)
    assert h0.test["kl"][-1] < 0.15  # nats, summed over 8 dimensions
    assert C.active_units(mu).count <= 1
    assert C.mutual_information(mu, logvar, generator=_g(0)) < 0.15
    assert abs(C.latent_swap_test(collapsed, x, generator=_g(1)).gap) < 0.3
    cured, h1 = _train(digits, {"free_bits": 0.25})
    mu, logvar = vc.evaluate.encode_all(cured, x)
    assert h1.test["kl"][-1] > 1.0
    assert C.active_units(mu).count >= 6
    assert C.mutual_information(mu, logvar, generator=_g(0)) > 0.8
    assert C.latent_swap_test(cured, x, generator=_g(1)).gap > 0.5


def test_sweep_command_reproduces_a_slice_of_the_stored_sweep(tmp_path):
    # `vae-course collapse-sweep` for one floor and one seed gives the stored row (CPU training is deterministic;
    # the tolerance allows for other CPUs' floating-point kernels)
    import argparse

    parser = argparse.ArgumentParser()
    FB.add_arguments(parser)
    out = tmp_path / "sweep.json"
    assert FB.run(parser.parse_args(["--out", str(out), "--lams", "0.25", "--seeds", "0"])) == 0
    (row,) = C.load_sweep(out)["rows"]
    stored = next(r for r in C.load_sweep()["rows"] if r["lam"] == 0.25 and r["seed"] == 0)
    for key in ("bound", "elbo", "kl", "mi", "gap"):
        assert row[key] == pytest.approx(stored[key], abs=0.3), key
    assert row["active"] == stored["active"]
