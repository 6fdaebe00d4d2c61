r"""The linear-Gaussian latent model, whose likelihood and posterior are exact (chapters 2, 3 and 5).

.. math:: z \sim \mathcal N(0, I_m), \qquad x \mid z \sim \mathcal N(Wz + b, \sigma^2 I_d)

(factor analysis with isotropic noise, probabilistic PCA). Its marginal is
:math:`p(x) = \mathcal N(b,\, WW^\top + \sigma^2 I_d)` and its posterior
:math:`p(z\mid x) = \mathcal N\big(\Lambda^{-1}W^\top(x-b)/\sigma^2,\ \Lambda^{-1}\big)` with precision
:math:`\Lambda = I_m + W^\top W/\sigma^2` (Bishop 2006, sec. 12.2). Chapter 2 measures the naive Monte-Carlo
estimate of :math:`p(x)` against the exact value, chapter 3 the gap between the ELBO and :math:`\log p(x)`, and
chapter 5 tests the IWAE estimator on a VAE with a linear decoder, all on this model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _validate as check
from .distributions import cholesky, log_normal_diag, log_normal_full, log_normal_std
from .utils import check_positive_int, make_generator

__all__ = ["LinearGaussianModel", "FullGaussian", "LinearEncoder"]


class FullGaussian(NamedTuple):
    """A Gaussian :math:`\\mathcal N(\\mu, \\Sigma)` with a full covariance, e.g. the exact posterior of the model:
    ``mu`` ``(..., m)``, ``cov`` ``(m, m)`` (the same for every x)."""

    mu: Tensor
    cov: Tensor


class LinearEncoder(NamedTuple):
    r"""A Gaussian encoder whose mean is affine in :math:`x`: :math:`q(z\mid x) = \mathcal N(Ax + c,\ \Sigma_q)`,
    ``A`` ``(m, d)``, ``c`` ``(m,)``, ``cov`` ``(m, m)`` (the same for every x). The exact posterior of the
    linear-Gaussian model is one (:meth:`LinearGaussianModel.posterior_encoder`)."""

    A: Tensor
    c: Tensor
    cov: Tensor


@dataclass
class LinearGaussianModel:
    r"""The linear-Gaussian latent model :math:`z\sim\mathcal N(0,I_m)`, :math:`x\mid z\sim\mathcal N(Wz+b,\sigma^2 I_d)`.

    Args:
        W: ``(d, m)`` loading matrix; b: ``(d,)`` offset; sigma: noise standard deviation (> 0).
    """

    W: Tensor
    b: Tensor
    sigma: float

    def __post_init__(self) -> None:
        check.tensor("W", self.W, min_dim=2)
        check.tensor("b", self.b, min_dim=1)
        if self.W.dim() != 2 or self.b.dim() != 1 or self.b.shape[0] != self.W.shape[0]:
            raise ValueError(f"W, b: got shapes {tuple(self.W.shape)} and {tuple(self.b.shape)}; need W (d, m) and b (d,)")
        if isinstance(self.sigma, Tensor):
            self.sigma = float(self.sigma)
        if not isinstance(self.sigma, (int, float)) or isinstance(self.sigma, bool) or not math.isfinite(self.sigma) or self.sigma <= 0:
            raise ValueError(f"sigma: got {self.sigma!r}; need a positive finite float (the noise standard deviation)")
        self.sigma = float(self.sigma)
        self.b = self.b.to(self.W.dtype)

    @classmethod
    def random(cls, x_dim: int, z_dim: int, *, sigma: float = 0.5, scale: float = 1.0,
               generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> "LinearGaussianModel":
        """A model with ``W`` and ``b`` drawn from :math:`\\mathcal N(0, \\text{scale}^2)`."""
        x_dim, z_dim = check_positive_int("x_dim", x_dim), check_positive_int("z_dim", z_dim)
        W = scale * torch.randn(x_dim, z_dim, generator=generator, dtype=dtype)
        b = scale * torch.randn(x_dim, generator=generator, dtype=dtype)
        return cls(W, b, sigma)

    @classmethod
    def orthonormal(cls, z_dim: int, x_dim: int | None = None, *, sigma: float = 0.5,
                    seed: int = 0) -> "LinearGaussianModel":
        r"""A float64 model with :math:`b = 0` and ``W`` ``(d, m)`` of orthonormal columns (a random rotation when
        ``x_dim == z_dim``, the default), so every latent direction is equally hard and only the dimension changes:

        .. math:: z\sim\mathcal N(0, I_m),\quad x\mid z \sim \mathcal N(Wz,\ \sigma^2 I_d)
                  \ \Longrightarrow\ P(x) = \mathcal N(x;\ 0,\ WW^\top + \sigma^2 I_d).

        Chapter 2 measures the naive Monte-Carlo estimator of :math:`P(x)` on it; chapter 3 uses it again.
        """
        z_dim = check_positive_int("z_dim", z_dim)
        x_dim = z_dim if x_dim is None else check_positive_int("x_dim", x_dim)
        if x_dim < z_dim:
            raise ValueError(f"x_dim: got {x_dim}; need x_dim >= z_dim={z_dim}")
        a = torch.randn(x_dim, z_dim, generator=make_generator(seed), dtype=torch.float64)
        q, _ = torch.linalg.qr(a)  # (d, m), orthonormal columns
        return cls(q, torch.zeros(x_dim, dtype=torch.float64), sigma)

    @property
    def x_dim(self) -> int:
        return self.W.shape[0]

    @property
    def z_dim(self) -> int:
        return self.W.shape[1]

    def _x(self, x: Tensor, name: str = "x", *, latent: bool = False) -> Tensor:
        """Check a data (or, with ``latent=True``, latent) tensor and cast it to the model's dtype."""
        size, what = (self.z_dim, "z_dim") if latent else (self.x_dim, "x_dim")
        check.tensor(name, x, min_dim=1)
        if x.shape[-1] != size:
            raise ValueError(f"{name}: got last dimension {x.shape[-1]}; need {what} = {size}")
        return x.to(self.W.dtype)

    def decode_mean(self, z: Tensor) -> Tensor:
        """:math:`Wz + b`: ``(..., m) -> (..., d)``."""
        return F.linear(self._x(z, "z", latent=True), self.W, self.b)  # (..., d); fast for any batch rank

    def marginal_cov(self) -> Tensor:
        """:math:`WW^\\top + \\sigma^2 I_d`, the covariance of :math:`p(x)`: ``(d, d)``."""
        return self.W @ self.W.T + self.sigma**2 * torch.eye(self.x_dim, dtype=self.W.dtype)

    def log_marginal(self, x: Tensor) -> Tensor:
        """Exact :math:`\\log p(x) = \\log\\mathcal N(x; b, WW^\\top + \\sigma^2 I)`: ``(..., d) -> (...)``."""
        return log_normal_full(self._x(x), self.b, self.marginal_cov())

    def posterior_precision(self) -> Tensor:
        """:math:`\\Lambda = I_m + W^\\top W / \\sigma^2`: ``(m, m)``."""
        return torch.eye(self.z_dim, dtype=self.W.dtype) + self.W.T @ self.W / self.sigma**2

    def posterior(self, x: Tensor) -> FullGaussian:
        r"""Exact :math:`p(z\mid x) = \mathcal N(\Lambda^{-1}W^\top(x-b)/\sigma^2,\ \Lambda^{-1})`.

        Completing the square in :math:`\log p(z) + \log p(x\mid z)
        = -\tfrac12 z^\top z - \tfrac{1}{2\sigma^2}\|x - b - Wz\|^2 + \text{const}`
        gives the quadratic term :math:`-\tfrac12 z^\top\Lambda z` and the linear term
        :math:`z^\top W^\top(x-b)/\sigma^2`. Returns ``mu`` ``(..., m)`` and ``cov`` ``(m, m)``.
        """
        x = self._x(x)
        L = cholesky(self.posterior_precision(), name="posterior precision")  # (m, m)
        cov = torch.cholesky_inverse(L)  # (m, m)
        mu = (x - self.b) @ self.W @ cov / self.sigma**2  # (..., m); cov is symmetric
        return FullGaussian(mu, cov)

    def posterior_encoder(self) -> LinearEncoder:
        r"""The exact posterior as a :class:`LinearEncoder`: :math:`A = \Lambda^{-1}W^\top/\sigma^2`, :math:`c = -Ab`,
        :math:`\Sigma_q = \Lambda^{-1}`, so that :math:`Ax + c` is the posterior mean of :meth:`posterior`."""
        cov = torch.cholesky_inverse(cholesky(self.posterior_precision(), name="posterior precision"))  # (m, m)
        A = cov @ self.W.T / self.sigma**2  # (m, d)
        return LinearEncoder(A, -A @ self.b, cov)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """:math:`\\log p(x\\mid z) = \\log\\mathcal N(x; Wz+b, \\sigma^2 I)`; ``x`` ``(..., d)``, ``z`` ``(..., m)`` broadcast."""
        mean = self.decode_mean(z)  # (..., d)
        logvar = torch.full_like(mean, 2 * math.log(self.sigma))
        return log_normal_diag(self._x(x), mean, logvar)

    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        """:math:`\\log p(x, z) = \\log p(x\\mid z) + \\log\\mathcal N(z; 0, I)`."""
        return self.log_likelihood(x, z) + log_normal_std(self._x(z, "z", latent=True))

    def log_posterior(self, z: Tensor, x: Tensor) -> Tensor:
        """Exact :math:`\\log p(z\\mid x)`; ``z`` ``(..., m)`` and ``x`` ``(..., d)`` broadcast."""
        post = self.posterior(x)
        return log_normal_full(self._x(z, "z", latent=True), post.mu, post.cov)

    def sample(self, n: int, *, generator: torch.Generator | None = None, return_z: bool = False):
        """Ancestral sampling: :math:`z\\sim\\mathcal N(0,I)`, :math:`x = Wz + b + \\sigma\\varepsilon`. Returns ``x`` ``(n, d)``
        or ``(x, z)``."""
        n = check_positive_int("n", n)
        z = torch.randn(n, self.z_dim, generator=generator, dtype=self.W.dtype)
        x = self.decode_mean(z) + self.sigma * torch.randn(n, self.x_dim, generator=generator, dtype=self.W.dtype)
        return (x, z) if return_z else x
