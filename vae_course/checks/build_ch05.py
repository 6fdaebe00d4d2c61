r"""Chapter 5 build task: a VAE written by the student (encoder, decoder, negative ELBO), trained with
:func:`vae_course.train.fit`, judged by its test negative ELBO.

The student writes a class ``TinyVAE(nn.Module)`` for the 8x8 binary digits (:func:`vae_course.data.digits`):

* ``encode(x)``: images ``(B, 1, 8, 8)`` -> ``(mu, logvar)``, each ``(B, m)``;
* ``decode(z)``: latents ``(B, m)`` -> Bernoulli logits ``(B, 64)``;
* ``loss(x)``: the mean negative ELBO of the batch, as ``vc.models.LossTerms(loss, {"loss": loss, ...})``.

The check builds ``TinyVAE()``, trains it with ``fit`` (:data:`FIT`, seed 0) and then evaluates it **itself**: the
negative ELBO of the test digits from the student's ``encode`` and ``decode`` with the reference formulas
(:func:`~vae_course.distributions.log_bernoulli`, :func:`~vae_course.distributions.kl_normal_std`), never from
the student's ``loss``. The band is the test negative ELBO of the reference run (the package's
:class:`~vae_course.models.VAE` with the same size, trained the same way) plus :data:`MARGIN`.

Diagnoses: a KL near 0 is a collapse ("your model ignores z") and fails even inside the band; NaN is a variance or
a log of 0; a miss is split into the reconstruction and the KL, each compared with the reference run; and the
student's own ``loss`` must agree with the true negative ELBO of the same model within a nat (a loss without its
KL, or with a mean over pixels, shows there).
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .. import distributions as D
from ..data import digits
from ..models import VAE, VAEBase
from ..train import fit
from ._core import StudentError, call_student
from ._guard import guarded
from .outcomes import COLLAPSE_KL, NAN_HINT, Band, Outcome, fmt, run_build, student_step

__all__ = ["check_vae", "FIT", "MARGIN", "reference_run", "evaluate_vae"]

FIT = {"epochs": 30, "batch_size": 128, "lr": 3e-3, "seed": 0}
MARGIN = 1.5  # nats per image above the reference run's test -ELBO (about 24.5 nats; a collapsed model: about 27.4)
REFERENCE = {"x_shape": (1, 8, 8), "z_dim": 4, "hidden": 128}
FORBIDDEN = ("distributions.log_bernoulli", "distributions.kl_normal_std", "distributions.reparameterize",
             "objectives.negative_beta_elbo", "objectives.beta_objective", "objectives.kl_per_dimension",
             "evaluate.elbo_per_example", "models.VAEBase.elbo", "models.VAEBase.loss")


def _data():
    return digits(binarize="static")


def evaluate_vae(encode, decode, x: torch.Tensor, *, seed: int = 0, samples: int = 4) -> dict[str, float]:
    """Mean test -ELBO, reconstruction -E log p(x|z) and KL (nats per image) of a VAE given by its ``encode`` and
    ``decode``, with the reference formulas and ``samples`` reparameterised draws per image."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mu, logvar = encode(x)
        kl = D.kl_normal_std(mu.double(), logvar.double())
        recon = 0.0
        for _ in range(samples):
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
            recon = recon - D.log_bernoulli(x.flatten(1).double(), decode(z).reshape(len(x), -1).double()) / samples
    return {"nelbo": float((recon + kl).mean()), "recon": float(recon.mean()), "kl": float(kl.mean())}


@functools.lru_cache(maxsize=None)
def reference_run() -> dict[str, float]:
    """The package's VAE of the same size, trained with :data:`FIT`: its test terms (computed once per process)."""
    data = _data()
    torch.manual_seed(0)
    model = VAE(**REFERENCE)
    fit(model, data, device="cpu", progress=False, test_every=FIT["epochs"], **FIT)
    model.eval()
    enc = lambda x: tuple(model.encode(x))  # noqa: E731  DiagonalGaussian -> (mu, logvar)
    return evaluate_vae(enc, lambda z: model.decode(z).logits, data.x_test)


class _Guarded(nn.Module):
    """The student's model with its methods run under the guard and their errors worded; ``fit`` trains it."""

    def __init__(self, inner: nn.Module, name: str):
        super().__init__()
        self.inner, self.name, self.step = inner, name, 0
        self._loss = guarded(inner.loss, FORBIDDEN)
        self._encode = guarded(inner.encode, FORBIDDEN)
        self._decode = guarded(inner.decode, FORBIDDEN)

    def loss(self, x):
        self.step += 1
        out = student_step(self._loss, x, what=f"`{self.name}.loss` at training step {self.step}")
        return _loss_terms(out, self.name)

    def encode(self, x):
        return student_step(self._encode, x, what=f"`{self.name}.encode`")

    def decode(self, z):
        return student_step(self._decode, z, what=f"`{self.name}.decode`")


