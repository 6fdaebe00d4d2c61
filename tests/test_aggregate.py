"""vae_course.aggregate: the aggregate posterior's density against brute force, and its gap to the prior against
closed forms (posteriors equal to the prior; all posteriors one shifted Gaussian) and a grid integral."""
import math

import pytest
import torch
from torch import nn

import vae_course as vc
from vae_course import aggregate as A
from vae_course.distributions import DiagonalGaussian


class FixedEncoder(nn.Module):
    """A stand-in VAE whose q(z|x_n) are given: image n (a 1x1x1 'image' holding n) -> N(mu_n, diag exp(logvar_n))."""

    def __init__(self, mu, logvar):
        super().__init__()
        self.mu, self.logvar = nn.Parameter(mu.float()), nn.Parameter(logvar.float())
        self.prior = vc.models.StandardNormalPrior(mu.shape[1])

    def encode(self, x):
        idx = x.flatten(1)[:, 0].long()
        return DiagonalGaussian(self.mu[idx], self.logvar[idx])


def _images(n):
    return torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1)


def test_aggregate_log_density_is_the_log_of_the_mixture(gen):
    mu, logvar = torch.randn(7, 3, generator=gen), torch.randn(7, 3, generator=gen) * 0.3
    z = torch.randn(5, 3, generator=gen)
    comps = torch.distributions.Independent(torch.distributions.Normal(mu.double(), (0.5 * logvar.double()).exp()), 1)
    mix = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(torch.ones(7, dtype=torch.float64)), comps)
    assert torch.allclose(A.aggregate_log_density(z, mu, logvar, chunk=2), mix.log_prob(z.double()), atol=1e-10)
    with pytest.raises(ValueError, match="need z"):
        A.aggregate_log_density(z[:, :2], mu, logvar)


def test_posteriors_equal_to_the_prior_leave_no_gap(gen):
    model = FixedEncoder(torch.zeros(50, 2), torch.zeros(50, 2))
    gap = A.prior_gap(model, _images(50), n_samples=2000, generator=gen)
    assert gap.kl_aggregate_prior == pytest.approx(0.0, abs=1e-6)  # the prior's log-density is float32
    assert gap.kl_prior_aggregate == pytest.approx(0.0, abs=1e-6)
    assert gap.empty_prior_mass == 0.0


def test_one_shifted_posterior_gives_the_closed_form_kl_both_ways(gen):
    """All q(z|x_n) = N((2, 0), 0.25 I): KL(q || p) and KL(p || q) in closed form; tolerance 4 Monte-Carlo errors."""
    mu, logvar = torch.tensor([[2.0, 0.0]]).repeat(20, 1), torch.full((20, 2), math.log(0.25))
    gap = A.prior_gap(vc_model := FixedEncoder(mu, logvar), _images(20), n_samples=20000, generator=gen)
    q, p = torch.distributions.Normal(mu[0].double(), 0.5), torch.distributions.Normal(torch.zeros(2).double(), 1.0)
    kl_qp = float(torch.distributions.kl_divergence(q, p).sum())
    kl_pq = float(torch.distributions.kl_divergence(p, q).sum())
    assert gap.kl_aggregate_prior == pytest.approx(kl_qp, abs=0.05)
    assert gap.kl_prior_aggregate == pytest.approx(kl_pq, abs=4 * 0.08)
    # empty mass: P_p[log q(z) - log p(z) < log 0.1], by a fine grid over the plane
    g = torch.linspace(-7, 7, 1401, dtype=torch.float64)
    zz = torch.cartesian_prod(g, g)
    log_p, log_q = p.log_prob(zz).sum(-1), q.log_prob(zz).sum(-1)
    exact = float((log_p.exp() * (log_q - log_p < math.log(0.1))).sum() * (g[1] - g[0]) ** 2)
    assert gap.empty_prior_mass == pytest.approx(exact, abs=0.015)
    assert vc_model.training is False


def test_two_separated_posteriors_against_a_grid_integral(gen):
    """A 1-D mixture of two narrow posteriors at -1.5 and +1.5: KL(q || p) by quadrature."""
    mu = torch.tensor([[-1.5], [1.5]])
    logvar = torch.full((2, 1), math.log(0.3**2))
    gap = A.prior_gap(FixedEncoder(mu, logvar), _images(2), n_samples=40000, generator=gen)
    g = torch.linspace(-8, 8, 20001, dtype=torch.float64)
    log_q = A.aggregate_log_density(g[:, None], mu, logvar)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(g)
    exact = float((log_q.exp() * (log_q - log_p)).sum() * (g[1] - g[0]))
    assert gap.kl_aggregate_prior == pytest.approx(exact, abs=0.03)
    assert gap.kl_prior_aggregate > gap.kl_aggregate_prior  # the prior's centre is a hole between the two codes


def test_a_trained_2d_vae_leaves_prior_mass_empty_and_bad_arguments_are_named():
    torch.manual_seed(0)
    data = vc.data.mnist5k(binarize="dynamic")
    model = vc.models.VAE(z_dim=2)
    vc.train.fit(model, data, epochs=3, lr=3e-3, device="cpu", progress=False, test_every=3)
    gap = A.prior_gap(model, data.x_test[:300], n_samples=2000, generator=torch.Generator().manual_seed(0))
    assert gap.kl_aggregate_prior > 0.05 and 0 <= gap.empty_prior_mass < 1 and gap.n_images == 300
    with pytest.raises(ValueError, match="threshold"):
        A.prior_gap(model, data.x_test[:10], threshold=0)
    with pytest.raises(ValueError, match="at least 2"):
        A.prior_gap(model, data.x_test[:1])
