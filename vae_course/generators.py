r"""Probabilistic generators: a network computes the statistics of a Gaussian, then we sample it.

A *deterministic* generator (the GAN kind, Goodfellow et al., 2014) maps a latent draw straight to
a data point, :math:`x = G_\theta(z)`. A *probabilistic* generator (the VAE decoder, Kingma & Welling,
2014; Tomczak, 2022, ch. 4) lets the network output the statistics of a distribution instead and
samples from it, in three steps:

1. draw a latent :math:`z \sim p(z) = \mathcal N(0, I_m)`;
2. compute the statistics :math:`(\mu, \Sigma) = G_\theta(z)` (one forward pass);
3. draw :math:`x \sim p_\theta(x \mid z) = \mathcal N(\mu, \Sigma)`, as :math:`x = \mu + L\varepsilon`,
   :math:`\varepsilon \sim \mathcal N(0, I_d)`, where :math:`L` is a lower-triangular factor with
   :math:`\Sigma = L L^\top` (Cholesky; Bishop, 2006, sec. 11.1.4).

The covariance options of :class:`ProbabilisticGenerator` (what the network outputs per ``z``):

============  ===================================  ============================
covariance    :math:`\Sigma(z)`                    network outputs
============  ===================================  ============================
"identity"    :math:`I`                            :math:`\mu` (d)
"isotropic"   :math:`\sigma^2 I`, fixed ``sigma``  :math:`\mu` (d)
"diagonal"    :math:`\mathrm{diag}(e^{\ell})`      :math:`\mu`, log-variance :math:`\ell` (2d)
"full"        :math:`L L^\top`                     :math:`\mu`, the d(d+1)/2 entries of L
============  ===================================  ============================

For "full", the diagonal of L goes through softplus plus a floor (:data:`MIN_SCALE`), so every
:math:`L_{jj} > 0`: a lower-triangular L with a positive diagonal is invertible, hence
:math:`\Sigma = L L^\top` is symmetric positive definite *by construction*, whatever the weights.

The output is only *conditionally* Gaussian: the model density
:math:`p_\theta(x) = \int p_\theta(x\mid z)\,p(z)\,dz` is an infinite mixture of Gaussians and can take
almost any shape (chapter 2). Taught in chapter 1 of the book.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _validate as check
from . import distributions as D
from .nets import MLP
from .utils import check_positive_int

__all__ = [
    "GaussianStats", "ProbabilisticGenerator", "DeterministicGenerator", "sample_normal",
    "tril_from_vector", "n_statistics", "toy_generator", "COVARIANCES", "MIN_SCALE", "TOY_GENERATORS",
]

COVARIANCES = ("identity", "isotropic", "diagonal", "full")
MIN_SCALE = 1e-3  # floor on each L_jj: det L >= MIN_SCALE^d > 0, so Sigma = L L^T is never singular
TOY_GENERATORS = ("ring", "banana")


class GaussianStats(NamedTuple):
    r"""The statistics of :math:`p_\theta(x\mid z) = \mathcal N(\mu, \Sigma)` for a batch of ``z``.

    ``mu`` ``(..., d)``; ``logvar`` ``(..., d)`` (:math:`\log` of the diagonal of :math:`\Sigma`) for the
    identity / isotropic / diagonal options, else None; ``scale_tril`` ``(..., d, d)`` (the Cholesky
    factor :math:`L`, :math:`\Sigma = LL^\top`) for "full", else None.
    """

    mu: Tensor
    logvar: Tensor | None
    scale_tril: Tensor | None

    def scale(self) -> Tensor:
        r"""The lower-triangular factor :math:`L` ``(..., d, d)`` (diagonal :math:`e^{\ell/2}` if diagonal)."""
        if self.scale_tril is not None:
            return self.scale_tril
        return torch.diag_embed(torch.exp(0.5 * self.logvar))

    def covariance(self) -> Tensor:
        r""":math:`\Sigma = L L^\top` as ``(..., d, d)`` matrices."""
        L = self.scale()
        return L @ L.transpose(-1, -2)

    def sample(self, *, eps: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """One draw ``(..., d)`` per row, :math:`x = \\mu + L\\varepsilon` (see :func:`sample_normal`)."""
        return sample_normal(self.mu, logvar=self.logvar, scale_tril=self.scale_tril, eps=eps, generator=generator)

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\log\mathcal N(x;\mu,\Sigma)` with the batch shape, via :mod:`vae_course.distributions`."""
        if self.scale_tril is not None:
            return D.log_normal_full(x, self.mu, scale_tril=self.scale_tril)
        return D.log_normal_diag(x, self.mu, self.logvar)


