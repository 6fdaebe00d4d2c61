r"""The marginal of a latent-variable generator, by quadrature or Monte Carlo, and maximum likelihood through it
(chapter 2).

A generator with :math:`z\sim P(z)` and :math:`x\mid z\sim\mathcal N(G_\theta(z), s^2 I)` has the density

.. math:: P_\theta(x) = \int \mathcal N\big(x;\, G_\theta(z),\, s^2 I\big)\, P(z)\, dz
          \approx \sum_k w_k\, p_\theta(x\mid z_k),

computed in log space as a weighted log-mean-exp (:func:`vae_course.distributions.log_mean_exp`) over a latent
grid (:func:`latent_grid`, :func:`log_marginal_quadrature`) or over prior draws (:func:`log_marginal_mc`,
:math:`w_k = 1/K`). :func:`fit_marginal_likelihood` maximises it; :func:`fit_single_gaussian` is the closed-form
best single Gaussian; :func:`capacity_study` compares generators of growing size on a non-Gaussian target.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from .. import _validate as check
from .. import data
from ..distributions import LOG_2PI, log_mean_exp, log_normal_diag, log_normal_full
from ..generators import ProbabilisticGenerator
from ..utils import check_positive_int, make_generator

__all__ = [
    "LatentGrid", "latent_grid", "log_likelihood_matrix", "log_marginal_quadrature", "log_marginal_mc",
    "FitHistory", "fit_marginal_likelihood", "GaussianFit", "fit_single_gaussian", "CapacityStudy", "capacity_study",
    "quantile_generator_1d",
]

UNIFORM_GRID_HALF_WIDTH = 8.0  # rule="uniform" covers [-8, 8]: the prior mass outside is 1e-15
MAX_GRID_NODES = 1_000_000  # a tensor-product grid with more nodes than this is refused (n**m grows too fast)
# Adam with a short second-moment memory: the first gradients are huge (data far from the initial G), and with
# the usual beta2 = 0.999 they would shrink the steps for hundreds of iterations.
ADAM_BETAS = (0.9, 0.9)


class LatentGrid(NamedTuple):
    """Quadrature nodes for :math:`\\mathbb E_{z\\sim\\mathcal N(0,I)}[f(z)] \\approx \\sum_k w_k f(z_k)`."""

    z: Tensor      # (K, m) nodes
    log_w: Tensor  # (K,) log-weights, logsumexp(log_w) = 0


def latent_grid(n: int, dim: int = 1, *, rule: str = "uniform", dtype: torch.dtype = torch.float32,
                half_width: float = UNIFORM_GRID_HALF_WIDTH) -> LatentGrid:
    r"""A quadrature rule for the standard-normal prior, ``n`` nodes per latent dimension.

    * ``"gauss_hermite"``: probabilists' Gauss-Hermite nodes and weights, exact for polynomials up to
      degree :math:`2n-1`: :math:`\int f(z)\,\mathcal N(z;0,1)\,dz \approx \sum_k w_k f(z_k)`.
    * ``"uniform"``: evenly spaced nodes on ``[-half_width, half_width]`` (default 8) with weights
      :math:`\propto \mathcal N(z_k; 0, 1)`
      (the trapezoidal rule, renormalised). Constant spacing :math:`\Delta z` everywhere, so
      the component means :math:`G_\theta(z_k)` are never further apart than :math:`\max|G_\theta'|\,\Delta z`:
      keep that below the noise :math:`s`, or the model becomes a comb of separate bumps.
    * ``"quantile"``: equal weights :math:`1/n` at :math:`z_k = \Phi^{-1}\big((k-\tfrac12)/n\big)`, the
      midpoint rule in :math:`u=\Phi(z)`; it turns the model into an equal-weight mixture of ``n``
      Gaussians, one per quantile of the prior.

    For ``dim`` > 1 the rule is the tensor product: :math:`n^{\text{dim}}` nodes. That number is the
    curse of dimensionality of quadrature, and a grid with more than 10^6 nodes is refused.

    Returns:
        :class:`LatentGrid` with ``z`` ``(n**dim, dim)`` and ``log_w`` ``(n**dim,)``.
    """
    n = check_positive_int("n", n)
    dim = check_positive_int("dim", dim)
    if n**dim > MAX_GRID_NODES:
        raise ValueError(f"n, dim: got n={n}, dim={dim}, i.e. n**dim = {n**dim:.3g} nodes; need at most "
                         f"{MAX_GRID_NODES:.0e} (a grid grows as n**dim: use Monte Carlo for large latent dimensions)")
    if rule == "gauss_hermite":
        if n > 150:
            raise ValueError(f"n: got {n} for rule='gauss_hermite'; need n <= 150 (the weights underflow beyond)")
        nodes, weights = np.polynomial.hermite_e.hermegauss(n)  # weight function exp(-z^2/2)
        z1 = torch.as_tensor(nodes, dtype=torch.float64)
        lw1 = torch.as_tensor(np.log(weights), dtype=torch.float64) - 0.5 * LOG_2PI
    elif rule == "uniform":
        if not (isinstance(half_width, (int, float)) and half_width > 0):
            raise ValueError(f"half_width: got {half_width!r}; need a positive number "
                             "(the grid covers [-half_width, half_width])")
        z1 = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
        lw1 = -0.5 * z1.pow(2)  # prior density at the node times the constant spacing, normalised below
    elif rule == "quantile":
        u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        z1 = math.sqrt(2.0) * torch.erfinv(2 * u - 1)  # Phi^{-1}(u)
        lw1 = torch.full((n,), -math.log(n), dtype=torch.float64)
    else:
        raise ValueError(f"rule: got {rule!r}; need 'uniform', 'quantile' or 'gauss_hermite'")
    z = torch.cartesian_prod(*([z1] * dim)).reshape(-1, dim)  # (n**dim, dim)
    log_w = torch.cartesian_prod(*([lw1] * dim)).reshape(-1, dim).sum(-1)  # product weights
    log_w = log_w - torch.logsumexp(log_w, 0)  # exact normalisation: the weights sum to 1
    return LatentGrid(z.to(dtype), log_w.to(dtype))


def _as_points(x: Tensor, x_dim: int | None = None, name: str = "x") -> Tensor:
    """``(N,)`` -> ``(N, 1)``; ``(N, d)`` unchanged; checks ``d == x_dim`` if given."""
    check.tensor(name, x, min_dim=1)
    if x.dim() == 1:
        x = x.unsqueeze(-1)
    if x.dim() != 2:
        raise ValueError(f"{name}: got shape {tuple(x.shape)}; need (N, d) points, or (N,) for 1-D data")
    if x_dim is not None and x.shape[-1] != x_dim:
        raise ValueError(f"{name}: got points of dimension {x.shape[-1]}; the model has x_dim={x_dim}")
    return x


def log_likelihood_matrix(model, x: Tensor, z: Tensor) -> Tensor:
    r"""All pairs :math:`\log p_\theta(x_i \mid z_k)`; the decoder runs once on the K latents.

    Args:
        model: a :class:`vae_course.generators.ProbabilisticGenerator` (anything with ``statistics(z)``
            returning ``mu`` and ``logvar`` or ``scale_tril``), or a
            :class:`vae_course.linear_gaussian.LinearGaussianModel` (anything with a broadcasting
            ``log_likelihood(x, z)``).
        x: ``(N, d)`` data (or ``(N,)`` for d = 1); z: ``(K, m)`` latents.
    Returns:
        ``(N, K)`` log-likelihoods.
    """
    x = _as_points(x)
    check.tensor("z", z, min_dim=2)
    xi = x.unsqueeze(1)  # (N, 1, d)
    if not hasattr(model, "statistics"):
        return model.log_likelihood(xi, z.unsqueeze(0))  # (N, K)
    stats = model.statistics(z)
    mu = stats.mu  # (K, d)
    if mu.shape[-1] != x.shape[-1]:
        raise ValueError(f"x: got points of dimension {x.shape[-1]}; the model outputs dimension {mu.shape[-1]}")
    if getattr(stats, "scale_tril", None) is not None:
        return log_normal_full(xi, mu.unsqueeze(0), scale_tril=stats.scale_tril.unsqueeze(0), validate=False)  # (N, K)
    return log_normal_diag(xi, mu.unsqueeze(0), stats.logvar.unsqueeze(0), validate=False)  # (N, K)


def log_marginal_quadrature(model, x: Tensor, n: int = 256, *, rule: str = "uniform",
                            half_width: float = UNIFORM_GRID_HALF_WIDTH) -> Tensor:
    r""":math:`\log P_\theta(x) \approx \operatorname{logsumexp}_k\big(\log w_k + \log p_\theta(x\mid z_k)\big)`
    over a :func:`latent_grid` of ``n`` nodes per latent dimension (``model.z_dim`` must be small).

    Args:
        model: a generator with ``z_dim`` and ``statistics(z)``; x: ``(N, d)`` or ``(N,)``.
    Returns:
        ``(N,)`` log-marginals (nats).
    """
    grid = latent_grid(n, model.z_dim, rule=rule, dtype=x.dtype, half_width=half_width)
    grid = LatentGrid(grid.z.to(x.device), grid.log_w.to(x.device))
    return log_mean_exp(log_likelihood_matrix(model, x, grid.z), dim=-1, log_weights=grid.log_w, validate=False)  # (N,)


def log_marginal_mc(model, x: Tensor, n_samples: int = 10_000, *, generator: torch.Generator | None = None,
                    batch_size: int = 4096) -> Tensor:
    r"""Monte-Carlo :math:`\log \hat P(x) = \operatorname{logsumexp}_k \log p_\theta(x\mid z_k) - \log K`,
    :math:`z_k\sim\mathcal N(0, I)`, the same K latents for every ``x``; computed in chunks of
    ``batch_size`` latents with a running log-sum-exp, so memory stays ``N * batch_size``.

    :math:`\hat P(x)` is unbiased for :math:`P(x)`; :math:`\log\hat P(x)` is biased low (Jensen).

    Returns:
        ``(N,)`` estimates of :math:`\log P_\theta(x)`.
    """
    n_samples = check_positive_int("n_samples", n_samples)
    batch_size = check_positive_int("batch_size", batch_size)
    x = _as_points(x)
    acc = torch.full(x.shape[:1], -math.inf, dtype=x.dtype, device=x.device)  # running logsumexp, (N,)
    done = 0
    while done < n_samples:
        k = min(batch_size, n_samples - done)
        z = torch.randn(k, model.z_dim, generator=generator).to(x)  # (k, m)
        acc = torch.logaddexp(acc, torch.logsumexp(log_likelihood_matrix(model, x, z), dim=-1))
        done += k
    return acc - math.log(n_samples)


# ------------------------------------------------------------------ maximum likelihood
@dataclass
class FitHistory:
    """What :func:`fit_marginal_likelihood` did: the loss after each step and how it was computed."""

    losses: list[float] = field(default_factory=list)  # -mean log P_\theta(x) per step (over its minibatch), nats per point
    method: str = "quadrature"                            # "quadrature" or "mc"
    n_latent: int = 0                                      # grid nodes or MC samples per step

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan


def fit_marginal_likelihood(model: torch.nn.Module, x: Tensor, *, steps: int = 300, lr: float = 1e-2,
                            n_quadrature: int | None = None, n_mc: int | None = None, rule: str = "uniform",
                            half_width: float = UNIFORM_GRID_HALF_WIDTH, batch_size: int | None = None,
                            seed: int = 0) -> FitHistory:
    r"""Maximum likelihood through the marginal: minimise :math:`-\frac1N\sum_i \log P_\theta(x_i)` with Adam.

    With ``n_quadrature`` the marginal is the grid sum of :func:`log_marginal_quadrature` (fixed nodes;
    exact up to the quadrature error, for a latent of dimension 1 or 2). With ``n_mc`` fresh prior
    samples are drawn every step and the loss is :math:`-\log\frac1K\sum_k p_\theta(x\mid z_k)`, whose
    expectation is an upper bound on :math:`-\log P_\theta(x)` (Jensen) that tightens as K grows.
    Full batch by default; with ``batch_size`` each step uses that many points drawn without replacement
    (an unbiased estimate of the full-batch gradient, and ``N / batch_size`` times cheaper).

    Args:
        model: a ``ProbabilisticGenerator`` (any module with ``z_dim``, ``statistics(z)``), trained in place.
        x: ``(N, d)`` data, or ``(N,)`` for 1-D data.
        steps, lr: Adam steps and learning rate.
        n_quadrature / n_mc: exactly one of them; ``rule`` and ``half_width`` describe the grid (:func:`latent_grid`).
        batch_size: points per step (None: all).
        seed: seeds the Monte-Carlo latents and the minibatches (the weights are initialised by whoever
            built ``model``).
    Returns:
        :class:`FitHistory` with one loss per step.
    """
    steps = check_positive_int("steps", steps)
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr: got {lr!r}; need a learning rate > 0")
    if (n_quadrature is None) == (n_mc is None):
        raise ValueError("n_quadrature / n_mc: need exactly one of them; got "
                         + ("both" if n_quadrature is not None else "neither"))
    x = _as_points(x)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: got a model without trainable parameters; nothing to fit")
    x = x.to(params[0])
    opt = torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS)
    history = FitHistory(method="quadrature" if n_mc is None else "mc")
    if n_quadrature is not None:
        grid = latent_grid(check_positive_int("n_quadrature", n_quadrature), model.z_dim, rule=rule, dtype=x.dtype,
                           half_width=half_width)
        z_grid, log_w = grid.z.to(x.device), grid.log_w.to(x.device)
        history.n_latent = z_grid.shape[0]
    else:
        history.n_latent = check_positive_int("n_mc", n_mc)
    g = make_generator(seed)
    if batch_size is not None:
        batch_size = min(check_positive_int("batch_size", batch_size), x.shape[0])
    for _ in range(steps):
        xb = x if batch_size is None else x[torch.randperm(x.shape[0], generator=g)[:batch_size].to(x.device)]  # (B, d)
        if n_mc is None:
            log_p = log_mean_exp(log_likelihood_matrix(model, xb, z_grid), dim=-1, log_weights=log_w, validate=False)  # (B,)
        else:
            z = torch.randn(n_mc, model.z_dim, generator=g).to(x)  # (K, m), fresh every step
            log_p = log_mean_exp(log_likelihood_matrix(model, xb, z), dim=-1, validate=False)  # (B,)
        loss = -log_p.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.losses.append(float(loss.detach()))
    return history


class GaussianFit(NamedTuple):
    r"""The maximum-likelihood Gaussian :math:`\mathcal N(\hat m, \hat\Sigma)` of a data set."""

    mean: Tensor  # (d,)
    cov: Tensor   # (d, d)

    def log_prob(self, x: Tensor) -> Tensor:
        """``(N,)`` log-densities of ``x`` (``(N, d)`` or ``(N,)`` for d = 1)."""
        return log_normal_full(_as_points(x, self.mean.shape[0]), self.mean, self.cov)

    def density_1d(self, x: Tensor) -> Tensor:
        """Density at 1-D points of any shape (only for d = 1)."""
        if self.mean.shape[0] != 1:
            raise ValueError(f"density_1d: the fit has dimension {self.mean.shape[0]}; need 1")
        return self.log_prob(x.reshape(-1)).reshape(x.shape).exp()


def fit_single_gaussian(x: Tensor) -> GaussianFit:
    r"""Closed-form maximum-likelihood Gaussian (Bishop 2006, eq. 2.121-2.122):

    .. math:: \hat m = \frac1N\sum_i x_i, \qquad \hat\Sigma = \frac1N\sum_i (x_i-\hat m)(x_i-\hat m)^\top

    (divisor N, not N - 1: the MLE, not the unbiased estimate). Its average log-likelihood is
    :math:`-\tfrac12\big(d\log 2\pi + \log|\hat\Sigma| + d\big)`.

    Args:
        x: ``(N, d)`` data, or ``(N,)`` for 1-D data; N >= 2.
    """
    x = _as_points(x)
    if x.shape[0] < 2:
        raise ValueError(f"x: got {x.shape[0]} point(s); need at least 2 to fit a Gaussian")
    mean = x.mean(0)  # (d,)
    diff = x - mean  # (N, d)
    return GaussianFit(mean, diff.T @ diff / x.shape[0])


@dataclass
class CapacityStudy:
    """What :func:`capacity_study` fitted: data, the single Gaussian, one generator per capacity, and a table."""

    target: str
    x_train: Tensor                 # (N, d)
    x_test: Tensor                  # (M, d)
    single: GaussianFit             # closed-form MLE Gaussian of x_train
    models: dict                    # label -> fitted ProbabilisticGenerator
    histories: dict                 # label -> FitHistory
    train_ll: dict                  # label -> mean log-likelihood on x_train (nats), incl. "single Gaussian"
    test_ll: dict                   # label -> mean log-likelihood on x_test, incl. "single Gaussian", "target" if known
    grid_ll: dict                   # label -> mean log-likelihood on x_train with the (coarser) training grid


def _label(hidden: Sequence[int]) -> str:
    return "linear G" if len(hidden) == 0 else "MLP " + "x".join(str(h) for h in hidden)


def capacity_study(target: str, hiddens: Sequence[Sequence[int]] = ((), (2,), (32, 32)), *, sigma: float = 0.15,
                   n_train: int = 2000, n_test: int = 2000, steps: int = 300, lr: float = 0.02,
                   n_quadrature: int = 192, half_width: float = 6.0, batch_size: int | None = None,
                   n_eval: int = 2048, seed: int = 0) -> CapacityStudy:
    r"""Fit :math:`P_\theta(x) = \mathbb E_z[\mathcal N(x; G_\theta(z), \sigma^2 I)]`, 1-D latent, to a toy target of
    :mod:`vae_course.data` (a name of ``TOY_1D`` or ``TOY_2D``) once per network size in ``hiddens``
    (``()`` is a linear :math:`G`), by :func:`fit_marginal_likelihood` on a ``n_quadrature``-node grid over
    ``[-half_width, half_width]`` (full batch unless ``batch_size`` is given), and compare with
    :func:`fit_single_gaussian`. Log-likelihoods are evaluated with an ``n_eval``-node grid on ``[-8, 8]``
    (about 8 times finer), so a model that exploited the training grid would show it.
    """
    if target in data.TOY_1D:
        x_tr = data.toy_1d(target, n_train, seed=seed + 1)[:, None]
        x_te = data.toy_1d(target, n_test, seed=seed + 2)[:, None]
        exact = (lambda x: data.toy_1d_density(target, x[:, 0].double()))
    elif target in data.TOY_2D:
        x_tr, x_te = data.toy_2d(target, n_train, seed=seed + 1), data.toy_2d(target, n_test, seed=seed + 2)
        exact = None if target == "two_moons" else (lambda x: data.toy_2d_density(target, x.double()))
    else:
        raise ValueError(f"target: got {target!r}; need one of {data.TOY_1D + data.TOY_2D}")
    single = fit_single_gaussian(x_tr)
    study = CapacityStudy(target, x_tr, x_te, single, {}, {}, {"single Gaussian": float(single.log_prob(x_tr).mean())},
                          {"single Gaussian": float(single.log_prob(x_te).mean())}, {})
    for hidden in hiddens:
        torch.manual_seed(seed)  # the same initial weights for a given size, run after run
        model = ProbabilisticGenerator(1, x_tr.shape[1], covariance="isotropic", sigma=sigma, hidden=tuple(hidden))
        label = _label(hidden)
        study.histories[label] = fit_marginal_likelihood(model, x_tr, steps=steps, lr=lr, n_quadrature=n_quadrature,
                                                         half_width=half_width, batch_size=batch_size, seed=seed)
        study.models[label] = model
        with torch.no_grad():
            study.train_ll[label] = float(log_marginal_quadrature(model, x_tr, n_eval).mean())
            study.test_ll[label] = float(log_marginal_quadrature(model, x_te, n_eval).mean())
            on_grid = log_marginal_quadrature(model, x_tr, n_quadrature, half_width=half_width)
            study.grid_ll[label] = float(on_grid.mean())
    if exact is not None:
        study.test_ll["target"] = float(exact(x_te).clamp_min(1e-300).log().mean())
    return study


def quantile_generator_1d(density, z: Tensor, *, lo: float, hi: float, n_grid: int = 20_001) -> Tensor:
    r"""The generator that maps :math:`\mathcal N(0,1)` exactly onto a 1-D target:
    :math:`G^{\star}(z) = F^{-1}(\Phi(z))`.

    :math:`F` is the target's CDF, computed by the trapezoidal rule on ``n_grid`` points of
    ``[lo, hi]`` (the target's mass must lie there) and inverted by linear interpolation. Any
    1-D distribution is the image of a standard normal under this increasing map, which is why a
    flexible enough :math:`G_\theta` with a small noise :math:`s` can fit any smooth 1-D target.

    Args:
        density: a function from a ``(n_grid,)`` float64 tensor to the target pdf at those points.
        z: latent values, any shape.
    Returns:
        :math:`G^{\star}(z)`, shape of ``z``.
    """
    check.tensor("z", z)
    if not hi > lo:
        raise ValueError(f"lo, hi: got lo={lo}, hi={hi}; need lo < hi")
    grid = torch.linspace(lo, hi, check_positive_int("n_grid", n_grid), dtype=torch.float64)
    pdf = density(grid).to(torch.float64)
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64),
                     torch.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * (grid[1:] - grid[:-1]), 0)])
    cdf = cdf / cdf[-1]
    u = torch.special.ndtr(z.detach().to(torch.float64)).clamp(0.0, 1.0)
    out = np.interp(u.reshape(-1).numpy(), cdf.numpy(), grid.numpy())
    return torch.as_tensor(out, dtype=z.dtype).reshape(z.shape)
