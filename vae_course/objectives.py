r"""The objectives the VAEs of the course are trained on: the ELBO and the ways it is reweighted (chapters 5-7).

Per example the ELBO has two terms, the reconstruction :math:`\mathbb E_q[\log p(x\mid z)]` and the rate
:math:`R = \mathrm{KL}(q(z\mid x)\,\|\,p(z))`. Every VAE maximises one of

.. math:: \underbrace{\mathbb E_q[\log p(x\mid z)] - \beta R}_{\text{beta-ELBO (Higgins et al., 2017)}},\qquad
          \mathbb E_q[\log p(x\mid z)] - \beta\sum_g\max\big(\lambda, \overline{R}_g\big),\qquad
          \mathbb E_q[\log p(x\mid z)] - \beta\,\big|\overline{R} - C\big|

(:func:`beta_objective`): :math:`\beta = 1` is the ELBO itself; the second is **free bits** (Kingma et al.,
2016; :func:`free_bits_kl`), a floor :math:`\lambda` on the batch-mean KL of each group of latent
coordinates, the remedy for posterior collapse of chapter 7; the third is **capacity control** (Burgess et
al., 2018), which holds the batch-mean rate near a target :math:`C` that grows during training
(:func:`capacity_schedule`). Schedules of :math:`\beta` (KL warm-up, Bowman et al., 2016;
:func:`kl_warmup`) plug into :func:`vae_course.train.fit` as ``loss_kwargs``.

The **beta-TCVAE** (Chen et al., 2018) reweights one part of the KL only. With the split of the rate into
index-code mutual information, total correlation and dimension-wise KL (:mod:`vae_course.tc`), the option
``tc`` of :func:`beta_objective` maximises

.. math:: \mathbb E_q[\log p(x\mid z)] - \beta\,\big(R - \widehat{\mathrm{TC}}\big) - \lambda_{\mathrm{TC}}\,\widehat{\mathrm{TC}}
          = \mathbb E_q[\log p(x\mid z)] - \beta R - (\lambda_{\mathrm{TC}} - \beta)\,\widehat{\mathrm{TC}},

so the mutual information and the dimension-wise KL keep the weight :math:`\beta` (1 in Chen et al.) and the
total correlation :math:`\widehat{\mathrm{TC}}` (:func:`vae_course.tc.minibatch_tc`) gets :math:`\lambda_{\mathrm{TC}}`;
``tc = beta`` is the beta-VAE again.

:func:`kl_per_dimension` is the KL to :math:`\mathcal N(0, I)` split by coordinate and
:func:`negative_beta_elbo` the beta-ELBO of Bernoulli pixels written out, the references of the chapter 6
and 7 exercises. Nothing here builds a model: :mod:`vae_course.models` calls these functions.
"""
from __future__ import annotations

import math
from typing import Callable

from torch import Tensor

from . import _validate as check
from . import distributions as D
from . import tc as _tc
from .utils import check_positive_int

__all__ = ["kl_per_dimension", "free_bits_kl", "total_correlation", "beta_objective", "training_loss", "negative_beta_elbo",
           "warmup_beta", "kl_warmup", "capacity_schedule", "WARMUP_KINDS"]

WARMUP_KINDS = ("linear", "sigmoid")
SIGMOID_SLOPE = 10.0  # the sigmoid warm-up rises from 0 to 1 over [0, n_steps] like sigmoid(10 (t - 1/2))

Schedule = Callable[[int, int, int], dict]  # (epoch, step, n_steps) -> loss kwargs, e.g. {"beta": ...}


