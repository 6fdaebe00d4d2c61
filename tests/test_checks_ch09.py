"""Chapter 9 checks: solutions written independently pass (the build task trains a flow posterior with the student's
ELBO), each classic mistake fails with its hint, a non-differentiable ELBO fails the build task.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import math

import pytest
import torch

from vae_course.checks import FAIL, PASS
from vae_course.checks import ch09


def planar_ok(z, w, u, b):
    # det(I + u psi^T) computed as a determinant, not by the lemma: an independent route
    a = z @ w + b  # (...)
    psi = (1 - torch.tanh(a).pow(2)).unsqueeze(-1) * w  # (..., m)
    eye = torch.eye(z.shape[-1], dtype=z.dtype)
    return torch.linalg.slogdet(eye + u.unsqueeze(-1) * psi.unsqueeze(-2))[1]


def flow_elbo_ok(log_px_z, log_pz, log_q0, log_det):
    return torch.stack([log_px_z, log_pz, -log_q0, log_det]).sum(0).mean(0)


def gap_ok(precision):
    # the minimal KL written with the covariance: KL = 1/2 (sum log Lambda_ii + log|Sigma|)
    return 0.5 * (torch.log(torch.diagonal(precision, dim1=-2, dim2=-1)).sum(-1) + torch.logdet(torch.linalg.inv(precision)))


def vamp_ok(z, mu, logvar):
    comps = torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * logvar).exp()), 1)
    return torch.logsumexp(comps.log_prob(z.unsqueeze(-2)), -1) - math.log(mu.shape[0])


def test_a_correct_planar_log_det_passes():
    assert ch09.check_planar_log_det(planar_ok).status == PASS


def test_a_correct_mean_field_gap_passes():
    assert ch09.check_mean_field_gap(gap_ok).status == PASS


def test_a_correct_vamp_log_prob_passes():
    assert ch09.check_vamp_log_prob(vamp_ok).status == PASS


def test_a_correct_flow_elbo_passes_the_build_task():
    result = ch09.check_flow_elbo(flow_elbo_ok)
    assert result.status == PASS, result.message
    assert "closes the best diagonal q's 0.908-nat gap" in result.message


@pytest.mark.parametrize("check, wrong, hint", [
    (ch09.check_planar_log_det, lambda z, w, u, b: torch.log((1 + (u * w).sum(-1)).abs()).expand(z.shape[:-1]),
     "derivative of tanh is missing"),
    (ch09.check_planar_log_det, lambda z, w, u, b: torch.log((1 + torch.tanh(z @ w + b) * (u @ w)).abs()),
     "tanh(w.z + b) itself"),
    (ch09.check_planar_log_det, lambda z, w, u, b: torch.log(((1 - torch.tanh(z @ w + b) ** 2) * (u @ w)).abs()),
     "the 1 is missing"),
    (ch09.check_planar_log_det, lambda z, w, u, b: torch.log(1 + (1 - torch.tanh(z @ w + b) ** 2) * (u @ w)),
     "absolute value"),
    (ch09.check_flow_elbo, lambda a, b, c, d: (a + b - c - d).mean(0), "wrong sign"),
    (ch09.check_flow_elbo, lambda a, b, c, d: (a + b - c).mean(0), "log-determinant is missing"),
    (ch09.check_flow_elbo, lambda a, b, c, d: (a + b - c + d).mean(1), "dim 0"),
    (ch09.check_mean_field_gap,
     lambda P: 0.5 * (torch.diagonal(torch.linalg.inv(P), dim1=-2, dim2=-1).log().sum(-1) + torch.logdet(P)),
     "marginal variances"),
    (ch09.check_mean_field_gap, lambda P: torch.diagonal(P, dim1=-2, dim2=-1).log().sum(-1) - torch.logdet(P),
     "factor 1/2"),
    (ch09.check_vamp_log_prob, lambda z, mu, lv: vamp_ok(z, mu, lv) + math.log(mu.shape[0]), "-log K is missing"),
    (ch09.check_vamp_log_prob,
     lambda z, mu, lv: torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * lv).exp()), 1)
     .log_prob(z.unsqueeze(-2)).mean(-1), "averaged the components' log-densities"),
])
def test_a_classic_mistake_fails_with_its_hint(check, wrong, hint):
    result = check(wrong)
    assert result.status == FAIL and hint in result.message, result.message


def test_an_elbo_cut_off_from_the_gradients_fails_the_build_task():
    result = ch09.check_flow_elbo(lambda a, b, c, d: flow_elbo_ok(a, b, c, d).detach())
    assert result.status == FAIL and "no gradient flows" in result.message, result.message


def test_an_elbo_with_the_right_values_but_reversed_gradients_fails_by_its_outcome():
    # value = the ELBO, gradient = minus its gradient: training then lowers the ELBO, and the gap stays large
    result = ch09.check_flow_elbo(lambda a, b, c, d: 2 * flow_elbo_ok(a, b, c, d).detach() - flow_elbo_ok(a, b, c, d))
    assert result.status == FAIL and "still leaves" in result.message and "target: below 0.15" in result.message
