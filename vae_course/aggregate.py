r"""Does the encoder's average over the data match the prior? The aggregate posterior (chapter 5).

Sampling a VAE draws :math:`z\sim p(z)` and decodes it, but the decoder was trained on codes drawn from the
encoder, that is from the **aggregate posterior** of the training data,

.. math:: q(z) = \mathbb E_{x\sim p_{\text{data}}}\,q(z\mid x) \approx \frac1N\sum_{n=1}^N q(z\mid x_n).

If the model were exact, :math:`q(z\mid x)` would be the true posterior and :math:`q(z)` would equal :math:`p(z)`
(average Bayes' rule over the data: :math:`\int p(z\mid x)\,p(x)\,dx = p(z)` when the data follow the model). The
ELBO asks for it only indirectly: its average KL term splits into
:math:`\mathbb E_x\mathrm{KL}(q(z\mid x)\,\|\,p(z)) = I_q(x; z) + \mathrm{KL}(q(z)\,\|\,p(z))` (Hoffman & Johnson,
2016), and a model that stores information in :math:`z` pays the first term no matter what. Where :math:`q(z)` and
:math:`p(z)` differ, prior draws land where the decoder saw few codes (holes), and codes sit where the prior
rarely goes. :func:`prior_gap` measures both directions on a set of images, with :math:`q(z)` the mixture of their
N posteriors:

* :math:`\mathrm{KL}(q(z)\,\|\,p(z)) = \mathbb E_{q(z)}[\log q(z) - \log p(z)]`: codes outside the prior;
* :math:`\mathrm{KL}(p(z)\,\|\,q(z)) = \mathbb E_{p(z)}[\log p(z) - \log q(z)]`: prior mass without codes;
* the **empty prior mass** :math:`P_{z\sim p}\big[q(z) < \tau\,p(z)\big]`: the share of prior draws that land where
  codes are at least :math:`1/\tau` times rarer than the prior says (:math:`\tau = 0.1` by default).

Each is a Monte-Carlo average over ``n_samples`` draws with :math:`\log q(z)` computed exactly as a log-mean-exp over
the N components. Learned priors (a mixture, the VampPrior) replace :math:`p(z)` by something closer to
:math:`q(z)` (the next chapters).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .distributions import log_mean_exp, log_normal_diag
from .utils import check_positive_int

__all__ = ["aggregate_log_density", "PriorGap", "prior_gap"]


def aggregate_log_density(z: Tensor, mu: Tensor, logvar: Tensor, *, chunk: int = 1024) -> Tensor:
    r""":math:`\log q(z) = \log\frac1N\sum_n\mathcal N(z;\mu_n,\mathrm{diag}\,e^{\ell_n})` for query points
    ``z`` ``(S, m)`` and the N posteriors ``mu``, ``logvar`` ``(N, m)``: ``(S,)``, in float64, ``chunk`` query points at a time."""
    if mu.dim() != 2 or mu.shape != logvar.shape or z.dim() != 2 or z.shape[1] != mu.shape[1]:
        raise ValueError(f"z, mu, logvar: got shapes {tuple(z.shape)}, {tuple(mu.shape)}, {tuple(logvar.shape)}; "
                         "need z (S, m) and mu, logvar (N, m)")
    mu, logvar, z = mu.double(), logvar.double(), z.double()
    out = [log_mean_exp(log_normal_diag(z[i:i + chunk, None, :], mu[None], logvar[None], validate=False), dim=1)
           for i in range(0, len(z), check_positive_int("chunk", chunk))]  # each (chunk, N) -> (chunk,)
    return torch.cat(out)


class PriorGap(NamedTuple):
    """What :func:`prior_gap` returns (nats, and a share): ``kl_aggregate_prior`` :math:`\\mathrm{KL}(q(z)\\|p(z))`,
    ``kl_prior_aggregate`` :math:`\\mathrm{KL}(p(z)\\|q(z))`, ``empty_prior_mass`` :math:`P_p[q(z) < \\tau p(z)]`,
    ``threshold`` :math:`\\tau`, ``n_images`` N and ``n_samples``."""

    kl_aggregate_prior: float
    kl_prior_aggregate: float
    empty_prior_mass: float
    threshold: float
    n_images: int
    n_samples: int


@torch.no_grad()
def prior_gap(model: nn.Module, x: Tensor, *, n_samples: int = 4000, threshold: float = 0.1,
              generator: torch.Generator | None = None, batch_size: int = 1000) -> PriorGap:
    r"""How far the aggregate posterior of the images ``x`` ``(N, C, H, W)`` is from ``model.prior``, both ways.

    Uses ``model.encode(x)`` (a diagonal Gaussian) and ``model.prior`` (``log_prob``, ``sample``), so it works for
    every VAE of the course. ``n_samples`` draws from each of :math:`q(z)` and :math:`p(z)`; the estimates have a
    Monte-Carlo standard error of a few hundredths of a nat at the default for a 2-D latent. Deterministic given
    ``generator`` (a CPU generator).
    """
    n_samples = check_positive_int("n_samples", n_samples)
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ValueError(f"threshold: got {threshold!r}; need a positive density ratio such as 0.1")
    model.eval()
    device = next(model.parameters()).device
    mus, lvs = [], []
    for i in range(0, len(x), check_positive_int("batch_size", batch_size)):
        q = model.encode(x[i:i + batch_size].to(device))
        mus.append(q.mu.double().cpu())
        lvs.append(q.logvar.double().cpu())
    mu, logvar = torch.cat(mus), torch.cat(lvs)  # (N, m) each
    if len(mu) < 2:
        raise ValueError(f"x: got {len(mu)} image(s); need at least 2 for an aggregate posterior")
    # z ~ q(z): pick a component uniformly, then draw from it
    pick = torch.randint(len(mu), (n_samples,), generator=generator)
    eps = torch.randn(n_samples, mu.shape[1], generator=generator, dtype=torch.float64)
    z_q = mu[pick] + torch.exp(0.5 * logvar[pick]) * eps  # (S, m)
    z_p = model.prior.sample(n_samples, generator=generator).double().cpu()  # (S, m)
    log_prior = lambda z: model.prior.log_prob(z.to(device, torch.float32)).double().cpu()  # noqa: E731
    kl_qp = float((aggregate_log_density(z_q, mu, logvar) - log_prior(z_q)).mean())
    log_ratio = aggregate_log_density(z_p, mu, logvar) - log_prior(z_p)  # (S,): log q(z) - log p(z) at prior draws
    return PriorGap(kl_qp, float(-log_ratio.mean()), float((log_ratio < math.log(threshold)).double().mean()),
                    float(threshold), len(mu), n_samples)