# ---------------------------------------------------------------- the rate, per dimension and with a floor
def kl_per_dimension(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""One KL per latent coordinate, :math:`\tfrac12(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)`: ``(..., m)``.

    Their sum over :math:`j` is the ELBO's KL term to :math:`\mathcal N(0, I)`
    (:func:`vae_course.distributions.kl_normal_std`); their mean over the data is the per-dimension KL plotted in
    chapter 7. ``mu``, ``logvar``: ``(..., m)``, finite, broadcastable.
    """
    return D.kl_normal_std(mu, logvar, per_dimension=True)


def free_bits_kl(kl_per_dim: Tensor, lam: float, *, group_size: int = 1) -> Tensor:
    r"""The free-bits KL of Kingma et al. (2016): a floor :math:`\lambda` on the batch-mean KL of each group.

    .. math:: R_\lambda = \sum_{g} \max\Big(\lambda,\ \frac1B\sum_{b=1}^{B}\sum_{j\in g}\mathrm{KL}_{bj}\Big)

    A group whose mean KL is below :math:`\lambda` costs a constant and gets **no gradient**, so the optimiser
    stops pushing it towards the prior; the first :math:`\lambda` nats of each group are free. The floor is
    per dimension (``group_size=1``) or per group of ``group_size`` consecutive dimensions, and on the
    **batch mean** (a per-example floor would let every image keep :math:`\lambda` nats of noise).

    Args:
        kl_per_dim: ``(B, m)`` KL of each example and coordinate (:func:`kl_per_dimension`).
        lam: the floor :math:`\lambda \ge 0` in nats per group.
        group_size: dimensions per group; must divide m.
    Returns: a scalar (nats per example), equal to the mean KL when no group is below the floor.
    """
    if kl_per_dim.dim() != 2:
        raise ValueError(f"kl_per_dim: got shape {tuple(kl_per_dim.shape)}; need (B, m)")
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam: got {lam!r}; need a float >= 0 (nats per group)")
    m = kl_per_dim.shape[1]
    g = check_positive_int("group_size", group_size)
    if m % g:
        raise ValueError(f"group_size: got {g}; need a divisor of the latent size m = {m}")
    per_group = kl_per_dim.mean(0).reshape(m // g, g).sum(1)  # (m / g,): batch mean, then sum within a group
    return per_group.clamp(min=lam).sum()


def total_correlation(z: Tensor, mu: Tensor, logvar: Tensor, *, dataset_size: int | None = None) -> Tensor:
    r"""The beta-TCVAE's penalty per example: :math:`\log\hat q(z) - \sum_j\log\hat q(z_j)` ``(B,)``, the total
    correlation of the aggregate posterior estimated on the batch (:func:`vae_course.tc.minibatch_tc`).

    ``z`` ``(B, m)`` or ``(S, B, m)`` draws of the batch's posteriors ``mu``, ``logvar`` ``(B, m)``; ``dataset_size``:
    the number of training images the batch was drawn from (None: the batch is the data set)."""
    return _tc.minibatch_tc(z, mu, logvar, dataset_size=dataset_size, validate=False)


# ---------------------------------------------------------------- the objective every VAE maximises
def beta_objective(recon: Tensor, kl: Tensor, kl_dims: Tensor | None = None, *, beta: float = 1.0,
                   free_bits: float = 0.0, free_bits_group: int = 1, capacity: float | None = None,
                   tc: float | None = None, tc_estimate: Tensor | None = None) -> Tensor:
    r"""What training maximises, per example: ``recon - beta * R`` with the rate term chosen by the options.

    ``R`` is the KL (``kl`` ``(B,)``), the free-bits KL of ``kl_dims`` ``(B, m)`` when ``free_bits > 0``, or
    :math:`|\overline{\mathrm{KL}} - C|` when ``capacity`` is :math:`C` (nats); the last two are numbers for the whole
    batch, broadcast to ``(B,)``. ``recon``: ``(B,)``. Raises ValueError for a negative ``beta`` or both options.
    With ``tc`` (:math:`\lambda_{\mathrm{TC}}`, the beta-TCVAE of the module doc) the total correlation
    ``tc_estimate`` ``(B,)`` is weighted by ``tc`` instead of ``beta``: ``recon - beta * kl - (tc - beta) * tc_estimate``.
    """
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta: got {beta!r}; need a finite weight >= 0")
    if free_bits != 0.0:
        check.positive_float("free_bits", free_bits, allow_zero=True)
    if capacity is not None:
        check.positive_float("capacity", capacity, allow_zero=True)
    if tc is not None:
        if not (isinstance(tc, (int, float)) and math.isfinite(tc) and tc >= 0):
            raise ValueError(f"tc: got {tc!r}; need a finite weight >= 0 on the total correlation")
        if capacity is not None or free_bits:
            raise ValueError(f"tc / capacity / free_bits: got tc={tc!r} with capacity={capacity!r}, "
                             f"free_bits={free_bits!r}; the total-correlation weight works with the plain beta objective")
        if tc_estimate is None:
            raise ValueError("tc_estimate: got None; the tc option needs the per-example total correlation "
                             "(vae_course.tc.minibatch_tc)")
        return recon - beta * kl - (tc - beta) * tc_estimate  # beta (MI + dim-wise KL) + tc TC
    if capacity is not None and free_bits:
        raise ValueError(f"capacity / free_bits: got {capacity!r} and {free_bits!r}; use one rate objective at a time")
    if capacity is not None:
        return recon - beta * (kl.mean() - capacity).abs()  # D + beta |R - C| (Burgess et al., 2018)
    if free_bits:
        if kl_dims is None:
            raise ValueError("free_bits: this model's prior has no closed-form KL per latent dimension; free bits "
                             "needs one (use the standard-normal prior or free_bits=0)")
        return recon - beta * free_bits_kl(kl_dims, free_bits, group_size=free_bits_group)
    return recon - beta * kl


def training_loss(recon: Tensor, kl: Tensor, total: Tensor, *, beta: float = 1.0,
                  capacity: float | None = None) -> Tensor:
    r"""The scalar to minimise, nats per example: minus the batch mean of :func:`beta_objective`'s ``total``, and
    for capacity control :math:`-\overline{\log p(x\mid z)} + \beta\,|\overline{\mathrm{KL}} - C|` on batch means."""
    if capacity is not None:
        return -recon.mean() + beta * (kl.mean() - capacity).abs()
    return -total.mean()


def negative_beta_elbo(x: Tensor, x_logits: Tensor, mu: Tensor, logvar: Tensor, beta: float = 1.0) -> Tensor:
    r"""Per-example :math:`-\mathcal L_\beta = -\log p(x\mid z) + \beta\,\mathrm{KL}(q\,\|\,\mathcal N(0,I))`, Bernoulli pixels.

    ``x``, ``x_logits`` ``(B, D)`` (pixels in [0, 1], decoder logits at one draw of z); ``mu``, ``logvar``
    ``(B, m)``. Returns ``(B,)`` in nats. Only the KL is weighted: :math:`\beta` multiplies the rate, not the
    reconstruction (Higgins et al., 2017).
    """
    check.positive_float("beta", beta, allow_zero=True)
    recon = D.log_bernoulli(x, x_logits)  # (B,): sum over pixels
    return -recon + beta * D.kl_normal_std(mu, logvar)


# ---------------------------------------------------------------- schedules for fit(loss_kwargs=...)
def warmup_beta(kind: str, step: int | float, n_steps: int, *, beta_max: float = 1.0) -> float:
    r"""The KL weight after ``step`` optimiser steps of a warm-up lasting ``n_steps`` (Bowman et al., 2016).

    ``"linear"``: :math:`\beta = \beta_{\max}\min(1, t)`, :math:`t = \text{step}/n_\text{steps}`;
    ``"sigmoid"``: :math:`\beta = \beta_{\max}\,\dfrac{s(t) - s(0)}{s(1) - s(0)}` for :math:`t\le 1`, with
    :math:`s(t) = 1/(1 + e^{-10(t - 1/2)})`: slow start, fast middle, slow end, exactly 0 at the start and
    :math:`\beta_{\max}` from ``n_steps`` on.
    """
    if kind not in WARMUP_KINDS:
        raise ValueError(f"kind: got {kind!r}; need one of {WARMUP_KINDS}")
    n_steps = check_positive_int("n_steps", n_steps)
    beta_max = check.positive_float("beta_max", beta_max, allow_zero=True)
    t = min(max(check.number("step", step) / n_steps, 0.0), 1.0)
    if kind == "linear":
        return beta_max * t
    s = lambda u: 1.0 / (1.0 + math.exp(-SIGMOID_SLOPE * (u - 0.5)))  # noqa: E731
    return beta_max * (s(t) - s(0.0)) / (s(1.0) - s(0.0))


def kl_warmup(kind: str = "linear", n_steps: int = 1000, *, beta_max: float = 1.0, **fixed) -> Schedule:
    r"""A ``loss_kwargs`` schedule for :func:`vae_course.train.fit`: ``callable(epoch, step, n_steps) -> {"beta": ...}``.

    The KL weight rises from 0 to ``beta_max`` over the first ``n_steps`` optimiser steps (:func:`warmup_beta`),
    then stays there. ``fixed`` keyword arguments are passed to the loss unchanged at every step (e.g.
    ``free_bits=0.1``). Example: ``fit(model, data, epochs=30, loss_kwargs=kl_warmup("sigmoid", 400))``.
    """
    warmup_beta(kind, 0, n_steps, beta_max=beta_max)  # validates kind and n_steps now, not at the first step

    def schedule(epoch: int, step: int, total_steps: int) -> dict:
        return {"beta": warmup_beta(kind, step, n_steps, beta_max=beta_max), **fixed}

    schedule.__name__ = f"kl_warmup_{kind}_{n_steps}"
    return schedule


def capacity_schedule(c_max: float, *, gamma: float = 100.0, anneal: float = 0.8) -> Schedule:
    r"""``loss_kwargs`` for :func:`vae_course.train.fit`: :math:`C` grows linearly from 0 to ``c_max`` nats over
    the first ``anneal`` fraction of the steps, then stays; the weight is ``beta = gamma`` (Burgess et al., 2018)."""
    check.number("c_max", c_max, low=0.0)
    check.positive_float("gamma", gamma, allow_zero=True)
    if not (isinstance(anneal, (int, float)) and 0 < anneal <= 1):
        raise ValueError(f"anneal: got {anneal!r}; need a fraction of the training steps in (0, 1]")

    def schedule(epoch: int, step: int, n_steps: int) -> dict:
        return {"beta": gamma, "capacity": c_max * min(1.0, step / (anneal * n_steps))}

    return schedule
