"""vae_course.tc and the tc loss option: the KL split into index-code MI, total correlation and dimension-wise KL
against brute-force quadrature and known answers, the minibatch estimator against the exact sums, and the
beta-TCVAE objective on every VAE.

Statistical tests are seeded; each states its tolerance (a multiple of the Monte-Carlo standard error, or a
quadrature error bound far below it)."""
import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

import vae_course as vc
from vae_course import objectives as O
from vae_course import tc as T
from vae_course.models import AutoregressiveVAE, VAE

F64 = torch.float64


def _posteriors(n=5, m=2, seed=0, spread=1.5):
    g = torch.Generator().manual_seed(seed)
    mu = spread * torch.randn(n, m, generator=g, dtype=F64)
    logvar = -1.0 + 0.6 * torch.randn(n, m, generator=g, dtype=F64)
    return mu, logvar


def _normal_pdf(x, mu, var):
    return torch.exp(-0.5 * (x - mu) ** 2 / var) / torch.sqrt(2 * math.pi * var)


def _quadrature_split(mu, logvar, lim=9.0, n=1201):
    """MI, TC and dimension-wise KL of a 2-D Gaussian mixture by the trapezoid-free midpoint rule on a fine grid."""
    h = 2 * lim / n
    t = -lim + h * (torch.arange(n, dtype=F64) + 0.5)  # midpoints
    var = logvar.exp()
    comp = [_normal_pdf(t[None, :], mu[:, d:d + 1], var[:, d:d + 1]) for d in range(2)]  # (N, n) per coordinate
    qn = comp[0][:, :, None] * comp[1][:, None, :]  # (N, n, n): q(z | n) on the grid
    q = qn.mean(0)  # (n, n): the aggregate posterior
    q1, q2 = comp[0].mean(0), comp[1].mean(0)  # its marginals
    tiny = 1e-300
    mi = (qn * (qn.clamp(min=tiny).log() - q.clamp(min=tiny).log())).sum((1, 2)).mean() * h * h
    tc = (q * (q.clamp(min=tiny).log() - (q1[:, None] * q2[None, :]).clamp(min=tiny).log())).sum() * h * h
    p = _normal_pdf(t, 0.0, torch.tensor(1.0, dtype=F64))
    dim = torch.stack([(qd * (qd.clamp(min=tiny).log() - p.log())).sum() * h for qd in (q1, q2)])
    return float(mi), float(tc), dim


def _closed_form_kl(mu, logvar):
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    return float(kl_divergence(q, p).mean())


