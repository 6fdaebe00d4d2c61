"""vae_course.evaluate: log-mean-exp, the IWAE bound against an exact log p(x), bits/dim, OOD helpers."""
import math

import pytest
import torch

import vae_course as vc
from vae_course import evaluate as E
from vae_course.models import VAE


def _linear_vae(seed=0, d=6, m=2, sigma=0.5):
    """A linear-Gaussian VAE x = Wz + b + sigma * eps with a random (poor) encoder: a large ELBO gap."""
    torch.manual_seed(seed)
    model = VAE(x_shape=(1, 1, d), z_dim=m, arch="linear", likelihood="gaussian", decoder_std=sigma, min_decoder_std=0.0)
    with torch.no_grad():
        model.decoder.linear.weight.mul_(2.0)
    x = model.sample(64, mean=False, generator=torch.Generator().manual_seed(seed + 1))
    return model, x


def test_log_mean_exp_is_stable_and_matches_the_naive_formula():
    a = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(vc.distributions.log_mean_exp(a), a.exp().mean(0).log(), atol=1e-6)
    big = a - 1000.0  # exp underflows to 0 in the naive formula; the stable one just shifts by -1000
    assert torch.allclose(vc.distributions.log_mean_exp(big), vc.distributions.log_mean_exp(a) - 1000.0, atol=1e-3)
    assert torch.isfinite(vc.distributions.log_mean_exp(big)).all()
    assert torch.allclose(E.iwae_bound(torch.full((7, 2), -3.0)), torch.full((2,), -3.0))  # equal weights


def test_bits_per_dim():
    assert E.bits_per_dim(-784 * math.log(2), 784) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="x_dim"):
        E.bits_per_dim(-1.0, 0)


def test_linear_gaussian_exact_marginal_matches_a_brute_force_integral():
    model, x = _linear_vae(d=2, m=1)
    z = torch.linspace(-8, 8, 4001).reshape(-1, 1)  # trapezoid on a fine grid of the 1-D latent
    with torch.no_grad():
        joint = model.decode(z[:, None, :]).log_prob(x[:5]) + vc.distributions.log_normal_std(z)[:, None]  # (G, 5)
    brute = torch.logsumexp(joint, 0) + math.log(16 / 4000)
    assert torch.allclose(E.linear_gaussian_log_marginal(model, x[:5]), brute, atol=1e-3)
    with pytest.raises(ValueError, match="arch='linear'"):
        E.linear_gaussian_log_marginal(VAE(x_shape=(1, 8, 8)), x)


def test_elbo_below_iwae_rising_with_k_towards_the_exact_log_likelihood():
    model, x = _linear_vae()
    exact = float(E.linear_gaussian_log_marginal(model, x).mean())
    curve = E.iwae_curve(model, x, (1, 10, 100, 1000, 5000), generator=torch.Generator().manual_seed(2))
    values = [curve[k] for k in (1, 10, 100, 1000, 5000)]
    elbo = float(E.elbo_per_example(model, x, n_samples=2000).mean())
    # L_1 is the ELBO: the two single-sample estimates agree within MC error (64 images x 2000 draws)
    assert abs(values[0] - elbo) < 0.5
    assert all(a < b for a, b in zip(values, values[1:])), values  # the bound rises with k
    assert elbo < values[-1] <= exact + 0.05  # never above log p(x) (beyond MC noise)
    assert exact - values[-1] < 0.25 * (exact - elbo)  # and k = 5000 closes most of the gap


def test_log_likelihood_is_chunked_with_bounded_memory_and_consistent():
    model, x = _linear_vae(seed=0)
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    small = E.log_likelihood(model, x, k=300, k_chunk=7, batch_size=16, generator=g())
    ref = E.iwae_bound(E.log_weights(model, x, 300, k_chunk=7, batch_size=16, generator=g()))
    assert torch.allclose(small.log_px, ref, atol=1e-4)  # same draws: the running logsumexp is exact
    a = E.log_likelihood(model, x, k=3000, k_chunk=11, generator=g())
    b = E.log_likelihood(model, x, k=3000, generator=g())  # one chunk: other draws, the same estimate
    exact = float(E.linear_gaussian_log_marginal(model, x).mean())
    assert abs(a.mean - b.mean) < 0.3 and abs(a.mean - exact) < 0.5
    assert small.k == 300 and small.log_px.shape == (64,)
    assert small.bits_per_dim == pytest.approx(-small.mean / (6 * math.log(2)))
    with pytest.raises(ValueError, match="k"):
        E.log_likelihood(model, x, k=0)


