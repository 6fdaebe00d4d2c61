"""Appendix A checks: solutions written independently pass, each classic mistake fails with its hint, and the
closed form of the derivation (exercise 4) is the change of variables computed by torch.autograd, and a density.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import math

import pytest
import torch

from vae_course.checks import FAIL, PASS
from vae_course.checks import ch10


def mask_ok(n_pixels, memory):
    return torch.tensor([[float(i - memory <= j < i) for j in range(n_pixels)] for i in range(n_pixels)])


def log_det_ok(s, mask):
    return torch.einsum("bd,d->b", s, 1 - mask)


def bpd_ok(log_density, n_pixels, n_levels):
    log_px = log_density + n_pixels * math.log(1 / n_levels)
    return -log_px / n_pixels / math.log(2)


def two_layer_ok(x, a, b, c):
    normal = torch.distributions.Normal(0.0, 1.0)
    z1 = x[:, 1] / torch.exp(c * x[:, 0])
    z2 = (x[:, 0] - b) / torch.exp(a * z1)
    return normal.log_prob(z1) + normal.log_prob(z2) - (a * z1 + c * x[:, 0])


CHECKS = [(ch10.check_finite_memory_mask, mask_ok), (ch10.check_coupling_log_det, log_det_ok),
          (ch10.check_dequantized_bits_per_dim, bpd_ok), (ch10.check_two_layer_log_density, two_layer_ok)]


@pytest.mark.parametrize("check,solution", CHECKS)
def test_a_correct_solution_passes(check, solution):
    result = check(solution)
    assert result.status == PASS, result.message


def _band(d, lo, hi):
    return torch.tensor([[float(lo <= j - i <= hi) for j in range(d)] for i in range(d)])


MISTAKES = [
    (ch10.check_finite_memory_mask, lambda d, k: _band(d, -k, 0), "read itself"),
    (ch10.check_finite_memory_mask, lambda d, k: _band(d, -k - 1, -1), "one pixel too long"),
    (ch10.check_finite_memory_mask, lambda d, k: _band(d, 1, k), "transposed"),
    (ch10.check_finite_memory_mask, lambda d, k: torch.ones(d, d).tril(-1), "unlimited memory"),
    (ch10.check_coupling_log_det, lambda s, m: (s * m).sum(1), "KEPT coordinates"),
    (ch10.check_coupling_log_det, lambda s, m: s.sum(1), "every coordinate"),
    (ch10.check_coupling_log_det, lambda s, m: torch.exp(s * (1 - m)).prod(1), "determinant itself"),
    (ch10.check_coupling_log_det, lambda s, m: (s * (m - 1)).sum(1), "inverse layer"),
    (ch10.check_dequantized_bits_per_dim, lambda lp, d, L: -lp / d / math.log(2), "cell volume is missing"),
    (ch10.check_dequantized_bits_per_dim, lambda lp, d, L: -(lp - d * math.log(L)) / d, "nats per dimension"),
    (ch10.check_dequantized_bits_per_dim, lambda lp, d, L: (lp - d * math.log(L)) / d / math.log(2), "sign is flipped"),
    (ch10.check_dequantized_bits_per_dim, lambda lp, d, L: -(lp + d * math.log(L)) / d / math.log(2), "wrong sign"),
    (ch10.check_two_layer_log_density, lambda x, a, b, c: two_layer_ok(x, a, b, c) + 2 * (a * x[:, 1] / torch.exp(c * x[:, 0]) + c * x[:, 0]),
     "SUBTRACTED"),
    (ch10.check_two_layer_log_density, lambda x, a, b, c: two_layer_ok(x, a, b, c) + c * x[:, 0], "last coupling"),
]


@pytest.mark.parametrize("check,wrong,hint", MISTAKES, ids=[h for _, _, h in MISTAKES])
def test_each_classic_mistake_fails_with_its_hint(check, wrong, hint):
    result = check(wrong)
    assert result.status == FAIL and hint in result.message, result.message


def _flow(z, a, b, c):
    """The exercise's flow in the generative direction, z (2,) -> x (2,): coupling, swap, coupling."""
    h = torch.stack([z[0], z[1] * torch.exp(a * z[0]) + b])
    g = h.flip(0)
    return torch.stack([g[0], g[1] * torch.exp(c * g[0])])


def test_the_closed_form_is_the_change_of_variables_by_autograd():
    torch.set_default_dtype(torch.float64)
    try:
        a, b, c = 0.7, -0.4, -1.1
        z = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
        x = torch.stack([_flow(zi, a, b, c) for zi in z])
        log_det = torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(lambda v: _flow(v, a, b, c), zi))
                               .logabsdet for zi in z])
        want = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) - log_det
        assert torch.allclose(ch10.two_layer_log_density_reference(x, a, b, c), want, atol=1e-10)
    finally:
        torch.set_default_dtype(torch.float32)


def test_the_closed_form_integrates_to_one():
    g = torch.linspace(-12, 12, 1201, dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    mass = float(ch10.two_layer_log_density_reference(pts, 0.4, 1.0, 0.2).exp().sum() * (g[1] - g[0]) ** 2)
    assert abs(mass - 1) < 1e-3, mass


def test_one_pixel_with_a_uniform_density_costs_one_bit():
    assert float(ch10._bpd_ref(torch.zeros(1, dtype=torch.float64), 1, 2)) == pytest.approx(1.0)
