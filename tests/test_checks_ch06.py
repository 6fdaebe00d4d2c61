"""Chapter 6 checks: solutions written independently pass, each classic mistake fails with its hint.
Stubs, crashes, None, wrong shapes, NaN and the official solution: tests/test_checks_contract.py, for every exercise."""
import math

import pytest
import torch
import torch.nn.functional as F

from vae_course.checks import FAIL, PASS
from vae_course.checks import ch06


def _bce(x, l, red="sum"):
    t = F.binary_cross_entropy_with_logits(l, x, reduction="none")
    return t.sum(-1) if red == "sum" else t.mean(-1)


def _kl(mu, lv):
    return 0.5 * (lv.exp() + mu**2 - 1 - lv).sum(-1)


def beta_elbo_ok(x, x_logits, mu, logvar, beta):
    return _bce(x, x_logits) + beta * _kl(mu, logvar)


def mi_ok(a, b):
    """Written independently of the package: counts of the joint table via a dictionary."""
    n = len(a)
    joint, pa, pb = {}, {}, {}
    for u, v in zip(a.tolist(), b.tolist()):
        joint[(u, v)] = joint.get((u, v), 0) + 1
        pa[u] = pa.get(u, 0) + 1
        pb[v] = pb.get(v, 0) + 1
    return torch.tensor(sum(c / n * math.log(c * n / (pa[u] * pb[v])) for (u, v), c in joint.items()), dtype=torch.float64)


def mig_ok(codes, factors):
    gaps = []
    for k in range(factors.shape[1]):
        mis = sorted((mi_ok(codes[:, j], factors[:, k]) for j in range(codes.shape[1])), reverse=True)
        h = mi_ok(factors[:, k], factors[:, k])  # I(v; v) = H(v)
        if h > 0:  # a constant factor has nothing to disentangle (the check has such a case)
            gaps.append((mis[0] - mis[1]) / h)
    return torch.stack(gaps).mean()


CHECKS = [(ch06.check_negative_beta_elbo, beta_elbo_ok), (ch06.check_mutual_information, mi_ok), (ch06.check_mig, mig_ok)]


@pytest.mark.parametrize("check,solution", CHECKS)
def test_a_correct_solution_passes(check, solution):
    result = check(solution)
    assert result.status == PASS, result.message


def _top2_gaps(codes, factors, normalise):
    out = []
    for k in range(factors.shape[1]):
        mis = sorted((mi_ok(codes[:, j], factors[:, k]) for j in range(codes.shape[1])), reverse=True)
        out.append((mis[0] - mis[1]) / normalise(factors[:, k]))
    return torch.stack(out).mean()


MISTAKES = [
    (ch06.check_negative_beta_elbo, lambda x, l, mu, lv, b: b * _bce(x, l) + _kl(mu, lv), "beta multiplies the reconstruction"),
    (ch06.check_negative_beta_elbo, lambda x, l, mu, lv, b: b * (_bce(x, l) + _kl(mu, lv)), "beta multiplies both"),
    (ch06.check_negative_beta_elbo, lambda x, l, mu, lv, b: _bce(x, l) + _kl(mu, lv), "beta is missing"),
    (ch06.check_negative_beta_elbo, lambda x, l, mu, lv, b: _bce(x, l, "mean") + b * _kl(mu, lv), "averaged the reconstruction"),
    (ch06.check_negative_beta_elbo, lambda x, l, mu, lv, b: _bce(x, l) - b * _kl(mu, lv), "wrong sign"),
    (ch06.check_mutual_information, lambda a, b: mi_ok(a, b) / math.log(2), "bits"),
    (ch06.check_mutual_information, lambda a, b: mi_ok(a, a), "entropy H(a)"),
    (ch06.check_mutual_information, lambda a, b: mi_ok(a, b) - math.log(len(a)), "counts"),
    (ch06.check_mig, lambda z, f: _top2_gaps(z, f, lambda v: 1.0), "not normalised"),
    (ch06.check_mig, lambda z, f: _top2_gaps(z, f, lambda v: math.log(int(v.max()) + 1)), "log(number of levels)"),
]


@pytest.mark.parametrize("check,wrong,hint", MISTAKES, ids=[m[2] for m in MISTAKES])
def test_each_classic_mistake_fails_with_its_hint(check, wrong, hint):
    result = check(wrong)
    assert result.status == FAIL
    assert hint in result.message, result.message
