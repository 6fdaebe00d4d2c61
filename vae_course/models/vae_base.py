r"""The skeleton every VAE of the course shares: encoder :math:`q_w(z\mid x)`, prior :math:`p(z)`, decoder :math:`p_\theta(x\mid z)`.

:class:`VAEBase` owns what does not depend on the networks: the ELBO and its reweightings (the loss takes
``beta``, ``free_bits``, ``capacity`` and ``tc`` on every VAE, :mod:`vae_course.objectives`), the importance weights
of the IWAE bound, and Sample_VAE. A model differs from another only in its three parts:

* ``self.encoder``: images ``(B, C, H, W)`` -> a :class:`~vae_course.distributions.DiagonalGaussian` ``(B, m)``;
* ``self.prior``: a module of :mod:`vae_course.models.priors` (standard normal by default);
* ``decode(z)``: latents ``(..., B, m)`` -> a distribution over images with ``log_prob(x)`` ``(..., B)``,
  and ``generate(z, ...)``, which turns latents into images for :meth:`VAEBase.sample`.

.. math:: \mathrm{ELBO}(x) = \underbrace{\mathbb E_{q_w(z\mid x)}\big[\log p_\theta(x\mid z)\big]}_{\texttt{recon}}
          - \underbrace{\mathrm{KL}\big(q_w(z\mid x)\,\|\,p(z)\big)}_{\texttt{kl}} \le \log p_\theta(x)

The expectation is estimated with ``n_samples`` reparameterised draws :math:`z = \mu + \sigma\odot\varepsilon`;
the KL is the prior's closed form where it has one, else the Monte-Carlo average of
:math:`\log q(z\mid x) - \log p(z)` over the same draws.

Two hooks let a model change the posterior or the likelihood without copying the ELBO (chapter 9):

* ``posterior_draws(x, n_samples, generator)`` returns :class:`LatentDraws`: the latents to decode, their
  :math:`\log q(z\mid x)` and :math:`\log p(z)`, and the KL per latent coordinate where it is closed form. The
  default draws from the encoder's Gaussian; a flow posterior pushes the draws through its layers (and
  subtracts the log-determinants from :math:`\log q`), a hierarchical model draws its levels top-down.
* ``log_likelihood(x, z)``: :math:`\log p_\theta(x\mid z)`, by default ``decode(z).log_prob(x)``; a conditional
  model reads its label from ``x`` here.

The ELBO, the loss with every option, and the importance weights are written once, below, in terms of the two.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import _validate as check
from .. import distributions as D
from .. import objectives
from ..utils import check_positive_int
from .base import LossTerms

__all__ = ["ELBO", "LatentDraws", "VAEBase"]


class ELBO(NamedTuple):
    r"""Per-example terms ``(B,)`` in nats: ``recon`` :math:`\hat{\mathbb E}_q\log p(x\mid z)`, ``kl``,
    ``elbo = recon - kl`` and ``total`` (the objective that was maximised, :func:`~vae_course.objectives.beta_objective`);
    ``tc``: the minibatch total correlation (:func:`vae_course.tc.minibatch_tc`) when the ``tc`` option is used, else None."""

    recon: Tensor
    kl: Tensor
    elbo: Tensor
    total: Tensor
    tc: Tensor | None = None


class LatentDraws(NamedTuple):
    r"""What :meth:`VAEBase.posterior_draws` returns: ``z`` ``(..., B, m)``, the latents ``decode`` takes;
    ``log_q`` and ``log_p`` ``(..., B)``: :math:`\log q(z\mid x)` and :math:`\log p(z)` at those latents;
    ``kl_dims`` ``(B, m)``: the closed-form KL per coordinate (averaged over the draws), or None; ``q``: the
    diagonal-Gaussian posterior the draws came from, where there is one (the beta-TCVAE's estimate needs it)."""

    z: Tensor
    log_q: Tensor
    log_p: Tensor
    kl_dims: Tensor | None
    q: D.DiagonalGaussian | None = None


class VAEBase(nn.Module):
    """The shared skeleton (module doc). Subclasses set ``config`` (with ``x_shape``, ``z_dim``), ``encoder``,
    ``prior`` and implement ``decode(z)`` and ``generate(z, ...)``."""

    config: object
    encoder: nn.Module
    prior: nn.Module

    # ------------------------------------------------------------ the two halves
    def check_input(self, x: Tensor, name: str = "x") -> Tensor:
        """``x`` checked as this model's input and returned as images ``(B, C, H, W)`` (flat ``(B, C*H*W)`` is
        reshaped): at least one image, on the model's device, cast to its dtype, pixels in [0, 1] for Bernoulli
        pixels (finite values for a Gaussian decoder). :func:`vae_course.train.fit` calls it once on its data set."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"{name}: got {type(x).__name__}{'' if not isinstance(x, Tensor) else ' of dtype ' + str(x.dtype)}; "
                            "need a floating torch.Tensor of images")
        shape = tuple(self.config.x_shape)
        x_dim = shape[0] * shape[1] * shape[2]
        if x.dim() == 2 and x.shape[1] == x_dim:
            x = x.reshape(-1, *shape)
        elif x.dim() != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"{name}: got shape {tuple(x.shape)}; need (B, {', '.join(map(str, shape))}) or (B, {x_dim})")
        check.non_empty(name, x, "image")
        if check.in_checked_data():  # a batch of fit's data set: checked, moved and cast once
            return x
        x = check.like(name, x, check.first_parameter(self))
        if getattr(self.config, "likelihood", "bernoulli") == "bernoulli":
            return check.pixels(name, x)  # Bernoulli pixels: probabilities in [0, 1]
        return check.tensor(name, x)

    def _images(self, x: Tensor) -> Tensor:
        return self.check_input(x)

    def encode(self, x: Tensor) -> D.DiagonalGaussian:
        r""":math:`q_w(z\mid x)`: a :class:`~vae_course.distributions.DiagonalGaussian` with ``mu``, ``logvar`` ``(B, m)``."""
        return self.encoder(self._images(x))

    def decode(self, z: Tensor):
        raise NotImplementedError

    def generate(self, z: Tensor, *, generator: torch.Generator | None = None, **kwargs) -> Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------ the objective
    def posterior_draws(self, x: Tensor, n_samples: int | None = None, *,
                        generator: torch.Generator | None = None) -> LatentDraws:
        r"""The hook for the posterior: ``n_samples`` draws :math:`z\sim q(z\mid x)` (None: one draw, ``(B, m)``; an int
        S: ``(S, B, m)``) for images ``x`` ``(B, C, H, W)``, with :math:`\log q`, :math:`\log p` and the closed-form KL
        per coordinate where the prior has one. The default is the encoder's reparameterised Gaussian."""
        q = self.encoder(x)
        z = q.sample(n_samples, generator=generator)
        return LatentDraws(z, q.log_prob(z), self.prior.log_prob(z), self.prior.kl(q, per_dimension=True), q)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        r"""The hook for the likelihood: :math:`\log p_\theta(x\mid z)` for latents ``(..., B, m)``: ``(..., B)``."""
        return self.decode(z).log_prob(x)

    def elbo(self, x: Tensor, beta: float = 1.0, n_samples: int = 1, *, free_bits: float = 0.0,
             free_bits_group: int = 1, capacity: float | None = None, tc: float | None = None,
             dataset_size: int | None = None, generator: torch.Generator | None = None) -> ELBO:
        r"""Per-example ELBO terms for a batch ``x`` ``(B, C, H, W)``; ``n_samples`` draws of :math:`z` per example.
        ``beta``, ``free_bits`` (with ``free_bits_group``), ``capacity`` and ``tc`` (the beta-TCVAE's weight on the
        total correlation, estimated on the batch drawn from ``dataset_size`` images, :func:`vae_course.tc.minibatch_tc`)
        choose ``total`` (:func:`~vae_course.objectives.beta_objective`); ``recon``, ``kl`` and ``elbo`` are always
        the true terms."""
        x = self._images(x)
        draws = self.posterior_draws(x, None if n_samples == 1 else check_positive_int("n_samples", n_samples),
                                     generator=generator)
        recon = self.log_likelihood(x, draws.z)  # (B,) or (S, B)
        if n_samples != 1:
            recon = recon.mean(0)
        kl_dims = draws.kl_dims  # (B, m) or None
        if kl_dims is not None:
            kl = kl_dims.sum(-1)
        else:  # no closed form: the Monte-Carlo mean of log q(z|x) - log p(z) over the same draws
            log_ratio = draws.log_q - draws.log_p  # (B,) or (S, B)
            kl = log_ratio if log_ratio.dim() == 1 else log_ratio.mean(0)
        tc_estimate = None
        if tc is not None:
            if draws.q is None:
                raise ValueError(f"tc: got {tc!r}; the total-correlation estimate needs a diagonal-Gaussian posterior, and "
                                 f"{type(self).__name__}'s posterior_draws gives none")
            tc_estimate = objectives.total_correlation(draws.z, draws.q.mu, draws.q.logvar, dataset_size=dataset_size)
        total = objectives.beta_objective(recon, kl, kl_dims, beta=beta, free_bits=free_bits,
                                          free_bits_group=free_bits_group, capacity=capacity, tc=tc,
                                          tc_estimate=tc_estimate)
        return ELBO(recon, kl, recon - kl, total, tc_estimate)

    def loss(self, x: Tensor, beta: float = 1.0, n_samples: int = 1, free_bits: float = 0.0, free_bits_group: int = 1,
             capacity: float | None = None, tc: float | None = None, dataset_size: int | None = None) -> LossTerms:
        r"""The :func:`~vae_course.train.fit` protocol: the scalar to minimise (:func:`~vae_course.objectives.training_loss`)
        and the batch means of ``loss``, ``elbo``, ``recon`` and ``kl`` for the history (and ``tc`` with that option)."""
        t = self.elbo(x, beta=beta, n_samples=n_samples, free_bits=free_bits, free_bits_group=free_bits_group,
                      capacity=capacity, tc=tc, dataset_size=dataset_size)
        loss = objectives.training_loss(t.recon, t.kl, t.total, beta=beta, capacity=capacity)
        terms = {"loss": loss, "elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean()}
        if t.tc is not None:
            terms["tc"] = t.tc.mean()
        return LossTerms(loss, terms)

    def forward(self, x: Tensor) -> ELBO:
        return self.elbo(x)

    def log_weights(self, x: Tensor, k: int, *, generator: torch.Generator | None = None) -> Tensor:
        r"""Importance log-weights :math:`\log p(x\mid z_i) + \log p(z_i) - \log q(z_i\mid x)`, :math:`z_i\sim q`:
        ``(k, B)``. Their log-mean-exp is the IWAE bound (:func:`vae_course.evaluate.log_likelihood`)."""
        x = self._images(x)
        draws = self.posterior_draws(x, check_positive_int("k", k), generator=generator)  # z: (k, B, m)
        return self.log_likelihood(x, draws.z) + draws.log_p - draws.log_q

    # ------------------------------------------------------------ generation
    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, generator: torch.Generator | None = None, **kwargs) -> Tensor:
        r"""Sample_VAE: :math:`z\sim p(z)` (or the given ``z`` ``(n, m)``), then images from the decoder
        (:meth:`generate`; keyword arguments go there). Returns ``(n, C, H, W)``."""
        n = check_positive_int("n", n)
        device = next(self.parameters()).device
        if z is None:
            z = self.prior.sample(n, generator=generator)
        elif not isinstance(z, Tensor) or tuple(z.shape) != (n, self.config.z_dim):
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"z: got {got}; need latents of shape ({n}, {self.config.z_dim}), one row per sample")
        else:
            check.tensor("z", z)
        return self.generate(z.to(device), generator=generator, **kwargs)
