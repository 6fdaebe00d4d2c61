r"""Entropy, cross-entropy and KL divergence (chapter 0).

Discrete (categorical) distributions are probability vectors along the **last** dimension;
everything before it is a batch, and results have the batch shape. For :math:`K` outcomes

.. math::
    H(p) = -\sum_k p_k \log p_k, \qquad
    H(p, q) = -\sum_k p_k \log q_k, \qquad
    \mathrm{KL}(p\,\|\,q) = \sum_k p_k \log\frac{p_k}{q_k} = H(p, q) - H(p).

Conventions:

* results are in **nats** (natural log); ``base=2`` gives bits (a division by :math:`\log 2`);
* :math:`0 \log 0 = 0` and :math:`0 \log(0/q) = 0` (the limit of :math:`t\log t` as :math:`t\to0`),
  so outcomes with :math:`p_k = 0` contribute nothing (computed with ``torch.xlogy``, never NaN);
* if :math:`q_k = 0` where :math:`p_k > 0`, then :math:`H(p,q)` and :math:`\mathrm{KL}(p\|q)` are
  :math:`+\infty` and ``inf`` is returned: no code of finite length encodes an outcome that
  :math:`q` calls impossible;
* a probability vector must be non-negative and sum to 1 within :data:`SUM_TOL`.

For continuous distributions, :func:`kl_monte_carlo`, :func:`entropy_monte_carlo` and
:func:`cross_entropy_monte_carlo` average over samples :math:`x_i \sim p`, e.g.
:math:`\widehat{\mathrm{KL}} = \frac1n\sum_i \big(\log p(x_i) - \log q(x_i)\big)`. With densities,
:math:`H(p) = -\int p\log p` is the *differential* entropy, which can be negative (a narrow
Gaussian); the KL divergence stays :math:`\ge 0`.

Reference: Cover & Thomas, *Elements of Information Theory* (2006), ch. 2 and 8.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Union

import torch
from torch import Tensor
from torch.distributions import Distribution

from . import _validate as check

__all__ = [
    "SUM_TOL",
    "entropy",
    "cross_entropy",
    "kl_divergence",
    "MonteCarloEstimate",
    "kl_monte_carlo",
    "entropy_monte_carlo",
    "cross_entropy_monte_carlo",
]

SUM_TOL = 1e-5  # |sum(p) - 1| allowed: float32 rounding of vectors with up to ~10^4 entries stays far below it

LogDensity = Union[Distribution, Callable[[Tensor], Tensor]]


# ---------------------------------------------------------------- discrete
def _probabilities(name: str, p: Tensor) -> Tensor:
    """Check that ``p`` holds probability vectors along its last dimension."""
    check.tensor(name, p, min_dim=1)
    if p.shape[-1] == 0:
        raise ValueError(f"{name}: got shape {tuple(p.shape)}; need at least one outcome in the last dimension")
    if bool((p < 0).any()):
        raise ValueError(f"{name}: got a negative entry ({p.min().item():.4g}); need probabilities >= 0")
    total = p.sum(-1)
    bad = (total - 1).abs() > SUM_TOL
    if bool(bad.any()):
        got = total[bad].flatten()[0].item()
        raise ValueError(
            f"{name}: got a vector summing to {got:.6g}; need entries along the last dimension to sum to 1 "
            f"(tolerance {SUM_TOL:g}); normalise with {name} / {name}.sum(-1, keepdim=True)"
        )
    return p


def _log_base(base: float | None) -> float:
    """The divisor that turns nats into units of ``base`` (1 for nats)."""
    if base is None:
        return 1.0
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not math.isfinite(base) or base <= 0 or base == 1:
        raise ValueError(f"base: got {base!r}; need None (nats), 2 (bits) or another positive number other than 1")
    return math.log(base)


def entropy(p: Tensor, *, base: float | None = None, validate: bool = True) -> Tensor:
    r"""Shannon entropy :math:`H(p) = -\sum_k p_k \log p_k` of categorical distributions.

    :math:`0 \le H(p) \le \log K`: zero for a one-hot ``p``, :math:`\log K` for the uniform one.

    Args:
        p: ``(..., K)`` probability vectors (non-negative, summing to 1 within :data:`SUM_TOL`).
        base: ``None`` for nats, ``2`` for bits.
    Returns:
        ``(...)`` entropies.
    Raises:
        ValueError: if ``p`` is negative, does not sum to 1, or is not finite.
    """
    if validate:
        _probabilities("p", p)
    # xlogy(0, 0) = 0: the 0 log 0 = 0 convention
    return -torch.xlogy(p, p).sum(-1) / _log_base(base)


def cross_entropy(p: Tensor, q: Tensor, *, base: float | None = None, validate: bool = True) -> Tensor:
    r"""Cross-entropy :math:`H(p, q) = -\sum_k p_k \log q_k` (the expected code length for data from
    ``p`` with a code built for ``q``).

    :math:`H(p, q) \ge H(p)`, with equality iff :math:`p = q` (Gibbs' inequality). Returns ``inf``
    where some :math:`q_k = 0` with :math:`p_k > 0`.

    Args:
        p: ``(..., K)`` the distribution the data come from.
        q: ``(..., K)`` the model (broadcast against ``p``).
        base: ``None`` for nats, ``2`` for bits.
    Returns:
        ``(...)`` cross-entropies (the broadcast batch shape).
    """
    if validate:
        _probabilities("p", p)
        _probabilities("q", q)
        check.same_last_dim(p=p, q=q)  # first: a (1,) q would broadcast against any p
        check.broadcast(p=p, q=q)
    # xlogy(p, q) is 0 where p = 0 (even if q = 0) and -inf where p > 0, q = 0
    return -torch.xlogy(p, q).sum(-1) / _log_base(base)


def kl_divergence(p: Tensor, q: Tensor, *, base: float | None = None, validate: bool = True) -> Tensor:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(p\,\|\,q) = \sum_k p_k \log\frac{p_k}{q_k}`.

    Properties (checked numerically in chapter 0 and in the tests): :math:`\mathrm{KL}(p\|q) \ge 0`
    with equality iff :math:`p = q`; in general :math:`\mathrm{KL}(p\|q) \ne \mathrm{KL}(q\|p)`;
    :math:`H(p, q) = H(p) + \mathrm{KL}(p\|q)`.

    Args:
        p: ``(..., K)`` probability vectors (the expectation is taken under ``p``).
        q: ``(..., K)`` probability vectors (broadcast against ``p``).
        base: ``None`` for nats, ``2`` for bits.
    Returns:
        ``(...)`` divergences; ``inf`` where :math:`q_k = 0` for some :math:`p_k > 0` (KL is then
        :math:`+\infty` by definition, not an error). Outcomes with :math:`p_k = 0` contribute 0.
    """
    if validate:
        _probabilities("p", p)
        _probabilities("q", q)
        check.same_last_dim(p=p, q=q)  # first: a (1,) q would broadcast against any p
        check.broadcast(p=p, q=q)
    # sum_k p_k log p_k - p_k log q_k, with 0 log 0 = 0 in both terms
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1) / _log_base(base)


