r"""Chapter 3 build task: the per-sample two-tier loop, judged by the gap it leaves to the exact :math:`\log p(x)`.

The student writes ``fit_local_q(x, W, b, sigma)``: for every data point its own diagonal Gaussian
:math:`q_j = \mathcal N(\mu_j, \mathrm{diag}\,e^{\ell_j})`, fitted by gradient ascent on a Monte-Carlo ELBO (the
student's ``elbo_mc``), returned as ``(mu_q, logvar_q)``, each ``(N, m)``. The check runs it on 64 points of a
linear-Gaussian model (:class:`~vae_course.linear_gaussian.LinearGaussianModel`, :data:`MODEL`) and computes, in
closed form, the ELBO of the returned q's and the exact :math:`\log p(x)`. Their mean difference is the measured
number; the band is the irreducible gap of the best diagonal q (:func:`vae_course.inference.mean_field_optimum`,
the same for every x) plus :data:`MARGIN`.

On a miss the check splits the excess: the gap with the student's means but the best variances, and with the
best means but the student's variances, so the message says which of the two is off, and by how much.
"""
from __future__ import annotations

import math

import torch

from ..inference import bound_gap, mean_field_optimum
from ..linear_gaussian import LinearGaussianModel
from ..utils import make_generator
from ._core import StudentError, call_student
from ._guard import guarded
from .outcomes import NAN_HINT, Band, Outcome, fmt, run_build

__all__ = ["check_local_q", "MODEL", "MARGIN", "N_POINTS", "task"]

MODEL = {"x_dim": 6, "z_dim": 3, "sigma": 0.5, "seed": 30}
N_POINTS = 64
MARGIN = 0.05  # nats per point above the best diagonal q's gap
FORBIDDEN = ("inference.optimize_per_sample", "inference.mean_field_optimum", "inference.fit_amortized",
             "inference.elbo_gaussian", "inference.elbo_closed_form", "inference.bound_gap",
             "linear_gaussian.LinearGaussianModel.posterior", "linear_gaussian.LinearGaussianModel.posterior_precision",
             "linear_gaussian.LinearGaussianModel.log_marginal")


def task() -> tuple[LinearGaussianModel, torch.Tensor]:
    """The model and the data points of the task (float64)."""
    g = make_generator(MODEL["seed"])
    model = LinearGaussianModel.random(MODEL["x_dim"], MODEL["z_dim"], sigma=MODEL["sigma"], generator=g,
                                       dtype=torch.float64)
    return model, model.sample(N_POINTS, generator=g)


def _probe(student):
    name = getattr(student, "__name__", "fit_local_q")
    model, x = task()
    fn = guarded(student, FORBIDDEN)
    return fn, name, model, x


def _train(state):
    fn, name, model, x = state
    torch.manual_seed(0)
    out = call_student(fn, (x.clone(), model.W.clone(), model.b.clone(), model.sigma), name=name,
                       describe=f"{N_POINTS} points of a linear-Gaussian model (d = {MODEL['x_dim']}, m = {MODEL['z_dim']})",
                       returns="any")
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise StudentError(f"`{name}` returned {type(out).__name__}; need a pair of tensors (mu_q, logvar_q).")
    shape = (N_POINTS, MODEL["z_dim"])
    mu, logvar = (t.detach().to(torch.float64) for t in out)
    for what, t in (("mu_q", mu), ("logvar_q", logvar)):
        if tuple(t.shape) != shape:
            raise StudentError(f"`{name}` returned {what} of shape {tuple(t.shape)}; need {shape}: one row per data point.")
    return model, x, mu, logvar


def _judge(state) -> Outcome:
    model, x, mu, logvar = state
    best_mu, best_lv = mean_field_optimum(model, x)
    best = float(bound_gap(model, x, best_mu, best_lv).gap.mean())
    band = Band(hi=best + MARGIN, unit="nats per point")
    if not (bool(torch.isfinite(mu).all()) and bool(torch.isfinite(logvar).all())):
        return Outcome(math.nan, band, "your q's hold NaN or inf", NAN_HINT + " A log-variance drifting to -inf means "
                       "the KL term is missing or has the wrong sign (without it the best q is a point).")
    gap = float(bound_gap(model, x, mu, logvar).gap.mean())
    summary = (f"mean gap log p(x) - ELBO(q) = {fmt(gap)} nats per point over {N_POINTS} points "
               f"(the best diagonal q leaves {fmt(best)})")
    mean_part = float(bound_gap(model, x, mu, best_lv).gap.mean()) - best
    var_part = float(bound_gap(model, x, best_mu, logvar).gap.mean()) - best
    rms_mu = float((mu - best_mu).pow(2).mean().sqrt())
    rms_lv = float((logvar - best_lv).pow(2).mean().sqrt())
    diagnosis = (f"Your means alone (with the best variances) cost {fmt(mean_part, 3)} nats above the best q, your "
                 f"variances alone {fmt(var_part, 3)}; RMS distance of mu_q to the posterior mean {fmt(rms_mu, 3)}, of "
                 f"logvar_q to the best log-variance {fmt(rms_lv, 3)}.")
    if var_part > 2 * max(mean_part, 1e-3) and float((logvar - best_lv).mean()) > 1.0:
        diagnosis += (" Your variances are far too large: is logvar_q optimised at all (requires_grad, in the "
                      "optimiser's parameter list)?")
    elif var_part > 2 * max(mean_part, 1e-3) and float((logvar - best_lv).mean()) < -1.0:
        diagnosis += " Your variances are far too small: is the KL term in the objective, with its sign?"
    elif mean_part > 2 * max(var_part, 1e-3):
        diagnosis += (" The means have not converged: more steps, a larger learning rate, or ascend the ELBO "
                      "(minimise -ELBO), not descend it.")
    else:
        diagnosis += (" Both are off: more steps, more samples per step, or a learning rate that decays towards the "
                      "end (noisy Monte-Carlo gradients keep the q's jittering around the optimum).")
    return Outcome(gap, band, summary, diagnosis)


def check_local_q(exercise: str, student) -> object:
    """Run, then judge ``fit_local_q`` (module docstring)."""
    return run_build(exercise, student, probe=_probe, train=_train, judge=_judge,
                     name=getattr(student, "__name__", "fit_local_q"))
