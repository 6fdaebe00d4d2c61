r"""Checks for the chapter 9 exercises (``solutions/09_beyond_vae.ipynb``).

1. ``planar_log_det(z, w, u, b)``: :math:`\log\big|1 + u^\top\psi\big|` with :math:`\psi = (1 - \tanh^2(w^\top z + b))\,w`,
   the log-determinant of a planar flow layer (the matrix determinant lemma; Rezende & Mohamed, 2015).
2. ``flow_elbo(log_px_z, log_pz, log_q0, log_det)`` (a build task): the Monte-Carlo ELBO of a flow posterior,
   :math:`\frac1S\sum_s\big[\log p(x\mid z_K) + \log p(z_K) - \log q_0(z_0) + \sum_k\log|\det|\big]`; once the values are
   right, the check trains a flow posterior on chapter 3's linear-Gaussian model with it (the package's
   :func:`~vae_course.train.fit`) and judges the gap that training reaches.
3. ``mean_field_gap(precision)`` (a derivation): the approximation gap of the best diagonal Gaussian for a Gaussian
   posterior with precision :math:`\Lambda`, :math:`\tfrac12\big(\sum_i\log\Lambda_{ii} - \log|\Lambda|\big)` (0.908 nats
   on chapter 3's model).
4. ``vamp_log_prob(z, mu, logvar)``: :math:`\log\frac1K\sum_k\mathcal N(z;\mu_k,\mathrm{diag}\,e^{\ell_k})`, the VampPrior's
   log-density from its components (Tomczak & Welling, 2018).
5. Derivation: the log-determinant of one planar layer at a given point, worked out by hand (0.7601 nats).

Each compares the student's function with the package's reference (:func:`vae_course.flows.planar_log_det`,
:func:`vae_course.inference.bound_gap`'s formula, :func:`vae_course.models.equal_mixture_log_prob`) on seeded inputs and
edge cases, and recognises the classic mistakes: the derivative of tanh left out or replaced by tanh, the identity's 1
forgotten, no absolute value, the log-determinant subtracted, marginal variances where the precision's diagonal
belongs, a mean of log-densities where the log of a mean belongs, the :math:`-\log K` missing.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..flows import planar_log_det
from ..models import equal_mixture_log_prob
from ..models.base import LossTerms
from ._core import Case, CheckResult, Mistake, check_function, check_value

__all__ = ["check_planar_log_det", "check_flow_elbo", "check_mean_field_gap", "check_vamp_log_prob",
           "check_planar_point"]

# The name each check reports (CheckResult.exercise); vae_course.checks.registry reads it from here.
EXERCISE_NAMES = {
    "check_planar_log_det": "Exercise 1 (planar flow log-determinant)",
    "check_flow_elbo": "Exercise 2 (build task: the ELBO of a flow posterior)",
    "check_mean_field_gap": "Exercise 3 (derivation: the gap of the best diagonal q)",
    "check_vamp_log_prob": "Exercise 4 (VampPrior log-density)",
    "check_planar_point": "Derivation (a planar layer's log-determinant at one point)",
}
BUILD_TARGET = 0.15  # nats: the gap a flow posterior trained with the student's ELBO must reach (diagonal q: 0.908)


def _gen(seed: int):
    g = torch.Generator().manual_seed(seed)
    return lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731


def _t(*rows) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------- exercise 1: the planar log-determinant
def _planar_cases() -> list[Case]:
    r = _gen(90)
    return [
        Case((_t([0.0, 0.0]), _t(1.0, 0.0), _t(0.5, 0.5), _t(0.0)),
             label="z = [[0, 0]], w = [1, 0], u = [0.5, 0.5], b = 0 (answer: log 1.5 = 0.4055)"),
        Case((r(5, 2), _t(0.0, 0.0), r(2), _t(0.3)), label="w = 0: the layer is a shift, log-determinant 0"),
        Case((r(6, 3), r(3), r(3), _t(-0.4)), label="6 points in 3-D, random w, u, b"),
        Case((r(4, 2), _t(2.0, 0.0), _t(-3.0, 0.0), _t(0.0)),
             label="w.u = -6 < -1 (a layer that is not invertible): 1 + u.psi can be negative, take its absolute value"),
        Case((r(2, 5, 2), r(2), r(2), _t(1.0)), label="z of shape (2, 5, 2): 2 draws for 5 examples"),
    ]


def _psi_dot_u(z, w, u, b, deriv=lambda h: 1 - h**2, act=torch.tanh):
    return (u * w).sum(-1) * deriv(act((z * w).sum(-1) + b))


_PLANAR_MISTAKES = [
    Mistake(lambda z, w, u, b: torch.log((1 + (u * w).sum(-1)).abs()).expand(z.shape[:-1]),
            "the derivative of tanh is missing: psi = (1 - tanh(w.z + b)^2) w, so the answer depends on z."),
    Mistake(lambda z, w, u, b: torch.log((1 + _psi_dot_u(z, w, u, b, deriv=lambda h: h)).abs()),
            "you used tanh(w.z + b) itself where its derivative 1 - tanh(w.z + b)^2 belongs."),
    Mistake(lambda z, w, u, b: torch.log((1 + _psi_dot_u(z, w, u, b, deriv=lambda h: 1 - h)).abs()),
            "the derivative of tanh is 1 - tanh^2 (squared), not 1 - tanh."),
    Mistake(lambda z, w, u, b: torch.log(_psi_dot_u(z, w, u, b).abs()),
            "the 1 is missing: the Jacobian is I + u psi^T, and det(I + u psi^T) = 1 + u.psi (matrix determinant lemma)."),
    Mistake(lambda z, w, u, b: torch.log(1 + _psi_dot_u(z, w, u, b)),
            "take the absolute value: a change of variables needs log|det J|, and 1 + u.psi can be negative."),
    Mistake(lambda z, w, u, b: torch.log((1 - _psi_dot_u(z, w, u, b)).abs()),
            "the sign is flipped: f(z) = z + u h(w.z + b) has det = 1 + u.psi, with a plus."),
]


def check_planar_log_det(student_fn) -> CheckResult:
    """Exercise 1: ``planar_log_det(z, w, u, b)``, ``z`` ``(..., m)``, ``w``, ``u`` ``(m,)``, ``b`` scalar -> ``(...)``."""
    return check_function(EXERCISE_NAMES["check_planar_log_det"], student_fn, planar_log_det, _planar_cases(),
                          mistakes=_PLANAR_MISTAKES)


# ---------------------------------------------------------------- exercise 2: the flow ELBO, a build task
def _flow_elbo_ref(log_px_z, log_pz, log_q0, log_det):
    return (log_px_z + log_pz - log_q0 + log_det).mean(0)


def _flow_elbo_cases() -> list[Case]:
    r = _gen(91)
    return [
        Case((_t([-3.0]), _t([-1.0]), _t([-2.0]), _t([0.5])),
             label="one draw, one example: log p(x|z) = -3, log p(z) = -1, log q0 = -2, log det = 0.5 (answer: [-1.5])"),
        Case((r(4, 3) - 5, r(4, 3) - 2, r(4, 3) - 1, r(4, 3)), label="S = 4 draws for B = 3 examples"),
        Case((r(10, 2) - 90, r(10, 2) - 3, r(10, 2), torch.zeros(10, 2, dtype=torch.float64)),
             label="no flow (log det = 0): the ordinary Monte-Carlo ELBO, 10 draws for 2 examples"),
    ]


_FLOW_ELBO_MISTAKES = [
    Mistake(lambda a, b, c, d: (a + b - c - d).mean(0),
            "the log-determinant has the wrong sign: log q(z_K) = log q0(z_0) - log|det|, so the ELBO gets + log|det|."),
    Mistake(lambda a, b, c, d: (a + b - c).mean(0),
            "the log-determinant is missing: the density of z_K is not q0's, log q(z_K) = log q0(z_0) - log|det|."),
    Mistake(lambda a, b, c, d: (a - c + d).mean(0), "the prior log p(z_K) is missing from the ELBO."),
    Mistake(lambda a, b, c, d: (a + b - c + d).mean(1),
            "you averaged over the examples (dim 1); the inputs are (S, B): average over the S draws, dim 0."),
    Mistake(lambda a, b, c, d: (a + b - c + d).sum(0), "you summed over the draws; the ELBO estimate is their mean."),
]


class _StudentObjective(nn.Module):
    """A FlowVAE trained on minus the student's ELBO: ``loss(x)`` builds the four terms from the model's parts."""

    def __init__(self, model: nn.Module, elbo_fn, n_samples: int = 16):
        super().__init__()
        self.model, self.elbo_fn, self.n_samples = model, elbo_fn, n_samples

    def loss(self, x: Tensor, n_samples: int | None = None) -> LossTerms:
        m = self.model
        x = m._images(x)
        h = m.encoder.trunk(x)
        q0 = m.encoder.posterior(h)
        z0 = q0.sample(n_samples or self.n_samples)  # (S, B, m)
        z, log_det = m.flow(z0, h)
        elbo = self.elbo_fn(m.log_likelihood(x, z), m.prior.log_prob(z), q0.log_prob(z0), log_det)  # (B,)
        loss = -elbo.mean()
        return LossTerms(loss, {"loss": loss})


def _build_outcome(student_fn) -> str | None:
    from .. import beyond, linear_gaussian  # the engine and the chapter module: imported only when the task runs

    probe = [torch.zeros(2, 3, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    if not getattr(student_fn(*probe), "requires_grad", False):
        return (f"the values are right, but no gradient flows through `{getattr(student_fn, '__name__', 'your ELBO')}`, so "
                "it cannot train a posterior: build the result from its inputs with torch operations (no .detach(), "
                "no .item(), no torch.no_grad()).")

    W = torch.tensor([[1.0, 0.9], [0.9, 1.0], [1.2, 1.0], [0.4, 0.6], [-0.5, -0.3]])
    lg = linear_gaussian.LinearGaussianModel(W, b=torch.tensor([0.5, -0.3, 0.2, 0.0, 0.1]), sigma=0.5)
    g = torch.Generator().manual_seed(0)
    x = lg.sample(100, generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        flow = beyond.linear_gaussian_vae(lg, flow="iaf", flow_layers=1)
        beyond.fit_posterior(_StudentObjective(flow, student_fn), x, steps=300)
    gap = float(lg.log_marginal(x).mean()) - beyond.bound_terms(flow, x, k=2000, generator=g).elbo
    if not gap < BUILD_TARGET:
        return (f"your values are right, but the flow posterior trained with your `{getattr(student_fn, '__name__', 'ELBO')}` "
                f"still leaves {gap:.3f} nats (target: below {BUILD_TARGET}).")
    return None


def check_flow_elbo(student_fn) -> CheckResult:
    """Exercise 2: ``flow_elbo(log_px_z, log_pz, log_q0, log_det)``, all ``(S, B)`` -> ``(B,)``; then a 300-step training
    run of an IAF posterior on chapter 3's model with it must bring the gap below 0.15 nats (the diagonal q: 0.908)."""
    result = check_function(EXERCISE_NAMES["check_flow_elbo"], student_fn, _flow_elbo_ref, _flow_elbo_cases(),
                            mistakes=_FLOW_ELBO_MISTAKES, extra=_build_outcome)
    if result.passed:
        result.message += (" A one-layer IAF posterior trained with your ELBO on chapter 3's model closes the best "
                           "diagonal q's 0.908-nat gap to below 0.15 nats.")
    return result