# ---------------------------------------------------------------- continuous, by Monte Carlo
class MonteCarloEstimate(NamedTuple):
    """A sample average: ``value`` and its ``std_error`` (sample std / sqrt(n)), both with the
    distributions' batch shape (scalars for scalar distributions), from ``n`` samples."""

    value: Tensor
    std_error: Tensor
    n: int


def _draw(p: LogDensity, n: int | None, samples: Tensor | None, generator: torch.Generator | None) -> Tensor:
    """Samples ``(n, *event)`` from ``p``: the given ``samples``, or drawn from a Distribution."""
    if samples is not None:
        check.tensor("samples", samples, min_dim=1)
        if n is not None and samples.shape[0] != n:
            raise ValueError(f"n: got {n} but samples has {samples.shape[0]} rows; pass one of them, or matching values")
        if samples.shape[0] < 2:
            raise ValueError(f"samples: got {samples.shape[0]} sample(s); need at least 2 to estimate a standard error")
        return samples
    if not isinstance(p, Distribution):
        raise ValueError(
            "p: got a log-density callable, which cannot be sampled; pass samples= drawn from p, "
            "or give p as a torch.distributions object"
        )
    if n is None:
        n = 10_000
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n: got {n!r}; need an int >= 2")
    if generator is None:
        return p.sample((n,))
    # torch.distributions cannot take a generator: draw a seed from it and sample in a fork of the global RNG
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return p.sample((n,))


