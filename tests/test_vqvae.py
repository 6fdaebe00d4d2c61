"""Tests for vae_course.models.vqvae (VQVAE, CodePrior) and vae_course.vq (the two-stage recipe): shapes and
errors, the loss against its definition, the straight-through gradient inside the model, causality of the prior
end to end, bits per code against the uniform value, checkpoints, and short CPU runs of the whole recipe."""
import math

import pytest
import torch

import vae_course as vc
from vae_course import vq
from vae_course.models import MODELS, CodePrior, VQVAE, VQVAEConfig


@pytest.fixture(scope="module")
def digits():
    return vc.data.digits()


# ---------------------------------------------------------------- shapes and errors
@pytest.mark.parametrize("x_shape, downsample, map_shape", [((1, 28, 28), 2, (7, 7)), ((1, 8, 8), 1, (4, 4))])
def test_shapes(x_shape, downsample, map_shape):
    torch.manual_seed(0)
    m = VQVAE(x_shape=x_shape, downsample=downsample, n_codes=10, code_dim=4, channels=(8, 16))
    x = torch.rand(3, *x_shape)
    assert m.config.map_shape == map_shape
    assert m.encode(x).shape == (3, 4, *map_shape)
    codes = m.encode_codes(x)
    assert codes.shape == (3, *map_shape) and codes.dtype == torch.long
    assert m.decode_codes(codes).logits.shape == (3, *x_shape)
    assert m.reconstruct(x).shape == (3, *x_shape)
    out = m.loss(x)
    assert set(out.terms) == {"loss", "recon", "mse", "codebook", "commitment", "perplexity", "dead"}
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x_shape=(1, 10, 10)), "x_shape"), (dict(codebook="kmeans"), "codebook"), (dict(likelihood="poisson"), "likelihood"),
    (dict(n_codes=0), "n_codes"), (dict(channels=(8,)), "channels"), (dict(downsample=0), "downsample"),
])
def test_bad_config_names_the_field(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        VQVAEConfig(**kwargs)


def test_bad_inputs_are_named():
    m = VQVAE(x_shape=(1, 8, 8), downsample=1, n_codes=5)
    with pytest.raises(ValueError, match="x:"):
        m.encode(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="codes"):
        m.decode_codes(torch.full((1, 4, 4), 5))
    with pytest.raises(ValueError, match="codes"):
        m.decode_codes(torch.zeros(1, 4, 4))  # float, not long
    p = CodePrior(n_codes=5, map_shape=(4, 4))
    with pytest.raises(ValueError, match="z"):
        p.loss(torch.zeros(2, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="prior"):
        vq.sample_vqvae(m, CodePrior(n_codes=6, map_shape=(4, 4)), 2)
    with pytest.raises(TypeError, match="codes"):
        vq.codebook_usage(torch.zeros(3), 4)
    with pytest.raises(ValueError, match="codes"):
        vq.codebook_usage(torch.tensor([0, 4]), 4)


# ---------------------------------------------------------------- the loss and the gradients
def test_loss_is_recon_plus_codebook_plus_commitment():
    torch.manual_seed(1)
    m = VQVAE(x_shape=(1, 8, 8), downsample=1, n_codes=6, code_dim=3, channels=(8, 8), beta=0.25).eval()
    x = torch.rand(5, 1, 8, 8)
    out = m.loss(x)
    z_e = m.encode(x)
    idx = m.encode_codes(x)
    z_q = m.quantizer.codebook[idx].movedim(-1, 1)
    logits = m.decoder(z_q)
    recon = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3)).mean()
    sq = (z_e - z_q).pow(2).sum((1, 2, 3)).mean()
    torch.testing.assert_close(out.terms["recon"], recon)
    torch.testing.assert_close(out.terms["codebook"], sq)
    torch.testing.assert_close(out.terms["commitment"], 0.25 * sq)
    torch.testing.assert_close(out.loss, recon + 1.25 * sq)
    torch.testing.assert_close(out.terms["mse"], (torch.sigmoid(logits) - x).pow(2).mean())


