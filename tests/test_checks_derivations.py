"""The derivations (one per chapter): each expected answer against an independent reference (torch.distributions,
quadrature or seeded Monte Carlo with a stated tolerance), and each worded hint: its wrong value is refused, is
not the answer, and gets its sentence. The contract (unanswered, NaN, strings): tests/test_checks_contract.py."""
import math

import pytest
import torch
from torch import distributions as dist

from vae_course.checks import FAIL, PASS, ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10
from vae_course.grade.answers import safe_number

DERIVATIONS = {  # check, expected answer, hints
    "ch00": (ch00.check_image_code_length, ch00.image_code_length, ch00._code_length_hints),
    "ch01": (ch01.check_density_at_mean, ch01.density_at_mean, ch01._density_hints),
    "ch02": (ch02.check_mixture_gaussian_fit, ch02.mixture_gaussian_fit, ch02._fit_hints),
    "ch03": (ch03.check_diagonal_gap, ch03.diagonal_gap, ch03._gap_hints),
    "ch04": (ch04.check_score_variance, ch04.score_variance, ch04._variance_hints),
    "ch05": (ch05.check_bits_per_dim, ch05.bits_per_dimension, ch05._bpd_hints),
    "ch06": (ch06.check_total_correlation, ch06.total_correlation, ch06._tc_hints),
    "ch07": (ch07.check_unit_kl, ch07.unit_kl, ch07._unit_hints),
    "ch08": (ch08.check_code_length, ch08.vq_code_length, ch08._code_hints),
    "ch09": (ch09.check_planar_point, ch09.planar_point, ch09._planar_point_hints),
    "ch10": (ch10.check_image_bits_per_dim, ch10.image_bits_per_dim, ch10._image_bpd_hints),
}
HINTS = [(k, hint) for k, (_, _, hints) in DERIVATIONS.items() for hint in hints()]


def test_ch00_the_code_length_is_the_bernoulli_log_likelihood():
    x = torch.cat([torch.ones(ch00.IMAGE_ON), torch.zeros(ch00.IMAGE_PIXELS - ch00.IMAGE_ON)]).double()
    want = -dist.Bernoulli(probs=torch.tensor(ch00.PIXEL_THETA, dtype=torch.float64)).log_prob(x).sum()
    assert ch00.image_code_length() == pytest.approx(float(want), rel=1e-12)


def test_ch01_the_density_at_the_mean_is_torch_distributions():
    cov = torch.tensor(ch01.DERIVATION_COV, dtype=torch.float64)
    want = dist.MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov).log_prob(torch.zeros(2, dtype=torch.float64))
    assert ch01.density_at_mean() == pytest.approx(float(want), rel=1e-12)


def test_ch02_the_best_gaussian_fit_by_quadrature_over_the_mixture():
    x = torch.linspace(-14, 15, 400_001, dtype=torch.float64)
    th = ch02.DERIVATION_THETA
    pdf = th * dist.Normal(0.0, 1.0).log_prob(x).exp() + (1 - th) * dist.Normal(1.0, 1.0).log_prob(x).exp()
    mean = torch.trapezoid(x * pdf, x)
    var = torch.trapezoid((x - mean) ** 2 * pdf, x)
    expected_ll = torch.trapezoid(pdf * dist.Normal(mean, var.sqrt()).log_prob(x), x)
    assert float(var) == pytest.approx(1 + th * (1 - th), rel=1e-8)
    assert ch02.mixture_gaussian_fit() == pytest.approx(float(expected_ll), rel=1e-8)


def test_ch03_the_gap_is_the_kl_from_the_best_diagonal_q_to_the_posterior():
    W = torch.tensor(ch03.DERIVATION_W, dtype=torch.float64)
    precision = torch.eye(2, dtype=torch.float64) + W.T @ W / ch03.DERIVATION_SIGMA**2
    zero = torch.zeros(2, dtype=torch.float64)
    q = dist.MultivariateNormal(zero, torch.diag(1 / torch.diagonal(precision)))  # the best diagonal q (its mean: 0)
    posterior = dist.MultivariateNormal(zero, precision_matrix=precision)
    assert ch03.diagonal_gap() == pytest.approx(float(dist.kl_divergence(q, posterior)), rel=1e-10)


def test_ch04_the_variance_by_monte_carlo():
    g = torch.Generator().manual_seed(4)
    z = ch04.DERIVATION_MU + torch.randn(4_000_000, generator=g, dtype=torch.float64)
    est = z * (z - ch04.DERIVATION_MU)  # F(z) = z times the score
    # the sample variance of 4e6 draws of a variable with kurtosis ~ 10: relative error ~ 1e-3; 1% is > 6 SE
    assert float(est.var()) == pytest.approx(ch04.score_variance(), rel=0.01)
    assert float(est.mean()) == pytest.approx(1.0, abs=0.01)  # unbiased: d/dmu E[z] = 1


def test_ch05_bits_per_dimension_is_nats_over_d_ln2():
    assert ch05.bits_per_dimension() == pytest.approx(88 / 784 / math.log(2), rel=1e-12)