# ---------------------------------------------------------------- exercise 3: the mean-field gap, a derivation
def _mean_field_gap_ref(precision):
    return 0.5 * (torch.diagonal(precision, dim1=-2, dim2=-1).log().sum(-1) - torch.logdet(precision))


def _spd(r, m: int, batch: tuple[int, ...] = ()) -> Tensor:
    a = r(*batch, m, m)
    return a @ a.transpose(-1, -2) + 0.5 * torch.eye(m, dtype=torch.float64)


def _mean_field_cases() -> list[Case]:
    r = _gen(92)
    W = _t([1.0, 0.9], [0.9, 1.0], [1.2, 1.0], [0.4, 0.6], [-0.5, -0.3])
    chapter3 = torch.eye(2, dtype=torch.float64) + W.T @ W / 0.25
    return [
        Case((_t([2.0, 0.0], [0.0, 3.0]),), label="a diagonal precision [[2, 0], [0, 3]] (answer: 0)"),
        Case((_t([1.0, 0.9], [0.9, 1.0]),), label="precision [[1, 0.9], [0.9, 1]], correlation -0.9 (answer: 0.8304)"),
        Case((chapter3,), label="chapter 3's model: Lambda = I + W^T W / sigma^2 (answer: 0.908)"),
        Case((_spd(r, 4),), label="a random 4 x 4 precision"),
        Case((_spd(r, 3, (5,)),), label="a batch of five 3 x 3 precisions, shape (5, 3, 3)"),
    ]