def _log_density(name: str, d: LogDensity, x: Tensor) -> Tensor:
    """``log d(x)`` of shape ``(n, *batch)`` for a Distribution or a callable."""
    if isinstance(d, Distribution):
        out = d.log_prob(x)
    elif callable(d):
        out = d(x)
    else:
        raise TypeError(f"{name}: got {type(d).__name__}; need a torch.distributions.Distribution or a callable x -> log density")
    if not isinstance(out, Tensor) or out.dim() == 0 or out.shape[0] != x.shape[0]:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"{name}: its log density returned {shape} for {x.shape[0]} samples; need one value per sample, shape ({x.shape[0]}, ...)")
    return out


def _average(values: Tensor, base: float | None) -> MonteCarloEstimate:
    scale = _log_base(base)
    n = values.shape[0]
    return MonteCarloEstimate(values.mean(0) / scale, values.std(0) / math.sqrt(n) / scale, n)


def kl_monte_carlo(
    p: LogDensity, q: LogDensity, n: int | None = None, *, samples: Tensor | None = None,
    generator: torch.Generator | None = None, base: float | None = None,
) -> MonteCarloEstimate:
    r"""Monte-Carlo estimate of :math:`\mathrm{KL}(p\|q) = \mathbb E_{x\sim p}[\log p(x) - \log q(x)]`.

    .. math:: \widehat{\mathrm{KL}} = \frac1n\sum_{i=1}^n \big(\log p(x_i) - \log q(x_i)\big),
              \qquad x_i \sim p

    Unbiased; single terms can be negative, the expectation cannot. Works for densities
    (continuous) and mass functions (discrete) alike.

    Args:
        p, q: ``torch.distributions`` objects, or callables mapping ``(n, *event)`` samples to
            ``(n,)`` log densities. If ``p`` is a callable, pass ``samples`` drawn from ``p``.
        n: number of samples to draw from ``p`` (default 10,000; ignored if ``samples`` is given).
        samples: ``(n, *event)`` samples from ``p`` (the randomness made explicit).
        generator: seeds the draw from ``p`` (a fork of the global RNG, which is left untouched).
        base: ``None`` for nats, ``2`` for bits.
    Returns:
        :class:`MonteCarloEstimate` (value, std_error, n).
    """
    x = _draw(p, n, samples, generator)  # (n, *event)
    return _average(_log_density("p", p, x) - _log_density("q", q, x), base)


def entropy_monte_carlo(
    p: LogDensity, n: int | None = None, *, samples: Tensor | None = None,
    generator: torch.Generator | None = None, base: float | None = None,
) -> MonteCarloEstimate:
    r"""Monte-Carlo estimate of the entropy :math:`H(p) = \mathbb E_{x\sim p}[-\log p(x)]`.

    For a density this is the *differential* entropy, which can be negative: for
    :math:`\mathcal N(\mu, \sigma^2)` it is :math:`\tfrac12\log(2\pi e\sigma^2) < 0` when
    :math:`\sigma < 1/\sqrt{2\pi e} \approx 0.242`. Arguments as in :func:`kl_monte_carlo`.
    """
    x = _draw(p, n, samples, generator)
    return _average(-_log_density("p", p, x), base)


def cross_entropy_monte_carlo(
    p: LogDensity, q: LogDensity, n: int | None = None, *, samples: Tensor | None = None,
    generator: torch.Generator | None = None, base: float | None = None,
) -> MonteCarloEstimate:
    r"""Monte-Carlo estimate of :math:`H(p, q) = \mathbb E_{x\sim p}[-\log q(x)]`.

    Minimising it over a model ``q`` is maximum likelihood: :math:`H(p,q) = H(p) + \mathrm{KL}(p\|q)`
    and :math:`H(p)` does not depend on ``q``. Arguments as in :func:`kl_monte_carlo`.
    """
    x = _draw(p, n, samples, generator)
    return _average(-_log_density("q", q, x), base)
