r"""Priors :math:`p(z)` over a VAE's latents: the one seam through which a model's prior is chosen.

Every VAE of the course holds its prior as ``model.prior``, a module with

* ``log_prob(z)``: :math:`\log p(z)` for latents ``(..., m)`` -> ``(...)`` (the importance weights of the IWAE bound);
* ``sample(n, generator=None)``: ``(n, m)`` draws (Sample_VAE, latent maps, the collapse tests);
* ``kl(q, per_dimension=False)``: the closed-form :math:`\mathrm{KL}(q(z\mid x)\,\|\,p(z))` for a diagonal-Gaussian
  posterior ``q`` (:class:`~vae_course.distributions.DiagonalGaussian`), or ``None`` when there is no closed form:
  the ELBO then estimates the KL by Monte Carlo from the same draws of :math:`z` as the reconstruction term.

:class:`StandardNormalPrior` is :math:`\mathcal N(0, I_m)`, the default and the only place the course writes
:math:`\mathcal N(0, I)` for a VAE. :class:`MixturePrior` is a learnable mixture of :math:`K` diagonal Gaussians,
:math:`p(z) = \sum_k \pi_k \mathcal N(z; m_k, \mathrm{diag}\,s_k^2)`, which has no closed-form KL to a Gaussian
(Tomczak & Welling, 2018, compare such learned priors). Swapping the prior is one argument:
``VAE(prior="mixture", prior_components=10)``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import distributions as D
from ..utils import check_positive_int

__all__ = ["StandardNormalPrior", "MixturePrior", "PRIORS", "build_prior"]

PRIORS = ("standard", "mixture")


def _draw(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Standard-normal noise drawn on ``generator``'s device (CPU generators work for GPU models), moved to ``like``."""
    dev = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


class StandardNormalPrior(nn.Module):
    r""":math:`p(z) = \mathcal N(0, I_m)`: no parameters; the KL to a diagonal Gaussian is closed form."""

    def __init__(self, z_dim: int):
        super().__init__()
        self.z_dim = check_positive_int("z_dim", z_dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # follows .to(device); not saved

    def log_prob(self, z: Tensor) -> Tensor:
        r""":math:`-\tfrac12\big(m\log 2\pi + \|z\|^2\big)`: ``(..., m)`` -> ``(...)``."""
        return D.log_normal_std(z, validate=False)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws ``(n, m)`` on the prior's device."""
        return _draw((check_positive_int("n", n), self.z_dim), generator, self._anchor)

    def kl(self, q: D.DiagonalGaussian, *, per_dimension: bool = False) -> Tensor:
        r""":math:`\mathrm{KL}(q\,\|\,\mathcal N(0, I)) = \tfrac12\sum_j(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)`: ``(B,)``,
        or its ``m`` terms ``(B, m)`` with ``per_dimension``."""
        return D.kl_normal_std(q.mu, q.logvar, per_dimension=per_dimension, validate=False)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}"


class MixturePrior(nn.Module):
    r"""A learnable mixture of ``n_components`` diagonal Gaussians, trained with the rest of the VAE.

    .. math:: \log p(z) = \operatorname{logsumexp}_k\big(\log\pi_k + \log\mathcal N(z;\, m_k,\, \mathrm{diag}\, e^{\ell_k})\big)

    The means start spread out (standard-normal draws from ``seed``), the variances at 1 and the weights equal,
    so at initialisation it is close to a broadened :math:`\mathcal N(0, I)`. ``kl`` returns None (no closed form).
    """

    def __init__(self, z_dim: int, n_components: int = 10, *, seed: int = 0):
        super().__init__()
        self.z_dim = check_positive_int("z_dim", z_dim)
        k = check_positive_int("n_components", n_components)
        g = torch.Generator().manual_seed(seed)
        self.means = nn.Parameter(torch.randn(k, self.z_dim, generator=g))  # (K, m)
        self.logvars = nn.Parameter(torch.zeros(k, self.z_dim))  # (K, m)
        self.logits = nn.Parameter(torch.zeros(k))  # (K,): mixture weights softmax(logits)

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def log_prob(self, z: Tensor) -> Tensor:
        """``(..., m)`` -> ``(...)``, nats."""
        log_comp = D.log_normal_diag(z.unsqueeze(-2), self.means, self.logvars, validate=False)  # (..., K)
        return torch.logsumexp(torch.log_softmax(self.logits, -1) + log_comp, dim=-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Ancestral draws ``(n, m)``: a component :math:`k\\sim\\pi`, then :math:`z\\sim\\mathcal N(m_k, s_k^2)`."""
        n = check_positive_int("n", n)
        with torch.no_grad():
            probs = torch.softmax(self.logits, -1)
            dev = generator.device if generator is not None else probs.device
            k = torch.multinomial(probs.to(dev), n, replacement=True, generator=generator).to(probs.device)  # (n,)
            return D.reparameterize(self.means[k], self.logvars[k], eps=_draw((n, self.z_dim), generator, self.means),
                                    validate=False)

    def kl(self, q: D.DiagonalGaussian, *, per_dimension: bool = False) -> None:
        """No closed form for a mixture: None tells the ELBO to estimate the KL by Monte Carlo."""
        return None

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, n_components={self.n_components}"


def build_prior(kind: str, z_dim: int, *, n_components: int = 10) -> nn.Module:
    """The prior named ``kind`` (one of :data:`PRIORS`) for ``z_dim`` latents."""
    if kind == "standard":
        return StandardNormalPrior(z_dim)
    if kind == "mixture":
        return MixturePrior(z_dim, n_components)
    raise ValueError(f"prior: got {kind!r}; need one of {PRIORS}")
