r"""Chapter 7 build task: cure the posterior collapse of the PixelCNN-decoder VAE.

The student writes ``remedy_loss(recon, kl_per_dim, progress)``: from the per-image reconstruction
:math:`\log p(x\mid z)` ``(B,)``, the KL of every latent dimension ``(B, m)`` and the fraction of training done
(``progress`` in [0, 1], for a schedule), the scalar to minimise. The check trains chapter 7's
:class:`~vae_course.models.AutoregressiveVAE` on the 8x8 digits with ``fit`` (:data:`FIT`, the chapter's settings,
seed 0) with that loss, and measures on the test digits (as :func:`vae_course.collapse.collapse_report` does):

* the measured number is the count of **active units** (Burda et al.: :math:`\mathrm{Var}_x\,\mu_u(x) > 0.01`);
  the band is :data:`BAND`;
* the latents must carry information, a total KL of at least :data:`MIN_KL` nats (a unit can move while
  carrying next to nothing);
* the **bound** (the IWAE bound with k = 50, the true objective, whatever was trained) must stay within
  :data:`MARGIN` nats of the reference run, the same model trained on the plain ELBO (which collapses).

A plain ELBO collapses ("your model ignores z"); a warm-up that ends at beta = 1 usually collapses again by the
end; beta = 0 keeps every unit but pays for it in the bound. Free bits on each dimension's batch mean cure it.
"""
from __future__ import annotations

import functools
import math

import torch

from ..collapse import active_units
from ..data import digits
from ..distributions import DiagonalGaussian
from ..evaluate import encode_all, iwae_bound, log_weights
from ..models import AutoregressiveVAE
from ..models.base import LossTerms
from ..train import fit
from ._core import StudentError, call_student
from ._guard import guarded
from .outcomes import COLLAPSE_KL, NAN_HINT, Band, Outcome, fmt, run_build, scalar_loss, student_step

__all__ = ["check_remedy", "FIT", "BAND", "MIN_KL", "MARGIN", "reference_run"]

FIT = {"epochs": 20, "batch_size": 128, "lr": 3e-3, "seed": 0}  # chapter 7's run (experiments.free_bits_sweep)
BAND = Band(lo=6, unit="active units of 8")
MIN_KL = 0.25
MARGIN = 1.0  # nats of the test bound below the collapsed reference run
FORBIDDEN = ("objectives.free_bits_kl", "objectives.beta_objective", "objectives.training_loss",
             "objectives.warmup_beta", "objectives.kl_warmup")


class _RemedyVAE(AutoregressiveVAE):
    """Chapter 7's model whose training loss is the student's ``remedy_loss``."""

    def __init__(self, fn, name: str):
        super().__init__()
        self.fn, self.name, self.step = fn, name, 0

    def loss(self, x, progress: float = 1.0, **kwargs):
        x = self._images(x)
        q = self.encoder(x)
        z = q.sample()
        recon = self.decode(z).log_prob(x)  # (B,)
        kl_dims = self.prior.kl(q, per_dimension=True)  # (B, m)
        self.step += 1
        out = student_step(self.fn, recon, kl_dims, float(progress), what=f"`{self.name}` at training step {self.step}")
        loss = scalar_loss(out, self.name)
        kl = kl_dims.sum(-1)
        return LossTerms(loss, {"loss": loss, "elbo": (recon - kl).mean(), "recon": recon.mean(), "kl": kl.mean()})


def _progress(epoch: int, step: int, n_steps: int) -> dict:
    return {"progress": step / max(1, n_steps - 1)}


@torch.no_grad()
def _report(model) -> dict:
    """The test digits' IWAE bound (k = 50) and ELBO from the same draws, KL per dimension and active units (the
    columns of :func:`vae_course.collapse.collapse_report` that the task needs)."""
    x = digits(binarize="static").x_test
    mu, logvar = encode_all(model, x)
    kl_dims = model.prior.kl(DiagonalGaussian(mu, logvar), per_dimension=True).mean(0)  # (m,)
    log_w = log_weights(model, x, 50, generator=torch.Generator().manual_seed(0), batch_size=10)  # (k, N)
    return {"bound": float(iwae_bound(log_w).mean()), "elbo": float(log_w.mean()), "kl": float(kl_dims.sum()),
            "active": active_units(mu).count, "kl_dims": kl_dims.tolist()}