_MEAN_FIELD_MISTAKES = [
    Mistake(lambda P: 0.5 * (torch.diagonal(torch.linalg.inv(P), dim1=-2, dim2=-1).log().sum(-1) + torch.logdet(P)),
            "you used the posterior's marginal variances (Lambda^-1)_ii. The best diagonal q under KL(q || p) has "
            "variances 1 / Lambda_ii, narrower than the marginals; the gap is 1/2 (sum_i log Lambda_ii - log|Lambda|)."),
    Mistake(lambda P: torch.diagonal(P, dim1=-2, dim2=-1).log().sum(-1) - torch.logdet(P),
            "the factor 1/2 is missing: every Gaussian log-density carries 1/2 log|precision|."),
    Mistake(lambda P: -_mean_field_gap_ref(P), "the sign is flipped: a KL, and so the gap, is never negative."),
    Mistake(lambda P: 0.5 * (torch.diagonal(P, dim1=-2, dim2=-1).sum(-1) - torch.logdet(P)),
            "the logarithm of the diagonal entries is missing: sum_i log Lambda_ii, not sum_i Lambda_ii."),
]


def check_mean_field_gap(student_fn) -> CheckResult:
    """Exercise 3: ``mean_field_gap(precision)``, ``precision`` ``(..., m, m)`` symmetric positive definite -> ``(...)``."""
    return check_function(EXERCISE_NAMES["check_mean_field_gap"], student_fn, _mean_field_gap_ref, _mean_field_cases(),
                          mistakes=_MEAN_FIELD_MISTAKES)


