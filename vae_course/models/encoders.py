r"""Encoders :math:`q_w(z\mid x) = \mathcal N\big(\mu_w(x), \mathrm{diag}\,\sigma^2_w(x)\big)`.

An encoder is a network :math:`x\mapsto(\mu, \ell)` with :math:`\ell = \log\sigma^2`. The
variances must be positive for *every* input and every weight setting, so the network never
outputs :math:`\sigma^2` directly; it outputs an unconstrained number :math:`a` and a
positive map turns it into a variance (:data:`POSTERIOR_VAR`):

* ``"exp"``: :math:`\sigma^2 = e^{a}`, i.e. :math:`\ell = a` (Kingma & Welling, 2014). Positive by
  construction, but :math:`e^{a}` grows fast: a large :math:`a` early in training gives a huge
  variance. The log-variance is clamped to :data:`LOGVAR_RANGE` so that ``exp`` stays finite.
* ``"softplus"``: :math:`\sigma^2 = \log(1+e^{a}) + \sigma^2_{\min}`: grows only linearly and has
  a floor, a common safer choice.

Architectures: :class:`MLPEncoder` is the one-hidden-layer tanh MLP of Kingma & Welling (2014,
appendix C); :class:`ConvEncoder` two stride-2 convolutions then a fully connected layer;
:class:`LinearEncoder` an affine map (for the linear-Gaussian model with an exact likelihood).
Inputs are images ``(B, C, H, W)`` (or already flat ``(B, C*H*W)``). Taught in chapter 5.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributions import DiagonalGaussian
from ..nets import activation as _activation

__all__ = ["MLPEncoder", "ConvEncoder", "LinearEncoder", "variance_head", "POSTERIOR_VAR", "LOGVAR_RANGE",
           "conv_sizes"]

POSTERIOR_VAR = ("exp", "softplus")
LOGVAR_RANGE = (-30.0, 20.0)  # clamp of log sigma^2 for "exp": sigma^2 in [1e-13, 5e8], never 0 or inf
MIN_POSTERIOR_VAR = 1e-4  # floor of sigma^2 for "softplus"


def variance_head(a: Tensor, kind: str) -> Tensor:
    """Unconstrained network outputs ``a`` -> log-variances :math:`\\log\\sigma^2`, so that the variance is positive
    for every input and every weight: ``kind`` "exp" (a clamped :math:`\\sigma^2 = e^{a}`) or "softplus"
    (:math:`\\sigma^2 = \\operatorname{softplus}(a) + 10^{-4}`); see the module doc."""
    if kind == "exp":
        return a.clamp(*LOGVAR_RANGE)
    return torch.log(F.softplus(a) + MIN_POSTERIOR_VAR)


def _check_kind(posterior_var: str) -> str:
    if posterior_var not in POSTERIOR_VAR:
        raise ValueError(f"posterior_var: got {posterior_var!r}; need one of {POSTERIOR_VAR}")
    return posterior_var


def conv_sizes(x_shape: tuple[int, int, int]) -> tuple[int, int]:
    """Feature-map size after two stride-2 convolutions (kernel 4, padding 1): ``(H/4, W/4)``."""
    _, h, w = x_shape
    if h % 4 or w % 4:
        raise ValueError(f"x_shape: got {tuple(x_shape)}; the conv nets need H and W divisible by 4 (e.g. 8 or 28)")
    return h // 4, w // 4


class _GaussianEncoder(nn.Module):
    """Shared tail: a trunk gives features h (B, F); one linear head gives (mu, a) (B, 2m)."""

    def __init__(self, features: int, z_dim: int, posterior_var: str):
        super().__init__()
        self.z_dim = z_dim
        self.posterior_var = _check_kind(posterior_var)
        self.head = nn.Linear(features, 2 * z_dim)

    def trunk(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def posterior(self, h: Tensor) -> DiagonalGaussian:
        """:math:`q(z\\mid x)` from the trunk's features ``h`` ``(B, F)`` (a flow posterior also reads ``h``)."""
        mu, a = self.head(h).chunk(2, dim=-1)  # (B, m) each
        return DiagonalGaussian(mu, variance_head(a, self.posterior_var))

    def forward(self, x: Tensor) -> DiagonalGaussian:
        return self.posterior(self.trunk(x))


class MLPEncoder(_GaussianEncoder):
    r"""Kingma & Welling's encoder: :math:`h = \tanh(W_1 x + b_1)`, :math:`(\mu, a) = W_2 h + b_2`.

    Args: ``x_dim`` pixels per image; ``z_dim`` latent size m; ``hidden`` sizes of the hidden
    layers (K&W: one layer of 500; here 400 by default); ``activation``; ``posterior_var``.
    """

    def __init__(self, x_dim: int, z_dim: int, hidden: tuple[int, ...] = (400,), activation: str = "tanh",
                 posterior_var: str = "exp"):
        sizes = [x_dim, *hidden]
        super().__init__(sizes[-1], z_dim, posterior_var)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), _activation(activation)]
        self.net = nn.Sequential(*layers)

    def trunk(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))  # (B, D) -> (B, hidden[-1])


class ConvEncoder(_GaussianEncoder):
    """Two stride-2 convolutions (kernel 4) halve H and W twice, then a fully connected layer.

    ``(B, C, H, W)`` -> ``(B, c1, H/2, W/2)`` -> ``(B, c2, H/4, W/4)`` -> ``(B, hidden)`` -> ``(mu, logvar)``.
    """

    def __init__(self, x_shape: tuple[int, int, int], z_dim: int, hidden: int = 400, channels: tuple[int, int] = (32, 64),
                 activation: str = "relu", posterior_var: str = "exp"):
        super().__init__(hidden, z_dim, posterior_var)
        h4, w4 = conv_sizes(x_shape)
        c1, c2 = channels
        self.x_shape = tuple(x_shape)
        self.net = nn.Sequential(
            nn.Conv2d(x_shape[0], c1, 4, stride=2, padding=1), _activation(activation),  # (B, c1, H/2, W/2)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), _activation(activation),  # (B, c2, H/4, W/4)
            nn.Flatten(), nn.Linear(c2 * h4 * w4, hidden), _activation(activation),  # (B, hidden)
        )

    def trunk(self, x: Tensor) -> Tensor:
        return self.net(x.reshape(-1, *self.x_shape))


class LinearEncoder(_GaussianEncoder):
    r"""An affine encoder :math:`(\mu, a) = Ax + c`: enough for the linear-Gaussian model, whose exact
    posterior has a mean linear in :math:`x` and a variance that does not depend on :math:`x`."""

    def __init__(self, x_dim: int, z_dim: int, posterior_var: str = "exp"):
        super().__init__(x_dim, z_dim, posterior_var)

    def trunk(self, x: Tensor) -> Tensor:
        return x.flatten(1)