@functools.lru_cache(maxsize=None)
def reference_run() -> dict:
    """Chapter 7's model on the plain ELBO (it collapses): its report on the test digits (once per process)."""
    torch.manual_seed(0)
    model = AutoregressiveVAE()
    fit(model, digits(binarize="static"), device="cpu", progress=False, test_every=FIT["epochs"], **FIT)
    return _report(model)


def _probe(student):
    name = getattr(student, "__name__", "remedy_loss")
    fn = guarded(student, FORBIDDEN)
    g = torch.Generator().manual_seed(70)
    recon = (-28 + torch.randn(5, generator=g)).requires_grad_(True)
    kl = (0.3 * torch.rand(5, 8, generator=g)).requires_grad_(True)
    for progress in (0.0, 0.5, 1.0):
        out = scalar_loss(call_student(fn, (recon, kl, progress), name=name,
                                   describe=f"recon (5,), kl_per_dim (5, 8), progress = {progress}"), name)
        if not bool(torch.isfinite(out)):
            raise StudentError(f"`{name}` returned {float(out.detach())} on finite inputs (progress = {progress}).")
    g_recon = torch.autograd.grad(out, recon, allow_unused=True, materialize_grads=True)[0]
    if not bool(g_recon.abs().gt(0).any()):
        raise StudentError(f"`{name}`: no gradient reaches recon, so the decoder would not learn to reconstruct.")
    return fn, name


def _train(state):
    fn, name = state
    torch.manual_seed(0)
    model = _RemedyVAE(fn, name)
    history = fit(model, digits(binarize="static"), device="cpu", progress=False, test_every=FIT["epochs"],
                  loss_kwargs=_progress, **FIT)
    return _report(model), history


def _judge(state) -> Outcome:
    report, history = state
    ref = reference_run()
    summary = (f"{report['active']} active units, KL {fmt(report['kl'], 3)} nats, test bound {fmt(report['bound'])} nats "
               f"(the collapsed reference run: {ref['active']} active, KL {fmt(ref['kl'], 2)}, bound {fmt(ref['bound'])})")
    if history.stopped or not math.isfinite(report["bound"]):
        return Outcome(math.nan, BAND, summary, NAN_HINT)
    problem, diagnosis = "", ""
    if report["kl"] < COLLAPSE_KL or report["active"] < BAND.lo:
        diagnosis = ("your model ignores z (posterior collapse): the decoder models the digits alone and the KL of "
                     "almost every dimension is near 0. A plain ELBO does this, and so does a warm-up that ends at "
                     "beta = 1 (the incentive returns). Change the objective itself: give each dimension a floor on "
                     "its batch-mean KL (free bits), so that the first nats are free.")
    elif report["kl"] < MIN_KL:
        problem = f"the latents carry only {fmt(report['kl'], 3)} nats (at least {MIN_KL} needed)"
        diagnosis = "the units move, but barely: raise the floor (a few tenths of a nat per dimension)."
    elif report["bound"] < ref["bound"] - MARGIN:
        problem = (f"the test bound {fmt(report['bound'])} is {fmt(ref['bound'] - report['bound'], 3)} nats below the "
                   f"collapsed reference run's {fmt(ref['bound'])} (more than {MARGIN} nats)")
        diagnosis = (f"the latents carry {fmt(report['kl'], 3)} nats, more than the images need: a beta near 0, or a "
                     "floor of a nat or more per dimension, buys active units at the price of the bound. Use a small "
                     "floor (free bits of 0.05 to 0.3 nats per dimension) and keep the reconstruction term unweighted.")
    return Outcome(float(report["active"]), BAND, summary, diagnosis, problem)


def check_remedy(exercise: str, student) -> object:
    """Probe, train and judge ``remedy_loss`` (module docstring)."""
    return run_build(exercise, student, probe=_probe, train=_train, judge=_judge,
                     name=getattr(student, "__name__", "remedy_loss"))
