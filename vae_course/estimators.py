r"""Monte-Carlo estimators of :math:`\nabla_w\, \mathbb E_{z\sim Q_w}[F(z)]` (chapter 4).

The encoder of a VAE needs the gradient of an expectation whose *distribution* depends on the
parameters. Three answers, for a diagonal Gaussian :math:`Q_w=\mathcal N(\mu,\mathrm{diag}(e^{\log\sigma^2}))`:

* :func:`naive_gradient`: sample :math:`z`, treat it as a constant, differentiate :math:`F(z)`.
  The result is exactly zero for :math:`(\mu,\log\sigma^2)`: wrong.
* :func:`score_function_gradient` (score function, likelihood ratio, REINFORCE; Williams 1992;
  the slides call it "importance sampling", a misnomer):
  :math:`\nabla_w \mathbb E[F] = \mathbb E\big[(F(z)-b)\,\nabla_w \log Q_w(z)\big]` for any
  baseline :math:`b` that does not depend on :math:`z`.
* :func:`reparam_gradient` (Kingma & Welling 2014; Rezende et al. 2014): write
  :math:`z=\mu+\sigma\odot\varepsilon`, :math:`\varepsilon\sim\mathcal N(0,I)`, and differentiate
  through :math:`F`: :math:`\nabla_w \mathbb E[F] = \mathbb E_\varepsilon[\nabla_w F(\mu+\sigma\odot\varepsilon)]`.

For a categorical latent :math:`z\sim\mathrm{Cat}(\mathrm{softmax}(\theta))` (one-hot) the
reparameterisation does not exist; :func:`score_function_gradient_categorical` still works, and
:func:`straight_through_gradient_categorical` (Bengio et al. 2013; with Gumbel noise, Jang et al.
2017, Maddison et al. 2017) trades a bias for a low variance. :func:`straight_through` is the
one-line trick reused by the VQ-VAE chapter.

Every estimator takes ``F``: a function from ``(n, d)`` samples to ``(n,)`` values that acts on
each row separately, and returns named gradients, averaged over the ``n`` samples or, with
``per_sample=True``, one per sample. Reference: Mohamed et al. (2020), *Monte Carlo Gradient
Estimation in Machine Learning*, JMLR 21(132).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Union

import torch
import torch.nn.functional as Fn
from torch import Tensor

from . import _validate as check
from .generators import sample_normal
from .utils import check_positive_int, make_generator

__all__ = [
    "GaussianGradient", "CategoricalGradient", "EstimatorStats",
    "gaussian_score", "naive_gradient", "score_function_gradient", "reparam_gradient",
    "straight_through", "categorical_score", "score_function_gradient_categorical",
    "straight_through_gradient_categorical", "gumbel_softmax_gradient_categorical", "categorical_exact",
    "estimator_stats", "standardized_bias",
    "QuadraticProblem", "QuarticProblem", "ExponentialProblem", "LinearProblem",
    "Setup", "make_setup", "METHODS", "compare_estimators", "VarianceSweep", "variance_sweep",
    "CATEGORICAL_METHODS", "compare_categorical_estimators", "CategoricalExact", "summary_table",
]

Baseline = Union[None, str, float, Tensor]


class GaussianGradient(NamedTuple):
    """A gradient w.r.t. the parameters of :math:`\\mathcal N(\\mu, \\mathrm{diag}(e^{\\log\\sigma^2}))`."""

    mu: Tensor      # (d,) averaged, or (n, d) per sample
    logvar: Tensor  # same shape as mu


class CategoricalGradient(NamedTuple):
    """A gradient w.r.t. the logits :math:`\\theta` of :math:`\\mathrm{Cat}(\\mathrm{softmax}(\\theta))`."""

    logits: Tensor  # (K,) averaged, or (n, K) per sample


Gradient = Union[GaussianGradient, CategoricalGradient]


# ---------------------------------------------------------------- argument checks
def _check_gaussian(mu: Tensor, logvar: Tensor) -> int:
    check.tensor("mu", mu, min_dim=1)
    check.tensor("logvar", logvar, min_dim=1)
    if mu.dim() != 1 or logvar.shape != mu.shape:
        raise ValueError(f"mu, logvar: got shapes {tuple(mu.shape)} and {tuple(logvar.shape)}; need two vectors of the same shape (d,)")
    return mu.shape[0]


def _noise(n_samples: int | None, noise: Tensor | None, name: str, width: int, draw: Callable[[int], Tensor]) -> Tensor:
    """The given noise (checked against n_samples) or ``draw(n)``."""
    if noise is None:
        if n_samples is None:
            raise ValueError(f"n_samples: got None and no {name}; give one of them")
        return draw(check_positive_int("n_samples", n_samples))
    check.tensor(name, noise)
    if noise.dim() != 2 or noise.shape[1] != width:
        raise ValueError(f"{name}: got shape {tuple(noise.shape)}; need (n_samples, {width})")
    if n_samples is not None and check_positive_int("n_samples", n_samples) != noise.shape[0]:
        raise ValueError(f"n_samples: got {n_samples} but {name} has {noise.shape[0]} rows; they must agree")
    return noise


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature: got {temperature!r}; need a number > 0")
    return float(temperature)


def _apply_F(F: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """``F`` on samples ``(..., n, d)`` -> ``(..., n)``: F itself only ever sees a 2-D batch ``(m, d)``."""
    if not callable(F):
        raise TypeError(f"F: got {type(F).__name__}; need a function from (n, d) samples to (n,) values")
    flat = z.reshape(-1, z.shape[-1])                                  # (m, d)
    f = F(flat)
    if not isinstance(f, Tensor) or tuple(f.shape) != (flat.shape[0],):
        got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
        raise ValueError(f"F: returned {got} for samples of shape {tuple(flat.shape)}; need one value per sample, shape ({flat.shape[0]},)")
    return f.reshape(z.shape[:-1])


def _centre(f: Tensor, baseline: Baseline) -> Tensor:
    r"""``f - b`` along the last (sample) axis for a constant, batch-mean or leave-one-out baseline.

    The batch mean contains :math:`F(z_i)` itself, so :math:`\mathbb E[(F_i-\bar F)\,s_i]=(1-\tfrac1n)\nabla`
    (biased). The leave-one-out mean :math:`b_i=\frac{1}{n-1}\sum_{j\ne i}F_j` is independent of
    :math:`z_i` (unbiased) and equals the batch-mean version times :math:`n/(n-1)`.
    """
    n = f.shape[-1]
    if baseline is None:
        return f
    if isinstance(baseline, str):
        if baseline == "mean":
            return f - f.mean(-1, keepdim=True)
        if baseline == "loo":
            if n < 2:
                raise ValueError("baseline: 'loo' needs n_samples >= 2 (the other samples form the baseline)")
            return f - (f.sum(-1, keepdim=True) - f) / (n - 1)
        raise ValueError(f"baseline: got {baseline!r}; need None, 'mean', 'loo' or a number")
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float, Tensor)):
        raise TypeError(f"baseline: got {type(baseline).__name__}; need None, 'mean', 'loo' or a number")
    b = torch.as_tensor(baseline, dtype=f.dtype)
    if b.numel() != 1:
        raise ValueError(f"baseline: got a tensor of shape {tuple(b.shape)}; need a single number")
    return f - b.reshape(())


def _reduce(grad, per_sample: bool):
    """Average the per-sample terms over the sample axis (-2), unless they are wanted one by one."""
    return grad if per_sample else type(grad)(*(g.mean(-2) for g in grad))


# ---------------------------------------------------------------- diagonal Gaussian
def gaussian_score(z: Tensor, mu: Tensor, logvar: Tensor) -> GaussianGradient:
    r"""The score :math:`\nabla_{(\mu,\log\sigma^2)}\log\mathcal N(z;\mu,\mathrm{diag}\,\sigma^2)` in closed form.

    .. math:: \frac{\partial \log Q}{\partial \mu_j} = \frac{z_j-\mu_j}{\sigma_j^2}, \qquad
              \frac{\partial \log Q}{\partial \log\sigma_j^2} = \frac12\Big(\frac{(z_j-\mu_j)^2}{\sigma_j^2}-1\Big)

    Both have mean zero under :math:`Q`; that is why subtracting a constant baseline keeps the
    score-function estimator unbiased. Args: z ``(..., d)``; mu, logvar ``(d,)``. Returns ``(..., d)`` each.
    """
    inv_var = torch.exp(-logvar)                                       # 1 / sigma^2, (d,)
    diff = z - mu                                                      # (..., d)
    return GaussianGradient(mu=diff * inv_var, logvar=0.5 * (diff.pow(2) * inv_var - 1.0))


def _score_terms(F, mu: Tensor, logvar: Tensor, eps: Tensor, baseline: Baseline) -> GaussianGradient:
    """Per-sample score-function terms ``(F(z_i) - b_i) * score(z_i)`` for noise ``eps`` ``(..., n, d)``."""
    with torch.no_grad():
        z = sample_normal(mu, logvar=logvar, eps=eps)                  # (..., n, d) = mu + exp(0.5 logvar) eps
        weight = _centre(_apply_F(F, z), baseline).unsqueeze(-1)       # (..., n, 1)  F(z_i) - b_i
        score = gaussian_score(z, mu, logvar)                          # (..., n, d)
    return GaussianGradient(weight * score.mu, weight * score.logvar)


def _reparam_terms(F, mu: Tensor, logvar: Tensor, eps: Tensor) -> GaussianGradient:
    """Per-sample pathwise gradients ``grad_w F(mu + sigma * eps_i)`` for noise ``eps`` ``(..., n, d)``."""
    mu_rep = mu.detach().expand(eps.shape).clone().requires_grad_(True)          # one copy per sample
    logvar_rep = logvar.detach().expand(eps.shape).clone().requires_grad_(True)  # -> per-sample gradients
    with torch.enable_grad():
        z = sample_normal(mu_rep, logvar=logvar_rep, eps=eps)          # (..., n, d), a function of (mu, logvar)
        grads = torch.autograd.grad(_apply_F(F, z).sum(), (mu_rep, logvar_rep))
    return GaussianGradient(*grads)


def naive_gradient(F: Callable[[Tensor], Tensor], mu: Tensor, logvar: Tensor, n_samples: int,
                   *, generator: torch.Generator | None = None) -> GaussianGradient:
    r"""What autograd returns when the sample is drawn and then treated as a constant: zero.

    ``torch.normal(mu, sigma)`` accepts tensors that require grad, but PyTorch defines the derivative
    of a drawn number w.r.t. its mean and standard deviation as zero. So
    :math:`\nabla_w \frac1n\sum_i F(z_i) = 0` although :math:`\nabla_w\,\mathbb E[F]\ne0`.
    (``torch.distributions.Normal(...).sample()`` detaches instead; ``.rsample()`` reparameterises.)
    """
    d = _check_gaussian(mu, logvar)
    n = check_positive_int("n_samples", n_samples)
    mu_ = mu.detach().clone().requires_grad_(True)
    logvar_ = logvar.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        std = torch.exp(0.5 * logvar_)
        z = torch.normal(mu_.expand(n, d), std.expand(n, d), generator=generator)  # (n, d); dz/dw := 0
        loss = _apply_F(F, z).mean()
        g_mu, g_logvar = torch.autograd.grad(loss, (mu_, logvar_), allow_unused=True, materialize_grads=True)
    return GaussianGradient(g_mu, g_logvar)


def score_function_gradient(F: Callable[[Tensor], Tensor], mu: Tensor, logvar: Tensor, n_samples: int | None = None,
                            *, baseline: Baseline = None, generator: torch.Generator | None = None,
                            eps: Tensor | None = None, per_sample: bool = False) -> GaussianGradient:
    r"""Score-function (REINFORCE, likelihood-ratio) estimate of :math:`\nabla_{(\mu,\log\sigma^2)}\mathbb E_Q[F]`.

    .. math:: \widehat{\nabla} = \frac1n\sum_{i=1}^n \big(F(z_i)-b_i\big)\,\nabla_w\log Q_w(z_i),
              \qquad z_i=\mu+\sigma\odot\varepsilon_i\sim Q_w

    Only values of :math:`F` are needed (no derivative). Unbiased for ``baseline`` None, a number,
    or ``"loo"`` (leave-one-out mean); ``"mean"`` (the batch mean, which includes :math:`F(z_i)`)
    shrinks the expectation by the factor :math:`(n-1)/n`. In a deep-learning library the same
    estimate is the gradient of the surrogate :math:`\frac1n\sum_i (F_i-b_i)\log Q_w(z_i)` with
    :math:`F_i-b_i` detached.

    Args:
        F: ``(n, d) -> (n,)``, applied row by row. mu, logvar: ``(d,)``.
        n_samples: n (may be omitted when ``eps`` is given). eps: ``(n, d)`` standard normal noise
            (lets two estimators share their samples). generator: draws eps otherwise.
        baseline: None, a number, ``"mean"`` or ``"loo"``.
        per_sample: return the ``(n, d)`` per-sample terms instead of their mean ``(d,)``.
    Reference: Williams (1992); Mohamed et al. (2020), section 4.
    """
    d = _check_gaussian(mu, logvar)
    eps = _noise(n_samples, eps, "eps", d, lambda n: torch.randn(n, d, generator=generator, dtype=mu.dtype))
    return _reduce(_score_terms(F, mu.detach(), logvar.detach(), eps, baseline), per_sample)


def reparam_gradient(F: Callable[[Tensor], Tensor], mu: Tensor, logvar: Tensor, n_samples: int | None = None,
                     *, generator: torch.Generator | None = None, eps: Tensor | None = None,
                     per_sample: bool = False) -> GaussianGradient:
    r"""Reparameterisation (pathwise) estimate of :math:`\nabla_{(\mu,\log\sigma^2)}\mathbb E_Q[F]`.

    .. math:: \widehat{\nabla} = \frac1n\sum_{i=1}^n \nabla_w F(\mu+\sigma\odot\varepsilon_i),\qquad
              \frac{\partial z}{\partial\mu}=1,\quad \frac{\partial z}{\partial\log\sigma^2}=\tfrac12\sigma\odot\varepsilon

    Needs :math:`F` differentiable in :math:`z` (autograd does the chain rule). Arguments as in
    :func:`score_function_gradient`. Reference: Kingma & Welling (2014); Rezende et al. (2014).
    """
    d = _check_gaussian(mu, logvar)
    eps = _noise(n_samples, eps, "eps", d, lambda n: torch.randn(n, d, generator=generator, dtype=mu.dtype))
    return _reduce(_reparam_terms(F, mu, logvar, eps), per_sample)


# ---------------------------------------------------------------- categorical
def straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    r"""Forward value ``hard``, backward gradient of ``soft``: ``soft + (hard - soft).detach()``.

    Whatever gradient arrives at the output is passed unchanged to ``soft``; ``hard`` gets none.
    Used for one-hot samples here and for nearest-code quantisation in the VQ-VAE chapter.
    Reference: Bengio, Leonard & Courville (2013).
    """
    return soft + (hard - soft).detach()


def _check_logits(logits: Tensor) -> int:
    check.tensor("logits", logits, min_dim=1)
    if logits.dim() != 1 or logits.shape[0] < 2:
        raise ValueError(f"logits: got shape {tuple(logits.shape)}; need a vector (K,) with K >= 2 categories")
    return logits.shape[0]


def _draw_index(logits: Tensor, shape: tuple[int, ...], generator) -> Tensor:
    p = torch.softmax(logits.detach(), -1)
    return torch.multinomial(p, math.prod(shape), replacement=True, generator=generator).reshape(shape)


def _index(logits: Tensor, n_samples: int | None, index: Tensor | None, generator) -> Tensor:
    K = logits.shape[0]
    if index is None:
        if n_samples is None:
            raise ValueError("n_samples: got None and no index; give one of them")
        return _draw_index(logits, (check_positive_int("n_samples", n_samples),), generator)
    if not isinstance(index, Tensor) or index.dim() != 1 or index.dtype not in (torch.int64, torch.int32) \
            or bool(((index < 0) | (index >= K)).any()):
        raise ValueError(f"index: got {index!r}; need a (n,) integer tensor of categories in [0, {K})")
    if n_samples is not None and check_positive_int("n_samples", n_samples) != index.shape[0]:
        raise ValueError(f"n_samples: got {n_samples} but index has {index.shape[0]} entries; they must agree")
    return index.long()


def _gumbel(shape: tuple[int, ...], generator, dtype) -> Tensor:
    u = torch.rand(shape, generator=generator, dtype=dtype).clamp_(1e-12, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))                                   # Gumbel(0, 1)


def categorical_score(index: Tensor, logits: Tensor) -> Tensor:
    r"""Per-sample score :math:`\nabla_\theta \log\mathrm{softmax}(\theta)_k = e_k - \mathrm{softmax}(\theta)`, ``(..., K)``."""
    return Fn.one_hot(index, logits.shape[0]).to(logits.dtype) - torch.softmax(logits, -1)


def _cat_score_terms(F, logits: Tensor, index: Tensor, baseline: Baseline) -> CategoricalGradient:
    logits = logits.detach()
    z = Fn.one_hot(index, logits.shape[0]).to(logits.dtype)           # (..., n, K)
    with torch.no_grad():
        weight = _centre(_apply_F(F, z), baseline).unsqueeze(-1)       # (..., n, 1)
    return CategoricalGradient(weight * categorical_score(index, logits))


def _relaxed_terms(F, logits: Tensor, gumbel: Tensor | float, index: Tensor | None, temperature: float,
                   shape: tuple[int, ...]) -> CategoricalGradient:
    """Pathwise gradients through soft = softmax((logits + gumbel) / temperature); F sees
    straight_through(one_hot(index), soft) if ``index`` is given, else soft itself."""
    logits_rep = logits.detach().expand(*shape, logits.shape[0]).clone().requires_grad_(True)  # (..., n, K)
    with torch.enable_grad():
        soft = torch.softmax((logits_rep + gumbel) / temperature, -1)
        z = soft if index is None else straight_through(Fn.one_hot(index, logits.shape[0]).to(soft.dtype), soft)
        (grad,) = torch.autograd.grad(_apply_F(F, z).sum(), (logits_rep,))
    return CategoricalGradient(grad)


def score_function_gradient_categorical(F: Callable[[Tensor], Tensor], logits: Tensor, n_samples: int | None = None,
                                        *, baseline: Baseline = None, generator: torch.Generator | None = None,
                                        index: Tensor | None = None, per_sample: bool = False) -> CategoricalGradient:
    r"""Score-function estimate of :math:`\nabla_\theta\,\mathbb E_{z\sim\mathrm{Cat}(\mathrm{softmax}\,\theta)}[F(z)]`.

    .. math:: \widehat{\nabla} = \frac1n\sum_i \big(F(e_{k_i})-b_i\big)\big(e_{k_i}-\mathrm{softmax}(\theta)\big)

    Args:
        F: ``(n, K) -> (n,)`` evaluated at one-hot rows. logits: ``(K,)``.
        index: ``(n,)`` sampled categories (injectable); otherwise drawn with ``generator``.
        baseline, per_sample: as in :func:`score_function_gradient`.
    """
    _check_logits(logits)
    index = _index(logits, n_samples, index, generator)
    return _reduce(_cat_score_terms(F, logits, index, baseline), per_sample)


def straight_through_gradient_categorical(F: Callable[[Tensor], Tensor], logits: Tensor, n_samples: int | None = None,
                                          *, relaxation: str = "softmax", temperature: float = 1.0,
                                          generator: torch.Generator | None = None, index: Tensor | None = None,
                                          per_sample: bool = False) -> CategoricalGradient:
    r"""Straight-through estimate: :math:`F` sees the one-hot sample, the gradient flows through a soft version.

    ``relaxation="softmax"`` (Bengio et al. 2013): soft :math:`=\mathrm{softmax}(\theta/\tau)`; with
    :math:`\tau=1` the per-sample estimate is :math:`J_{\mathrm{softmax}}^\top \nabla_z F(e_{k_i})`:
    exact when :math:`F` is linear in :math:`z`, biased otherwise. ``relaxation="gumbel"``
    (straight-through Gumbel-softmax, Jang et al. 2017): soft :math:`=\mathrm{softmax}((\theta+g)/\tau)`
    with Gumbel noise :math:`g`, hard :math:`=e_{\arg\max(\theta+g)}` (an exact categorical sample).
    ``index`` (``(n,)``) is injectable for the softmax version only.
    """
    K = _check_logits(logits)
    temperature = _check_temperature(temperature)
    if relaxation == "softmax":
        index = _index(logits, n_samples, index, generator)
        return _reduce(_relaxed_terms(F, logits, 0.0, index, temperature, tuple(index.shape)), per_sample)
    if relaxation != "gumbel":
        raise ValueError(f"relaxation: got {relaxation!r}; need 'softmax' or 'gumbel'")
    if index is not None:
        raise ValueError("index: cannot be given with relaxation='gumbel' (the sample is argmax(logits + Gumbel noise))")
    n = check_positive_int("n_samples", n_samples)
    g = _gumbel((n, K), generator, logits.dtype)                       # (n, K)
    index = (logits.detach() + g).argmax(-1)                           # Gumbel-max: an exact Cat(softmax(logits)) draw
    return _reduce(_relaxed_terms(F, logits, g, index, temperature, (n,)), per_sample)


def gumbel_softmax_gradient_categorical(F: Callable[[Tensor], Tensor], logits: Tensor, n_samples: int,
                                        *, temperature: float = 0.5, generator: torch.Generator | None = None,
                                        per_sample: bool = False) -> CategoricalGradient:
    r"""Relaxed (Gumbel-softmax / Concrete) pathwise gradient: :math:`F` is evaluated at the soft sample
    :math:`\mathrm{softmax}((\theta+g)/\tau)`, so it is the exact gradient of a *different* objective,
    which tends to :math:`\mathbb E[F]` as :math:`\tau\to0` (while the variance grows).
    Reference: Jang et al. (2017); Maddison et al. (2017).
    """
    K = _check_logits(logits)
    temperature = _check_temperature(temperature)
    n = check_positive_int("n_samples", n_samples)
    g = _gumbel((n, K), generator, logits.dtype)
    return _reduce(_relaxed_terms(F, logits, g, None, temperature, (n,)), per_sample)


class CategoricalExact(NamedTuple):
    value: Tensor                  # () E[F] = softmax(theta) . g
    gradient: CategoricalGradient  # (K,)


def categorical_exact(F: Callable[[Tensor], Tensor], logits: Tensor) -> CategoricalExact:
    r"""Exact :math:`\mathbb E[F]=\sum_k p_k F(e_k)` and its gradient :math:`p\odot(g-p^\top g)`, :math:`g_k=F(e_k)`.

    A one-hot latent takes only K values, so the expectation is a finite sum: the ground truth the
    estimators are judged against.
    """
    K = _check_logits(logits)
    with torch.no_grad():
        g = _apply_F(F, torch.eye(K, dtype=logits.dtype))             # (K,)
    p = torch.softmax(logits.detach(), -1)
    value = (p * g).sum()
    return CategoricalExact(value, CategoricalGradient(p * (g - value)))


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
    ``1e-6 * (1 + |truth|)`` instead, so an exact one scores about 0 and a biased one scores huge."""
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
        return _reduce(_reparam_terms(F, mu, logvar, eps), False)
    baselines = {"score function": None, "score + baseline E[F]": "exact", "score + leave-one-out": "loo"}
    if method not in baselines:
        raise ValueError(f"methods: got {method!r}; need names from {METHODS}")
    baseline = baselines[method]
    if baseline == "exact":  # the true expectation: the ideal constant baseline (known for these problems)
        baseline = float(F.value(mu, logvar))
    return _reduce(_score_terms(F, mu, logvar, eps, baseline), False)


