r"""Judging gradient estimators: statistics over repeated runs, test problems with known gradients, and the
comparisons chapter 4 shows (variance against the number of samples and the dimension, bias, tables).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import pandas as pd
import torch
from torch import Tensor

from .. import _validate as check
from ..utils import check_positive_int, make_generator
from .categorical import _cat_score_terms, _check_logits, _draw_index, _gumbel, _relaxed_terms
from .core import CategoricalGradient, GaussianGradient, Gradient, _check_gaussian, _check_temperature, _reduce
from .gaussian import reparam_terms, score_function_terms

__all__ = ["EstimatorStats", "estimator_stats", "standardized_bias", "QuadraticProblem", "QuarticProblem",
           "ExponentialProblem", "LinearProblem", "Setup", "make_setup", "METHODS", "compare_estimators",
           "VarianceSweep", "variance_sweep", "CATEGORICAL_METHODS", "compare_categorical_estimators",
           "estimator_table"]


# ---------------------------------------------------------------- judging an estimator over repeated runs
class EstimatorStats(NamedTuple):
    """Mean, variance and standard error of each gradient component over ``repeats`` independent runs."""

    mean: Gradient       # same type as one estimate
    variance: Gradient   # unbiased sample variance across runs
    stderr: Gradient     # sqrt(variance / repeats): the Monte-Carlo error of ``mean``
    repeats: int
    samples: Gradient | None  # the (repeats, ...) estimates, if kept

    def mean_variance(self) -> float:
        """The variance averaged over every gradient component (one number per estimator, for plots)."""
        return float(torch.cat([v.reshape(-1) for v in self.variance]).mean())


def _as_gradient(est) -> Gradient:
    if isinstance(est, (GaussianGradient, CategoricalGradient)):
        return est
    if isinstance(est, Tensor):
        return CategoricalGradient(est)
    raise TypeError(f"estimator: returned {type(est).__name__}; need a GaussianGradient, CategoricalGradient or Tensor")


def _summarise(stacked: Gradient, keep_samples: bool) -> EstimatorStats:
    """Statistics over the leading (repeats) axis of every field."""
    kind, repeats = type(stacked), stacked[0].shape[0]
    var = kind(*(s.var(0, unbiased=True) for s in stacked))
    return EstimatorStats(kind(*(s.mean(0) for s in stacked)), var, kind(*(torch.sqrt(v / repeats) for v in var)),
                          repeats, stacked if keep_samples else None)


def estimator_stats(estimator: Callable[[torch.Generator], Gradient], repeats: int, *, seed: int = 0,
                    keep_samples: bool = False) -> EstimatorStats:
    r"""Run ``estimator(generator)`` ``repeats`` times and summarise the spread of its estimates.

    For an unbiased estimator, :math:`(\text{mean}-\nabla)/\text{stderr}` is approximately standard
    normal per component; the tests accept :math:`|z|<4`.

    Example: ``estimator_stats(lambda g: reparam_gradient(F, mu, logvar, 10, generator=g), 500)``.
    """
    repeats = check_positive_int("repeats", repeats)
    if repeats < 2:
        raise ValueError(f"repeats: got {repeats}; need >= 2 to estimate a variance")
    gen = make_generator(seed)
    runs = [_as_gradient(estimator(gen)) for _ in range(repeats)]
    kind = type(runs[0])
    stacked = kind(*(torch.stack([getattr(r, f).detach() for r in runs]) for f in kind._fields))  # (R, ...)
    return _summarise(stacked, keep_samples)


def standardized_bias(stats: EstimatorStats, truth: Gradient) -> Gradient:
    """``(mean - truth) / stderr`` per component: how many standard errors the estimate is off.

    A zero-variance estimator (stderr 0) is judged against a floating-point floor of
    ``1e-6 * (1 + |truth|)`` instead, so an exact one scores about 0 and a biased one scores huge.
    ``truth``: the same kind of gradient as ``stats.mean``, with the same shapes."""
    if not isinstance(stats, EstimatorStats):
        raise TypeError(f"stats: got {type(stats).__name__}; need the EstimatorStats of estimator_stats(...)")
    if type(truth) is not type(stats.mean):
        raise TypeError(f"truth: got {type(truth).__name__}; need a {type(stats.mean).__name__} like stats.mean")
    for field, m, t in zip(truth._fields, stats.mean, truth):
        check.tensor(f"truth.{field}", t)
        if t.shape != m.shape:
            raise ValueError(f"truth.{field}: got shape {tuple(t.shape)}; need {tuple(m.shape)} like stats.mean.{field}")
    return type(stats.mean)(*((m - t) / torch.maximum(s, 1e-6 * (1 + t.abs()))
                              for m, t, s in zip(stats.mean, truth, stats.stderr)))


# ---------------------------------------------------------------- test problems with a known answer
@dataclass(frozen=True)
class QuadraticProblem:
    r""":math:`F(z)=\|z-c\|^2`. Under :math:`\mathcal N(\mu,\sigma^2)`:
    :math:`\mathbb E F=\|\mu-c\|^2+\sum_j\sigma_j^2`, :math:`\nabla_\mu=2(\mu-c)`, :math:`\nabla_{\log\sigma^2}=\sigma^2`.
    Also works on one-hot categorical samples (``c`` of length K)."""

    c: Tensor  # (d,)

    def __call__(self, z: Tensor) -> Tensor:
        return (z - self.c).pow(2).sum(-1)

    def value(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return (mu - self.c).pow(2).sum() + logvar.exp().sum()

    def gradient(self, mu: Tensor, logvar: Tensor) -> GaussianGradient:
        return GaussianGradient(2 * (mu - self.c), logvar.exp())


@dataclass(frozen=True)
class QuarticProblem:
    r""":math:`F(z)=\sum_j z_j^4`, with :math:`\mathbb E z_j^4=\mu_j^4+6\mu_j^2\sigma_j^2+3\sigma_j^4`, so
    :math:`\nabla_{\mu_j}=4\mu_j^3+12\mu_j\sigma_j^2` and :math:`\nabla_{\log\sigma_j^2}=6\mu_j^2\sigma_j^2+6\sigma_j^4`."""

    def __call__(self, z: Tensor) -> Tensor:
        return z.pow(4).sum(-1)

    def value(self, mu: Tensor, logvar: Tensor) -> Tensor:
        s2 = logvar.exp()
        return (mu.pow(4) + 6 * mu.pow(2) * s2 + 3 * s2.pow(2)).sum()

    def gradient(self, mu: Tensor, logvar: Tensor) -> GaussianGradient:
        s2 = logvar.exp()
        return GaussianGradient(4 * mu.pow(3) + 12 * mu * s2, 6 * mu.pow(2) * s2 + 6 * s2.pow(2))


@dataclass(frozen=True)
class ExponentialProblem:
    r""":math:`F(z)=e^{a^\top z}`: :math:`\mathbb E F=\exp(a^\top\mu+\tfrac12\sum_j a_j^2\sigma_j^2)=:E`,
    :math:`\nabla_\mu=E\,a`, :math:`\nabla_{\log\sigma^2}=\tfrac12 E\,a^2\sigma^2` (the log-normal mean)."""

    a: Tensor  # (d,)

    def __call__(self, z: Tensor) -> Tensor:
        return torch.exp(z @ self.a)

    def value(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return torch.exp(mu @ self.a + 0.5 * (self.a.pow(2) * logvar.exp()).sum())

    def gradient(self, mu: Tensor, logvar: Tensor) -> GaussianGradient:
        e = self.value(mu, logvar)
        return GaussianGradient(e * self.a, 0.5 * e * self.a.pow(2) * logvar.exp())


@dataclass(frozen=True)
class LinearProblem:
    r""":math:`F(z)=f^\top z`; for one-hot :math:`z`, :math:`\mathbb E F=\mathrm{softmax}(\theta)^\top f`.
    For a Gaussian: :math:`\nabla_\mu=f`, :math:`\nabla_{\log\sigma^2}=0`."""

    f: Tensor  # (d,) or (K,)

    def __call__(self, z: Tensor) -> Tensor:
        return z @ self.f

    def value(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return mu @ self.f

    def gradient(self, mu: Tensor, logvar: Tensor) -> GaussianGradient:
        return GaussianGradient(self.f.expand_as(mu).clone(), torch.zeros_like(logvar))


# ---------------------------------------------------------------- experiments shown in the chapter
class Setup(NamedTuple):
    """A test problem with the Gaussian at which its gradient is estimated."""

    problem: Callable[[Tensor], Tensor]  # QuadraticProblem, QuarticProblem, ...
    mu: Tensor      # (d,)
    logvar: Tensor  # (d,)


def make_setup(name: str, d: int) -> Setup:
    r"""The chapter's problems in dimension ``d`` at :math:`\mu_j=0.5`, :math:`\sigma_j^2=1`:
    ``"quadratic"`` (:math:`c_j=1`), ``"quartic"``, ``"exponential"`` (:math:`a_j=1/\sqrt d`, so
    :math:`a^\top z` has variance 1 in every dimension)."""
    d = check_positive_int("d", d)
    mu, logvar = torch.full((d,), 0.5), torch.zeros(d)
    problems = {"quadratic": lambda: QuadraticProblem(torch.ones(d)), "quartic": QuarticProblem,
                "exponential": lambda: ExponentialProblem(torch.full((d,), 1.0 / math.sqrt(d)))}
    if name not in problems:
        raise ValueError(f"name: got {name!r}; need one of {sorted(problems)}")
    return Setup(problems[name](), mu, logvar)


METHODS = ("score function", "score + baseline E[F]", "score + leave-one-out", "reparameterisation")


def _repeated(method: str, setup: Setup, n: int, repeats: int, generator) -> GaussianGradient:
    """``repeats`` independent n-sample estimates at once, ``(repeats, d)`` per field: identical in
    distribution to calling the public estimator ``repeats`` times, without the Python loop."""
    F, mu, logvar = setup
    eps = torch.randn(repeats, n, mu.shape[0], generator=generator, dtype=mu.dtype)  # (R, n, d)
    if method == "reparameterisation":
        return _reduce(reparam_terms(F, mu, logvar, eps), False)
    baselines = {"score function": None, "score + baseline E[F]": "exact", "score + leave-one-out": "loo"}
    if method not in baselines:
        raise ValueError(f"methods: got {method!r}; need names from {METHODS}")
    baseline = baselines[method]
    if baseline == "exact":  # the true expectation: the ideal constant baseline (known for these problems)
        baseline = float(F.value(mu, logvar))
    return _reduce(score_function_terms(F, mu, logvar, eps, baseline), False)


def compare_estimators(setup: Setup, n_samples: int, repeats: int, *, methods=METHODS, seed: int = 0,
                       keep_samples: bool = False) -> dict[str, EstimatorStats]:
    """Mean, variance and standard error of each method's n-sample estimate over ``repeats`` runs
    (every method starts from ``seed``)."""
    n_samples, repeats = check_positive_int("n_samples", n_samples), check_positive_int("repeats", repeats)
    _check_gaussian(setup.mu, setup.logvar)
    return {m: _summarise(_repeated(m, setup, n_samples, repeats, make_generator(seed)), keep_samples) for m in methods}


class VarianceSweep(NamedTuple):
    """The mean variance of each method's estimate as one of ``d`` and ``n_samples`` varies."""

    varied: str                        # "n_samples" or "d"
    values: list[int]                  # the x axis
    variance: dict[str, list[float]]   # method -> mean variance per gradient component, one per value