def sample_normal(mu: Tensor, *, logvar: Tensor | None = None, scale_tril: Tensor | None = None,
                  eps: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    r"""Reparameterised draw from :math:`\mathcal N(\mu, \Sigma)`: :math:`x = \mu + L\varepsilon`.

    .. math:: \varepsilon \sim \mathcal N(0, I_d),\quad L L^\top = \Sigma
              \;\Rightarrow\; \mathrm{Cov}(L\varepsilon) = L\,I\,L^\top = \Sigma.

    With ``logvar`` (diagonal :math:`\Sigma`), :math:`L = \mathrm{diag}(e^{\ell/2})`: the standard
    deviation is ``exp(0.5 * logvar)``, not ``exp(logvar)``. Gradients flow to ``mu``, ``logvar`` and
    ``scale_tril`` (the randomness sits in ``eps`` only).

    Args:
        mu: ``(..., d)`` means.
        logvar: ``(..., d)`` log-variances; or ``scale_tril``: ``(..., d, d)`` lower-triangular L (exactly one).
        eps: ``(..., d)`` standard-normal noise to use (drawn if None).
        generator: ``torch.Generator`` for drawing ``eps``.
    Returns:
        ``(..., d)`` samples (batch shape broadcast over all inputs).
    """
    check.tensor("mu", mu, min_dim=1)
    if (logvar is None) == (scale_tril is None):
        raise ValueError("logvar / scale_tril: need exactly one of them; got " + ("both" if logvar is not None else "neither"))
    if logvar is not None:
        check.tensor("logvar", logvar, min_dim=1)
        shape = check.broadcast(mu=mu, logvar=logvar)
    else:
        check.tensor("scale_tril", scale_tril, min_dim=2)
        if scale_tril.shape[-1] != scale_tril.shape[-2] or scale_tril.shape[-1] != mu.shape[-1]:
            raise ValueError(f"scale_tril: got shape {tuple(scale_tril.shape)} for mu of shape {tuple(mu.shape)}; "
                             f"need (..., d, d) with d = {mu.shape[-1]}")
        check.positive_diagonal("scale_tril", scale_tril)
        shape = torch.broadcast_shapes(mu.shape, scale_tril.shape[:-1])
    if eps is None:
        dev = generator.device if generator is not None else mu.device
        eps = torch.randn(shape, generator=generator, device=dev, dtype=mu.dtype).to(mu.device)
    else:
        check.tensor("eps", eps, min_dim=1)
        try:
            torch.broadcast_shapes(eps.shape, shape)
        except RuntimeError:
            raise ValueError(f"eps: got shape {tuple(eps.shape)}; need a shape that broadcasts with {tuple(shape)}") from None
    if logvar is not None:
        return D.reparameterize(mu, logvar, eps=eps, validate=False)  # mu + exp(logvar / 2) * eps
    return mu + (scale_tril @ eps.unsqueeze(-1)).squeeze(-1)  # x = mu + L eps, (..., d)


def n_statistics(covariance: str, x_dim: int) -> int:
    """How many numbers the network outputs per ``z``: d, d, 2d or d + d(d+1)/2."""
    _check_covariance(covariance)
    d = check_positive_int("x_dim", x_dim)
    return {"identity": d, "isotropic": d, "diagonal": 2 * d, "full": d + d * (d + 1) // 2}[covariance]


def tril_from_vector(v: Tensor, d: int, *, min_scale: float = MIN_SCALE) -> Tensor:
    r"""Unpack ``v`` ``(..., d(d+1)/2)`` into a lower-triangular :math:`L` ``(..., d, d)`` with a positive diagonal.

    Entries fill the lower triangle row by row (``torch.tril_indices`` order); the diagonal becomes
    :math:`L_{jj} = \operatorname{softplus}(v_{jj}) + \texttt{min\_scale} > 0`, the off-diagonal
    entries stay unconstrained. Then :math:`\det L = \prod_j L_{jj} > 0`, so :math:`\Sigma = LL^\top`
    is positive definite for every ``v``, and :math:`\log|\Sigma| = 2\sum_j\log L_{jj}` is finite.
    """
    check.tensor("v", v, min_dim=1)
    d = check_positive_int("d", d)
    if v.shape[-1] != d * (d + 1) // 2:
        raise ValueError(f"v: got last dimension {v.shape[-1]}; need d(d+1)/2 = {d * (d + 1) // 2} for d = {d}")
    rows, cols = torch.tril_indices(d, d, device=v.device)
    raw = v.new_zeros(*v.shape[:-1], d, d)
    raw[..., rows, cols] = v  # (..., d, d), zeros above the diagonal
    diag = F.softplus(torch.diagonal(raw, dim1=-2, dim2=-1)) + min_scale  # (..., d), > 0
    return torch.tril(raw, diagonal=-1) + torch.diag_embed(diag)


class ProbabilisticGenerator(nn.Module):
    r"""A latent-variable generator with a Gaussian output: :math:`p_\theta(x\mid z) = \mathcal N(\mu_\theta(z), \Sigma_\theta(z))`.

    Args:
        z_dim: latent size m (:math:`z \sim \mathcal N(0, I_m)`); x_dim: data size d.
        covariance: "identity" | "isotropic" | "diagonal" | "full" (see the module docstring).
        sigma: the fixed standard deviation of "isotropic" (:math:`\Sigma = \sigma^2 I`); must stay 1.0 otherwise.
        hidden, activation: of the :class:`MLP` :math:`G_\theta` (``self.net``).
        net: optional module to use as :math:`G_\theta` instead of an MLP (e.g. a hand-set map); it must
            output :func:`n_statistics` numbers per ``z``.
    """

    def __init__(self, z_dim: int, x_dim: int, *, covariance: str = "identity", sigma: float = 1.0,
                 hidden: Sequence[int] = (64, 64), activation: str = "tanh", net: nn.Module | None = None):
        super().__init__()
        self.z_dim = check_positive_int("z_dim", z_dim)
        self.x_dim = check_positive_int("x_dim", x_dim)
        self.covariance = _check_covariance(covariance)
        self.sigma = _check_sigma(sigma)
        if self.covariance != "isotropic" and self.sigma != 1.0:
            raise ValueError(f"sigma: got {sigma!r} with covariance={covariance!r}; sigma is only used by "
                             "covariance='isotropic' (Sigma = sigma^2 I): use that, or leave sigma=1.0")
        self.n_out = n_statistics(self.covariance, self.x_dim)
        if net is None:
            net = MLP(self.z_dim, self.n_out, hidden, activation)
        elif not isinstance(net, nn.Module):
            raise TypeError(f"net: got {type(net).__name__}; need a torch.nn.Module mapping (..., z_dim) to (..., {self.n_out})")
        self.net = net

    def statistics(self, z: Tensor) -> GaussianStats:
        r"""Step 2 of the recipe: :math:`(\mu, \Sigma) = G_\theta(z)` for ``z`` ``(..., z_dim)``."""
        z = _check_last("z", z, self.z_dim)
        out = self.net(z)  # (..., n_out)
        if out.shape[-1] != self.n_out:
            raise ValueError(f"net: returned last dimension {out.shape[-1]}; covariance={self.covariance!r} with "
                             f"x_dim={self.x_dim} needs {self.n_out}")
        d = self.x_dim
        mu = out[..., :d]  # (..., d)
        if self.covariance == "identity":
            return GaussianStats(mu, torch.zeros_like(mu), None)
        if self.covariance == "isotropic":
            return GaussianStats(mu, torch.full_like(mu, 2 * math.log(self.sigma)), None)
        if self.covariance == "diagonal":
            return GaussianStats(mu, out[..., d:], None)
        return GaussianStats(mu, None, tril_from_vector(out[..., d:], d))  # L: (..., d, d)

    forward = statistics

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Step 1: ``n`` latents ``(n, z_dim)`` from the prior :math:`\\mathcal N(0, I)`."""
        n = check_positive_int("n", n)
        return _randn((n, self.z_dim), generator, _device_of(self))

    def sample_conditional(self, z: Tensor, *, eps: Tensor | None = None,
                           generator: torch.Generator | None = None) -> Tensor:
        r"""Step 3 for given ``z`` ``(..., z_dim)``: :math:`x = \mu(z) + L(z)\varepsilon`, ``(..., x_dim)``.

        Differentiable in the weights (reparameterised): pass ``eps`` to fix the noise.
        """
        return self.statistics(z).sample(eps=eps, generator=generator)

    def sample(self, n: int, generator: torch.Generator | None = None, return_z: bool = False, *,
               eps: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """The three-step recipe: ``n`` draws ``x`` ``(n, x_dim)`` from the model (and their ``z`` if ``return_z``)."""
        z = self.sample_latent(n, generator)
        x = self.sample_conditional(z, eps=eps, generator=generator)
        return (x, z) if return_z else x

    def log_prob(self, x: Tensor, z: Tensor) -> Tensor:
        r""":math:`\log p_\theta(x\mid z)` in closed form, with the broadcast batch shape of ``x`` and ``z``.

        .. math:: \log p_\theta(x\mid z) = -\tfrac12\Big(d\log 2\pi + \log|\Sigma| + (x-\mu)^\top\Sigma^{-1}(x-\mu)\Big)

        (the normaliser is :math:`(2\pi)^{d/2}|\Sigma|^{1/2}`). ``x`` ``(..., x_dim)``, ``z`` ``(..., z_dim)``.
        """
        x = _check_last("x", x, self.x_dim)
        stats = self.statistics(z)
        try:
            torch.broadcast_shapes(x.shape[:-1], stats.mu.shape[:-1])
        except RuntimeError:
            raise ValueError(f"x / z: batch shapes {tuple(x.shape[:-1])} and {tuple(z.shape[:-1])} do not broadcast; "
                             "need one z per x (or shapes that broadcast)") from None
        return stats.log_prob(x)


class DeterministicGenerator(nn.Module):
    r"""The GAN-style generator :math:`x = G_\theta(z)`: no noise after the network.

    Every draw lies on the image of :math:`G_\theta`, a surface of dimension at most ``z_dim``; when
    ``z_dim < x_dim`` that set has zero volume, so :math:`p(x\mid z)` is a point mass and the model
    has no density to evaluate (Goodfellow et al., 2014). Same arguments as :class:`ProbabilisticGenerator`.
    """

    def __init__(self, z_dim: int, x_dim: int, *, hidden: Sequence[int] = (64, 64), activation: str = "tanh",
                 net: nn.Module | None = None):
        super().__init__()
        self.z_dim = check_positive_int("z_dim", z_dim)
        self.x_dim = check_positive_int("x_dim", x_dim)
        if net is None:
            net = MLP(self.z_dim, self.x_dim, hidden, activation)
        elif not isinstance(net, nn.Module):
            raise TypeError(f"net: got {type(net).__name__}; need a torch.nn.Module mapping (..., z_dim) to (..., {self.x_dim})")
        self.net = net

    @classmethod
    def from_probabilistic(cls, gen: ProbabilisticGenerator) -> "DeterministicGenerator":
        """The deterministic generator :math:`x = \\mu_\\theta(z)` that shares ``gen``'s network and drops its noise."""
        if not isinstance(gen, ProbabilisticGenerator):
            raise TypeError(f"gen: got {type(gen).__name__}; need a ProbabilisticGenerator")
        return cls(gen.z_dim, gen.x_dim, net=_MeanOf(gen))

    def forward(self, z: Tensor) -> Tensor:
        """``x = G_\\theta(z)``: ``(..., z_dim) -> (..., x_dim)``."""
        x = self.net(_check_last("z", z, self.z_dim))
        if x.shape[-1] != self.x_dim:
            raise ValueError(f"net: returned last dimension {x.shape[-1]}; need x_dim = {self.x_dim}")
        return x

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_positive_int("n", n)
        return _randn((n, self.z_dim), generator, _device_of(self))

    def sample(self, n: int, generator: torch.Generator | None = None,
               return_z: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        z = self.sample_latent(n, generator)
        x = self(z)
        return (x, z) if return_z else x


class _MeanOf(nn.Module):
    def __init__(self, gen: ProbabilisticGenerator):
        super().__init__()
        self.gen = gen

    def forward(self, z: Tensor) -> Tensor:
        return self.gen.statistics(z).mu


class _CurveNet(nn.Module):
    r"""A hand-set :math:`G`: ``z`` ``(..., 1)`` -> a point on a plane curve, with a covariance stretched along it.

    ring:   :math:`\mu = (\cos\theta, \sin\theta)`, :math:`\theta = 2\pi\Phi(z)` (uniform angle).
    banana: :math:`\mu = (z, z^2/2 - 1)`.
    :math:`\Sigma = a^2 tt^\top + b^2 nn^\top` (t the unit tangent, n the normal); for "full" the net outputs
    the raw entries that :func:`tril_from_vector` turns back into the Cholesky factor of :math:`\Sigma`.
    """

    def __init__(self, name: str, full: bool, along: float, across: float):
        super().__init__()
        self.name, self.full, self.along, self.across = name, full, along, across

    def forward(self, z: Tensor) -> Tensor:
        z = z[..., 0]
        if self.name == "ring":
            theta = 2 * math.pi * torch.special.ndtr(z)
            mu = torch.stack([torch.cos(theta), torch.sin(theta)], -1)
            t = torch.stack([-torch.sin(theta), torch.cos(theta)], -1)
        else:
            mu = torch.stack([z, 0.5 * z**2 - 1.0], -1)
            t = torch.stack([torch.ones_like(z), z], -1)
            t = t / t.norm(dim=-1, keepdim=True)
        if not self.full:
            return mu
        n = torch.stack([-t[..., 1], t[..., 0]], -1)
        cov = self.along**2 * t[..., :, None] * t[..., None, :] + self.across**2 * n[..., :, None] * n[..., None, :]
        L = torch.linalg.cholesky(cov)  # (..., 2, 2)
        diag_raw = _softplus_inverse(torch.diagonal(L, dim1=-2, dim2=-1) - MIN_SCALE)  # undo softplus + floor
        return torch.cat([mu, diag_raw[..., :1], L[..., 1:, 0], diag_raw[..., 1:]], -1)  # tril order: L00, L10, L11


def toy_generator(name: str, *, covariance: str = "full", along: float = 0.3, across: float = 0.05) -> ProbabilisticGenerator:
    r"""A hand-set generator with ``z_dim=1``, ``x_dim=2`` whose marginal :math:`p(x)` is clearly not Gaussian.

    Args:
        name: "ring" (mean on the unit circle) or "banana" (mean on a parabola).
        covariance: "full" (each :math:`\Sigma(z)` an ellipse with std ``along`` along the curve and
            ``across`` across it) or "isotropic" (:math:`\Sigma = \texttt{across}^2 I`).
    """
    if name not in TOY_GENERATORS:
        raise ValueError(f"name: got {name!r}; need one of {TOY_GENERATORS}")
    if covariance not in ("full", "isotropic"):
        raise ValueError(f"covariance: got {covariance!r}; need 'full' or 'isotropic' for a toy generator")
    along, across = _check_sigma(along, "along"), _check_sigma(across, "across")
    if covariance == "full" and min(along, across) <= 2 * MIN_SCALE:
        raise ValueError(f"along / across: got {along!r} / {across!r}; need both > {2 * MIN_SCALE} (the floor on L's diagonal)")
    net = _CurveNet(name, covariance == "full", along, across)
    sigma = across if covariance == "isotropic" else 1.0
    return ProbabilisticGenerator(1, 2, covariance=covariance, sigma=sigma, net=net)


def _softplus_inverse(y: Tensor) -> Tensor:
    return y + torch.log(-torch.expm1(-y))  # log(exp(y) - 1), stable for large y


def _check_covariance(covariance: object) -> str:
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance: got {covariance!r}; need one of {COVARIANCES}")
    return covariance  # type: ignore[return-value]


def _check_sigma(sigma: object, name: str = "sigma") -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
        raise TypeError(f"{name}: got {sigma!r} of type {type(sigma).__name__}; need a positive float")
    if not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"{name}: got {sigma!r}; need a finite float > 0 (a standard deviation)")
    return float(sigma)


def _check_last(name: str, t: object, size: int) -> Tensor:
    check.tensor(name, t, min_dim=1)
    if t.shape[-1] != size:
        what = "z_dim" if name == "z" else "x_dim"
        raise ValueError(f"{name}: got shape {tuple(t.shape)}; need (..., {what}) with {what} = {size}")
    return t


def _device_of(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    dev = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=dev).to(device)
