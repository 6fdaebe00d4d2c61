r"""Chapter 8 build task: the EMA codebook with dead-code restarts, judged by the codebook usage after training.

The student writes ``ema_codebook_update(codebook, cluster_size, embed_sum, z, indices, decay, dead)``: one training
step of the codebook (van den Oord et al., 2017, appendix A.1), from the batch's encoder outputs ``z`` ``(N, D)`` and
their nearest codes ``indices`` ``(N,)``,

.. math:: N_k \leftarrow \gamma N_k + (1-\gamma)\,n_k,\qquad m_k \leftarrow \gamma m_k + (1-\gamma)\!\!\sum_{i:k_i=k}\!\! z_i,
          \qquad e_k = m_k / N_k\ \ (N_k > 0),

and, for every code flagged in ``dead`` ``(K,)`` (bool), a restart on a randomly chosen row of ``z`` (with
``N_k = 1`` and ``m_k = e_k`` so that the running mean starts there). It returns the new
``(codebook, cluster_size, embed_sum)``. The check puts it inside the package's
:class:`~vae_course.models.VectorQuantizer` (the bookkeeping of which codes are dead, every :data:`RESTART_EVERY`
steps, stays the package's), trains a small :class:`~vae_course.models.VQVAE` on the 8x8 digits with ``fit``
(:data:`FIT`), and measures the **perplexity** of the codes of the training digits; the band is :data:`BAND`. At most
:data:`MAX_DEAD` of the codes may be unused, and the test reconstruction must stay within :data:`MARGIN` nats of the
reference run (the package's EMA codebook with restarts, trained the same way).
"""
from __future__ import annotations

import functools
import math

import torch

from ..data import digits
from ..models import VQVAE
from ..models.quantizer import VectorQuantizer, code_counts
from ..train import evaluate_loss, fit
from ..vq import codebook_usage, encode_codes
from ._core import StudentError, call_student
from ._guard import guarded
from .outcomes import NAN_HINT, Band, Outcome, fmt, run_build, student_step

__all__ = ["check_ema", "FIT", "MODEL", "BAND", "MAX_DEAD", "MARGIN", "reference_run"]

FIT = {"epochs": 10, "batch_size": 128, "lr": 2e-3, "seed": 0}
RESTART_EVERY = 10
MODEL = {"x_shape": (1, 8, 8), "downsample": 1, "n_codes": 32, "code_dim": 8, "channels": (16, 32),
         "codebook": "ema", "restart_every": RESTART_EVERY}
BAND = Band(lo=14.0, unit="effective codes of 32")
MAX_DEAD = 0.1
MARGIN = 3.0  # nats of test reconstruction above the reference run
FORBIDDEN = ("models.quantizer.ema_update", "models.VectorQuantizer.restart_dead_codes",
             "models.VectorQuantizer._update")


class _StudentQuantizer(VectorQuantizer):
    """The package's quantiser whose EMA step and restarts are the student's function."""

    def __init__(self, fn, name: str):
        super().__init__(MODEL["n_codes"], MODEL["code_dim"], ema=True, restart_every=RESTART_EVERY)
        self.fn, self.name = fn, name
        self.generator = torch.Generator().manual_seed(80)

    @torch.no_grad()
    def _update(self, z, idx) -> None:
        counts = code_counts(idx, self.n_codes)
        self.usage.mul_(self.usage_decay).add_((1 - self.usage_decay) * counts)
        self.steps += 1
        step = int(self.steps)
        restart = step == 1 or step % self.restart_every == 0
        dead = self.usage_per_batch() < self.dead_threshold if restart else torch.zeros(self.n_codes, dtype=torch.bool)
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=self.generator)))  # the student's random rows
        out = student_step(self.fn, self.codebook.clone(), self.cluster_size.clone(), self.embed_sum.clone(), z.clone(),
                           idx.clone(), self.decay, dead.clone(), what=f"`{self.name}` at training step {step}")
        codebook, cluster_size, embed_sum = _state(out, self.name, self.n_codes, self.code_dim)
        self.codebook.copy_(codebook)
        self.cluster_size.copy_(cluster_size)
        self.embed_sum.copy_(embed_sum)
        if bool(dead.any()):
            self.usage[dead] = self.dead_threshold * (1 - self.usage_decay ** step)  # as restart_dead_codes does
            self.restarts += int(dead.sum())


def _state(out, name: str, k: int, d: int):
    if not (isinstance(out, (tuple, list)) and len(out) == 3 and all(isinstance(t, torch.Tensor) for t in out)):
        raise StudentError(f"`{name}` returned {type(out).__name__}; need a tuple (codebook, cluster_size, embed_sum).")
    for what, t, shape in zip(("codebook", "cluster_size", "embed_sum"), out, ((k, d), (k,), (k, d))):
        if tuple(t.shape) != shape:
            raise StudentError(f"`{name}` returned {what} of shape {tuple(t.shape)}; need {shape}.")
        if not bool(torch.isfinite(t).all()):
            raise StudentError(f"`{name}` returned a {what} with NaN or inf. " + NAN_HINT +
                               " (A code with N_k = 0 must keep its codeword: divide only where N_k > 0.)")
    return out


def _model(quantizer: VectorQuantizer | None = None) -> VQVAE:
    torch.manual_seed(0)
    model = VQVAE(**MODEL)
    if quantizer is not None:
        quantizer.codebook.copy_(model.quantizer.codebook)  # the same starting codebook as the reference
        model.quantizer = quantizer
    return model