def test_gradient_at_encoder_output_equals_gradient_at_quantised_map():
    """beta = 0 and an EMA codebook leave the reconstruction as the only path: straight-through copies its gradient."""
    torch.manual_seed(2)
    m = VQVAE(x_shape=(1, 8, 8), downsample=1, n_codes=6, code_dim=3, channels=(8, 8), beta=0.0, codebook="ema").eval()
    x = torch.rand(4, 1, 8, 8)
    z_e = m.encode(x)
    z_e.retain_grad()
    q = m.quantizer(z_e)
    q.quantized.retain_grad()
    (-m.decode(q.quantized).log_prob(x).mean()).backward()
    torch.testing.assert_close(z_e.grad, q.quantized.grad)
    assert z_e.grad.abs().sum() > 0
    assert all(p.grad is not None for p in m.encoder.parameters()), "the encoder must get gradients"


def test_evaluation_changes_no_quantiser_state(digits):
    torch.manual_seed(3)
    m = VQVAE(x_shape=(1, 8, 8), downsample=1, n_codes=8, codebook="ema", restart_every=1)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    vc.train.evaluate_loss(m, digits.x_test)
    vq.encode_codes(m, digits.x_test)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


# ---------------------------------------------------------------- the prior
def _prior(k=5, shape=(4, 4), seed=4):
    torch.manual_seed(seed)
    return CodePrior(n_codes=k, map_shape=shape, hidden=16, n_layers=2, first_kernel=3, kernel=3).eval()


def test_prior_is_causal_end_to_end():
    """Changing the codes at positions >= i never changes the logits at i; changing an earlier one does, somewhere."""
    p = _prior()
    g = torch.Generator().manual_seed(5)
    z = torch.randint(5, (1, 4, 4), generator=g)
    logits = p.pixelcnn(z)
    h, w = 4, 4
    sees_past = False
    for i in range(h * w):
        r, c = divmod(i, w)
        for _ in range(3):
            z2 = z.clone().reshape(-1)
            z2[i:] = torch.randint(5, (h * w - i,), generator=g)
            out = p.pixelcnn(z2.reshape(1, h, w))
            torch.testing.assert_close(out[..., r, c], logits[..., r, c], rtol=0, atol=1e-6)
        if i > 0:
            z3 = z.clone().reshape(-1)
            z3[i - 1] = (z3[i - 1] + 1) % 5
            sees_past |= not torch.allclose(p.pixelcnn(z3.reshape(1, h, w))[..., r, c], logits[..., r, c])
    assert sees_past, "the prior ignores its context entirely"


def test_prior_loss_and_formats():
    p = _prior()
    z = torch.randint(5, (6, 4, 4), generator=torch.Generator().manual_seed(6))
    out = p.loss(z)
    torch.testing.assert_close(out.loss, -p.log_prob(z).mean())
    torch.testing.assert_close(out.terms["bits_per_code"], out.loss / (16 * math.log(2)))
    torch.testing.assert_close(p.loss(z.float()).loss, out.loss)  # what fit passes: floats
    torch.testing.assert_close(p.loss(z[:, None].float()).loss, out.loss)  # (B, 1, h, w) from code_data
    # the per-position conditionals are normalised: summing exp(log p) over all 5^1 maps of a 1x1 prior gives 1
    p1 = CodePrior(n_codes=5, map_shape=(1, 2), hidden=8, n_layers=1, first_kernel=3, kernel=3).eval()
    all_maps = torch.cartesian_prod(torch.arange(5), torch.arange(5)).reshape(25, 1, 2)
    torch.testing.assert_close(p1.log_prob(all_maps).exp().sum(), torch.tensor(1.0))


def test_uniform_prior_scores_log2_k_bits_per_code():
    p = _prior(k=8)
    with torch.no_grad():
        last = p.pixelcnn.output[-1]
        last.weight.zero_()
        last.bias.zero_()  # all logits 0: every code has probability 1/8 at every position
    z = torch.randint(8, (20, 4, 4), generator=torch.Generator().manual_seed(7))
    assert vq.prior_bits_per_code(p, z) == pytest.approx(3.0, abs=1e-5)


