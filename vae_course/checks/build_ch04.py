r"""Chapter 4 build task: a control variate that cuts the score-function variance and keeps the estimate unbiased.

The student writes ``score_gradient_baseline(f, z, mu, logvar)``: the score-function estimate of
:math:`\nabla_\mu\mathbb E[F]` from ``n`` samples, as in exercise 2, but with a baseline subtracted from each
:math:`F(z_i)`. The check runs it :data:`REPEATS` times on fresh samples of a problem with a large offset,
:math:`F(z) = \lVert z - a\rVert^2 + c` (:data:`PROBLEM`; the offset does not change the gradient
:math:`2(\mu - a)` but inflates the plain estimator's variance), and measures

* the **variance reduction factor**: the total variance of the plain estimator (no baseline, the same samples)
  divided by the student's; the band is :data:`BAND`;
* the **bias**: each coordinate's mean over the repeats, in standard errors from the exact gradient; more than
  :data:`MAX_Z` fails the task even inside the band ("a baseline that depends on :math:`z_i` itself").

The batch mean :math:`\bar F` as a baseline is the classic broken version: it contains :math:`F(z_i)`, so the
estimate shrinks by :math:`(n-1)/n`, and the check says so.
"""
from __future__ import annotations

import math

import torch

from ._core import StudentError, call_student
from ._guard import guarded
from .outcomes import Band, Outcome, fmt, run_build

__all__ = ["check_baseline", "PROBLEM", "REPEATS", "BAND", "MAX_Z", "plain_estimate"]

PROBLEM = {"d": 3, "n": 8, "offset": 20.0, "seed": 40}
REPEATS = 2000
BAND = Band(lo=5.0, unit="x smaller variance")
MAX_Z = 4.5  # standard errors: the largest bias of an unbiased estimator over d coordinates is rarely above 3.5
FORBIDDEN = ("estimators.score_function_gradient", "estimators.score_function_terms", "estimators.gaussian_score",
             "estimators.core._centre", "estimators.compare_estimators", "estimators.estimator_stats")


def _problem():
    g = torch.Generator().manual_seed(PROBLEM["seed"])
    d = PROBLEM["d"]
    a = torch.randn(d, generator=g, dtype=torch.float64)
    mu = torch.randn(d, generator=g, dtype=torch.float64)
    logvar = 0.5 * torch.randn(d, generator=g, dtype=torch.float64)
    return a, mu, logvar, g


def _F(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return (z - a).pow(2).sum(-1) + PROBLEM["offset"]  # (n,)


def plain_estimate(f, z, mu, logvar):
    """Exercise 2's estimator without a baseline: mean_i F(z_i) (z_i - mu) / sigma^2."""
    return (f[:, None] * (z - mu) * torch.exp(-logvar)).mean(0)


def _probe(student):
    name = getattr(student, "__name__", "score_gradient_baseline")
    fn = guarded(student, FORBIDDEN)
    a, mu, logvar, g = _problem()
    z = mu + torch.exp(0.5 * logvar) * torch.randn(PROBLEM["n"], PROBLEM["d"], generator=g, dtype=torch.float64)
    out = call_student(fn, (_F(z, a), z.clone(), mu.clone(), logvar.clone()), name=name,
                       describe=f"f ({PROBLEM['n']},), z ({PROBLEM['n']}, {PROBLEM['d']}), mu and logvar ({PROBLEM['d']},)")
    if tuple(out.shape) != (PROBLEM["d"],):
        raise StudentError(f"`{name}` returned shape {tuple(out.shape)} for z of shape ({PROBLEM['n']}, {PROBLEM['d']}); "
                           f"need ({PROBLEM['d']},): one gradient entry per coordinate of mu.")
    return fn, name


def _train(state):
    fn, name = state
    a, mu, logvar, g = _problem()
    mine, plain = [], []
    for _ in range(REPEATS):
        z = mu + torch.exp(0.5 * logvar) * torch.randn(PROBLEM["n"], PROBLEM["d"], generator=g, dtype=torch.float64)
        f = _F(z, a)
        mine.append(call_student(fn, (f.clone(), z.clone(), mu.clone(), logvar.clone()), name=name).detach().double())
        plain.append(plain_estimate(f, z, mu, logvar))
    return torch.stack(mine), torch.stack(plain), 2 * (mu - a)  # (R, d), (R, d), exact gradient (d,)


def _judge(state) -> Outcome:
    mine, plain, truth = state
    if not bool(torch.isfinite(mine).all()):
        return Outcome(math.nan, BAND, "your estimates hold NaN or inf",
                       "Look for a division by zero, e.g. a leave-one-out mean with n - 1 = 0.")
    var_mine, var_plain = float(mine.var(0).sum()), float(plain.var(0).sum())
    factor = var_plain / var_mine if var_mine > 0 else math.inf
    se = mine.std(0) / math.sqrt(REPEATS)
    z = ((mine.mean(0) - truth) / se.clamp_min(1e-12)).abs()
    ratio = float((mine.mean(0) @ truth) / (truth @ truth))
    n = PROBLEM["n"]
    summary = (f"over {REPEATS} repeats of n = {n} samples: variance {fmt(var_mine)} against {fmt(var_plain)} without "
               f"a baseline, a factor {fmt(factor, 3)}; mean estimate {fmt(ratio, 3)} times the true gradient, "
               f"largest bias {fmt(float(z.max()), 3)} standard errors")
    problem, diagnosis = "", ""
    if var_mine == 0 or float(mine.abs().max()) < 1e-12:
        problem = "your estimate is always 0: biased"
        diagnosis = ("a baseline equal to F(z_i) itself cancels every term. The baseline of sample i must not depend "
                     "on z_i: use the mean of the OTHER samples, b_i = (sum_j F(z_j) - F(z_i)) / (n - 1).")
    elif float(z.max()) > MAX_Z:
        problem = f"the estimate is biased: its mean is {fmt(float(z.max()), 3)} standard errors from the true gradient"
        if abs(ratio - (n - 1) / n) < 0.04:
            diagnosis = (f"your mean is (n - 1)/n = {fmt((n - 1) / n, 3)} of the gradient: the batch mean as a baseline "
                         "contains F(z_i) itself. Leave sample i out of its own baseline: "
                         "b_i = (sum_j F(z_j) - F(z_i)) / (n - 1), or multiply the batch-mean version by n / (n - 1).")
        else:
            diagnosis = ("a baseline keeps the estimator unbiased only if it does not depend on the sample it "
                         "multiplies (then E[b * score] = E[b] * 0). Check that b_i uses the other samples only, and "
                         "that you still multiply (f_i - b_i) by the score (z_i - mu) / sigma^2.")
    elif factor < BAND.lo:
        diagnosis = ("the baseline removes little of the variance" + (": it makes it worse (is it added instead of "
                     "subtracted?)" if factor < 1 else "") + ". The offset c of F is what the baseline should cancel: "
                     "a good b_i is close to F's typical value, such as the mean of the other samples.")
    return Outcome(factor, BAND, summary, diagnosis, problem)


def check_baseline(exercise: str, student) -> object:
    """Probe, run :data:`REPEATS` times and judge ``score_gradient_baseline`` (module docstring)."""
    return run_build(exercise, student, probe=_probe, train=_train, judge=_judge,
                     name=getattr(student, "__name__", "score_gradient_baseline"))
