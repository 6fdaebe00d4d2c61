"""Tests for vae_course.information (and its plots and widgets): (1) shapes and errors;
(2) values against torch.distributions and closed forms, the properties the chapter states,
and seeded Monte-Carlo estimates with stated tolerances."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.distributions import Categorical, Normal, kl_divergence as torch_kl  # noqa: E402

import vae_course as vc  # noqa: E402
from vae_course import information as info  # noqa: E402


def dirichlet(shape, seed):
    g = torch.Generator().manual_seed(seed)
    e = -torch.log(torch.rand(*shape, generator=g, dtype=torch.float64))
    return e / e.sum(-1, keepdim=True)


# ---------------------------------------------------------------- tier 1: shapes and errors
def test_shapes_and_broadcasting():
    p, q = dirichlet((3, 4, 5), 0), dirichlet((4, 5), 1)
    assert info.entropy(p).shape == (3, 4)
    assert info.cross_entropy(p, q).shape == (3, 4)
    assert info.kl_divergence(p, q).shape == (3, 4)
    assert info.kl_divergence(q, p).shape == (3, 4)


@pytest.mark.parametrize("fn", [info.entropy, lambda p: info.kl_divergence(p, torch.full((3,), 1 / 3)),
                                lambda p: info.cross_entropy(p, torch.full((3,), 1 / 3))])
def test_errors_name_the_argument(fn):
    with pytest.raises(ValueError, match=r"p: got a negative entry"):
        fn(torch.tensor([0.6, 0.6, -0.2]))
    with pytest.raises(ValueError, match=r"p: got a vector summing to 0.9.*tolerance 1e-05"):
        fn(torch.tensor([0.3, 0.3, 0.3]))
    with pytest.raises(ValueError, match=r"p: got 1 non-finite"):
        fn(torch.tensor([0.5, float("nan"), 0.5]))
    with pytest.raises(TypeError, match=r"p: got list"):
        fn([0.2, 0.3, 0.5])
    with pytest.raises(TypeError, match=r"p: got dtype torch.int64"):
        fn(torch.tensor([1, 0, 0]))


def test_q_errors_and_base_errors():
    p = torch.tensor([0.5, 0.5])
    with pytest.raises(ValueError, match=r"q: got a vector summing to 1.2"):
        info.kl_divergence(p, torch.tensor([0.6, 0.6]))
    with pytest.raises(ValueError, match=r"last \(event\) dimensions differ"):
        info.kl_divergence(p, torch.tensor([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match=r"last \(event\) dimensions differ"):
        info.cross_entropy(torch.tensor([1.0]), p)  # (1,) would broadcast silently
    for bad in (1, 0, -2.0, "two", float("inf")):
        with pytest.raises(ValueError, match=r"base: got"):
            info.entropy(p, base=bad)


def test_sum_tolerance_is_what_the_docstring_states():
    ok = torch.tensor([0.5, 0.5 + 0.9 * info.SUM_TOL], dtype=torch.float64)
    bad = torch.tensor([0.5, 0.5 + 1.5 * info.SUM_TOL], dtype=torch.float64)
    info.entropy(ok)
    with pytest.raises(ValueError, match="sum"):
        info.entropy(bad)


def test_zero_conventions_no_nan():
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([0.25, 0.75, 0.0])
    assert info.entropy(p).item() == pytest.approx(math.log(2), rel=1e-6)   # 0 log 0 = 0
    assert torch.isfinite(info.kl_divergence(p, q))                          # 0 log(0/0) = 0
    assert info.entropy(torch.tensor([1.0, 0.0, 0.0])).item() == 0.0        # a certain outcome
    # q = 0 where p > 0: KL and cross-entropy are +inf (documented), not NaN and not an error
    assert info.kl_divergence(torch.tensor([0.0, 0.5, 0.5]), torch.tensor([0.5, 0.5, 0.0])).item() == math.inf
    assert info.cross_entropy(torch.tensor([0.3, 0.7]), torch.tensor([1.0, 0.0])).item() == math.inf
    # and the reverse direction stays finite
    assert math.isfinite(info.kl_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.3, 0.7])).item())


# ---------------------------------------------------------------- tier 2: values and properties
def test_entropy_matches_torch_categorical():
    p = dirichlet((200, 7), 2)
    torch.testing.assert_close(info.entropy(p), Categorical(probs=p).entropy(), rtol=1e-10, atol=1e-12)


def test_kl_and_cross_entropy_match_torch_distributions():
    p, q = dirichlet((200, 7), 3), dirichlet((200, 7), 4)
    ref = torch_kl(Categorical(probs=p), Categorical(probs=q))
    torch.testing.assert_close(info.kl_divergence(p, q), ref, rtol=1e-10, atol=1e-12)
    # H(p, q) = -sum p log q computed independently from log-probabilities of every outcome
    logq = Categorical(probs=q).log_prob(torch.arange(7).unsqueeze(-1)).T  # (200, 7)
    torch.testing.assert_close(info.cross_entropy(p, q), -(p * logq).sum(-1), rtol=1e-10, atol=1e-12)


def test_bits_are_nats_over_log2():
    p, q = dirichlet((50, 4), 5), dirichlet((50, 4), 6)
    assert info.entropy(torch.full((8,), 1 / 8), base=2).item() == pytest.approx(3.0)  # 8 equally likely: 3 bits
    torch.testing.assert_close(info.kl_divergence(p, q, base=2), info.kl_divergence(p, q) / math.log(2))
    torch.testing.assert_close(info.cross_entropy(p, q, base=2), info.cross_entropy(p, q) / math.log(2))


def test_properties_stated_in_the_chapter():
    p, q = dirichlet((5000, 6), 7), dirichlet((5000, 6), 8)
    kl_pq, kl_qp = info.kl_divergence(p, q), info.kl_divergence(q, p)
    h_p, h_pq = info.entropy(p), info.cross_entropy(p, q)
    assert kl_pq.min() > 0                                                   # Gibbs: KL >= 0 (> 0 for p != q)
    torch.testing.assert_close(h_pq, h_p + kl_pq, rtol=0, atol=1e-12)        # H(p,q) = H(p) + KL(p||q)
    assert ((kl_pq - kl_qp).abs() > 1e-3).float().mean() > 0.9              # asymmetric for most pairs
    assert (h_p >= 0).all() and (h_p <= math.log(6) + 1e-12).all()          # 0 <= H <= log K (discrete)
    assert info.kl_divergence(p, p).abs().max() == 0                         # KL(p||p) = 0
    # KL -> 0 as q -> p, roughly quadratically (KL ~ chi^2 / 2 near p)
    eps = torch.tensor([1e-1, 1e-2, 1e-3], dtype=torch.float64)[:, None]
    q_near = (1 - eps) * p[0] + eps * q[0]
    kl_near = info.kl_divergence(p[0], q_near)
    assert (kl_near[1:] / kl_near[:-1] < 0.02).all()


def test_uniform_maximises_entropy_and_one_hot_minimises():
    k = 5
    assert info.entropy(torch.full((k,), 1 / k)).item() == pytest.approx(math.log(k))
    assert info.entropy(torch.eye(k)).abs().max() == 0


# ---------------------------------------------------------------- Monte Carlo, continuous
def test_kl_monte_carlo_matches_closed_form_gaussians():
    p, q = Normal(0.3, 0.8), Normal(-0.5, 1.4)
    exact = torch_kl(p, q).item()
    est = info.kl_monte_carlo(p, q, 200_000, generator=torch.Generator().manual_seed(0))
    # an unbiased mean of 200k terms: within 4 standard errors (std error ~ 0.002 here)
    assert abs(est.value.item() - exact) < 4 * est.std_error.item()
    assert est.std_error.item() < 0.005 and est.n == 200_000
    # also against the package's own closed form
    closed = vc.distributions.kl_normal_diag(torch.tensor([0.3]), torch.tensor([2 * math.log(0.8)]),
                                             torch.tensor([-0.5]), torch.tensor([2 * math.log(1.4)]))
    assert closed.item() == pytest.approx(exact, rel=1e-5)
    # asymmetry survives the noise: the two directions differ by far more than their error bars
    back = info.kl_monte_carlo(q, p, 200_000, generator=torch.Generator().manual_seed(1))
    assert abs(back.value.item() - torch_kl(q, p).item()) < 4 * back.std_error.item()
    assert abs(back.value.item() - est.value.item()) > 10 * (back.std_error + est.std_error).item()


def test_monte_carlo_is_reproducible_and_leaves_global_rng_alone():
    p, q = Normal(0.0, 1.0), Normal(1.0, 1.0)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = info.kl_monte_carlo(p, q, 1000, generator=torch.Generator().manual_seed(5))
    after = torch.rand(1)
    b = info.kl_monte_carlo(p, q, 1000, generator=torch.Generator().manual_seed(5))
    assert a.value == b.value
    assert before == after


def test_callables_and_given_samples():
    p, q = Normal(0.0, 1.0), Normal(2.0, 1.0)
    x = torch.randn(50_000, generator=torch.Generator().manual_seed(2))  # samples from p = N(0, 1)
    by_dist = info.kl_monte_carlo(p, q, samples=x)
    by_fn = info.kl_monte_carlo(p.log_prob, q.log_prob, samples=x)
    assert by_dist.value == by_fn.value
    assert abs(by_fn.value.item() - 2.0) < 4 * by_fn.std_error.item()  # KL = (mu_p - mu_q)^2 / 2 = 2
    with pytest.raises(ValueError, match=r"p: got a log-density callable"):
        info.kl_monte_carlo(p.log_prob, q)
    with pytest.raises(TypeError, match=r"q: got int"):
        info.kl_monte_carlo(p, 3, 10)
    with pytest.raises(ValueError, match=r"q: its log density returned"):
        info.kl_monte_carlo(p, lambda x: x.sum(), 10)
    with pytest.raises(ValueError, match=r"n: got 1"):
        info.kl_monte_carlo(p, q, 1)
    with pytest.raises(ValueError, match=r"n: got 10 but samples has 50000"):
        info.kl_monte_carlo(p, q, 10, samples=x)


def test_differential_entropy_can_be_negative_and_identity_holds():
    g = torch.Generator().manual_seed(3)
    narrow = Normal(0.0, 0.1)
    exact = 0.5 * math.log(2 * math.pi * math.e * 0.1**2)  # = -0.884: negative, unlike a discrete entropy
    h = info.entropy_monte_carlo(narrow, 100_000, generator=g)
    assert exact < 0 and h.value.item() < 0
    assert abs(h.value.item() - exact) < 4 * h.std_error.item()
    assert narrow.entropy().item() == pytest.approx(exact)
    # H(p, q) = H(p) + KL(p||q) with continuous p, q, from one shared set of samples
    wide = Normal(0.5, 1.0)
    x = narrow.sample((100_000,))
    hpq = info.cross_entropy_monte_carlo(narrow, wide, samples=x).value
    hp = info.entropy_monte_carlo(narrow, samples=x).value
    kl = info.kl_monte_carlo(narrow, wide, samples=x).value
    assert hpq.item() == pytest.approx(hp.item() + kl.item(), abs=1e-5)
    assert abs(hpq.item() - (exact + torch_kl(narrow, wide).item())) < 0.01
    # in bits: divided by log 2
    hb = info.entropy_monte_carlo(narrow, samples=x, base=2).value
    assert hb.item() == pytest.approx(hp.item() / math.log(2), rel=1e-6)


def test_monte_carlo_batch_of_distributions():
    p = Normal(torch.zeros(3), torch.tensor([0.5, 1.0, 2.0]))
    q = Normal(torch.ones(3), torch.ones(3))
    est = info.kl_monte_carlo(p, q, 100_000, generator=torch.Generator().manual_seed(4))
    assert est.value.shape == (3,) and est.std_error.shape == (3,)
    assert ((est.value - torch_kl(p, q)).abs() < 4 * est.std_error).all()


# ---------------------------------------------------------------- plots and widgets (smoke + content)
def test_categorical_bars_title_shows_the_numbers():
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])
    ax = vc.plotting.categorical_bars(p, q)
    title = ax.get_title()
    assert f"{info.kl_divergence(p, q).item():.3f}" in title and f"{info.kl_divergence(q, p).item():.3f}" in title
    assert "H(p)=0.693" in title and len(ax.patches) == 4
    ax = vc.plotting.categorical_bars(p, torch.tensor([1.0, 0.0]), base=2)
    assert "KL(p||q)=inf" in ax.get_title() and "bits" in ax.get_title()
    with pytest.raises(ValueError, match="labels"):
        vc.plotting.categorical_bars(p, q, labels=["a"])
    plt.close("all")


def test_gaussian_pair_reports_negative_entropy():
    ax = vc.plotting.gaussian_pair(0.0, 0.1, 1.0, 1.0)
    assert "h(p)=-0.884" in ax.get_title() and "h(q)=1.419" in ax.get_title()
    with pytest.raises(ValueError, match="sigma_q"):
        vc.plotting.gaussian_pair(0.0, 1.0, 0.0, 0.0)
    plt.close("all")


def test_widgets_build_and_redraw():
    w = vc.widgets.categorical_kl_widget()
    assert len(w.children) == 5  # 4 sliders + output
    w.children[0].value = 0.0  # redraws without error (q_0 = 0 where p_0 > 0: KL infinite)
    g = vc.widgets.gaussian_kl_widget()
    g.children[1].value = 0.05
    with pytest.raises(ValueError, match="q: got 3 weights"):
        vc.widgets.categorical_kl_widget(q=(1, 1, 1))
    plt.close("all")
