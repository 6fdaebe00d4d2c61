r"""Gradient estimators for a categorical latent :math:`z\sim\mathrm{Cat}(\mathrm{softmax}(\ell))`, one-hot (chapter 4).

No reparameterisation exists: the score function still works, straight-through (Bengio et al. 2013; with
Gumbel noise, Jang et al. 2017, Maddison et al. 2017) trades a bias for a low variance, and
:func:`categorical_exact` gives the true gradient as a finite sum. :func:`straight_through` is the one-line trick
reused by the VQ-VAE chapter.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as Fn
from torch import Tensor

from .. import _validate as check
from ..utils import check_positive_int
from .core import Baseline, CategoricalGradient, _apply_F, _centre, _check_temperature, _reduce

__all__ = ["straight_through", "categorical_score", "score_function_gradient_categorical",
           "straight_through_gradient_categorical", "gumbel_softmax_gradient_categorical", "CategoricalExact",
           "categorical_exact"]


def straight_through(hard: Tensor, soft: Tensor, *, validate: bool = True) -> Tensor:
    r"""Forward value ``hard``, backward gradient of ``soft``: ``soft + (hard - soft).detach()``.

    Whatever gradient arrives at the output is passed unchanged to ``soft``; ``hard`` gets none.
    Used for one-hot samples here and for nearest-code quantisation in the VQ-VAE chapter.
    Reference: Bengio, Leonard & Courville (2013). ``hard``, ``soft``: floating, finite, the same shape.
    """
    if validate:
        check.tensor("hard", hard)
        check.tensor("soft", soft)
        if hard.shape != soft.shape:
            raise ValueError(f"hard, soft: got shapes {tuple(hard.shape)} and {tuple(soft.shape)}; need the same shape")
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
    r"""Per-sample score :math:`\nabla_\ell \log\mathrm{softmax}(\ell)_k = e_k - \mathrm{softmax}(\ell)`, ``(..., K)``.

    ``index``: integer categories ``(...)`` in ``[0, K)``; ``logits``: ``(K,)``."""
    K = _check_logits(logits)
    check.index_tensor("index", index, K)
    return _score(index, logits)


def _score(index: Tensor, logits: Tensor) -> Tensor:
    return Fn.one_hot(index, logits.shape[0]).to(logits.dtype) - torch.softmax(logits, -1)


def _cat_score_terms(F, logits: Tensor, index: Tensor, baseline: Baseline) -> CategoricalGradient:
    logits = logits.detach()
    z = Fn.one_hot(index, logits.shape[0]).to(logits.dtype)           # (..., n, K)
    with torch.no_grad():
        weight = _centre(_apply_F(F, z), baseline).unsqueeze(-1)       # (..., n, 1)
    return CategoricalGradient(weight * _score(index, logits))


def _relaxed_terms(F, logits: Tensor, gumbel: Tensor | float, index: Tensor | None, temperature: float,
                   shape: tuple[int, ...]) -> CategoricalGradient:
    """Pathwise gradients through soft = softmax((logits + gumbel) / temperature); F sees
    straight_through(one_hot(index), soft) if ``index`` is given, else soft itself."""
    logits_rep = logits.detach().expand(*shape, logits.shape[0]).clone().requires_grad_(True)  # (..., n, K)
    with torch.enable_grad():
        soft = torch.softmax((logits_rep + gumbel) / temperature, -1)
        z = soft if index is None else straight_through(Fn.one_hot(index, logits.shape[0]).to(soft.dtype), soft,
                                                        validate=False)
        (grad,) = torch.autograd.grad(_apply_F(F, z).sum(), (logits_rep,))
    return CategoricalGradient(grad)


def score_function_gradient_categorical(F: Callable[[Tensor], Tensor], logits: Tensor, n_samples: int | None = None,
                                        *, baseline: Baseline = None, generator: torch.Generator | None = None,
                                        index: Tensor | None = None, per_sample: bool = False) -> CategoricalGradient:
    r"""Score-function estimate of :math:`\nabla_\ell\,\mathbb E_{z\sim\mathrm{Cat}(\mathrm{softmax}\,\ell)}[F(z)]`.

    .. math:: \widehat{\nabla} = \frac1n\sum_i \big(F(e_{k_i})-b_i\big)\big(e_{k_i}-\mathrm{softmax}(\ell)\big)

    Args:
        F: ``(n, K) -> (n,)`` evaluated at one-hot rows. logits: ``(K,)``.
        index: ``(n,)`` sampled categories (injectable); otherwise drawn with ``generator``.
        baseline, per_sample: as in :func:`~vae_course.estimators.gaussian.score_function_gradient`.
    """
    _check_logits(logits)
    index = _index(logits, n_samples, index, generator)
    return _reduce(_cat_score_terms(F, logits, index, baseline), per_sample)


def straight_through_gradient_categorical(F: Callable[[Tensor], Tensor], logits: Tensor, n_samples: int | None = None,
                                          *, relaxation: str = "softmax", temperature: float = 1.0,
                                          generator: torch.Generator | None = None, index: Tensor | None = None,
                                          per_sample: bool = False) -> CategoricalGradient:
    r"""Straight-through estimate: :math:`F` sees the one-hot sample, the gradient flows through a soft version.

    ``relaxation="softmax"`` (Bengio et al. 2013): soft :math:`=\mathrm{softmax}(\ell/\tau)`; with
    :math:`\tau=1` the per-sample estimate is :math:`J_{\mathrm{softmax}}^\top \nabla_z F(e_{k_i})`:
    exact when :math:`F` is linear in :math:`z`, biased otherwise. ``relaxation="gumbel"``
    (straight-through Gumbel-softmax, Jang et al. 2017): soft :math:`=\mathrm{softmax}((\ell+g)/\tau)`
    with Gumbel noise :math:`g`, hard :math:`=e_{\arg\max(\ell+g)}` (an exact categorical sample).
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
    :math:`\mathrm{softmax}((\ell+g)/\tau)`, so it is the exact gradient of a *different* objective,
    which tends to :math:`\mathbb E[F]` as :math:`\tau\to0` (while the variance grows).
    Reference: Jang et al. (2017); Maddison et al. (2017).
    """
    K = _check_logits(logits)
    temperature = _check_temperature(temperature)
    n = check_positive_int("n_samples", n_samples)
    g = _gumbel((n, K), generator, logits.dtype)
    return _reduce(_relaxed_terms(F, logits, g, None, temperature, (n,)), per_sample)


class CategoricalExact(NamedTuple):
    """The exact expectation ``value`` :math:`\\mathbb E[F]` and its ``gradient`` w.r.t. the logits."""

    value: Tensor                  # () E[F] = softmax(logits) . g
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