def variance_sweep(name: str, *, dims=(4,), n_samples=(16,), repeats: int = 200, methods=METHODS,
                   seed: int = 0) -> VarianceSweep:
    """Variance of each estimator as the number of samples or the dimension grows (one of them varies)."""
    dims, n_samples = list(dims), list(n_samples)
    if (len(dims) > 1) == (len(n_samples) > 1):
        raise ValueError(f"dims, n_samples: got {dims} and {n_samples}; vary exactly one of them (the other a single value)")
    varied, values = ("d", dims) if len(dims) > 1 else ("n_samples", n_samples)
    variance: dict[str, list[float]] = {m: [] for m in methods}
    for v in values:
        d, n = (v, n_samples[0]) if varied == "d" else (dims[0], v)
        for m, s in compare_estimators(make_setup(name, d), n, repeats, methods=methods, seed=seed).items():
            variance[m].append(s.mean_variance())
    return VarianceSweep(varied, values, variance)


CATEGORICAL_METHODS = ("score function", "score + leave-one-out", "straight-through", "straight-through Gumbel",
                       "Gumbel-softmax (relaxed)")


def _repeated_categorical(method: str, F, logits: Tensor, n: int, repeats: int, generator,
                          temperature: float) -> CategoricalGradient:
    shape = (repeats, n)
    if method in ("score function", "score + leave-one-out"):
        index = _draw_index(logits, shape, generator)
        return _reduce(_cat_score_terms(F, logits, index, None if method == "score function" else "loo"), False)
    if method == "straight-through":
        return _reduce(_relaxed_terms(F, logits, 0.0, _draw_index(logits, shape, generator), 1.0, shape), False)
    if method in ("straight-through Gumbel", "Gumbel-softmax (relaxed)"):
        g = _gumbel((*shape, logits.shape[0]), generator, logits.dtype)
        index = (logits.detach() + g).argmax(-1) if method == "straight-through Gumbel" else None
        return _reduce(_relaxed_terms(F, logits, g, index, temperature, shape), False)
    raise ValueError(f"methods: got {method!r}; need names from {CATEGORICAL_METHODS}")