def test_ch06_the_total_correlation_is_torch_distributions_kl():
    rho = ch06.DERIVATION_RHO
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    zero = torch.zeros(2, dtype=torch.float64)
    want = dist.kl_divergence(dist.MultivariateNormal(zero, cov), dist.MultivariateNormal(zero, torch.eye(2, dtype=torch.float64)))
    assert ch06.total_correlation() == pytest.approx(float(want), rel=1e-10)


def test_ch07_the_unit_kl_by_monte_carlo_over_posterior_means():
    g = torch.Generator().manual_seed(7)
    mu = math.sqrt(ch07.DERIVATION_ACTIVITY) * torch.randn(1_000_000, generator=g, dtype=torch.float64)
    kl = dist.kl_divergence(dist.Normal(mu, math.sqrt(ch07.DERIVATION_S2)), dist.Normal(0.0, 1.0))
    # KL is quadratic in mu: its mean depends only on E mu^2, estimated to ~0.15% (4 SE < 0.6%)
    assert float(kl.mean()) == pytest.approx(ch07.unit_kl(), rel=0.006)


def test_ch08_the_code_length_is_49_categorical_kls():
    k = ch08.DERIVATION_K
    one_hot = torch.zeros(k, dtype=torch.float64)
    one_hot[3] = 1.0
    per_position = dist.kl_divergence(dist.Categorical(probs=one_hot), dist.Categorical(probs=torch.full((k,), 1.0 / k, dtype=torch.float64)))
    assert ch08.vq_code_length() == pytest.approx(49 * float(per_position), rel=1e-10)


def test_ch09_the_planar_log_det_is_the_autograd_jacobians():
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    w, u, b = t(ch09.DERIVATION_W), t(ch09.DERIVATION_U), ch09.DERIVATION_B
    jac = torch.autograd.functional.jacobian(lambda z: z + u * torch.tanh(z @ w + b), t(ch09.DERIVATION_Z))  # (2, 2)
    sign, log_abs_det = torch.linalg.slogdet(jac)
    assert float(sign) == 1.0
    assert ch09.planar_point() == pytest.approx(float(log_abs_det), rel=1e-12)


def test_ch10_the_bits_per_dim_by_enumerating_every_2x2_image():
    # the joint of all 16 images from torch.distributions' Bernoulli conditionals: normalised, and the image's entry
    images = torch.cartesian_prod(*[torch.tensor([0.0, 1.0], dtype=torch.float64)] * 4)  # (16, 4), raster order
    p_given = torch.tensor([ch10.DERIVATION_P_GIVEN[0], ch10.DERIVATION_P_GIVEN[1]], dtype=torch.float64)
    p_one = torch.cat([torch.full((16, 1), ch10.DERIVATION_P_FIRST, dtype=torch.float64),
                       p_given[images[:, :-1].long()]], dim=1)  # (16, 4): p(x_i = 1 | x_{i-1})
    log_joint = dist.Bernoulli(probs=p_one).log_prob(images).sum(-1)  # (16,)
    assert float(log_joint.exp().sum()) == pytest.approx(1.0, abs=1e-12)
    row = (images == torch.tensor(ch10.DERIVATION_IMAGE, dtype=torch.float64)).all(-1)
    assert int(row.sum()) == 1
    assert ch10.image_bits_per_dim() == pytest.approx(-float(log_joint[row]) / (4 * math.log(2)), rel=1e-12)


@pytest.mark.parametrize("source, key", [
    ("math.log(1 + 1.6 * (1 - math.tanh(0.6) ** 2))", "ch09"),
    ("-math.log2(0.5 * 0.8 * 0.2 * 0.3) / 4", "ch10"),
])
def test_a_hand_worked_expression_is_accepted_by_the_grader_and_passes(source, key):
    # the grader evaluates an answer with math functions only (tanh among them, which a planar layer needs)
    assert DERIVATIONS[key][0](safe_number(source)).status == PASS


@pytest.mark.parametrize("key", DERIVATIONS)
def test_the_answer_passes_and_within_tolerance_only(key):
    check, expected, _ = DERIVATIONS[key]
    answer = expected()
    assert check(answer).status == PASS and check(answer * (1 + 5e-4)).status == PASS
    assert check(answer * 1.01 + 0.01).status == FAIL


@pytest.mark.parametrize("key", DERIVATIONS)
def test_the_hints_of_a_derivation_have_distinct_values(key):
    # two hints with the same wrong value: the second could never be shown
    values = sorted(DERIVATIONS[key][2]().values())
    assert all(not math.isclose(a, b, rel_tol=1e-2, abs_tol=1e-6) for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("key, hint", HINTS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(HINTS)])
def test_each_hint_is_given_for_its_wrong_answer(key, hint):
    check, expected, hints = DERIVATIONS[key]
    wrong = hints()[hint]
    assert not math.isclose(wrong, expected(), rel_tol=1e-2, abs_tol=1e-6), "a hint's value must not be the answer"
    result = check(wrong)
    assert result.status == FAIL and hint in result.message, result.message