def _report(model: VQVAE) -> dict:
    data = digits(binarize="static")
    usage = codebook_usage(encode_codes(model, data.x_train), MODEL["n_codes"])
    q = model.quantizer
    used = q.cluster_size > 1e-6
    mean = q.embed_sum[used] / q.cluster_size[used, None]
    return {"perplexity": float(usage.perplexity), "dead": float(usage.dead_fraction),
            "recon": evaluate_loss(model, data.x_test)["recon"],
            "is_mean": bool(torch.allclose(q.codebook[used], mean, rtol=1e-3, atol=1e-4)),
            "is_sum": bool(torch.allclose(q.codebook[used], q.embed_sum[used], rtol=1e-3, atol=1e-4)) and not bool(
                torch.allclose(q.cluster_size[used], torch.ones_like(q.cluster_size[used])))}


@functools.lru_cache(maxsize=None)
def reference_run() -> dict:
    """The package's EMA codebook with restarts on the same VQ-VAE: usage and test reconstruction (once per process)."""
    model = _model()
    fit(model, digits(binarize="static"), device="cpu", progress=False, test_every=FIT["epochs"], **FIT)
    return _report(model)


def _probe(student):
    name = getattr(student, "__name__", "ema_codebook_update")
    fn = guarded(student, FORBIDDEN)
    g = torch.Generator().manual_seed(81)
    k, d = 4, 2
    codebook = torch.randn(k, d, generator=g)
    z = torch.randn(6, d, generator=g)
    idx = torch.tensor([0, 0, 1, 1, 1, 2])
    dead = torch.tensor([False, False, False, True])
    out = call_student(fn, (codebook, torch.ones(k), codebook.clone(), z, idx, 0.5, dead), name=name, returns="any",
                       describe="4 codes in D = 2, 6 vectors, decay 0.5, code 3 dead")
    new, size, _ = _state(out, name, k, d)
    want = 0.5 * 1 + 0.5 * torch.tensor([2.0, 3.0, 1.0])
    if not torch.allclose(size[:3].float(), want, atol=1e-5):
        raise StudentError(f"`{name}`: with decay 0.5, cluster sizes 1 and counts [2, 3, 1] of codes 0-2, the new "
                           f"sizes are [1.5, 2, 1]; got {[round(v, 4) for v in size[:3].tolist()]}. "
                           "N_k <- decay * N_k + (1 - decay) * n_k.")
    if not any(torch.allclose(new[3], row) for row in z):
        raise StudentError(f"`{name}`: code 3 is flagged dead, but its new codeword is not one of the rows of z: "
                           "restart it on a randomly chosen encoder output, z[torch.randint(len(z), ())].")
    return fn, name


def _train(state):
    fn, name = state
    model = _model(_StudentQuantizer(fn, name))
    history = fit(model, digits(binarize="static"), device="cpu", progress=False, test_every=FIT["epochs"], **FIT)
    return _report(model), history


def _judge(state) -> Outcome:
    report, history = state
    ref = reference_run()
    summary = (f"codebook perplexity {fmt(report['perplexity'], 3)}, {report['dead']:.0%} of the codes unused, test "
               f"reconstruction {fmt(report['recon'])} nats (reference run: perplexity {fmt(ref['perplexity'], 3)}, "
               f"{ref['dead']:.0%} unused, {fmt(ref['recon'])} nats)")
    if history.stopped or not math.isfinite(report["recon"]):
        return Outcome(math.nan, BAND, summary, NAN_HINT)
    problem, diagnosis = "", ""
    if report["is_sum"] or (not report["is_mean"] and report["recon"] > ref["recon"] + MARGIN):
        problem = "" if report["perplexity"] < BAND.lo else "the codewords are not the running means of their vectors"
        diagnosis = ("your codewords are " + ("the running SUMS m_k" if report["is_sum"] else "not m_k / N_k") + ": each "
                     "codeword must become the running mean of the vectors assigned to it, e_k = m_k / N_k (where "
                     "N_k > 0); a sum grows with every step and drifts away from the encoder's outputs.")
    elif report["perplexity"] < BAND.lo or report["dead"] > MAX_DEAD:
        if report["dead"] > MAX_DEAD:
            problem = "" if report["perplexity"] < BAND.lo else f"{report['dead']:.0%} of the codes are dead (at most {MAX_DEAD:.0%})"
            diagnosis = ("many codes stay dead: a code that is nobody's nearest neighbour gets no update. Restart every "
                         "code flagged in `dead` on a random row of z, and set its cluster_size to 1 and its embed_sum "
                         "to the new codeword, or the next EMA step pulls it back where it was.")
        else:
            diagnosis = ("the codes are used very unevenly: check that each codeword becomes embed_sum / cluster_size "
                         "(the running MEAN of its vectors, not their sum), and the decay on the old value.")
    elif report["recon"] > ref["recon"] + MARGIN:
        problem = (f"the usage is fine but the reconstruction is {fmt(report['recon'] - ref['recon'], 3)} nats worse than "
                   "the reference run's")
        diagnosis = ("the codewords do not follow the encoder: the new codeword of code k is m_k / N_k, with "
                     "m_k <- decay * m_k + (1 - decay) * sum of the vectors assigned to k.")
    return Outcome(report["perplexity"], BAND, summary, diagnosis, problem)


def check_ema(exercise: str, student) -> object:
    """Probe, train and judge ``ema_codebook_update`` (module docstring)."""
    return run_build(exercise, student, probe=_probe, train=_train, judge=_judge,
                     name=getattr(student, "__name__", "ema_codebook_update"))