def compare_categorical_estimators(F: Callable[[Tensor], Tensor], logits: Tensor, n_samples: int, repeats: int, *,
                                   methods=CATEGORICAL_METHODS, temperature: float = 0.5, seed: int = 0,
                                   keep_samples: bool = False) -> dict[str, EstimatorStats]:
    """Like :func:`compare_estimators` for a categorical latent (``temperature``: the Gumbel methods')."""
    _check_logits(logits)
    n_samples, repeats = check_positive_int("n_samples", n_samples), check_positive_int("repeats", repeats)
    temperature = _check_temperature(temperature)
    return {m: _summarise(_repeated_categorical(m, F, logits, n_samples, repeats, make_generator(seed), temperature),
                          keep_samples) for m in methods}


def estimator_table(results: dict[str, EstimatorStats], truth: Gradient, *, digits: int = 4) -> pd.DataFrame:
    """A ``pandas.DataFrame`` with one row per method: the variance of one estimate (averaged over
    the gradient's components), the bias norm ``||mean - truth||`` with its Monte-Carlo error scale,
    and the largest ``|mean - truth| / stderr`` over the components (unbiased: below about 4)."""
    rows = []
    for name, s in results.items():
        diff = torch.cat([(m - t).reshape(-1) for m, t in zip(s.mean, truth)])
        se = torch.cat([e.reshape(-1) for e in s.stderr])
        z = standardized_bias(s, truth)
        rows.append({"method": name, "variance": round(s.mean_variance(), digits),
                     "bias norm": round(float(diff.norm()), digits), "stderr norm": round(float(se.norm()), digits),
                     "max |z|": round(float(torch.cat([v.reshape(-1) for v in z]).abs().max()), 1)})
    return pd.DataFrame(rows).set_index("method")