def test_prior_samples_are_valid_code_maps():
    p = _prior()
    s = p.sample(7, generator=torch.Generator().manual_seed(8))
    assert s.shape == (7, 4, 4) and s.dtype == torch.long and int(s.min()) >= 0 and int(s.max()) < 5


def test_codebook_usage():
    u = vq.codebook_usage(torch.arange(12) % 4, 4)
    assert u.perplexity == pytest.approx(4.0) and u.dead_fraction == 0
    u = vq.codebook_usage(torch.full((3, 5), 2), 6)
    assert u.perplexity == pytest.approx(1.0) and u.dead_fraction == pytest.approx(5 / 6)
    assert u.probs.sum() == pytest.approx(1.0) and u.counts[2] == 15


def test_registry_and_checkpoint_round_trip(tmp_path, digits):
    assert MODELS["VQVAE"] is VQVAE and MODELS["CodePrior"] is CodePrior
    torch.manual_seed(9)
    m = VQVAE(x_shape=(1, 8, 8), downsample=1, n_codes=8, codebook="ema", restart_every=3)
    vc.train.fit(m, digits, epochs=1, progress=False, device="cpu")
    path = vc.checkpoint.save_checkpoint(tmp_path / "vq.pt", m)
    m2 = vc.checkpoint.load_checkpoint(path).model
    x = digits.x_test[:20]
    assert torch.equal(m2.encode_codes(x), m.encode_codes(x))
    torch.testing.assert_close(m2.quantizer.usage, m.quantizer.usage)
    p = _prior(k=8)
    p2 = vc.checkpoint.load_checkpoint(vc.checkpoint.save_checkpoint(tmp_path / "p.pt", p)).model
    z = torch.randint(8, (3, 4, 4))
    torch.testing.assert_close(p2.log_prob(z), p.log_prob(z))


# ---------------------------------------------------------------- short runs: the recipe learns
def test_vqvae_learns_and_keeps_its_codes_in_use(digits):
    """8x8 digits, K = 16, 15 epochs (~3 s): the test MSE per pixel falls by more than half, and with restarts at
    least 8 of the 16 codes are in effective use (perplexity floor 8) and none is dead."""
    torch.manual_seed(10)
    m = VQVAE(x_shape=(1, 8, 8), downsample=1, n_codes=16, code_dim=4, channels=(16, 32), codebook="ema",
              restart_every=10)
    h = vc.train.fit(m, digits, epochs=15, batch_size=64, lr=3e-3, progress=False, device="cpu")
    assert h.test["mse"][-1] < 0.5 * h.test["mse"][0], h.test["mse"]
    usage = vq.codebook_usage(vq.encode_codes(m, digits.x_train), 16)
    assert usage.perplexity > 8 and usage.dead_fraction == 0, usage[2:]
    assert vq.reconstruction_error(m, digits.x_test) == pytest.approx(h.test["mse"][-1], rel=1e-4)


def test_two_stage_recipe_prior_beats_uniform_and_samples_decode(digits):
    torch.manual_seed(11)
    m = VQVAE(x_shape=(1, 8, 8), downsample=1, n_codes=16, code_dim=4, channels=(16, 32), codebook="ema",
              restart_every=10)
    vc.train.fit(m, digits, epochs=8, batch_size=64, lr=3e-3, progress=False, device="cpu")
    codes = vq.code_data(m, digits)
    assert codes.x_train.shape == (len(digits.x_train), 1, 4, 4)
    assert torch.equal(codes.x_test[:, 0].long(), vq.encode_codes(m, digits.x_test))
    p = CodePrior(n_codes=16, map_shape=(4, 4), hidden=32, n_layers=2, first_kernel=3, kernel=3)
    h = vc.train.fit(p, codes, epochs=10, batch_size=64, lr=3e-3, progress=False, device="cpu")
    bits = vq.prior_bits_per_code(p, codes.x_test[:, 0].long())
    assert bits == pytest.approx(h.test["bits_per_code"][-1], rel=1e-4)
    usage = vq.codebook_usage(codes.x_train[:, 0].long(), 16)
    # the prior must beat the best context-free model, whose cross-entropy is the entropy of the code frequencies
    assert bits < math.log2(usage.perplexity) - 0.2, (bits, math.log2(usage.perplexity))
    s = vq.sample_vqvae(m, p, 6, generator=torch.Generator().manual_seed(12))
    assert s.x.shape == (6, 1, 8, 8) and s.codes.shape == (6, 4, 4)
    assert float(s.x.min()) >= 0 and float(s.x.max()) <= 1