# ---------------------------------------------------------------- exercise 4: the VampPrior log-density
def _vamp_cases() -> list[Case]:
    r = _gen(93)
    return [
        Case((_t([0.0]), _t([0.0]), _t([0.0])), label="K = 1 component N(0, 1), z = [[0]] (answer: -0.9189)"),
        Case((_t([0.0, 0.0]), _t([1.0, 1.0], [-1.0, -1.0]), _t([0.0, 0.0], [0.0, 0.0])),
             label="z = [[0, 0]] between two unit components at [1, 1] and [-1, -1] (answer: -2.8379)"),
        Case((r(6, 3), r(5, 3), r(5, 3)), label="6 points, K = 5 components in 3-D"),
        Case((r(2, 4, 2), r(7, 2), r(7, 2) - 1), label="z of shape (2, 4, 2), K = 7"),
        Case((r(3, 2) + 40.0, r(4, 2), r(4, 2) - 2.0),
             label="points 40 standard deviations away: every density underflows to 0, compute in log space"),
    ]


def _log_comp(z, mu, logvar, var=None):
    var = logvar.exp() if var is None else var
    return -0.5 * (math.log(2 * math.pi) + var.log() + (z.unsqueeze(-2) - mu) ** 2 / var).sum(-1)  # (..., K)


_VAMP_MISTAKES = [
    Mistake(lambda z, mu, lv: torch.logsumexp(_log_comp(z, mu, lv), -1),
            "the -log K is missing: the components have equal weights 1/K, log p(z) = logsumexp_k(...) - log K."),
    Mistake(lambda z, mu, lv: _log_comp(z, mu, lv).mean(-1),
            "you averaged the components' log-densities; the prior is the average of the densities: "
            "log (1/K) sum_k N(...) = logsumexp_k log N(...) - log K."),
    Mistake(lambda z, mu, lv: _log_comp(z, mu, lv).max(-1).values,
            "you kept the nearest component only; the mixture sums all K of them: logsumexp_k log N(...) - log K."),
    Mistake(lambda z, mu, lv: torch.logsumexp(_log_comp(z, mu, lv, var=lv.exp() ** 2), -1) - math.log(mu.shape[0]),
            "exp(logvar) is the variance sigma^2, not the standard deviation: do not square it again."),
    Mistake(lambda z, mu, lv: torch.log(_log_comp(z, mu, lv).exp().mean(-1)),
            "log(mean(exp(...))) underflows to -inf far from every component: use logsumexp(...) - log K."),
]


