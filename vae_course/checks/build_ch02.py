r"""Chapter 2 build task: a learned generator for non-Gaussian targets, judged by its held-out log-likelihood.

The student writes ``build_generator()``, which returns an untrained generator with a 1-D latent and a 1-D
output: a :class:`~vae_course.generators.ProbabilisticGenerator` (``z_dim=1``, ``x_dim=1``) with the network and the
noise :math:`s` of the student's choice, or any module with ``z_dim`` and ``statistics(z)``. The check builds a
fresh one for each of two targets of :mod:`vae_course.data` (``"bimodal"``, two narrow peaks, and ``"skewed"``),
fits it by maximum likelihood through the marginal with the chapter's
:func:`~vae_course.mixtures.fit_marginal_likelihood` (500 points, a 96-node grid, 300 Adam steps, seed 0), and
measures the held-out log-likelihood on 2000 new points with a 20 times finer grid (so a model that exploits the
training grid shows it). The measured number is the **gap to the truth** :math:`\frac1N\sum_i\log p(x_i) -
\log P_w(x_i)` in nats per point, averaged over the two targets; the band is :data:`BAND`.

A linear :math:`G` can only make one Gaussian; its gap equals the best single Gaussian's, and the message says so.
A noise :math:`s` wider than the peaks cannot resolve them. A generator that ignores :math:`z` is a single
Gaussian of width :math:`s`. A comb (a tiny :math:`s` with a steep :math:`G` on the coarse training grid) is caught
by the finer evaluation grid.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import data
from ..mixtures import fit_marginal_likelihood, fit_single_gaussian, log_marginal_quadrature
from ._core import StudentError, call_student
from ._guard import guarded
from .outcomes import NAN_HINT, Band, Outcome, fmt, run_build, student_step

__all__ = ["check_generator", "BAND", "TARGETS", "FIT", "evaluate_generator"]

TARGETS = ("bimodal", "skewed")
FIT = {"steps": 300, "lr": 0.02, "n_quadrature": 96, "half_width": 6.0, "seed": 0}
N_TRAIN, N_TEST, N_EVAL = 500, 2000, 2048
BAND = Band(hi=0.15, unit="nats per point")  # mean gap to the true log-likelihood; the book's MLP 32x32 gets ~0.03
FORBIDDEN = ("data.toy_1d_density", "data.toy_1d", "mixtures.quantile_generator_1d", "mixtures.capacity_study",
             "mixtures.fit_marginal_likelihood")


def _probe(student):
    factory = guarded(student, FORBIDDEN)
    name = getattr(student, "__name__", "build_generator")
    gen = call_student(factory, name=name, returns="any")
    if not isinstance(gen, nn.Module) or not callable(getattr(gen, "statistics", None)):
        raise StudentError(f"`{name}()` returned {type(gen).__name__}; need a generator module such as "
                           "vc.generators.ProbabilisticGenerator(1, 1, covariance='isotropic', sigma=..., net=...).")
    if getattr(gen, "z_dim", None) != 1 or getattr(gen, "x_dim", 1) != 1:
        raise StudentError(f"`{name}()` returned a generator with z_dim={getattr(gen, 'z_dim', None)}, "
                           f"x_dim={getattr(gen, 'x_dim', None)}; this task needs a 1-D latent and a 1-D output "
                           "(z_dim=1, x_dim=1): the quadrature runs over one latent dimension.")
    if not any(p.requires_grad for p in gen.parameters()):
        raise StudentError(f"`{name}()` returned a generator without trainable parameters; the task is to LEARN G.")
    z = torch.linspace(-2, 2, 5).unsqueeze(-1)
    stats = student_step(gen.statistics, z, what=f"the generator from `{name}()` on z of shape (5, 1)")
    mu = getattr(stats, "mu", None)
    if not isinstance(mu, torch.Tensor) or tuple(mu.shape) != (5, 1):
        raise StudentError(f"the generator from `{name}()` gives means of shape "
                           f"{tuple(mu.shape) if isinstance(mu, torch.Tensor) else type(mu).__name__} for z of shape "
                           "(5, 1); need (5, 1): its network must map (..., 1) to (..., 1).")
    if not bool(torch.isfinite(mu).all()):
        raise StudentError(f"the untrained generator from `{name}()` already outputs NaN or inf means.")
    return factory, name


def evaluate_generator(gen: nn.Module, target: str) -> dict[str, float]:
    """Fit ``gen`` to ``target`` (:data:`FIT`) and return the held-out log-likelihoods (nats per point) of the model,
    the truth and the best single Gaussian, and the final training loss."""
    x_train = data.toy_1d(target, N_TRAIN, seed=1)[:, None]
    x_test = data.toy_1d(target, N_TEST, seed=2)[:, None]
    history = fit_marginal_likelihood(gen, x_train, **FIT)
    with torch.no_grad():
        model = float(log_marginal_quadrature(gen, x_test, N_EVAL).mean())
        on_grid = float(log_marginal_quadrature(gen, x_train, FIT["n_quadrature"], half_width=FIT["half_width"]).mean())
        fine = float(log_marginal_quadrature(gen, x_train, N_EVAL).mean())
    truth = float(data.toy_1d_density(target, x_test[:, 0].double()).clamp_min(1e-300).log().mean())
    single = float(fit_single_gaussian(x_train).log_prob(x_test).mean())
    return {"model": model, "truth": truth, "single": single, "train_loss": history.final_loss,
            "grid_excess": on_grid - fine, "sigma": float(getattr(gen, "sigma", math.nan))}


def _train(state):
    factory, name = state
    runs = {}
    for target in TARGETS:
        torch.manual_seed(0)
        gen = call_student(factory, name=name, returns="any")
        runs[target] = student_step(evaluate_generator, gen, target, what=f"training the generator from `{name}()`")
    return runs


def _judge(runs) -> Outcome:
    gaps = {t: r["truth"] - r["model"] for t, r in runs.items()}
    gap = sum(gaps.values()) / len(gaps) if all(math.isfinite(g) for g in gaps.values()) else math.nan
    parts = ", ".join(f"{t}: model {fmt(r['model'])}, truth {fmt(r['truth'])}, one Gaussian {fmt(r['single'])}"
                      for t, r in runs.items())
    summary = f"held-out log-likelihood (nats per point) {parts}; mean gap to the truth {fmt(gap)}"
    return Outcome(gap, BAND, summary, _diagnose(runs, gaps))


def _diagnose(runs, gaps) -> str:
    if not all(math.isfinite(r["model"]) and math.isfinite(r["train_loss"]) for r in runs.values()):
        return NAN_HINT
    if any(r["grid_excess"] > 0.1 for r in runs.values()):
        return ("the model scores much better on the training grid than on a finer one: with a tiny noise s and a "
                "steep G it became a comb of separate bumps at the grid's nodes. Use a larger s (about 0.1-0.3).")
    if all(abs(r["model"] - r["single"]) < 0.05 for r in runs.values()):
        return ("your model is no better than one Gaussian on both targets: a linear G (no nonlinearity between "
                "its layers) maps the Gaussian latent to a Gaussian, or G ignores z. Put a nonlinearity (tanh, ReLU) "
                "between layers, with a few dozen hidden units.")
    if any(r["model"] < r["single"] - 0.05 for r in runs.values()):
        return ("on at least one target your model is worse than the best single Gaussian: it did not learn, "
                "or its noise s is much wider than the data. Try s between 0.1 and 0.3 and a learning rate near 0.02.")
    sigma = next(iter(runs.values()))["sigma"]
    if math.isfinite(sigma) and sigma >= 0.45:
        return (f"your noise s = {fmt(sigma)} is about as wide as the bimodal target's peaks (standard deviation 0.5): "
                "the model density is a blur of Gaussians of width s and cannot be sharper than that. Use s of about "
                "0.1-0.3 and let G do the shaping.")
    worst = max(gaps, key=gaps.get)
    return (f"the fit is closest to the truth on {min(gaps, key=gaps.get)} and furthest on {worst} "
            f"(gap {fmt(gaps[worst])} nats): a wider network, or a noise s small enough for the narrowest feature "
            "of the target (the bimodal peaks have standard deviation 0.5), closes it.")


def check_generator(exercise: str, student) -> object:
    """Probe, fit on both targets and judge ``student`` (``build_generator``); see the module docstring."""
    return run_build(exercise, student, probe=_probe, train=_train, judge=_judge,
                     name=getattr(student, "__name__", "build_generator"))
