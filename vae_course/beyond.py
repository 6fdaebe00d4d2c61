r"""Chapter 9's measurements: the gaps and gains of the four extensions of the VAE, in nats.

* **Richer posteriors.** :func:`linear_gaussian_vae` turns chapter 3's linear-Gaussian model into a VAE whose decoder
  is the model itself (frozen) and whose encoder starts at the best diagonal :math:`q`
  (:func:`vae_course.inference.mean_field_optimum`), with or without flow layers (:class:`~vae_course.models.FlowVAE`);
  :func:`fit_posterior` trains only the posterior; :func:`bound_terms` estimates the ELBO (with its standard error)
  and the IWAE bound from the same importance weights, to be compared with the exact :math:`\log p(x)`.
* **Learned priors.** :func:`prior_hole` compares the **aggregate posterior**
  :math:`q(z) = \frac1N\sum_n q(z\mid x_n)` with the prior by Monte Carlo: :math:`\mathrm{KL}(q\,\|\,p)`, the
  reverse :math:`\mathrm{KL}(p\,\|\,q)`, and the prior mass that the codes leave empty,
  :math:`\int\big(p(z) - q(z)\big)_+\,dz = \mathbb E_{p}\big[(1 - q(z)/p(z))_+\big]` (the total-variation distance).
* **Hierarchies.** :func:`parameter_count` and :func:`one_level_hidden` (a one-level VAE with a given number of
  parameters), for comparisons at equal size.
* **Conditioning.** :func:`analogies` (one :math:`z`, every label), :func:`label_bounds` (the bound on
  :math:`\log p(x\mid y)` for every label, hence :math:`\log p(x)` and :math:`p(y\mid x)`) and :func:`inpaint` (Rezende et al., 2014: fill
  the unobserved pixels by alternating :math:`z\sim q(z\mid x)` and :math:`x_{\mathrm{missing}}\sim p(x\mid z)`);
  :func:`classifier_confidence` is a rough stand-in for sample quality (how sure a digit classifier is).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _validate as check
from .discriminative import predict
from .distributions import log_mean_exp, reparameterize
from .evaluate import encode_all, log_weights
from .inference import mean_field_optimum
from .linear_gaussian import LinearGaussianModel
from .models import BernoulliPixels, ConditionalVAE, FlowVAE, VAE, equal_mixture_log_prob, pack
from .train import History, fit
from .utils import check_positive_int, stored_file

__all__ = ["linear_gaussian_vae", "fit_posterior", "posterior_samples", "BoundTerms", "bound_terms", "LatentGrid",
           "latent_grid", "PriorHole", "prior_hole", "prior_hole_terms", "aggregate_log_density", "parameter_count",
           "one_level_hidden", "load_hierarchy_study", "HIERARCHY_PATH", "analogies", "label_bounds", "inpaint",
           "top_half", "classifier_confidence"]

HIERARCHY_PATH = str(stored_file("ch09_hierarchy.json"))  # `vae-course hierarchy-sweep`: chapter 9's stored study
STEPS_PER_EPOCH = 25  # fit_posterior repeats the points so that fit's per-epoch bookkeeping runs once per 25 steps


# ---------------------------------------------------------------- richer posteriors on chapter 3's model
def linear_gaussian_vae(model: LinearGaussianModel, *, flow: str | None = None, flow_layers: int = 0,
                        flow_hidden: int = 16) -> VAE:
    r"""A VAE on flat data ``(N, d)`` whose decoder **is** ``model`` (:math:`x = Wz + b + \sigma\varepsilon`, frozen) and
    whose linear encoder outputs the best diagonal Gaussian for every :math:`x`: the posterior mean
    :math:`\Lambda^{-1}W^\top(x - b)/\sigma^2` and the variances :math:`1/\Lambda_{ii}`. With ``flow`` ("planar" or "iaf")
    and ``flow_layers`` > 0 it is a :class:`~vae_course.models.FlowVAE` whose flow reads :math:`x`."""
    if not isinstance(model, LinearGaussianModel):
        raise TypeError(f"model: got {type(model).__name__}; need a vae_course.linear_gaussian.LinearGaussianModel")
    settings = dict(x_shape=(1, 1, model.x_dim), z_dim=model.z_dim, arch="linear", likelihood="gaussian",
                    decoder_std=model.sigma, min_decoder_std=0.0)
    vae = VAE(**settings) if flow is None else FlowVAE(**settings, flow=flow, flow_layers=flow_layers,
                                                       flow_hidden=flow_hidden)
    W, b = model.W.float(), model.b.float()
    mu0 = torch.zeros(1, model.x_dim, dtype=model.W.dtype)
    logvar = mean_field_optimum(model, mu0)[1][0].float()  # (m,): log(1 / Lambda_ii), the same for every x
    A = (torch.linalg.inv(model.posterior_precision()) @ model.W.T / model.sigma**2).float()  # (m, d): the mean's slope
    with torch.no_grad():
        vae.decoder.linear.weight.copy_(W)
        vae.decoder.linear.bias.copy_(b)
        vae.encoder.head.weight.copy_(torch.cat([A, torch.zeros_like(A)]))
        vae.encoder.head.bias.copy_(torch.cat([-A @ b, logvar]))
    vae.decoder.requires_grad_(False)
    vae.head.requires_grad_(False)
    return vae


def fit_posterior(model: nn.Module, x: Tensor, *, steps: int = 600, lr: float = 1e-2, n_samples: int = 16,
                  seed: int = 0) -> History:
    """Train the parameters of ``model`` that require gradients (the posterior, when the decoder is frozen) on
    full batches of ``x`` ``(N, ...)`` with :func:`vae_course.train.fit`: two thirds of the ``steps`` at ``lr``, the
    rest at ``lr / 10`` (so that Monte-Carlo gradient noise settles), ``n_samples`` draws of :math:`z` per point."""
    steps = check_positive_int("steps", steps)
    check.tensor("x", x, min_dim=2)
    reps = min(STEPS_PER_EPOCH, steps)
    data = x.repeat(reps, *([1] * (x.dim() - 1)))  # one epoch = `reps` full batches of x
    first = max(1, round(2 * steps / 3 / reps))
    settings = dict(batch_size=len(x), seed=seed, progress=False, loss_kwargs={"n_samples": n_samples})
    history = fit(model, data, epochs=first, lr=lr, **settings)
    return fit(model, data, epochs=max(1, round(steps / reps) - first), lr=lr / 10, history=history, **settings)


@torch.no_grad()
def posterior_samples(model: nn.Module, x: Tensor, n: int, *, generator: torch.Generator | None = None) -> Tensor:
    r"""``n`` draws of the model's posterior :math:`q(z\mid x)` for each image of ``x``: ``(n, B, m)``, through its
    :meth:`~vae_course.models.vae_base.VAEBase.posterior_draws` hook (so a flow posterior's draws go through the flow)."""
    device = next(model.parameters()).device
    return model.posterior_draws(model._images(x.to(device)), check_positive_int("n", n), generator=generator).z.cpu()


class BoundTerms(NamedTuple):
    """Means over the images, nats: ``elbo`` (with ``elbo_se``, its Monte-Carlo standard error) and ``iwae``,
    the bound :math:`\\mathcal L_k`, from the same ``k`` importance weights per image; ``per_image_elbo`` ``(N,)``."""

    elbo: float
    elbo_se: float
    iwae: float
    k: int
    per_image_elbo: Tensor


def bound_terms(model: nn.Module, x: Tensor, k: int = 1000, *, generator: torch.Generator | None = None,
                batch_size: int = 100) -> BoundTerms:
    r"""The ELBO :math:`\frac1k\sum_i\log w_i` and the IWAE bound :math:`\log\frac1k\sum_i w_i` per image, from one set
    of ``k`` log-weights :math:`\log w_i = \log p(x, z_i) - \log q(z_i\mid x)` (:func:`vae_course.evaluate.log_weights`)."""
    lw = log_weights(model, x, check_positive_int("k", k), generator=generator, batch_size=batch_size).double()
    elbo = lw.mean(0)  # (N,)
    se = lw.std(0) / math.sqrt(k)  # (N,): the standard error of each image's ELBO estimate
    iwae = log_mean_exp(lw, dim=0)
    return BoundTerms(float(elbo.mean()), float(se.pow(2).sum().sqrt() / len(se)), float(iwae.mean()), k, elbo.float())


# ---------------------------------------------------------------- learned priors: the aggregate posterior
def aggregate_log_density(z: Tensor, mu: Tensor, logvar: Tensor, *, chunk: int = 512) -> Tensor:
    r""":math:`\log q(z) = \log\frac1N\sum_n\mathcal N(z;\mu_n,\sigma_n^2)`, the aggregate posterior of ``N`` encoded images
    (``mu``, ``logvar`` ``(N, m)``) at points ``z`` ``(M, m)``: ``(M,)``, computed ``chunk`` points at a time."""
    return torch.cat([equal_mixture_log_prob(z[i:i + chunk], mu, logvar) for i in range(0, len(z), chunk)])


class PriorHole(NamedTuple):
    """``kl_q_p`` :math:`\\mathrm{KL}(q\\,\\|\\,p)` and ``kl_p_q`` :math:`\\mathrm{KL}(p\\,\\|\\,q)` in nats, and ``uncovered``,
    :math:`\\int(p - q)_+`, the fraction of prior mass the aggregate posterior :math:`q` leaves empty; ``n`` draws each."""

    kl_q_p: float
    kl_p_q: float
    uncovered: float
    n: int


@torch.no_grad()
def prior_hole(model: nn.Module, x: Tensor, *, n_draws: int = 2000, generator: torch.Generator | None = None) -> PriorHole:
    """:func:`prior_hole_terms` for the images ``x`` ``(N, ...)`` encoded by ``model`` and its ``model.prior``."""
    mu, logvar = encode_all(model, x)  # (N, m) each, on the CPU
    return prior_hole_terms(mu, logvar, model.prior, n_draws=n_draws, generator=generator)


@torch.no_grad()
def prior_hole_terms(mu: Tensor, logvar: Tensor, prior: nn.Module, *, n_draws: int = 2000,
                     generator: torch.Generator | None = None) -> PriorHole:
    r"""How well the aggregate posterior of ``N`` encoded images (``mu``, ``logvar`` ``(N, m)``) fills ``prior`` (a
    module with ``log_prob`` and ``sample``), by Monte Carlo:

    .. math:: \mathrm{KL}(q\,\|\,p) \approx \frac1N\sum_n\big[\log q(z_n) - \log p(z_n)\big],\ z_n\sim q(z\mid x_n);
              \qquad \mathrm{KL}(p\,\|\,q),\ \int(p-q)_+ = \mathbb E_p\big[(1 - q/p)_+\big] \text{ from } z_j\sim p(z).

    :math:`q(z)` is the mixture of the ``N`` encoded Gaussians (:func:`aggregate_log_density`), exact as
    :math:`N\to\infty`; for finite ``N`` it is the estimator of chapter 7's mutual information, comparable across
    models encoded on the same images.
    """
    n_draws = check_positive_int("n_draws", n_draws)
    check.tensor("mu", mu, min_dim=2)
    check.broadcast(mu=mu, logvar=logvar)
    device = next(iter(prior.parameters()), next(iter(prior.buffers()), mu)).device

    def log_p(z: Tensor) -> Tensor:
        return prior.log_prob(z.to(device)).cpu()

    mu, logvar = mu.cpu(), logvar.cpu()
    z_q = reparameterize(mu, logvar, generator=generator)  # (N, m): one draw per image
    kl_q_p = (aggregate_log_density(z_q, mu, logvar) - log_p(z_q)).mean()
    z_p = prior.sample(n_draws, generator=generator).cpu()  # (n_draws, m)
    log_ratio = aggregate_log_density(z_p, mu, logvar) - log_p(z_p)  # log q(z) / p(z) at z ~ p
    return PriorHole(float(kl_q_p), float(-log_ratio.mean()), float((1 - log_ratio.exp()).clamp_min(0).mean()), n_draws)


# ---------------------------------------------------------------- equal sizes
def parameter_count(model: nn.Module) -> int:
    """The number of trainable numbers in ``model`` (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters())


def load_hierarchy_study(path: str | Path | None = None) -> dict[str, Any]:
    """Read the study written by ``vae-course hierarchy-sweep`` (:mod:`vae_course.experiments.hierarchy_sweep`);
    default: the stored one, :data:`HIERARCHY_PATH`. Returns ``{"settings": ..., "rows": [...]}``."""
    path = Path(path) if path is not None else Path(HIERARCHY_PATH)
    if not path.is_file():
        raise ValueError(f"path: {path} does not exist; create it with `vae-course hierarchy-sweep --out {path}`")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not data.get("rows"):
        raise ValueError(f"path: {path} holds no rows")
    return data


def one_level_hidden(n_params: int, x_dim: int, z_dim: int) -> int:
    r"""The hidden size :math:`h` of a one-hidden-layer MLP VAE with Bernoulli pixels (``VAE(hidden=h)``) whose parameter
    count :math:`h(2D + 3m + 2) + 2m + D` is closest to ``n_params``."""
    n, d, m = (check_positive_int(k, v) for k, v in (("n_params", n_params), ("x_dim", x_dim), ("z_dim", z_dim)))
    return max(1, round((n - 2 * m - d) / (2 * d + 3 * m + 2)))


# ---------------------------------------------------------------- conditioning: analogies and inpainting
@torch.no_grad()
def analogies(model: ConditionalVAE, x: Tensor, y: Tensor) -> Tensor:
    r""""Same style, another digit": encode each image with its label, :math:`z = \mu_w(x, y)`, and decode that one
    :math:`z` with every label. ``x`` ``(B, C, H, W)``, ``y`` ``(B,)`` -> decoder means ``(B, K, C, H, W)``."""
    if not isinstance(model, ConditionalVAE):
        raise TypeError(f"model: got {type(model).__name__}; need a vae_course.models.ConditionalVAE")
    k = model.config.n_classes
    device = next(model.parameters()).device
    z = model.encode_labelled(x.to(device), y.to(device)).mu  # (B, m)
    labels = torch.arange(k, device=device).repeat(len(z))  # (B K,): 0..K-1 for every image
    images = model.decode(z.repeat_interleave(k, 0), labels).mean  # (B K, C, H, W)
    return images.reshape(len(z), k, *images.shape[1:]).cpu()


@torch.no_grad()
def label_bounds(model: ConditionalVAE, x: Tensor, k: int = 100, *, generator: torch.Generator | None = None,
                 batch_size: int = 100) -> Tensor:
    r"""The IWAE bound :math:`\mathcal L_k(x\mid y)` on :math:`\log p(x\mid y)` for every image of ``x`` ``(N, C, H, W)`` and
    every label :math:`y`: ``(N, K)``. With :math:`p(y) = 1/K` the model's marginal is
    :math:`p(x) = \frac1K\sum_y p(x\mid y)` and Bayes' rule gives its own classifier :math:`p(y\mid x)`."""
    if not isinstance(model, ConditionalVAE):
        raise TypeError(f"model: got {type(model).__name__}; need a vae_course.models.ConditionalVAE")
    n_classes = model.config.n_classes
    cols = []
    for label in range(n_classes):
        y = torch.full((len(x),), label, dtype=torch.long)
        lw = log_weights(model, pack(x, y, n_classes), k, generator=generator, batch_size=batch_size).double()
        cols.append(log_mean_exp(lw, dim=0))
    return torch.stack(cols, dim=1).float()


def top_half(image_shape: tuple[int, int, int]) -> Tensor:
    """A boolean mask ``(C, H, W)`` that is True on the top half of the rows: the pixels :func:`inpaint` observes."""
    c, h, w = image_shape
    mask = torch.zeros(c, h, w, dtype=torch.bool)
    mask[:, : h // 2] = True
    return mask


@torch.no_grad()
def inpaint(model: nn.Module, x: Tensor, observed: Tensor, *, y: Tensor | None = None, n_steps: int = 30,
            generator: torch.Generator | None = None) -> Tensor:
    r"""Complete images from the pixels where ``observed`` is True (Rezende et al., 2014): start the missing pixels as
    fair coin flips, then ``n_steps`` times draw :math:`z\sim q(z\mid x)` and redraw the missing pixels from
    :math:`p(x\mid z)`, keeping the observed ones. A conditional model gets the labels ``y`` ``(B,)``.

    Args: ``x`` ``(B, C, H, W)`` binary images (one chain each; repeat rows for several completions); ``observed``
    ``(C, H, W)`` or ``(B, C, H, W)`` bool. Returns the last step's decoder means with the observed pixels kept.
    """
    n_steps = check_positive_int("n_steps", n_steps)
    if observed.dtype != torch.bool:
        raise TypeError(f"observed: got dtype {observed.dtype}; need a bool mask (True = pixel observed)")
    conditional = isinstance(model, ConditionalVAE)
    if conditional and y is None:
        raise ValueError("y: got None; a ConditionalVAE completes images of a given label, pass y (B,)")
    device = next(model.parameters()).device
    x, observed = x.to(device), observed.to(device)
    current = torch.where(observed, x, torch.bernoulli(torch.full_like(x, 0.5), generator=generator))
    for step in range(n_steps):
        q = model.encode_labelled(current, y.to(device)) if conditional else model.encode(current)
        z = q.sample(generator=generator)
        p = model.decode(z, y.to(device)) if conditional else model.decode(z)
        means = p.mean.reshape(x.shape)
        if step < n_steps - 1:
            current = torch.where(observed, x, torch.bernoulli(means, generator=generator))
    return torch.where(observed, x, means)


def classifier_confidence(classifier: nn.Module, images: Tensor) -> tuple[float, Tensor]:
    """A rough stand-in for sample quality: the mean probability a digit ``classifier`` gives its top class on
    ``images`` ``(N, ...)`` (:func:`vae_course.discriminative.predict`), and how often each class is the top one
    ``(K,)`` (a model that draws only some digits shows gaps there)."""
    pred = predict(classifier, images.to(next(classifier.parameters()).device))
    counts = torch.bincount(pred.label.cpu(), minlength=pred.probs.shape[-1]).float()
    return float(pred.confidence.mean()), counts / len(images)


# ---------------------------------------------------------------- exact answers for a 2-D latent
class LatentGrid(NamedTuple):
    """A square grid over a 2-D latent space: ``z`` ``(G*G, 2)`` (row-major, ``axis`` ``(G,)`` on both coordinates),
    ``log_joint`` ``(N, G*G)`` = :math:`\\log p(x_n\\mid z) + \\log p(z)` and ``log_px`` ``(N,)`` by quadrature."""

    z: Tensor
    axis: Tensor
    log_joint: Tensor
    log_px: Tensor


@torch.no_grad()
def latent_grid(model: nn.Module, x: Tensor, *, limit: float = 4.0, n: int = 201, chunk: int = 4096) -> LatentGrid:
    r"""The exact :math:`\log p(x)` of a VAE with a **2-D** latent, by quadrature on an ``n`` x ``n`` grid over
    :math:`[-\text{limit}, \text{limit}]^2`:

    .. math:: \log p(x) \approx \log\sum_{g}\, p(x\mid z_g)\,p(z_g)\,\Delta^2,\qquad \Delta = \frac{2\,\text{limit}}{n - 1},

    accurate when every posterior lies inside the grid and is wider than a few cells (check it against the IWAE
    bound, which must stay below). ``log_joint`` on the grid is the unnormalised true posterior (for figures).
    """
    n = check_positive_int("n", n)
    if getattr(model.config, "z_dim", None) != 2:
        raise ValueError(f"model: has z_dim {getattr(model.config, 'z_dim', None)}; the grid needs a 2-D latent")
    device = next(model.parameters()).device
    axis = torch.linspace(-limit, limit, n)
    z = torch.cartesian_prod(axis, axis)  # (G*G, 2), row-major: z[i * n + j] = (axis[i], axis[j])
    x = x.to(device)
    flat = x.flatten(1)  # (N, D)
    rows = []
    for i in range(0, len(z), chunk):
        zc = z[i:i + chunk].to(device)
        p = model.decode(zc)
        if isinstance(p, BernoulliPixels):  # sum_j x_j l_j - softplus(l_j) as one matrix product: (N, c)
            logits = p.logits.flatten(1)  # (c, D)
            log_lik = flat @ logits.T - F.softplus(logits).sum(-1)
        else:
            log_lik = model.log_likelihood(x, zc[:, None]).T  # (N, c), pixel by pixel
        rows.append((log_lik + model.prior.log_prob(zc)).cpu())
    log_joint = torch.cat(rows, dim=1).double()  # (N, G*G)
    cell = 2 * math.log(2 * limit / (n - 1))
    return LatentGrid(z, axis, log_joint.float(), (torch.logsumexp(log_joint, dim=1) + cell).float())