def check_vamp_log_prob(student_fn) -> CheckResult:
    """Exercise 4: ``vamp_log_prob(z, mu, logvar)``, ``z`` ``(..., m)``, ``mu``, ``logvar`` ``(K, m)`` -> ``(...)``."""
    return check_function(EXERCISE_NAMES["check_vamp_log_prob"], student_fn, equal_mixture_log_prob, _vamp_cases(),
                          mistakes=_VAMP_MISTAKES)


# ---------------------------------------------------------------- derivation: one planar layer at one point
# f(z) = z + u tanh(w.z + b) at z = (0.4, 0.2): w.z + b = 0.6 and u.w = 1.6
DERIVATION_W, DERIVATION_U, DERIVATION_B, DERIVATION_Z = (1.0, 2.0), (0.6, 0.5), -0.2, (0.4, 0.2)


def planar_point(w=DERIVATION_W, u=DERIVATION_U, b: float = DERIVATION_B, z=DERIVATION_Z) -> float:
    r""":math:`\log|1 + u^\top\psi|`, :math:`\psi = (1 - \tanh^2(w^\top z + b))\,w`, at one point (the package's
    :func:`vae_course.flows.planar_log_det`); ``w``, ``u``, ``z``: sequences of length m, ``b`` a float."""
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return float(planar_log_det(t(z), t(w), t(u), t([b])))


def _planar_point_hints() -> dict[str, float]:
    (w1, w2), (u1, u2), b, (z1, z2) = DERIVATION_W, DERIVATION_U, DERIVATION_B, DERIVATION_Z
    a, uw = w1 * z1 + w2 * z2 + b, u1 * w1 + u2 * w2
    d = 1 - math.tanh(a) ** 2  # tanh'(a)
    return {
        "the 1 is missing: the Jacobian is I + u psi^T, and the matrix determinant lemma gives det = 1 + u^T psi, "
        "not u^T psi.": math.log(abs(uw * d)),
        "you used tanh(a) where its derivative belongs: tanh'(a) = 1 - tanh(a)^2.": math.log(abs(1 + uw * math.tanh(a))),
        "the derivative of tanh is 1 - tanh(a)^2; the square is missing.": math.log(abs(1 + uw * (1 - math.tanh(a)))),
        "the derivative of tanh is missing: psi = tanh'(w^T z + b) w, with tanh'(a) = 1 - tanh(a)^2, not w alone.":
            math.log(abs(1 + uw)),
        "the bias is missing from the argument of tanh: a = w^T z + b.": math.log(abs(1 + uw * (1 - math.tanh(a - b) ** 2))),
        "psi is tanh'(a) times the vector w: the lemma needs u^T psi = tanh'(a) (u^T w), not tanh'(a) times the sum of u.":
            math.log(abs(1 + (u1 + u2) * d)),
        "the sign is flipped: this is log|det| of the forward layer, log|1 + u^T psi|, positive here since "
        "1 + u^T psi > 1.": -math.log(abs(1 + uw * d)),
        "that is a base-10 logarithm; the log-determinant is a natural log, in nats.": math.log10(abs(1 + uw * d)),
    }


def check_planar_point(value) -> CheckResult:
    """Derivation: log|det| of f(z) = z + u tanh(w.z + b) at w = (1, 2), u = (0.6, 0.5), b = -0.2, z = (0.4, 0.2)
    (about 0.7601 nats)."""
    return check_value(EXERCISE_NAMES["check_planar_point"], value, planar_point(), rtol=1e-3,
                       hints=_planar_point_hints(), what="`planar_log_det_nats`", unit="nats")