def compare_estimators(setup: Setup, n_samples: int, repeats: int, *, methods=METHODS, seed: int = 0,
                       keep_samples: bool = False) -> dict[str, EstimatorStats]:
    """Mean, variance and standard error of each method's n-sample estimate over ``repeats`` runs
    (every method starts from ``seed``)."""
    n_samples, repeats = check_positive_int("n_samples", n_samples), check_positive_int("repeats", repeats)
    _check_gaussian(setup.mu, setup.logvar)
    return {m: _summarise(_repeated(m, setup, n_samples, repeats, make_generator(seed)), keep_samples) for m in methods}


class VarianceSweep(NamedTuple):
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


def summary_table(results: dict[str, EstimatorStats], truth: Gradient, *, digits: int = 4):
    """A ``pandas.DataFrame`` with one row per method: the variance of one estimate (averaged over
    the gradient's components), the bias norm ``||mean - truth||`` with its Monte-Carlo error scale,
    and the largest ``|mean - truth| / stderr`` over the components (unbiased: below about 4)."""
    import pandas as pd

    rows = []
    for name, s in results.items():
        diff = torch.cat([(m - t).reshape(-1) for m, t in zip(s.mean, truth)])
        se = torch.cat([e.reshape(-1) for e in s.stderr])
        z = standardized_bias(s, truth)
        rows.append({"method": name, "variance": round(s.mean_variance(), digits),
                     "bias norm": round(float(diff.norm()), digits), "stderr norm": round(float(se.norm()), digits),
                     "max |z|": round(float(torch.cat([v.reshape(-1) for v in z]).abs().max()), 1)})
    return pd.DataFrame(rows).set_index("method")
