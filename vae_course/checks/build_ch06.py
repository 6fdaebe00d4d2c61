r"""Chapter 6 build task: capacity control (Burgess et al., 2018), judged by the rate the trained VAE ends at.

The student writes ``capacity_loss(recon, kl, capacity, gamma)``: from the per-image reconstruction
:math:`\log p(x\mid z)` ``(B,)`` and KL ``(B,)`` of a batch, the scalar to minimise that holds the batch-mean
rate near a target :math:`C`, :math:`-\overline{\log p(x\mid z)} + \gamma\,\lvert\overline{\mathrm{KL}} - C\rvert`.
The check trains the package's :class:`~vae_course.models.VAE` on the 8x8 digits with ``fit`` (:data:`FIT`), the
loss computed by the student's function, the capacity rising linearly from 0 to :data:`TARGET` over the first 80%
of the steps, :math:`\gamma` = :data:`GAMMA`. The measured number is the test mean KL; the band is
:data:`TARGET` :math:`\pm` :data:`TOLERANCE`. The distortion must also stay within :data:`MARGIN` nats of the reference
run (the package's own capacity objective, :func:`vae_course.objectives.capacity_schedule`), or a loss that buys
the rate with a ruined reconstruction would pass.

Diagnoses: a KL near 0 (the capacity ignored, or a rate term without its absolute value, which rewards every
nat below C), a KL far above C (the sign of the rate term), NaN.
"""
from __future__ import annotations

import functools
import math

import torch

from ..data import digits
from ..models import VAE
from ..models.base import LossTerms
from ..objectives import capacity_schedule
from ..train import evaluate_loss, fit
from ._core import StudentError, call_student
from ._guard import guarded
from .outcomes import COLLAPSE_KL, NAN_HINT, Band, Outcome, fmt, run_build, scalar_loss, student_step

__all__ = ["check_capacity", "FIT", "TARGET", "TOLERANCE", "GAMMA", "MARGIN", "reference_run"]

FIT = {"epochs": 30, "batch_size": 128, "lr": 3e-3, "seed": 0}
MODEL = {"x_shape": (1, 8, 8), "z_dim": 8, "hidden": 128}
TARGET, TOLERANCE, GAMMA = 2.0, 0.6, 20.0  # nats; the unconstrained rate of this VAE is about 5 nats
MARGIN = 2.0  # nats of distortion above the reference run
ANNEAL = 0.8
FORBIDDEN = ("objectives.beta_objective", "objectives.training_loss", "objectives.capacity_schedule")


def _schedule(epoch: int, step: int, n_steps: int) -> dict:
    return {"capacity": TARGET * min(1.0, step / (ANNEAL * n_steps))}


class _CapacityVAE(VAE):
    """The package's VAE whose training loss is the student's ``capacity_loss``."""

    def __init__(self, fn, name: str):
        super().__init__(**MODEL)
        self.fn, self.name, self.step = fn, name, 0

    def loss(self, x, capacity: float = TARGET, **kwargs):
        t = self.elbo(x)
        self.step += 1
        out = student_step(self.fn, t.recon, t.kl, float(capacity), GAMMA,
                           what=f"`{self.name}` at training step {self.step}")
        loss = scalar_loss(out, self.name)
        return LossTerms(loss, {"loss": loss, "elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean()})


@functools.lru_cache(maxsize=None)
def reference_run() -> dict[str, float]:
    """The package's capacity objective on the same VAE and schedule: test terms (once per process)."""
    data = digits(binarize="static")
    torch.manual_seed(0)
    model = VAE(**MODEL)
    fit(model, data, device="cpu", progress=False, test_every=FIT["epochs"],
        loss_kwargs=capacity_schedule(TARGET, gamma=GAMMA, anneal=ANNEAL), **FIT)
    return evaluate_loss(model, data.x_test)


def _probe(student):
    name = getattr(student, "__name__", "capacity_loss")
    fn = guarded(student, FORBIDDEN)
    g = torch.Generator().manual_seed(60)
    recon = (-30 + 3 * torch.randn(6, generator=g)).requires_grad_(True)
    kl = (3 + torch.rand(6, generator=g)).requires_grad_(True)
    out = scalar_loss(call_student(fn, (recon, kl, 2.0, GAMMA), name=name,
                               describe="recon, kl of 6 images, capacity = 2, gamma = 20"), name)
    if not bool(torch.isfinite(out)):
        raise StudentError(f"`{name}` returned {float(out.detach())} on finite inputs.")
    g_recon, g_kl = torch.autograd.grad(out, (recon, kl), allow_unused=True, materialize_grads=True)
    if not bool(g_recon.abs().gt(0).any()):
        raise StudentError(f"`{name}`: no gradient reaches recon, so the decoder would not learn to reconstruct.")
    if not bool(g_kl.abs().gt(0).any()):
        raise StudentError(f"`{name}`: no gradient reaches kl, so nothing holds the rate at the capacity.")
    return fn, name


def _train(state):
    fn, name = state
    data = digits(binarize="static")
    torch.manual_seed(0)
    model = _CapacityVAE(fn, name)
    history = fit(model, data, device="cpu", progress=False, test_every=FIT["epochs"], loss_kwargs=_schedule, **FIT)
    return evaluate_loss(model, data.x_test, loss_kwargs={"capacity": TARGET}), history


def _judge(state) -> Outcome:
    terms, history = state
    band = Band(TARGET - TOLERANCE, TARGET + TOLERANCE, "nats")
    ref = reference_run()
    kl, distortion = terms["kl"], -terms["recon"]
    summary = (f"test rate (mean KL) {fmt(kl)} nats for the capacity C = {fmt(TARGET)}, distortion {fmt(distortion)} nats "
               f"(reference run: rate {fmt(ref['kl'])}, distortion {fmt(-ref['recon'])})")
    if history.stopped or not math.isfinite(kl):
        return Outcome(math.nan, band, summary, NAN_HINT)
    diagnosis, problem = "", ""
    if kl < COLLAPSE_KL:
        diagnosis = ("your model ignores z (KL near 0, a collapse): the rate term pushes the KL down even below C. Use "
                     "the absolute value |mean KL - C|, so that every nat away from C costs, in both directions.")
    elif kl > TARGET + TOLERANCE:
        diagnosis = ("the rate stays above the capacity: is the rate term added with a positive weight gamma, and "
                     "computed on the batch MEAN of the KL?")
    elif kl < TARGET - TOLERANCE:
        diagnosis = "the rate ends below the capacity: the rate term must pull the KL up to C as well as down."
    elif distortion > -ref["recon"] + MARGIN:
        problem = (f"the rate is right but the distortion {fmt(distortion)} nats is more than {fmt(MARGIN)} nats above the "
                   f"reference run's {fmt(-ref['recon'])}")
        diagnosis = ("the reconstruction term is weighted down (beta or gamma on it?) or averaged over the pixels: "
                     "it must be minus the batch mean of log p(x|z), summed over the pixels.")
    return Outcome(kl, band, summary, diagnosis, problem)


def check_capacity(exercise: str, student) -> object:
    """Probe, train and judge ``capacity_loss`` (module docstring)."""
    return run_build(exercise, student, probe=_probe, train=_train, judge=_judge,
                     name=getattr(student, "__name__", "capacity_loss"))
