"""vc.distributions against torch.distributions and independent numerical references."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, MultivariateNormal, Normal, kl_divergence

import vae_course as vc
from vae_course import distributions as D


def _random_spd(d, gen, batch=()):
    A = torch.randn(*batch, d, d, generator=gen, dtype=torch.float64)
    return A @ A.transpose(-1, -2) + 0.5 * torch.eye(d, dtype=torch.float64)


# --- tier 1: shapes and errors -------------------------------------------------------------

def test_shapes_broadcast_over_batch(gen):
    x = torch.randn(7, 3, 4, generator=gen)
    mu = torch.randn(3, 4, generator=gen)
    logvar = torch.zeros(4)
    assert D.log_normal_diag(x, mu, logvar).shape == (7, 3)
    assert D.log_normal_std(x).shape == (7, 3)
    assert D.kl_normal_std(mu, logvar).shape == (3,)
    assert D.log_normal_full(x, mu, torch.eye(4)).shape == (7, 3)
    img = torch.rand(5, 1, 8, 8, generator=gen)
    assert D.log_bernoulli(img, torch.zeros_like(img), event_dims=3).shape == (5,)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: D.log_normal_diag([0.0], torch.zeros(1), torch.zeros(1)), "x: got list"),
        (lambda: D.log_normal_diag(torch.zeros(2, dtype=torch.long), torch.zeros(2), torch.zeros(2)), "x: got dtype"),
        (lambda: D.log_normal_diag(torch.zeros(3), torch.zeros(2), torch.zeros(3)), "do not broadcast"),
        (lambda: D.log_normal_diag(torch.zeros(2), torch.tensor([0.0, float("nan")]), torch.zeros(2)), "mu: got 1 non-finite"),
        (lambda: D.kl_normal_std(torch.zeros(2), torch.tensor([float("inf"), 0.0])), "logvar"),
        (lambda: D.log_bernoulli(torch.tensor([1.5]), torch.zeros(1)), r"x: got values in \[1.5"),
        (lambda: D.log_bernoulli(torch.ones(2), torch.zeros(2), event_dims=0), "x|event_dims"),
        (lambda: D.log_normal_full(torch.zeros(2), torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]])), "cov: got a matrix that is not positive definite"),
        (lambda: D.log_normal_full(torch.zeros(2), torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]])), "cov: got a matrix that is not symmetric"),
        (lambda: D.log_normal_full(torch.zeros(2), torch.zeros(2), torch.ones(2, 3)), r"cov: got shape \(2, 3\)"),
        (lambda: D.log_normal_full(torch.zeros(2), torch.zeros(2)), "need exactly one"),
        (lambda: D.log_normal_full(torch.zeros(3), torch.zeros(3), torch.eye(2)), "event"),
        (lambda: D.kl_normal_full(torch.zeros(2), -torch.eye(2), torch.zeros(2), torch.eye(2)), "cov_q"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# --- tier 2: against independent references -------------------------------------------------

def test_log_normal_diag_matches_torch(gen):
    x, mu, logvar = (torch.randn(50, 6, generator=gen, dtype=torch.float64) for _ in range(3))
    ref = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1).log_prob(x)
    torch.testing.assert_close(D.log_normal_diag(x, mu, logvar), ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(D.log_normal_std(x), Independent(Normal(torch.zeros_like(x), 1.0), 1).log_prob(x))


def test_log_normal_full_matches_torch(gen):
    d = 5
    cov = _random_spd(d, gen, batch=(3,))
    mu = torch.randn(3, d, generator=gen, dtype=torch.float64)
    x = torch.randn(10, 3, d, generator=gen, dtype=torch.float64)
    ref = MultivariateNormal(mu, covariance_matrix=cov).log_prob(x)
    torch.testing.assert_close(D.log_normal_full(x, mu, cov), ref, rtol=1e-9, atol=1e-9)
    L = torch.linalg.cholesky(cov)
    torch.testing.assert_close(D.log_normal_full(x, mu, scale_tril=L), ref, rtol=1e-9, atol=1e-9)


def test_log_normal_full_normaliser_is_2pi_to_d_over_2_times_sqrt_det():
    # At x = mu the density is 1 / ((2 pi)^{d/2} |Sigma|^{1/2}); the slide's (2 pi |Sigma|)^{d/2} differs for d > 1.
    d = 3
    cov = torch.diag(torch.tensor([4.0, 9.0, 0.25], dtype=torch.float64))
    value = D.log_normal_full(torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64), cov)
    right = -0.5 * d * math.log(2 * math.pi) - 0.5 * math.log(4 * 9 * 0.25)
    slide = -0.5 * d * math.log(2 * math.pi * 4 * 9 * 0.25)
    assert value.item() == pytest.approx(right, abs=1e-12)
    assert abs(value.item() - slide) > 0.5


def test_gaussian_density_integrates_to_one_in_2d():
    # Brute-force integral on a grid (step 0.02 over +-8 sd): tolerance 1e-4.
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    g = torch.linspace(-8, 8, 801, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx, yy], -1)
    p = D.log_normal_full(pts, torch.zeros(2, dtype=torch.float64), cov).exp()
    h = (g[1] - g[0]).item()
    assert p.sum().item() * h * h == pytest.approx(1.0, abs=1e-4)


def test_log_bernoulli_matches_torch_and_is_stable(gen):
    x = torch.randint(0, 2, (20, 30), generator=gen).double()
    logits = 5 * torch.randn(20, 30, generator=gen, dtype=torch.float64)
    ref = Independent(Bernoulli(logits=logits), 1).log_prob(x)
    torch.testing.assert_close(D.log_bernoulli(x, logits), ref)
    # Extreme logits: finite where probabilities would give log(0).
    out = D.log_bernoulli(torch.tensor([[1.0, 0.0]]), torch.tensor([[-200.0, 200.0]]))
    assert torch.isfinite(out).all() and out.item() == pytest.approx(-400.0)


def test_bernoulli_probabilities_sum_to_one_over_all_binary_vectors():
    # Exhaustive: the 2^4 binary vectors of length 4 carry total probability 1.
    logits = torch.tensor([0.3, -1.2, 2.0, 0.0], dtype=torch.float64)
    xs = torch.tensor([[(i >> k) & 1 for k in range(4)] for i in range(16)], dtype=torch.float64)
    assert D.log_bernoulli(xs, logits).exp().sum().item() == pytest.approx(1.0, abs=1e-12)


def test_kl_terms_match_torch(gen):
    mu_q, logvar_q, mu_p, logvar_p = (torch.randn(40, 8, generator=gen, dtype=torch.float64) for _ in range(4))
    q = Independent(Normal(mu_q, torch.exp(0.5 * logvar_q)), 1)
    p = Independent(Normal(mu_p, torch.exp(0.5 * logvar_p)), 1)
    std = Independent(Normal(torch.zeros_like(mu_q), torch.ones_like(mu_q)), 1)
    torch.testing.assert_close(D.kl_normal_diag(mu_q, logvar_q, mu_p, logvar_p), kl_divergence(q, p))
    torch.testing.assert_close(D.kl_normal_std(mu_q, logvar_q), kl_divergence(q, std))


def test_kl_full_matches_torch_and_diag_case(gen):
    d = 4
    cq, cp = _random_spd(d, gen, (5,)), _random_spd(d, gen, (5,))
    mq, mp = torch.randn(5, d, generator=gen, dtype=torch.float64), torch.randn(5, d, generator=gen, dtype=torch.float64)
    ref = kl_divergence(MultivariateNormal(mq, cq), MultivariateNormal(mp, cp))
    torch.testing.assert_close(D.kl_normal_full(mq, cq, mp, cp), ref, rtol=1e-8, atol=1e-8)
    lv = torch.randn(5, d, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(
        D.kl_normal_full(mq, torch.diag_embed(lv.exp()), torch.zeros_like(mq), torch.eye(d, dtype=torch.float64)),
        D.kl_normal_std(mq, lv),
    )


def test_kl_std_monte_carlo(gen):
    # E_q[log q(z) - log p(z)] with 200k samples; the standard error is ~0.004, tolerance 0.02.
    mu = torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64)
    logvar = torch.tensor([0.3, -0.7, 1.2], dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 3, generator=gen, dtype=torch.float64)
    mc = (D.log_normal_diag(z, mu, logvar) - D.log_normal_std(z)).mean()
    assert mc.item() == pytest.approx(D.kl_normal_std(mu, logvar).item(), abs=0.02)


def test_kl_properties(gen):
    mu, logvar = torch.randn(100, 3, generator=gen), torch.randn(100, 3, generator=gen)
    assert (D.kl_normal_std(mu, logvar) >= 0).all()
    assert D.kl_normal_std(torch.zeros(3), torch.zeros(3)).item() == 0.0
    # asymmetric in general
    a = D.kl_normal_diag(mu, logvar, torch.zeros(3), torch.zeros(3))
    b = D.kl_normal_diag(torch.zeros(3), torch.zeros(3), mu, logvar)
    assert not torch.allclose(a, b)


def test_gradients_flow():
    mu = torch.zeros(3, requires_grad=True)
    logvar = torch.zeros(3, requires_grad=True)
    D.kl_normal_std(mu + 1, logvar + 1).backward()
    # d/dmu = mu = 1 ; d/dlogvar = (exp(logvar) - 1) / 2 = (e - 1) / 2
    torch.testing.assert_close(mu.grad, torch.ones(3))
    torch.testing.assert_close(logvar.grad, torch.full((3,), (math.e - 1) / 2))