# ---------------------------------------------------------------- tier 1: shapes and errors
@pytest.mark.parametrize("call,match", [
    (lambda: T.kl_decomposition(torch.zeros(4, 2), torch.zeros(4, 3)), "mu, logvar"),
    (lambda: T.kl_decomposition(torch.zeros(4, 2), torch.zeros(4, 2), n_samples=0), "n_samples"),
    (lambda: T.minibatch_tc(torch.zeros(3, 2), torch.zeros(4, 2), torch.zeros(4, 2)), "z"),
    (lambda: T.minibatch_kl_terms(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2), dataset_size=3),
     "dataset_size"),
    (lambda: T.minibatch_log_weights(0), "batch_size"),
    (lambda: O.beta_objective(torch.zeros(2), torch.zeros(2), tc=-1.0, tc_estimate=torch.zeros(2)), "tc"),
    (lambda: O.beta_objective(torch.zeros(2), torch.zeros(2), tc=2.0), "tc_estimate"),
    (lambda: O.beta_objective(torch.zeros(2), torch.zeros(2), tc=2.0, capacity=1.0, tc_estimate=torch.zeros(2)),
     "tc / capacity"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_minibatch_weights_sum_to_one_and_favour_nothing_when_the_batch_is_the_data_set():
    for m, n in ((1, 1), (2, 10), (8, 8), (8, 3340)):
        w = T.minibatch_log_weights(m, n).exp()
        assert w.shape == (m, m) and torch.allclose(w.sum(1), torch.ones(m), atol=1e-6)
    assert torch.allclose(T.minibatch_log_weights(6).exp(), torch.full((6, 6), 1 / 6))
    w = T.minibatch_log_weights(4, 100).exp()
    assert math.isclose(float(w[0, 0]), 0.01, rel_tol=1e-6) and math.isclose(float(w[0, 1]), 99 / 300, rel_tol=1e-6)


# ---------------------------------------------------------------- tier 2: against independent references
def test_kl_split_matches_brute_force_quadrature_and_sums_to_the_mean_kl():
    """Five 2-D Gaussian posteriors: the three terms by quadrature on a 1201 x 1201 grid (error far below 1e-4 nats
    for these widths) against the Monte-Carlo estimates from 40,000 draws per posterior (4 standard errors)."""
    mu, logvar = _posteriors()
    mi, tc, dim = _quadrature_split(mu, logvar)
    kl = _closed_form_kl(mu, logvar)
    assert math.isclose(mi + tc + float(dim.sum()), kl, abs_tol=1e-4)  # the identity itself, by quadrature
    assert 0 < mi < math.log(5) and tc > 0.01 and (dim > 0).all()
    est = T.kl_decomposition(mu, logvar, n_samples=40_000, generator=torch.Generator().manual_seed(1))
    assert est.kl == pytest.approx(kl, rel=1e-9)
    assert abs(est.mi + est.tc + float(est.dim_kl.sum()) - kl) < 4 * est.se
    # each term separately: its own Monte-Carlo error is below the total's (the terms are positively correlated
    # draws of bounded log-ratios); 4 s.e. of the total bounds each one generously
    assert abs(est.mi - mi) < 4 * est.se and abs(est.tc - tc) < 4 * est.se
    assert torch.allclose(est.dim_kl.double(), dim, atol=4 * est.se)


def test_total_correlation_is_zero_when_the_aggregate_posterior_factorises():
    """Posteriors centred on a full product grid, each coordinate's variance the same for every posterior:
    q(z) = q(z_1) q(z_2) exactly, so every draw's log-ratio, and the TC, is 0 to rounding. Rotating the grid by
    45 degrees keeps the MI but makes the coordinates dependent: TC > 0."""
    a = torch.tensor([-2.0, -0.5, 1.0, 2.5], dtype=F64)
    mu = torch.cartesian_prod(a, a)  # (16, 2)
    logvar = torch.log(torch.tensor([[0.3, 0.6]], dtype=F64)).expand(16, 2)
    est = T.kl_decomposition(mu, logvar, n_samples=200, generator=torch.Generator().manual_seed(0))
    assert abs(est.tc) < 1e-9
    c = math.sqrt(0.5)
    rot = torch.tensor([[c, -c], [c, c]], dtype=F64)
    iso = torch.full((16, 2), math.log(0.3), dtype=F64)
    flat = T.kl_decomposition(mu, iso, n_samples=2000, generator=torch.Generator().manual_seed(0))
    turned = T.kl_decomposition(mu @ rot.T, iso, n_samples=2000, generator=torch.Generator().manual_seed(1))
    assert abs(flat.tc) < 1e-9 and turned.tc > 0.1
    # the MI and the rate do not change under a rotation (isotropic posteriors): equal within 4 s.e. of the estimates
    assert abs(turned.mi - flat.mi) < 4 * (flat.se + turned.se)
    assert turned.kl == pytest.approx(flat.kl, rel=1e-9)


def test_index_code_mi_is_log_n_for_separate_posteriors_and_zero_for_identical_ones():
    mu = torch.arange(6, dtype=F64).reshape(6, 1).repeat(1, 3) * 20.0  # 20 sd apart
    logvar = torch.zeros(6, 3, dtype=F64)
    est = T.kl_decomposition(mu, logvar, n_samples=50, generator=torch.Generator().manual_seed(0))
    assert est.mi == pytest.approx(math.log(6), abs=1e-9)
    same = T.kl_decomposition(torch.full((6, 3), 0.7, dtype=F64), torch.full((6, 3), -1.0, dtype=F64), n_samples=50)
    assert abs(same.mi) < 1e-12 and abs(same.tc) < 1e-12  # every posterior is the aggregate: no MI, nothing to correlate


def test_minibatch_terms_are_exact_when_the_batch_is_the_data_set_and_sum_to_the_log_ratio():
    mu, logvar = _posteriors(n=12, m=3, seed=2)
    z = mu + (0.5 * logvar).exp() * torch.randn(12, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    terms = T.minibatch_kl_terms(z, mu, logvar)
    log_qz, log_qzj = T.aggregate_log_density(z, mu, logvar)
    log_q = Independent(Normal(mu, (0.5 * logvar).exp()), 1).log_prob(z)
    log_p = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1).log_prob(z)
    assert torch.allclose(terms.mi, log_q - log_qz, atol=1e-10)
    assert torch.allclose(terms.tc, log_qz - log_qzj.sum(-1), atol=1e-10)
    assert torch.allclose(terms.mi + terms.tc + terms.dim_kl, log_q - log_p, atol=1e-10)
    # S draws at once are the mean of the single-draw terms; minibatch_tc is the tc part
    z2 = torch.stack([z, z.flip(0)])
    both = T.minibatch_kl_terms(z2, mu, logvar, dataset_size=40)
    one = [T.minibatch_kl_terms(zs, mu, logvar, dataset_size=40) for zs in z2]
    assert torch.allclose(both.tc, (one[0].tc + one[1].tc) / 2, atol=1e-10)
    assert torch.allclose(T.minibatch_tc(z2, mu, logvar, dataset_size=40), both.tc, atol=1e-10)


def test_minibatch_density_estimate_is_unbiased_for_the_aggregate_posterior():
    """q^(z_i) from batches that contain image i and 7 others drawn without replacement from the remaining 49:
    its mean over 20,000 batches matches the exact q(z_i) of the 50 posteriors within 4 standard errors."""
    mu, logvar = _posteriors(n=50, m=2, seed=4)
    g = torch.Generator().manual_seed(5)
    z = mu[0] + (0.5 * logvar[0]).exp() * torch.randn(2, generator=g, dtype=F64)
    exact = float(T.aggregate_log_density(z[None], mu, logvar)[0].exp())
    logw = T.minibatch_log_weights(8, 50, dtype=F64)[0]  # row of the draw's own posterior (index 0 of the batch)
    dens = T.log_density_matrix(z[None], mu, logvar)[0].sum(-1)  # (50,): log q(z | n)
    others = 1 + torch.rand(20_000, 49, generator=g).argsort(1)[:, :7]  # 7 of images 1..49, without replacement
    idx = torch.cat([torch.zeros(20_000, 1, dtype=torch.long), others], 1)  # (20000, 8): image 0 first
    est = torch.logsumexp(logw + dens[idx], 1).exp()  # (20000,): q^(z) of each batch
    assert abs(float(est.mean()) - exact) < 4 * float(est.std()) / math.sqrt(len(est))


# ---------------------------------------------------------------- the loss option on every VAE
def _x(n, shape=(1, 8, 8), seed=0):
    return torch.bernoulli(torch.full((n, *shape), 0.3), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("make", [lambda: VAE(x_shape=(1, 8, 8), z_dim=3, hidden=16),
                                  lambda: VAE(x_shape=(1, 8, 8), z_dim=3, hidden=16, arch="conv", channels=(4, 8)),
                                  lambda: AutoregressiveVAE(z_dim=3, hidden=16)],
                         ids=["VAE", "conv VAE", "AutoregressiveVAE"])
def test_every_vae_takes_a_total_correlation_weight(make):
    torch.manual_seed(0)
    model = make()
    x = _x(10, seed=1)
    with torch.no_grad():
        t = model.elbo(x, beta=2.0, tc=7.0, dataset_size=500, generator=torch.Generator().manual_seed(2))
        q = model.encode(x)
        z = q.mu + (0.5 * q.logvar).exp() * torch.randn(q.mu.shape, generator=torch.Generator().manual_seed(2))
        tc_ref = T.minibatch_tc(z, q.mu, q.logvar, dataset_size=500)
    assert torch.allclose(t.tc, tc_ref, atol=1e-5)
    # beta (MI + dim-wise KL) + tc TC = beta KL + (tc - beta) TC; the reported terms stay the true ELBO's
    assert torch.allclose(t.total, t.recon - 2.0 * t.kl - 5.0 * tc_ref, atol=1e-4)
    assert torch.allclose(t.elbo, t.recon - t.kl)
    with torch.no_grad():
        same = model.elbo(x, beta=2.0, tc=2.0, generator=torch.Generator().manual_seed(2))
        plain = model.elbo(x, beta=2.0, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(same.total, plain.total, atol=1e-5) and plain.tc is None  # tc = beta: the beta-VAE
    torch.manual_seed(3)
    with torch.no_grad():
        out = model.loss(x, beta=1.0, tc=6.0, dataset_size=500)
    assert set(out.terms) == {"loss", "elbo", "recon", "kl", "tc"}
    assert math.isclose(float(out.loss), float(-out.terms["recon"] + out.terms["kl"] + 5.0 * out.terms["tc"]),
                        rel_tol=1e-5)
    with pytest.raises(ValueError, match="tc / capacity / free_bits"):
        model.loss(x, tc=3.0, free_bits=0.5)


def test_a_total_correlation_penalty_lowers_the_total_correlation_of_a_trained_code():
    """Twenty epochs on 720 sprites (at six the MI margin was 0.46 nats, short of 0.5): with tc = 10 the total correlation of the aggregate posterior on the grid (exact
    sums) is below half that of the same VAE trained with beta = 1, and the index-code MI is not squeezed the way a
    beta of 10 on the whole KL squeezes it."""
    small = {"x": 4, "y": 4, "rotation": 3}
    data = vc.sprites.sprites(test_size=100, levels=small)
    images, _ = vc.sprites.sprites_grid(levels=small)
    split = {}
    for name, loss in {"elbo": {"beta": 1.0}, "tcvae": {"beta": 1.0, "tc": 10.0, "dataset_size": 620},
                       "beta-vae": {"beta": 10.0}}.items():
        torch.manual_seed(0)
        model = VAE(x_shape=(1, 32, 32), z_dim=6, hidden=64)
        vc.train.fit(model, data, epochs=20, batch_size=64, seed=0, progress=False, device="cpu", loss_kwargs=loss)
        mu, logvar = vc.evaluate.encode_all(model, images)
        split[name] = T.kl_decomposition(mu, logvar, generator=torch.Generator().manual_seed(0))
    assert split["tcvae"].tc < 0.5 * split["elbo"].tc
    assert split["tcvae"].mi > split["beta-vae"].mi + 0.5
