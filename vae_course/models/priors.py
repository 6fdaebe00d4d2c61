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
(Tomczak & Welling, 2018, compare such learned priors). :class:`VampPrior` is Tomczak & Welling's "variational
mixture of posteriors": an equal mixture of the encoder's own posteriors at :math:`K` learned pseudo-inputs
:math:`u_k`, :math:`p(z) = \frac1K\sum_k q_w(z\mid u_k)`, so the prior follows the encoder (chapter 9). Swapping the
prior is one argument: ``VAE(prior="mixture", prior_components=10)``, ``VAE(prior="vamp", prior_components=50)``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import distributions as D
from ..utils import check_positive_int

__all__ = ["StandardNormalPrior", "MixturePrior", "VampPrior", "equal_mixture_log_prob", "PRIORS", "build_prior"]

PRIORS = ("standard", "mixture", "vamp")
PSEUDO_INPUT_RANGE = (0.02, 0.98)  # VampPrior.init_from clips pixels into it, so the pseudo-inputs' logits are finite


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


def equal_mixture_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    r"""Log-density of an equal mixture of :math:`K` diagonal Gaussians, the VampPrior's formula:

    .. math:: \log p(z) = \log\frac1K\sum_{k=1}^K\mathcal N\big(z;\,\mu_k,\,\mathrm{diag}\,\sigma_k^2\big)
              = \operatorname{logsumexp}_k \log\mathcal N(z;\mu_k,\sigma_k^2) - \log K

    Args: ``z`` ``(..., m)``; ``mu``, ``logvar`` ``(K, m)``. Returns ``(...)``, nats.
    """
    log_comp = D.log_normal_diag(z.unsqueeze(-2), mu, logvar, validate=False)  # (..., K)
    return D.log_mean_exp(log_comp, dim=-1)


class VampPrior(nn.Module):
    r"""The VampPrior (Tomczak & Welling, 2018): :math:`p(z) = \frac1K\sum_{k=1}^K q_w(z\mid u_k)`.

    The :math:`K` pseudo-inputs :math:`u_k` are images ``(K, C, H, W)`` with pixels :math:`\mathrm{sigmoid}(a_k)` in
    (0, 1), learned with the rest of the model; the components are the model's **own encoder** applied to them, so
    the prior moves with the encoder towards the aggregate posterior :math:`\frac1N\sum_n q_w(z\mid x_n)`, the prior
    that maximises the ELBO averaged over the data. ``encoder`` is a reference, not a submodule: the model owns it
    and saves its weights once; the prior's own state is the pseudo-inputs' logits ``a`` (rebuilt from the model's
    config). ``kl`` returns None (no closed form). :meth:`init_from` starts the pseudo-inputs at data images.
    """

    def __init__(self, encoder: nn.Module, x_shape: tuple[int, int, int], n_components: int = 50, *, seed: int = 0):
        super().__init__()
        if not callable(encoder) or not isinstance(getattr(encoder, "z_dim", None), int):
            raise TypeError(f"encoder: got {type(encoder).__name__}; need the model's encoder (a module with an int "
                            "z_dim that returns a DiagonalGaussian)")
        self._encoder = (encoder,)  # a tuple: nn.Module does not register it, so its weights are not saved twice
        self.z_dim = encoder.z_dim
        self.x_shape = tuple(x_shape)
        k = check_positive_int("n_components", n_components)
        g = torch.Generator().manual_seed(seed)
        self.pseudo_logits = nn.Parameter(0.1 * torch.randn(k, *self.x_shape, generator=g))  # (K, C, H, W)

    @property
    def encoder(self) -> nn.Module:
        """The model's encoder :math:`q_w(z\\mid x)` that the components are made of."""
        return self._encoder[0]

    @property
    def n_components(self) -> int:
        return self.pseudo_logits.shape[0]

    @property
    def pseudo_inputs(self) -> Tensor:
        """The pseudo-inputs :math:`u_k = \\mathrm{sigmoid}(a_k)`: ``(K, C, H, W)``."""
        return torch.sigmoid(self.pseudo_logits)

    def components(self) -> D.DiagonalGaussian:
        """The mixture's components :math:`q_w(z\\mid u_k)`: ``mu``, ``logvar`` ``(K, m)``."""
        return self.encoder(self.pseudo_inputs)

    @torch.no_grad()
    def init_from(self, x: Tensor) -> "VampPrior":
        """Set the pseudo-inputs to the first K images of ``x`` ``(N >= K, C, H, W)`` (clipped into (0, 1)); returns self."""
        k = self.n_components
        if x.dim() != 4 or tuple(x.shape[1:]) != self.x_shape or x.shape[0] < k:
            raise ValueError(f"x: got shape {tuple(x.shape)}; need at least {k} images of shape {self.x_shape}")
        self.pseudo_logits.copy_(torch.logit(x[:k].to(self.pseudo_logits).clamp(*PSEUDO_INPUT_RANGE)))
        return self

    def log_prob(self, z: Tensor) -> Tensor:
        """``(..., m)`` -> ``(...)``, nats (:func:`equal_mixture_log_prob` of the components)."""
        q = self.components()
        return equal_mixture_log_prob(z, q.mu, q.logvar)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Ancestral draws ``(n, m)``: a pseudo-input :math:`k` uniformly, then :math:`z\\sim q_w(z\\mid u_k)`."""
        n = check_positive_int("n", n)
        with torch.no_grad():
            q = self.components()
            dev = generator.device if generator is not None else q.mu.device
            k = torch.randint(self.n_components, (n,), generator=generator, device=dev).to(q.mu.device)  # (n,)
            return D.reparameterize(q.mu[k], q.logvar[k], eps=_draw((n, self.z_dim), generator, q.mu))

    def kl(self, q: D.DiagonalGaussian, *, per_dimension: bool = False) -> None:
        """No closed form for a mixture: None tells the ELBO to estimate the KL by Monte Carlo."""
        return None

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, n_components={self.n_components}, x_shape={self.x_shape}"


def build_prior(kind: str, z_dim: int, *, n_components: int = 10, encoder: nn.Module | None = None,
                x_shape: tuple[int, int, int] | None = None) -> nn.Module:
    """The prior named ``kind`` (one of :data:`PRIORS`) for ``z_dim`` latents; ``"vamp"`` also needs the model's
    ``encoder`` and the image shape ``x_shape`` of its pseudo-inputs."""
    if kind == "standard":
        return StandardNormalPrior(z_dim)
    if kind == "mixture":
        return MixturePrior(z_dim, n_components)
    if kind == "vamp":
        if encoder is None or x_shape is None:
            raise ValueError("prior: 'vamp' needs the model's encoder and x_shape (build_prior(..., encoder=, x_shape=))")
        if getattr(encoder, "z_dim", z_dim) != z_dim:
            raise ValueError(f"encoder: has z_dim {encoder.z_dim}; need the prior's z_dim {z_dim}")
        return VampPrior(encoder, x_shape, n_components)
    raise ValueError(f"prior: got {kind!r}; need one of {PRIORS}")
