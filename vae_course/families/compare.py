r"""The survey table measured: each family's test log-likelihood in nats per image, its training time and its
sampling time, on the same binary images (appendix A).

What each number is differs by family, and :class:`FamilyResult` says so in its ``kind``:

* autoregressive models (:class:`~vae_course.families.autoregressive.FiniteMemoryAR`,
  :class:`~vae_course.families.autoregressive.GRUAR`): the **exact** :math:`\log p(x)`;
* the VAE: the IWAE bound :math:`\mathcal L_k \le \log p(x)` (:func:`vae_course.evaluate.log_likelihood`);
* the dequantised flow (:class:`~vae_course.families.coupling_flow.CouplingFlow` with ``n_levels``): the bound
  :math:`\log\frac1k\sum_i p(v_i) L^{-D} \le \log P(x)` of the discrete model the flow defines.

All three are log-probabilities of the same discrete images (two exact, two lower bounds), so a higher number is
a better model or a tighter bound, never the other way round: a bound can understate a model, not overstate it.
Training time is :func:`vae_course.train.fit`'s own clock (training steps only, from the history); sampling time is
wall-clock time of ``model.sample(n)``, the median of a few repeats.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..evaluate import log_likelihood
from ..history import History
from ..models.vae_base import VAEBase
from ..utils import check_positive_int
from .autoregressive import _PixelSequence
from .coupling_flow import CouplingFlow

__all__ = ["FamilyResult", "sampling_seconds", "family_log_likelihood", "evaluate_family", "paired_difference",
           "describe_difference", "results_table"]


class FamilyResult(NamedTuple):
    """One row of the comparison: ``log_px`` (mean over the test images, nats per image), its standard error
    ``log_px_sem`` (standard deviation over the images / sqrt(N)) and what it is (``kind``), ``bits_per_dim``,
    ``train_seconds`` (sum over epochs), ``sample_seconds`` (for ``n_samples`` images), ``sequential_passes``
    (network passes one after another to draw one image), ``n_params``, and ``per_image`` ``(N,)``, the values behind
    the mean (for paired comparisons, :func:`paired_difference`)."""

    family: str
    log_px: float
    log_px_sem: float
    kind: str
    bits_per_dim: float
    train_seconds: float
    sample_seconds: float
    n_samples: int
    sequential_passes: int
    n_params: int
    per_image: Tensor | None = None


def sampling_seconds(model: nn.Module, n: int = 100, *, repeats: int = 3, generator: torch.Generator | None = None,
                     **sample_kwargs) -> float:
    """Median wall-clock seconds of ``model.sample(n, generator=generator, **sample_kwargs)`` over ``repeats`` calls."""
    n, repeats = check_positive_int("n", n), check_positive_int("repeats", repeats)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.sample(n, generator=generator, **sample_kwargs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def family_log_likelihood(model: nn.Module, x: Tensor, *, k: int = 100,
                        generator: torch.Generator | None = None) -> tuple[Tensor, str]:
    """``(log_px (N,), kind)`` for images ``x`` ``(N, C, H, W)``: exact for the autoregressive models, the IWAE bound with
    ``k`` samples for a VAE, the dequantisation bound with ``k`` draws for a discrete flow."""
    k = check_positive_int("k", k)
    model.eval()
    if isinstance(model, _PixelSequence):
        return model.log_prob(x), "exact log p(x)"
    if isinstance(model, VAEBase):
        return log_likelihood(model, x, k=k, generator=generator).log_px, f"lower bound (IWAE, k={k})"
    if isinstance(model, CouplingFlow):
        if not model.config.n_levels:
            raise ValueError("model: this CouplingFlow is continuous (n_levels=0); its density is not a probability "
                             "of discrete images. Use CouplingFlow(n_levels=2) for binary images")
        return model.log_prob(x, k=k, generator=generator), f"lower bound (dequantised, k={k})"
    raise TypeError(f"model: got {type(model).__name__}; need FiniteMemoryAR, GRUAR, CouplingFlow or a VAE")


def _passes(model: nn.Module) -> int:
    if isinstance(model, _PixelSequence):
        return model.n_pixels  # one conditional per pixel, in order
    return 1  # a decoder pass (VAE) or a pass through the flow's layers


def evaluate_family(family: str, model: nn.Module, history: History, x_test: Tensor, *, k: int = 100,
                    n_samples: int = 100, generator: torch.Generator | None = None, **sample_kwargs) -> FamilyResult:
    """Measure one trained model: test log-likelihood (:func:`family_log_likelihood`), training time (``history``) and
    the time to draw ``n_samples`` images (:func:`sampling_seconds`; ``sample_kwargs`` go to ``model.sample``)."""
    log_px, kind = family_log_likelihood(model, x_test, k=k, generator=generator)
    mean = float(log_px.mean())
    d = x_test[0].numel()
    sem = float(log_px.std() / math.sqrt(len(log_px))) if len(log_px) > 1 else float("nan")
    return FamilyResult(family, mean, sem, kind, -mean / (d * math.log(2)), float(sum(history.train_seconds)),
                        sampling_seconds(model, n_samples, generator=generator, **sample_kwargs), n_samples,
                        _passes(model), sum(p.numel() for p in model.parameters()), log_px.detach().cpu())


def paired_difference(a: FamilyResult, b: FamilyResult) -> tuple[float, float]:
    r"""Mean and standard error of :math:`\log p_a(x_n) - \log p_b(x_n)` over the test images both were scored on.

    Paired: both models saw the same images, so the image-to-image spread that the two means share cancels, and the
    standard error of the difference is usually far smaller than either model's own.
    """
    if a.per_image is None or b.per_image is None or a.per_image.shape != b.per_image.shape:
        raise ValueError("a, b: need two results of evaluate_family on the same test images (per_image of equal shape)")
    diff = (a.per_image - b.per_image).double()
    return float(diff.mean()), float(diff.std() / math.sqrt(len(diff)))


def describe_difference(a: FamilyResult, b: FamilyResult) -> str:
    """:func:`paired_difference` in words, e.g. ``"+0.39 ± 0.12 nats (more than two standard errors from zero)"``."""
    diff, se = paired_difference(a, b)
    verdict = "within two standard errors of zero" if abs(diff) <= 2 * se else "more than two standard errors from zero"
    return f"{diff:+.2f} ± {se:.2f} nats ({verdict})"


def results_table(results: list[FamilyResult]):
    """The rows as a ``pandas.DataFrame`` for display, one row per family, rounded for reading."""
    import pandas as pd

    rows = [{"family": r.family, "test log p(x) [nats/image]": round(r.log_px, 2), "+/- (s.e.)": round(r.log_px_sem, 2),
             "what the number is": r.kind,
             "bits/pixel": round(r.bits_per_dim, 3), "training [s]": round(r.train_seconds, 1),
             f"sampling {r.n_samples} images [ms]": round(1000 * r.sample_seconds, 1),
             "sequential passes per image": r.sequential_passes, "parameters": r.n_params} for r in results]
    return pd.DataFrame(rows).set_index("family")