def test_deterministic_autoencoder_has_no_likelihood():
    with pytest.raises(ValueError, match="deterministic"):
        E.log_likelihood(VAE(x_shape=(1, 8, 8), deterministic=True), torch.rand(2, 1, 8, 8), k=3)


def test_image_transforms_and_auroc():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    s = E.shift_images(x, 1, -2)
    assert s[0, 0, 0, 3] == 1.0 and s.sum() == 1.0
    assert torch.equal(E.shift_images(E.shift_images(x, 2, 1), -2, -1), x)  # the interior survives a round trip
    assert E.shift_images(x, 5, 0).sum() == 0
    assert torch.equal(E.invert_images(x), 1 - x)
    noise = vc.data.noise_images(2000, (1, 4, 4), kind="bernoulli", p=0.2, generator=torch.Generator().manual_seed(0))
    assert noise.shape == (2000, 1, 4, 4) and abs(float(noise.mean()) - 0.2) < 0.01  # std of mean ~0.0025
    a, b = torch.tensor([3.0, 4.0, 5.0]), torch.tensor([0.0, 1.0])
    assert E.auroc(a, b) == 1.0 and E.auroc(b, a) == 0.0 and E.auroc(a, a) == 0.5
    with pytest.raises(ValueError, match="scores"):
        E.auroc(a, torch.tensor([]))


def test_trained_vae_scores_digits_above_noise_and_inverted_digits():
    data = vc.data.digits(binarize="dynamic")
    torch.manual_seed(0)
    model = VAE(x_shape=(1, 8, 8), z_dim=4, hidden=128)
    vc.train.fit(model, data, epochs=8, progress=False, lr=3e-3)
    x = data.x_test[:100]
    score = lambda imgs: E.log_likelihood(model, imgs, k=20).log_px  # noqa: E731
    s_in = score(x)
    s_noise = score(vc.data.noise_images(100, (1, 8, 8), kind="bernoulli", p=float(x.mean()), generator=torch.Generator().manual_seed(1)))
    s_inv = score(E.invert_images(x))
    assert E.auroc(s_in, s_noise) > 0.95 and E.auroc(s_in, s_inv) > 0.95


def test_iwae_bound_rises_with_k_by_the_leave_one_out_argument():
    """Chapter 5's three-line proof, step by step, on log-normal weights (seeded): (1) the mean of k+1 weights is
    the mean over the k+1 leave-one-out subsets of their k-means, exactly; (2) Jensen: the log of that mean is at
    least the subsets' mean log; (3) so the Monte Carlo L_{k+1} is at least L_k (40,000 draws: its standard error is
    below 0.005 here, and the gap L_2 - L_1 is about 0.2)."""
    import itertools

    g = torch.Generator().manual_seed(0)
    k = 4
    w = torch.exp(torch.randn(k + 1, dtype=torch.float64, generator=g))
    subsets = [list(s) for s in itertools.combinations(range(k + 1), k)]
    assert len(subsets) == k + 1
    sub_means = torch.stack([w[s].mean() for s in subsets])
    assert torch.allclose(w.mean(), sub_means.mean(), rtol=1e-14)                   # (1)
    assert torch.log(w.mean()) >= torch.log(sub_means).mean()                       # (2)
    logw = torch.randn(40_000, 6, dtype=torch.float64, generator=g)                 # log-weights, 6 per draw
    bounds = [float((torch.logsumexp(logw[:, :j], 1) - math.log(j)).mean()) for j in range(1, 7)]
    assert all(b2 > b1 for b1, b2 in zip(bounds, bounds[1:])), bounds               # (3)
    assert bounds[-1] < math.log(math.exp(0.5)) and abs(bounds[0]) < 0.02          # below log E[w] = 1/2; L_1 = E log w = 0