def _loss_terms(out, name: str):
    loss = getattr(out, "loss", None)
    terms = getattr(out, "terms", None)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not isinstance(terms, dict):
        raise StudentError(f"`{name}.loss(x)` returned {type(out).__name__}; need vc.models.LossTerms(loss, terms) with "
                           "a scalar tensor loss (the mean negative ELBO of the batch) and a dict of scalar terms.")
    if torch.is_grad_enabled() and not loss.requires_grad:
        raise StudentError(f"`{name}.loss(x)` returned a loss without a gradient; " +
                           "something cut the graph (.detach(), .item(), numpy, torch.no_grad()).")
    if "loss" not in terms:
        terms = {"loss": loss.detach(), **terms}
    return type(out)(loss, terms) if hasattr(type(out), "_fields") else out


def _probe(student):
    name = getattr(student, "__name__", "TinyVAE")
    torch.manual_seed(0)  # the same initial weights whatever ran before (the reference run, another check)
    model = call_student(guarded(student, FORBIDDEN), name=name, returns="any")
    if isinstance(model, VAEBase):
        raise StudentError(f"`{name}()` is one of the package's VAEs; this task asks you to build yours from "
                           "torch.nn layers (nn.Linear, nn.Tanh, ...).")
    if not isinstance(model, nn.Module) or not all(callable(getattr(model, m, None)) for m in ("encode", "decode", "loss")):
        raise StudentError(f"`{name}()` returned a {type(model).__name__}; need an nn.Module with encode, decode and loss.")
    if not any(p.requires_grad for p in model.parameters()):
        raise StudentError(f"`{name}()` has no trainable parameters; define its layers in __init__.")
    wrapped = _Guarded(model, name)
    x = _data().x_test[:8]
    q = wrapped.encode(x)
    if not (isinstance(q, (tuple, list)) and len(q) == 2 and all(isinstance(t, torch.Tensor) for t in q)):
        raise StudentError(f"`{name}.encode(x)` returned {type(q).__name__}; need a pair (mu, logvar) of tensors (B, m).")
    mu, logvar = q
    if mu.dim() != 2 or mu.shape != logvar.shape or mu.shape[0] != 8:
        raise StudentError(f"`{name}.encode(x)` gave mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} for 8 images; "
                           "need two tensors of shape (8, m).")
    logits = wrapped.decode(mu)
    if not isinstance(logits, torch.Tensor) or logits.numel() != 8 * 64:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise StudentError(f"`{name}.decode(z)` returned {got} for z of shape {tuple(mu.shape)}; need logits (8, 64).")
    out = wrapped.loss(x)
    if not bool(torch.isfinite(out.loss)):
        raise StudentError(f"`{name}.loss(x)` is {float(out.loss.detach())} on 8 test digits before training. " + NAN_HINT)
    return wrapped


def _train(wrapped):
    data = _data()
    history = fit(wrapped, data, device="cpu", progress=False, test_every=FIT["epochs"], **FIT)
    wrapped.eval()
    terms = evaluate_vae(wrapped.encode, wrapped.decode, data.x_test)
    with torch.no_grad():
        reported = float(wrapped.loss(data.x_test).loss)
    return terms, reported, history


def _judge(state) -> Outcome:
    terms, reported, history = state
    ref = reference_run()
    band = Band(hi=ref["nelbo"] + MARGIN, unit="nats")
    nelbo = terms["nelbo"] if not history.stopped else math.nan
    summary = (f"test -ELBO {fmt(nelbo)} nats = reconstruction {fmt(terms['recon'])} + KL {fmt(terms['kl'])} "
               f"(reference run: {fmt(ref['nelbo'])} = {fmt(ref['recon'])} + {fmt(ref['kl'])})")
    if history.stopped or not math.isfinite(terms["nelbo"]):
        return Outcome(math.nan, band, summary, NAN_HINT + f" ({history.stopped or 'NaN in the test terms'})")
    notes, problem = [], ""
    if terms["kl"] < COLLAPSE_KL:
        problem = f"your model ignores z: its KL is {fmt(terms['kl'], 2)} nats (posterior collapse)"
        notes.append("The KL outweighs the reconstruction in your loss: is the reconstruction a SUM over the 64 pixels "
                     "(not a mean)?")
    if abs(reported - nelbo) > 1.0:
        problem = problem or f"your loss(x) is not the negative ELBO of your model ({fmt(reported)} against {fmt(nelbo)} nats)"
        notes.append(f"Your loss(x) gives {fmt(reported)} nats on the test digits, but the negative ELBO of the same model is "
                     f"{fmt(nelbo)}: is the KL missing, its sign or its 1/2 wrong, or a mean where a sum belongs?")
    d_recon, d_kl = terms["recon"] - ref["recon"], terms["kl"] - ref["kl"]
    notes.append(f"Compared with the reference run, your reconstruction is {fmt(d_recon, 3)} nats "
                 f"{'worse' if d_recon > 0 else 'better'} and your KL {fmt(abs(d_kl), 3)} nats "
                 f"{'larger' if d_kl > 0 else 'smaller'}.")
    return Outcome(nelbo, band, summary, " ".join(notes), problem)


def check_vae(exercise: str, student) -> object:
    """Build, train and judge ``TinyVAE`` (module docstring)."""
    return run_build(exercise, student, probe=_probe, train=_train, judge=_judge,
                     name=getattr(student, "__name__", "TinyVAE"))
