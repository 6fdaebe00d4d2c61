"""Tests for vae_course.generators: (1) shapes and errors; (2) seeded statistical checks against
torch.distributions and analytic values, with stated tolerances; (3) a short fit that must learn
a correlated noise covariance through the Cholesky parametrisation."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal

import vae_course as vc
from vae_course import generators as G

COVS = G.COVARIANCES


def make(cov, z_dim=3, x_dim=4, seed=0, **kw):
    torch.manual_seed(seed)
    sigma = 0.5 if cov == "isotropic" else 1.0
    return G.ProbabilisticGenerator(z_dim, x_dim, covariance=cov, sigma=sigma, hidden=(16,), **kw)


# ---------------------------------------------------------------- tier 1: shapes and errors
def test_mlp_shapes_and_linear_case():
    net = vc.nets.MLP(3, 5, hidden=(7, 8), activation="relu")
    assert net(torch.randn(2, 6, 3)).shape == (2, 6, 5)
    lin = vc.nets.MLP(3, 5, hidden=())
    assert [type(m) for m in lin.layers] == [torch.nn.Linear]
    assert sum(isinstance(m, torch.nn.ReLU) for m in net.layers) == 2  # none after the output layer


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(in_dim=0, out_dim=2), ValueError, "in_dim"),
    (dict(in_dim=2, out_dim=2.0), TypeError, "out_dim"),
    (dict(in_dim=2, out_dim=2, hidden=(4, 0)), ValueError, r"hidden\[1\]"),
    (dict(in_dim=2, out_dim=2, hidden=64), TypeError, "hidden"),
    (dict(in_dim=2, out_dim=2, activation="swish"), ValueError, "activation"),
])
def test_mlp_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        vc.nets.MLP(**kwargs)


def test_mlp_wrong_input_size():
    with pytest.raises(ValueError, match="x: got last dimension 4"):
        vc.nets.MLP(3, 2)(torch.randn(5, 4))


@pytest.mark.parametrize("cov", COVS)
def test_shapes(cov):
    g = make(cov)
    z = torch.randn(7, 3)
    s = g.statistics(z)
    assert isinstance(s, G.GaussianStats) and s.mu.shape == (7, 4)
    if cov == "full":
        assert s.logvar is None and s.scale_tril.shape == (7, 4, 4)
    else:
        assert s.scale_tril is None and s.logvar.shape == (7, 4)
    assert s.covariance().shape == (7, 4, 4)
    x, z2 = g.sample(9, return_z=True)
    assert x.shape == (9, 4) and z2.shape == (9, 3)
    assert g.sample(9).shape == (9, 4)
    assert g.sample_latent(6).shape == (6, 3)
    assert g.log_prob(x, z2).shape == (9,)
    # extra batch dimensions broadcast: 5 draws of x for each of 9 latents
    assert g.log_prob(x.expand(5, 9, 4), z2).shape == (5, 9)
    assert g.statistics(torch.randn(2, 5, 3)).mu.shape == (2, 5, 4)
    assert g.n_out == G.n_statistics(cov, 4) == {"identity": 4, "isotropic": 4, "diagonal": 8, "full": 14}[cov]


def test_fixed_covariances_are_what_they_say():
    z = torch.randn(5, 3)
    assert torch.equal(make("identity").statistics(z).logvar, torch.zeros(5, 4))
    assert torch.allclose(make("isotropic").statistics(z).covariance(), 0.25 * torch.eye(4).expand(5, 4, 4))


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(z_dim=0, x_dim=2), ValueError, "z_dim"),
    (dict(z_dim=2, x_dim=-1), ValueError, "x_dim"),
    (dict(z_dim=2.5, x_dim=2), TypeError, "z_dim"),
    (dict(z_dim=2, x_dim=2, covariance="spherical"), ValueError, "covariance"),
    (dict(z_dim=2, x_dim=2, covariance="isotropic", sigma=0.0), ValueError, "sigma"),
    (dict(z_dim=2, x_dim=2, covariance="isotropic", sigma=-1.0), ValueError, "sigma"),
    (dict(z_dim=2, x_dim=2, covariance="isotropic", sigma=float("nan")), ValueError, "sigma"),
    (dict(z_dim=2, x_dim=2, covariance="isotropic", sigma="0.1"), TypeError, "sigma"),
    (dict(z_dim=2, x_dim=2, covariance="identity", sigma=0.1), ValueError, "sigma.*isotropic"),
    (dict(z_dim=2, x_dim=2, net=lambda z: z), TypeError, "net"),
])
def test_constructor_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        G.ProbabilisticGenerator(**kwargs)


def test_call_errors():
    g = make("full")
    with pytest.raises(ValueError, match="n: got 0"):
        g.sample(0)
    with pytest.raises(TypeError, match="n"):
        g.sample_latent(2.0)
    with pytest.raises(ValueError, match=r"z: got shape \(5, 2\)"):
        g.statistics(torch.randn(5, 2))
    with pytest.raises(TypeError, match="z"):
        g.statistics(torch.ones(5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"x: got shape \(5, 3\)"):
        g.log_prob(torch.randn(5, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="x / z"):
        g.log_prob(torch.randn(5, 4), torch.randn(6, 3))
    with pytest.raises(ValueError, match="eps"):
        g.sample_conditional(torch.randn(5, 3), eps=torch.randn(5, 3))
    bad = G.ProbabilisticGenerator(2, 2, covariance="diagonal", net=torch.nn.Linear(2, 3))
    with pytest.raises(ValueError, match="net: returned last dimension 3.*needs 4"):
        bad.statistics(torch.randn(1, 2))


def test_sample_normal_errors():
    mu = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="exactly one"):
        G.sample_normal(mu)
    with pytest.raises(ValueError, match="exactly one"):
        G.sample_normal(mu, logvar=mu, scale_tril=torch.eye(2))
    with pytest.raises(ValueError, match="scale_tril"):
        G.sample_normal(mu, scale_tril=torch.eye(3))
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        G.sample_normal(mu, logvar=torch.zeros(4, 2))


def test_full_factor_is_lower_triangular_with_positive_diagonal():
    g = make("full", x_dim=5)
    with torch.no_grad():  # push every raw output far negative: softplus underflows, the floor remains
        g.net.layers[-1].bias.fill_(-200.0)
        g.net.layers[-1].weight.zero_()
    L = g.statistics(torch.randn(4, 3)).scale_tril
    assert torch.equal(L, torch.tril(L))
    diag = torch.diagonal(L, dim1=-2, dim2=-1)
    assert bool((diag >= G.MIN_SCALE * (1 - 1e-6)).all())
    # random weights: Sigma = L L^T is symmetric positive definite (Cholesky succeeds, eigenvalues > 0)
    S = make("full", x_dim=5, seed=3).statistics(torch.randn(50, 3)).covariance()
    assert torch.allclose(S, S.transpose(-1, -2))
    assert bool((torch.linalg.eigvalsh(S.double()) > 0).all())


def test_tril_from_vector_inverts_the_parametrisation():
    torch.manual_seed(1)
    d = 4
    L = torch.tril(torch.randn(d, d), -1) + torch.diag(torch.rand(d) + 0.1)
    rows, cols = torch.tril_indices(d, d)
    v = L[rows, cols].clone()
    v[rows == cols] = G._softplus_inverse(torch.diagonal(L) - G.MIN_SCALE)
    assert torch.allclose(G.tril_from_vector(v, d), L, atol=1e-5)
    with pytest.raises(ValueError, match="v: got last dimension 9"):
        G.tril_from_vector(torch.zeros(9), 4)


def test_injected_eps_gives_mu_plus_L_eps():
    g = make("full")
    z, eps = torch.randn(6, 3), torch.randn(6, 4)
    s = g.statistics(z)
    x = g.sample_conditional(z, eps=eps)
    assert torch.allclose(x, s.mu + torch.einsum("bij,bj->bi", s.scale_tril, eps), atol=1e-6)
    assert torch.allclose(g.sample_conditional(z, eps=torch.zeros(6, 4)), s.mu)
    gd = make("diagonal")
    sd = gd.statistics(z)
    # standard deviation is exp(logvar / 2), not exp(logvar)
    assert torch.allclose(gd.sample_conditional(z, eps=eps), sd.mu + torch.exp(0.5 * sd.logvar) * eps, atol=1e-6)


def test_seeded_generator_reproduces():
    g = make("diagonal")
    a = g.sample(5, generator=vc.utils.make_generator(7))
    b = g.sample(5, generator=vc.utils.make_generator(7))
    assert torch.equal(a, b)


def test_deterministic_generator():
    d = G.DeterministicGenerator(2, 3, hidden=(8,))
    x, z = d.sample(10, return_z=True)
    assert x.shape == (10, 3) and torch.equal(x, d(z))  # no noise: x is a function of z
    with pytest.raises(ValueError, match="z"):
        d(torch.randn(4, 3))
    with pytest.raises(ValueError, match="x_dim"):
        G.DeterministicGenerator(2, 0)
    with pytest.raises(TypeError, match="gen"):
        G.DeterministicGenerator.from_probabilistic(d)
    # sharing a probabilistic generator's net: the draws are its means, exactly on the curve
    banana = G.toy_generator("banana")
    det = G.DeterministicGenerator.from_probabilistic(banana)
    x, z = det.sample(500, return_z=True)
    assert torch.allclose(x, banana.statistics(z).mu)
    assert torch.allclose(x[:, 1], 0.5 * x[:, 0] ** 2 - 1, atol=1e-5)


def test_toy_generator_errors():
    with pytest.raises(ValueError, match="name"):
        G.toy_generator("spiral")
    with pytest.raises(ValueError, match="covariance"):
        G.toy_generator("ring", covariance="diagonal")
    with pytest.raises(ValueError, match="across"):
        G.toy_generator("ring", across=-0.1)


# ---------------------------------------------------------------- tier 2: statistical checks
@pytest.mark.parametrize("cov", COVS)
def test_conditional_moments_match_mu_sigma(cov):
    """x | z: the empirical mean and covariance of N draws match mu(z), Sigma(z).

    Tolerance: 5 standard errors, i.e. sqrt(S_jj / N) for a mean and sqrt((S_ii S_jj + S_ij^2) / N)
    for a covariance entry (Gaussian data): a correct sampler fails with probability < 1e-5 per entry."""
    g = make(cov, seed=2)
    N = 200_000
    with torch.no_grad():
        z = torch.randn(1, 3)
        s = g.statistics(z)
        mu, S = s.mu[0].double(), s.covariance()[0].double()
        x = g.sample_conditional(z.expand(N, 3), generator=vc.utils.make_generator(0)).double()
    se_mean = (torch.diagonal(S) / N).sqrt()
    assert bool(((x.mean(0) - mu).abs() < 5 * se_mean).all())
    emp = torch.cov(x.T)
    se_cov = ((torch.diagonal(S)[:, None] * torch.diagonal(S)[None, :] + S**2) / N).sqrt()
    assert bool(((emp - S).abs() < 5 * se_cov).all())


@pytest.mark.parametrize("cov", COVS)
def test_log_prob_matches_torch_distributions(cov):
    g = make(cov, seed=4).double()
    z = torch.randn(20, 3, dtype=torch.float64)
    x = torch.randn(20, 4, dtype=torch.float64) * 2
    s = g.statistics(z)
    if cov == "full":
        ref = MultivariateNormal(s.mu, scale_tril=s.scale_tril).log_prob(x)
    else:
        ref = Normal(s.mu, torch.exp(0.5 * s.logvar)).log_prob(x).sum(-1)
        # and the same through a full-covariance MVN with Sigma = diag(exp(logvar))
        ref_mvn = MultivariateNormal(s.mu, covariance_matrix=torch.diag_embed(torch.exp(s.logvar))).log_prob(x)
        assert torch.allclose(ref, ref_mvn, atol=1e-10)
    assert torch.allclose(g.log_prob(x, z), ref, rtol=1e-10, atol=1e-10)


def test_identity_log_prob_is_the_slide_formula():
    """log p(x|z) = -d/2 log(2 pi) - ||x - G(z)||^2 / 2 for covariance='identity' (exact in float64)."""
    g = make("identity").double()
    z, x = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 4, dtype=torch.float64)
    mu = g.net(z)
    assert torch.allclose(g.log_prob(x, z), -2 * math.log(2 * math.pi) - 0.5 * (x - mu).pow(2).sum(-1))


def test_slide_normaliser_is_wrong_beyond_one_dimension():
    """(2 pi |S|)^{d/2} differs from the correct (2 pi)^{d/2} |S|^{1/2} by (d - 1)/2 log|S|; equal at d = 1."""
    torch.manual_seed(5)
    for d in (1, 3):
        A = torch.randn(d, d, dtype=torch.float64)
        S = A @ A.T + 0.5 * torch.eye(d, dtype=torch.float64)
        mu, x = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
        quad = (x - mu) @ torch.linalg.solve(S, x - mu)
        logdet = torch.logdet(S)
        correct = -0.5 * d * math.log(2 * math.pi) - 0.5 * logdet - 0.5 * quad
        slide = -0.5 * d * (math.log(2 * math.pi) + logdet) - 0.5 * quad
        ref = MultivariateNormal(mu, covariance_matrix=S).log_prob(x)
        assert torch.allclose(correct, ref, atol=1e-10)
        assert torch.allclose(ref - slide, 0.5 * (d - 1) * logdet, atol=1e-10)
        if d > 1:
            assert abs(float(ref - slide)) > 1e-3


def test_toy_full_covariance_is_stretched_along_the_curve():
    """Sigma(z) = along^2 t t^T + across^2 n n^T, computed independently of the module."""
    g = G.toy_generator("ring", along=0.3, across=0.05)
    z = torch.linspace(-2, 2, 9, dtype=torch.float32)[:, None]
    theta = 2 * math.pi * Normal(0.0, 1.0).cdf(z[:, 0])
    t = torch.stack([-torch.sin(theta), torch.cos(theta)], -1)
    n = torch.stack([torch.cos(theta), torch.sin(theta)], -1)
    S_ref = 0.09 * t[:, :, None] * t[:, None, :] + 0.0025 * n[:, :, None] * n[:, None, :]
    s = g.statistics(z)
    assert torch.allclose(s.covariance(), S_ref, atol=1e-5)
    assert torch.allclose(s.mu, n, atol=1e-6)  # the mean sits on the unit circle


def test_ring_marginal_is_not_gaussian():
    """The marginal of the ring generator has a hole where its moment-matched Gaussian has its mode."""
    g = G.toy_generator("ring", covariance="isotropic", across=0.05)
    with torch.no_grad():
        x = g.sample(20_000, generator=vc.utils.make_generator(0)).double()
    inside = (x.norm(dim=1) < 0.5).double().mean()
    gauss = MultivariateNormal(x.mean(0), covariance_matrix=torch.cov(x.T))
    inside_gauss = (gauss.sample((20_000,)).norm(dim=1) < 0.5).double().mean()
    # ring: 0.5 is 10 noise std below the radius, so essentially no mass; Gaussian fit: 1 - exp(-0.5^2) = 0.22
    assert inside < 1e-3 and abs(float(inside_gauss) - (1 - math.exp(-0.25))) < 0.02


def test_gradient_flows_through_sample_to_every_output():
    """With eps fixed (reparameterisation), d x / d w reaches the mean AND the covariance outputs."""
    for cov in ("diagonal", "full"):
        g = make(cov)
        eps = torch.randn(32, 4)
        x = g.sample(32, generator=vc.utils.make_generator(0), eps=eps)
        (x**2).sum().backward()
        last = g.net.layers[-1].weight.grad  # (n_out, hidden): one row per statistic
        assert bool((last.abs().sum(1) > 0).all()), f"{cov}: some statistic receives no gradient"
        assert all(p.grad is not None for p in g.parameters())


# ---------------------------------------------------------------- tier 3: learning effect
def test_fit_learns_a_correlated_noise_covariance():
    """Maximising log p(x|z) on pairs x = f(z) + L0 eps recovers Sigma0 = L0 L0^T through the Cholesky head.
    Tolerance: 0.05 absolute per entry of Sigma (entries are 0.25, 0.2, 0.25; a wrong or diagonal model is off by >= 0.2)."""
    gen = vc.utils.make_generator(0)
    torch.manual_seed(0)
    L0 = torch.tensor([[0.5, 0.0], [0.4, 0.3]])
    z = torch.randn(2048, 1, generator=gen)
    x = torch.cat([torch.sin(2 * z), z], 1) + torch.randn(2048, 2, generator=gen) @ L0.T
    g = G.ProbabilisticGenerator(1, 2, covariance="full", hidden=(32,))
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    first = None
    for step in range(300):
        loss = -g.log_prob(x, z).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 1.0
    with torch.no_grad():
        S = g.statistics(torch.tensor([[0.0], [1.0]])).covariance()
    assert torch.allclose(S, (L0 @ L0.T).expand(2, 2, 2), atol=0.05), S


# ---------------------------------------------------------------- formulas the chapter states
def test_linear_generator_has_gaussian_marginal():
    """mu = W z + b with Sigma = s^2 I gives p(x) = N(b, W W^T + s^2 I) (check-yourself question 5).
    Tolerance: 5 standard errors of each covariance entry, sqrt((S_ii S_jj + S_ij^2) / N)."""
    torch.manual_seed(3)
    g = G.ProbabilisticGenerator(2, 3, covariance="isotropic", sigma=0.3, hidden=())
    lin = g.net.layers[0]
    S = (lin.weight @ lin.weight.T + 0.09 * torch.eye(3)).detach().double()
    N = 200_000
    with torch.no_grad():
        x = g.sample(N, generator=vc.utils.make_generator(1)).double()
    se = ((torch.diagonal(S)[:, None] * torch.diagonal(S)[None, :] + S**2) / N).sqrt()
    assert bool(((torch.cov(x.T) - S).abs() < 5 * se).all())
    assert bool(((x.mean(0) - lin.bias.detach().double()).abs() < 5 * (torch.diagonal(S) / N).sqrt()).all())


@pytest.mark.parametrize("k", [1.0, 2.0])
def test_ellipse_mass_in_two_dimensions(k):
    """P(Mahalanobis distance <= k) = 1 - exp(-k^2 / 2) in 2-D (39.3% and 86.5%, as the figure legends say).
    Tolerance: 5 binomial standard errors with N = 100 000 (about 0.008)."""
    S = torch.tensor([[2.0, 1.2], [1.2, 1.0]], dtype=torch.float64)
    L = torch.linalg.cholesky(S)
    x = G.sample_normal(torch.zeros(2, dtype=torch.float64), scale_tril=L,
                        eps=torch.randn(100_000, 2, generator=vc.utils.make_generator(2), dtype=torch.float64))
    m2 = (x @ torch.linalg.inv(S) * x).sum(1)
    p = 1 - math.exp(-k**2 / 2)
    assert abs(float((m2 <= k**2).double().mean()) - p) < 5 * math.sqrt(p * (1 - p) / 100_000)


def test_identity_noise_energy_is_d():
    """E||x - mu||^2 = d sigma^2 for x ~ N(mu, sigma^2 I) (784 for MNIST-sized images at sigma = 1).
    Tolerance: 5 standard errors; Var ||eps||^2 = 2 d per draw."""
    d, n = 784, 2000
    mu = torch.rand(n, d, generator=vc.utils.make_generator(3))
    x = G.sample_normal(mu, logvar=torch.zeros(n, d), generator=vc.utils.make_generator(4))
    assert abs(float((x - mu).pow(2).sum(1).mean()) - d) < 5 * math.sqrt(2 * d / n)


# ---------------------------------------------------------------- figures and widgets run and draw
def test_plots_and_widgets_smoke():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ring = G.toy_generator("ring")
    with torch.no_grad():
        x = ring.sample(300, generator=vc.utils.make_generator(0))
    cov = torch.tensor([[2.0, 1.2], [1.2, 1.0]])
    ax = vc.plotting.gaussian_cloud(torch.zeros(2), cov, n=200)
    assert len(ax.lines) == 3 and len(ax.collections) == 1  # 2 ellipses + centre, 1 scatter
    # the 1-sigma ellipse is the image of the unit circle under L: each point has Mahalanobis distance 1
    pts = torch.tensor(ax.lines[0].get_xydata())
    m2 = (pts @ torch.linalg.inv(cov.double()) * pts).sum(1)
    assert torch.allclose(m2, torch.ones_like(m2), atol=1e-6)
    assert len(vc.plotting.generator_samples(ring, n=200).lines) == 5 * 2 + 2
    assert len(vc.plotting.generator_samples(G.DeterministicGenerator.from_probabilistic(ring), n=200).lines) == 1
    vc.plotting.generator_conditional(ring, 0.3, background=x)
    vc.plotting.marginal_vs_gaussian(x)
    vc.plotting.marginal_vs_gaussian(x[:, 0])
    vc.plotting.pixel_noise_grid(torch.rand(3, 1, 8, 8), sigmas=(1.0, 0.0))
    ax = vc.plotting.latent_integrand(ring, torch.tensor([[-1.0, 0.0]]))
    assert "0.9" in ax.get_legend().get_texts()[0].get_text()  # p(x) on the ring, by the trapezoid rule: 0.92
    with pytest.raises(ValueError, match="x_dim"):
        vc.plotting.generator_samples(make("identity"))
    with pytest.raises(ValueError, match="cov"):
        vc.plotting.gaussian_cloud(torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    w = vc.widgets.gaussian_covariance_widget(n=100)
    assert [c.description for c in w.children[:3]] == ["sigma_1", "sigma_2", "rho"]
    w2 = vc.widgets.generator_latent_widget(n=50, n_background=100)
    assert w2.children[0].description == "z"
    with pytest.raises(ValueError, match="gen"):
        vc.widgets.generator_latent_widget(make("identity"))
    plt.close("all")
