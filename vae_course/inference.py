r"""Variational inference on a model where everything is exact (chapter 3).

The ELBO of any latent-variable model and any density :math:`q(z)` is

.. math:: \mathrm{ELBO}(q) = \mathbb E_{q}\big[\log p(x, z) - \log q(z)\big]
          = \mathbb E_q[\log p(x\mid z)] - \mathrm{KL}(q\,\|\,p(z))
          = \log p(x) - \mathrm{KL}(q\,\|\,p(z\mid x)),

so the gap to :math:`\log p(x)` is the KL to the true posterior. To *see* that gap we need a
model whose :math:`\log p(x)` and :math:`p(z\mid x)` are known in closed form: the
linear-Gaussian latent model :math:`z \sim \mathcal N(0, I_m)`, :math:`x \mid z \sim \mathcal N(Wz + b, \sigma^2 I_d)`
of :mod:`vae_course.linear_gaussian`.

The module also holds the two ways of fitting :math:`q` that chapter 3 compares: the per-sample
"two-tier" loop (one set of variational parameters per data point, optimised by gradient steps)
and an amortised encoder (one network for all points, Kingma & Welling 2014), whose difference
is the amortisation gap of Cremer, Li & Duvenaud (2018).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _validate as check
from .distributions import (LOG_2PI, DiagonalGaussian, cholesky, kl_normal_full, kl_normal_std, log_normal_diag,
                            reparameterize)
from .information import MonteCarloEstimate
from .linear_gaussian import LinearEncoder, LinearGaussianModel
from .nets import MLP
from .utils import check_positive_int

__all__ = [
    "ElboEstimate", "BoundGap", "PerSampleFit", "AmortizedFit", "InferenceGaps", "elbo_gaussian", "elbo_closed_form",
    "bound_gap", "mean_field_optimum", "optimize_per_sample", "AmortizedEncoder", "fit_amortized", "inference_gaps",
    "kl_normal_diag_monte_carlo", "u_minus_log_u", "kl_std_a_form", "kl_std_inverted_variance", "AggregateSplit",
    "aggregate_split",
]


class ElboEstimate(NamedTuple):
    """``elbo = recon - kl``: ``recon`` is :math:`\\mathbb E_q\\log p(x\\mid z)`, ``kl`` is KL(q || N(0, I)); all ``(...)``."""

    elbo: Tensor
    recon: Tensor
    kl: Tensor


class BoundGap(NamedTuple):
    """``log_px`` (exact), ``elbo`` (exact), ``gap = log_px - elbo`` and ``kl_posterior`` = KL(q || p(z|x)),
    the last computed independently with :func:`vae_course.distributions.kl_normal_full`; all ``(...)``."""

    log_px: Tensor
    elbo: Tensor
    gap: Tensor
    kl_posterior: Tensor


def _q(mu_q: Tensor, logvar_q: Tensor, z_dim: int) -> tuple[Tensor, Tensor]:
    check.tensor("mu_q", mu_q, min_dim=1)
    check.tensor("logvar_q", logvar_q, min_dim=1)
    check.broadcast(mu_q=mu_q, logvar_q=logvar_q)
    for name, t in (("mu_q", mu_q), ("logvar_q", logvar_q)):
        if t.shape[-1] != z_dim:
            raise ValueError(f"{name}: got last dimension {t.shape[-1]}; need z_dim = {z_dim}")
    return mu_q, logvar_q


def _model(model: object) -> LinearGaussianModel:
    if not isinstance(model, LinearGaussianModel):
        raise TypeError(f"model: got {type(model).__name__}; need a vae_course.linear_gaussian.LinearGaussianModel")
    return model


def _elbo_mc(model: LinearGaussianModel, x: Tensor, mu: Tensor, logvar: Tensor, eps: Tensor) -> ElboEstimate:
    """:func:`elbo_gaussian` without argument checks (for inner optimisation loops)."""
    z = reparameterize(mu, logvar, eps=eps, validate=False)  # (S, ..., m)
    mean = F.linear(z, model.W, model.b)  # (S, ..., d)
    recon = log_normal_diag(x, mean, torch.full_like(mean, 2 * math.log(model.sigma)), validate=False).mean(0)
    kl = kl_normal_std(mu, logvar, validate=False)
    return ElboEstimate(recon - kl, recon, kl)


def _elbo_exact(model: LinearGaussianModel, x: Tensor, mu: Tensor, trace: Tensor, kl: Tensor) -> ElboEstimate:
    resid = (x - F.linear(mu, model.W, model.b)).pow(2).sum(-1)  # ||x - W mu - b||^2, (...)
    recon = -0.5 * model.x_dim * (LOG_2PI + 2 * math.log(model.sigma)) - 0.5 * (resid + trace) / model.sigma**2
    return ElboEstimate(recon - kl, recon, kl)


def _elbo_exact_diag(model: LinearGaussianModel, x: Tensor, mu: Tensor, logvar: Tensor) -> ElboEstimate:
    trace = (torch.exp(logvar) * model.W.pow(2).sum(0)).sum(-1)  # tr(W diag(s^2) W^T) = sum_j s_j^2 ||W_j||^2
    return _elbo_exact(model, x, mu, trace, kl_normal_std(mu, logvar, validate=False))


def elbo_gaussian(model: LinearGaussianModel, x: Tensor, mu_q: Tensor, logvar_q: Tensor, n_samples: int = 1,
                  eps: Tensor | None = None, *, generator: torch.Generator | None = None) -> ElboEstimate:
    r"""Monte-Carlo ELBO with a diagonal Gaussian :math:`q = \mathcal N(\mu_q, \mathrm{diag}\,\sigma_q^2)`.

    .. math:: \widehat{\mathrm{ELBO}} = \frac1S\sum_{s=1}^S \log p(x\mid z_s) - \mathrm{KL}(q\,\|\,\mathcal N(0,I)),
              \qquad z_s = \mu_q + \sigma_q\odot\varepsilon_s,\ \varepsilon_s\sim\mathcal N(0,I)

    with :math:`\sigma_q = \exp(\tfrac12\log\sigma_q^2)` (half the log-variance: a standard deviation)
    and the KL in closed form (:func:`~vae_course.distributions.kl_normal_std`), as in the VAE of
    Kingma & Welling (2014). Unbiased for the ELBO; differentiable in ``mu_q`` and ``logvar_q``.

    Args:
        model: a :class:`LinearGaussianModel`.
        x: ``(..., d)``; mu_q, logvar_q: ``(..., m)``.
        n_samples: S, ignored when ``eps`` is given.
        eps: optional ``(S, ..., m)`` standard-normal noise (makes the estimate reproducible).
    """
    model = _model(model)
    x = model._x(x)
    mu_q, logvar_q = _q(mu_q, logvar_q, model.z_dim)
    batch = torch.broadcast_shapes(mu_q.shape, logvar_q.shape)
    if eps is None:
        n_samples = check_positive_int("n_samples", n_samples)
        eps = torch.randn(n_samples, *batch, generator=generator, dtype=mu_q.dtype)
    else:
        check.tensor("eps", eps, min_dim=len(batch) + 1)
        if eps.shape[1:] != batch:
            raise ValueError(f"eps: got shape {tuple(eps.shape)}; need (S, *{tuple(batch)}) with S samples first")
    return _elbo_mc(model, x, mu_q, logvar_q, eps)


def elbo_closed_form(model: LinearGaussianModel, x: Tensor, mu_q: Tensor, logvar_q: Tensor | None = None, *,
                     cov_q: Tensor | None = None) -> ElboEstimate:
    r"""Exact ELBO of the linear-Gaussian model for a Gaussian :math:`q=\mathcal N(\mu_q,\Sigma_q)`.

    .. math:: \mathbb E_q\log p(x\mid z) = -\tfrac d2\log(2\pi\sigma^2)
              - \frac{1}{2\sigma^2}\Big(\|x - W\mu_q - b\|^2 + \operatorname{tr}(W\Sigma_q W^\top)\Big)

    (the expected squared error is the error at the mean plus the spread that :math:`W` maps into
    data space); the KL to :math:`\mathcal N(0, I)` is also closed form.

    Args:
        x: ``(..., d)``; mu_q: ``(..., m)``; give either ``logvar_q`` ``(..., m)`` (diagonal q) or
        ``cov_q`` ``(..., m, m)`` (full q, e.g. the true posterior's covariance).
    """
    model = _model(model)
    x = model._x(x)
    if (logvar_q is None) == (cov_q is None):
        raise ValueError("logvar_q / cov_q: need exactly one of them; got " + ("both" if cov_q is not None else "neither"))
    if logvar_q is not None:
        return _elbo_exact_diag(model, x, *_q(mu_q, logvar_q, model.z_dim))
    check.tensor("mu_q", mu_q, min_dim=1)
    cholesky(cov_q, name="cov_q")
    check.same_last_dim(mu_q=mu_q, cov_q=cov_q)
    trace = torch.einsum("ij,...jk,ik->...", model.W, cov_q, model.W)  # tr(W S W^T)
    kl = kl_normal_full(mu_q, cov_q, torch.zeros_like(mu_q), torch.eye(model.z_dim, dtype=cov_q.dtype))
    return _elbo_exact(model, x, mu_q, trace, kl)


def bound_gap(model: LinearGaussianModel, x: Tensor, mu_q: Tensor, logvar_q: Tensor | None = None, *,
              cov_q: Tensor | None = None) -> BoundGap:
    r"""Exact :math:`\log p(x)`, exact ELBO, their gap, and :math:`\mathrm{KL}(q\,\|\,p(z\mid x))` computed separately.

    The identity :math:`\log p(x) - \mathrm{ELBO}(q) = \mathrm{KL}(q\,\|\,p(z\mid x))` says ``gap`` and
    ``kl_posterior`` agree; they come from different formulas, so their agreement is a check.
    Shapes as in :func:`elbo_closed_form`; ``x`` broadcasts against the q's (one x, many q's is fine).
    """
    model = _model(model)
    est = elbo_closed_form(model, x, mu_q, logvar_q, cov_q=cov_q)
    log_px = model.log_marginal(x)
    post = model.posterior(x)
    if cov_q is None:
        cov_q = torch.diag_embed(torch.exp(logvar_q))
    kl = kl_normal_full(mu_q, cov_q, post.mu, post.cov)
    log_px = log_px.expand_as(est.elbo) if log_px.dim() < est.elbo.dim() else log_px
    return BoundGap(log_px, est.elbo, log_px - est.elbo, kl)


def mean_field_optimum(model: LinearGaussianModel, x: Tensor) -> tuple[Tensor, Tensor]:
    r"""The best *diagonal* Gaussian q for each x: ``(mu, logvar)``, both ``(..., m)``.

    Minimising :math:`\mathrm{KL}(q\,\|\,\mathcal N(\mu,\Lambda^{-1}))` over diagonal q gives the
    posterior mean and variances :math:`1/\Lambda_{ii}` (not the posterior's marginal variances
    :math:`(\Lambda^{-1})_{ii}`, which are larger). The remaining gap,
    :math:`\tfrac12\big(\sum_i\log\Lambda_{ii} - \log|\Lambda|\big)`, is the same for every x.
    """
    model = _model(model)
    post = model.posterior(x)
    logvar = -torch.log(torch.diagonal(model.posterior_precision()))  # (m,)
    return post.mu, logvar.expand_as(post.mu)


def _adam_fit(params: Sequence[Tensor], loss_fn, steps: int, lr: float, record) -> Tensor:
    """Adam with the learning rate decayed linearly to 0, so noisy Monte-Carlo gradients settle."""
    opt = torch.optim.Adam(params, lr=lr)
    history = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * (1 - step / steps)
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        with torch.no_grad():
            history.append(record())
    return torch.stack(history)


class PerSampleFit(NamedTuple):
    """Result of :func:`optimize_per_sample`: ``mu``, ``logvar`` ``(N, m)``; exact ``elbo`` ``(N,)`` at the end;
    ``history`` ``(steps,)``: the mean exact ELBO after each step."""

    mu: Tensor
    logvar: Tensor
    elbo: Tensor
    history: Tensor


def optimize_per_sample(model: LinearGaussianModel, x: Tensor, *, steps: int = 200, lr: float = 0.15,
                        n_samples: int = 32, estimator: str = "mc", generator: torch.Generator | None = None,
                        init: tuple[Tensor, Tensor] | None = None) -> PerSampleFit:
    r"""The two-tier loop: for every data point :math:`x^j` its own :math:`(\mu^j, \log\sigma^{2,j})`, fitted by
    ``steps`` Adam steps on :math:`-\mathrm{ELBO}(\mu^j, \log\sigma^{2,j}\mid x^j)`.

    The outer loop over data points is vectorised: the loss is the *sum* over points, so the gradient
    for point j involves only point j's parameters, and Adam updates each coordinate on its own; the
    result is the same as fitting the points one after another (a test checks this).

    Args:
        x: ``(N, d)`` data.
        estimator: ``"mc"`` (reparameterised Monte Carlo with ``n_samples`` fresh draws per step, what a
            model without a closed form needs) or ``"exact"`` (the closed-form ELBO, noise-free).
        init: optional starting ``(mu, logvar)``, each ``(N, m)``; default zeros (q = prior).
    """
    model = _model(model)
    x = model._x(x, "x")
    steps, n_samples = check_positive_int("steps", steps), check_positive_int("n_samples", n_samples)
    if estimator not in ("mc", "exact"):
        raise ValueError(f"estimator: got {estimator!r}; need 'mc' or 'exact'")
    shape = (*x.shape[:-1], model.z_dim)
    if init is None:
        mu = torch.zeros(shape, dtype=x.dtype)
        logvar = torch.zeros(shape, dtype=x.dtype)
    else:
        mu, logvar = (t.detach().clone().to(x.dtype) for t in _q(*init, model.z_dim))
    mu.requires_grad_(True)
    logvar.requires_grad_(True)

    def loss():
        if estimator == "exact":
            return -_elbo_exact_diag(model, x, mu, logvar).elbo.sum()
        eps = torch.randn(n_samples, *shape, generator=generator, dtype=x.dtype)  # fresh noise every step
        return -_elbo_mc(model, x, mu, logvar, eps).elbo.sum()

    history = _adam_fit([mu, logvar], loss, steps, lr, lambda: _elbo_exact_diag(model, x, mu, logvar).elbo.mean())
    mu, logvar = mu.detach(), logvar.detach()
    return PerSampleFit(mu, logvar, _elbo_exact_diag(model, x, mu, logvar).elbo, history)


class AmortizedEncoder(nn.Module):
    r"""An MLP :math:`x \mapsto (\mu(x), \log\sigma^2(x))`: one set of weights for every data point.

    The network is :class:`vae_course.nets.MLP` (chapter 1's network) with ``2m`` outputs, split into the mean and the
    log-variance; the log-variance is unconstrained, so any output is a valid variance
    :math:`\exp(\log\sigma^2) > 0`.

    Args:
        x_dim, z_dim: input and latent sizes; hidden: widths of the hidden layers; activation: as in ``MLP``;
        generator: seeds the initial weights; dtype: parameter dtype (match the data).
    """

    def __init__(self, x_dim: int, z_dim: int, hidden: Sequence[int] = (32,), *, activation: str = "tanh",
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32):
        super().__init__()
        check_positive_int("x_dim", x_dim)  # named here: MLP would call it in_dim
        self.z_dim = check_positive_int("z_dim", z_dim)
        self.net = MLP(x_dim, 2 * self.z_dim, tuple(hidden), activation).to(dtype)
        with torch.no_grad():  # PyTorch's default init, drawn from ``generator`` so that runs repeat
            for layer in self.net.modules():
                if isinstance(layer, nn.Linear):
                    bound = 1 / math.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: Tensor) -> DiagonalGaussian:
        """``x`` ``(..., d)`` -> :math:`q(z\\mid x)` as a :class:`~vae_course.distributions.DiagonalGaussian`, ``(..., m)``."""
        h = self.net(x)  # (..., 2m)
        return DiagonalGaussian(h[..., : self.z_dim], h[..., self.z_dim:])


class AmortizedFit(NamedTuple):
    """Result of :func:`fit_amortized`: the trained ``encoder``; its ``mu``, ``logvar`` ``(N, m)`` and exact ``elbo``
    ``(N,)`` on the training data; ``history`` ``(steps,)``, the mean exact ELBO after each step."""

    encoder: AmortizedEncoder
    mu: Tensor
    logvar: Tensor
    elbo: Tensor
    history: Tensor


def fit_amortized(model: LinearGaussianModel, x: Tensor, *, encoder: AmortizedEncoder | None = None,
                  hidden: Sequence[int] = (32,), steps: int = 400, lr: float = 2e-2, n_samples: int = 4,
                  estimator: str = "mc", generator: torch.Generator | None = None) -> AmortizedFit:
    r"""Train an encoder on the mean ELBO over the data set (the model stays fixed):

    .. math:: \max_{\phi}\ \frac1N\sum_{j}\mathrm{ELBO}\big(\mu_\phi(x^j), \log\sigma^2_\phi(x^j)\mid x^j\big)

    This is the right-hand side of :math:`\frac1N\sum_j\max_{w_j}\mathrm{ELBO}(w_j\mid x^j)\ \ge\
    \max_{\phi}\frac1N\sum_j\mathrm{ELBO}(\phi\mid x^j)`: one shared :math:`\phi` can do no better than
    a free choice per point. Full-batch Adam; ``estimator`` as in :func:`optimize_per_sample`.

    Args:
        x: ``(N, d)``; encoder: a fresh :class:`AmortizedEncoder` with ``hidden`` layers if None.
    """
    model = _model(model)
    x = model._x(x, "x")
    steps, n_samples = check_positive_int("steps", steps), check_positive_int("n_samples", n_samples)
    if estimator not in ("mc", "exact"):
        raise ValueError(f"estimator: got {estimator!r}; need 'mc' or 'exact'")
    if encoder is None:
        encoder = AmortizedEncoder(model.x_dim, model.z_dim, hidden, generator=generator, dtype=x.dtype)
    elif not isinstance(encoder, AmortizedEncoder):
        raise TypeError(f"encoder: got {type(encoder).__name__}; need an AmortizedEncoder or None")

    def loss():
        q = encoder(x)
        if estimator == "exact":
            return -_elbo_exact_diag(model, x, q.mu, q.logvar).elbo.mean()
        eps = torch.randn(n_samples, *q.mu.shape, generator=generator, dtype=x.dtype)
        return -_elbo_mc(model, x, q.mu, q.logvar, eps).elbo.mean()

    def record():
        q = encoder(x)
        return _elbo_exact_diag(model, x, q.mu, q.logvar).elbo.mean()

    history = _adam_fit(list(encoder.parameters()), loss, steps, lr, record)
    with torch.no_grad():
        q = encoder(x)
        elbo = _elbo_exact_diag(model, x, q.mu, q.logvar).elbo
    return AmortizedFit(encoder, q.mu, q.logvar, elbo, history)


class InferenceGaps(NamedTuple):
    """Mean gaps in nats (Cremer et al. 2018): ``approximation`` = log p(x) - ELBO(best q per point),
    ``amortization`` = ELBO(best q per point) - ELBO(encoder), ``inference`` = their sum."""

    approximation: float
    amortization: float
    inference: float


def inference_gaps(log_px: Tensor, elbo_per_sample: Tensor, elbo_amortized: Tensor) -> InferenceGaps:
    """Split the mean inference gap :math:`\\log p(x) - \\mathrm{ELBO}_{\\text{encoder}}` into its two parts.
    All arguments ``(N,)`` over the same data points."""
    for name, t in (("log_px", log_px), ("elbo_per_sample", elbo_per_sample), ("elbo_amortized", elbo_amortized)):
        check.tensor(name, t, min_dim=1)
    check.broadcast(log_px=log_px, elbo_per_sample=elbo_per_sample, elbo_amortized=elbo_amortized)
    approx = (log_px - elbo_per_sample).mean().item()
    amort = (elbo_per_sample - elbo_amortized).mean().item()
    return InferenceGaps(approx, amort, approx + amort)


def kl_normal_diag_monte_carlo(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor | None = None,
                               logvar_p: Tensor | None = None, *, n_samples: int = 10_000, eps: Tensor | None = None,
                               generator: torch.Generator | None = None) -> MonteCarloEstimate:
    r""":math:`\mathrm{KL}(q\,\|\,p) \approx \frac1S\sum_s \big(\log q(z_s) - \log p(z_s)\big)`, :math:`z_s\sim q`, for diagonal
    Gaussians (``p`` defaults to :math:`\mathcal N(0, I)`): the Monte-Carlo check of the closed form.

    Each term can be negative; only the average converges to the (non-negative) KL. Args: ``(..., m)`` tensors;
    ``eps`` ``(S, ..., m)``. Returns a :class:`~vae_course.information.MonteCarloEstimate` (value, standard error, S).
    """
    check.tensor("mu_q", mu_q, min_dim=1)
    check.tensor("logvar_q", logvar_q, min_dim=1)
    mu_p = torch.zeros_like(mu_q) if mu_p is None else check.tensor("mu_p", mu_p, min_dim=1)
    logvar_p = torch.zeros_like(logvar_q) if logvar_p is None else check.tensor("logvar_p", logvar_p, min_dim=1)
    batch = check.broadcast(mu_q=mu_q, logvar_q=logvar_q, mu_p=mu_p, logvar_p=logvar_p)
    if eps is None:
        n_samples = check_positive_int("n_samples", n_samples)
        eps = torch.randn(n_samples, *batch, generator=generator, dtype=mu_q.dtype)
    else:
        check.tensor("eps", eps, min_dim=len(batch) + 1)
    z = reparameterize(mu_q, logvar_q, eps=eps)  # (S, ..., m)
    terms = log_normal_diag(z, mu_q, logvar_q) - log_normal_diag(z, mu_p, logvar_p)  # (S, ...)
    return MonteCarloEstimate(terms.mean(0), terms.std(0) / math.sqrt(terms.shape[0]), terms.shape[0])


def u_minus_log_u(u: Tensor) -> Tensor:
    r""":math:`A(u) = \sum_i\big(u_i - \log u_i\big) = \sum_i\big(\log\frac{1}{u_i} + u_i\big)`, lecture 001's helper
    ``(..., m) -> (...)`` for variances ``u > 0``; each term is at least 1, with equality at :math:`u_i = 1`."""
    check.tensor("u", u, min_dim=1)
    if bool((u <= 0).any()):
        raise ValueError(f"u: got a smallest entry {u.min().item():.3g}; need variances u > 0")
    return (-torch.log(u) + u).sum(-1)


def kl_std_a_form(mu: Tensor, var: Tensor) -> Tensor:
    r""":math:`\mathrm{KL}(\mathcal N(\mu,\mathrm{diag}\,\sigma^2)\,\|\,\mathcal N(0,I)) = \tfrac12 A(\sigma^2) + \tfrac12\|\mu\|^2 - \tfrac m2`,
    lecture 001's way of writing :func:`~vae_course.distributions.kl_normal_std`. Takes *variances* ``var``, not log-variances."""
    check.tensor("mu", mu, min_dim=1)
    return 0.5 * u_minus_log_u(var) + 0.5 * mu.pow(2).sum(-1) - 0.5 * mu.shape[-1]


def kl_std_inverted_variance(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""The diagonal KL to N(0, I) as printed in lecture 003,
    :math:`\tfrac12\sum_i(\log\sigma_i^2 + 1/\sigma_i^2 + \mu_i^2 - 1)`: kept to show the slide's error.

    It is the correct formula (:func:`~vae_course.distributions.kl_normal_std`) evaluated at the variance
    :math:`1/\sigma^2` instead of :math:`\sigma^2`, i.e. :math:`\mathrm{KL}(\mathcal N(\mu, 1/\sigma^2)\,\|\,\mathcal N(0, I))`,
    so it agrees with the true KL only where :math:`\sigma^2 = 1`.
    """
    check.tensor("mu", mu, min_dim=1)
    check.tensor("logvar", logvar, min_dim=1)
    return kl_normal_std(mu, -logvar)  # log(1 / sigma^2) = -logvar


class AggregateSplit(NamedTuple):
    """The average KL term of an encoder split in two, exactly, in nats: ``average_kl`` =
    ``mutual_information`` + ``marginal_kl``; ``q_mean`` ``(m,)`` and ``q_cov`` ``(m, m)`` describe the aggregate posterior."""

    average_kl: Tensor
    mutual_information: Tensor
    marginal_kl: Tensor
    q_mean: Tensor
    q_cov: Tensor


def aggregate_split(model: LinearGaussianModel, encoder: LinearEncoder) -> AggregateSplit:
    r"""Does the encoder average to the prior? The aggregate posterior of a linear encoder, exactly.

    With data from the model, :math:`x\sim\mathcal N(b, C)`, :math:`C = WW^\top + \sigma^2 I`, and
    :math:`q(z\mid x) = \mathcal N(Ax + c, S)`, the aggregate posterior :math:`q(z) = \mathbb E_x\, q(z\mid x)` is
    :math:`\mathcal N(Ab + c,\ ACA^\top + S)`, and the average KL term splits (Hoffman & Johnson, 2016) as

    .. math:: \mathbb E_x\mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big) = I_q(x;z) + \mathrm{KL}\big(q(z)\,\|\,p(z)\big),
              \qquad I_q(x;z) = \mathbb E_x\mathrm{KL}\big(q(z\mid x)\,\|\,q(z)\big) = \tfrac12\log\frac{|ACA^\top + S|}{|S|}.

    The three terms come from separate formulas (the closed-form KL to :math:`\mathcal N(0, I)` averaged over
    :math:`x`, the log-determinant ratio, :func:`~vae_course.distributions.kl_normal_full`), so their agreement is a
    check. For the exact posterior (:meth:`~vae_course.linear_gaussian.LinearGaussianModel.posterior_encoder`),
    :math:`q(z) = p(z)` and the last term is 0. Args: a :class:`LinearGaussianModel` and a
    :class:`~vae_course.linear_gaussian.LinearEncoder` with ``A`` ``(m, d)``, ``c`` ``(m,)``, ``cov`` ``(m, m)``.
    """
    model = _model(model)
    if not isinstance(encoder, LinearEncoder):
        raise TypeError(f"encoder: got {type(encoder).__name__}; need a vae_course.linear_gaussian.LinearEncoder")
    m, d = model.z_dim, model.x_dim
    A, c, S = (t.to(model.W.dtype) for t in encoder)
    if A.shape != (m, d) or c.shape != (m,) or S.shape != (m, m):
        raise ValueError(f"encoder: got A {tuple(A.shape)}, c {tuple(c.shape)}, cov {tuple(S.shape)}; "
                         f"need A ({m}, {d}), c ({m},), cov ({m}, {m})")
    log_det_S = 2 * torch.log(torch.diagonal(cholesky(S, name="encoder.cov"))).sum()
    spread = A @ model.marginal_cov() @ A.T  # (m, m): Cov_x of the encoder mean
    q_mean, q_cov = A @ model.b + c, spread + S  # the aggregate posterior
    # E_x KL(N(Ax + c, S) || N(0, I)) = 1/2 (tr S + E||Ax + c||^2 - m - log|S|)
    average_kl = 0.5 * (torch.trace(S) + q_mean.pow(2).sum() + torch.trace(spread) - m - log_det_S)
    mutual_information = 0.5 * (torch.logdet(q_cov) - log_det_S)
    marginal_kl = kl_normal_full(q_mean, q_cov, torch.zeros_like(q_mean), torch.eye(m, dtype=q_cov.dtype))
    return AggregateSplit(average_kl, mutual_information, marginal_kl, q_mean, q_cov)