def test_point_mass_bound_against_the_exact_marginal(digits):
    """K = 2 codes on a 4x4 map: all 2^16 code maps can be enumerated, so log p(x) = logsumexp_z log p(x|z) P(z)
    is exact; the bound must equal its definition and lie below it."""
    torch.manual_seed(13)
    m = VQVAE(x_shape=(1, 8, 8), downsample=1, n_codes=2, code_dim=2, channels=(4, 4)).eval()
    p = CodePrior(n_codes=2, map_shape=(4, 4), hidden=8, n_layers=1, first_kernel=3, kernel=3).eval()
    x = digits.x_test[:4]
    bound = vq.point_mass_bound(m, p, x)
    k = m.encode_codes(x)
    torch.testing.assert_close(bound, m.decode_codes(k).log_prob(x) + p.log_prob(k))
    maps = ((torch.arange(2 ** 16)[:, None] >> torch.arange(16)) & 1).reshape(-1, 4, 4)  # every code map
    with torch.no_grad():
        log_prior = p.log_prob(maps)  # (65536,)
        torch.testing.assert_close(torch.logsumexp(log_prior, 0), torch.tensor(0.0), atol=1e-4, rtol=0)
        logits = m.decode_codes(maps).logits  # (65536, 1, 8, 8)
        exact = torch.stack([torch.logsumexp(-torch.nn.functional.binary_cross_entropy_with_logits(
            logits, xi.expand_as(logits), reduction="none").sum((1, 2, 3)) + log_prior, 0) for xi in x])
    assert (bound <= exact + 1e-4).all(), (bound, exact)


def test_kl_of_a_point_mass_from_the_uniform_prior_is_n_log_k():
    """The chapter's reading of the VQ-VAE as a VAE: KL(one-hot q || uniform over K^n maps) = n log K (here K=3, n=2)."""
    q = torch.zeros(9)
    q[4] = 1.0
    kl = torch.distributions.kl_divergence(torch.distributions.Categorical(probs=q),
                                           torch.distributions.Categorical(probs=torch.full((9,), 1 / 9)))
    assert float(kl) == pytest.approx(2 * math.log(3))


# ---------------------------------------------------------------- figures and the widget
def test_figures_and_widget_build():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    torch.manual_seed(14)
    m = VQVAE(x_shape=(1, 8, 8), downsample=1, n_codes=6, code_dim=2, channels=(4, 4))
    codes = torch.randint(6, (3, 4, 4))
    edited = vc.plotting.edit_codes(codes[0], 1, 2, 5, size=2)
    assert edited[1:3, 2:4].eq(5).all() and torch.equal(edited[0], codes[0, 0])
    assert torch.equal(edited[:, :2], codes[0][:, :2])
    with pytest.raises(ValueError, match="row, col"):
        vc.plotting.edit_codes(codes[0], 3, 3, 1, size=2)
    axes = vc.plotting.code_edit(m, codes[0], 0, 0, 3, size=2)
    assert len(axes) == 4
    ax = vc.plotting.quantization_2d(torch.randn(50, 2), torch.randn(4, 2))
    assert len(ax.collections) == 2
    ax = vc.plotting.codebook_usage_bars(vq.codebook_usage(codes, 6))
    assert "perplexity" in ax.get_title()
    w = vc.widgets.code_edit_widget(m, codes)
    assert len(w.children) >= 5
    with pytest.raises(ValueError, match="codes"):
        vc.widgets.code_edit_widget(m, codes[0])
    plt.close("all")
