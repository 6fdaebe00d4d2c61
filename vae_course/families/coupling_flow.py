r"""A normalising flow of affine coupling and permutation layers (RealNVP, Dinh et al., 2017), appendix A.

A flow writes the data as an invertible function of a simple variable, :math:`x = f(z)` with
:math:`z\sim\pi = \mathcal N(0, I_D)`, and :math:`f = f_K\circ\dots\circ f_1` a composition of invertible layers,
:math:`h_0 = z`, :math:`h_j = f_j(h_{j-1})`, :math:`x = h_K`. The change of variables gives the density exactly:

.. math:: \log p(x) = \log\pi\big(f^{-1}(x)\big) - \sum_{j=1}^{K}\log\big|\det J_{f_j}(h_{j-1})\big|,

one pass through the inverse layers for the density, one pass through the layers themselves for a sample.
Both are fast only if every layer is easy to invert and has a cheap Jacobian determinant. The two layers here:

* :class:`AffineCoupling`: split the coordinates by a 0/1 ``mask`` into a kept part :math:`a` and a changed part
  :math:`b`; :math:`y_a = h_a`, :math:`y_b = h_b\odot e^{s(h_a)} + t(h_a)` with :math:`s, t` one MLP of :math:`h_a`.
  :math:`y_a` does not depend on :math:`h_b`, and :math:`y_b` depends on :math:`h_b` only elementwise, so the
  Jacobian is triangular (in the order :math:`a, b`) with diagonal :math:`(1,\dots,1, e^{s_1},\dots)`:
  :math:`\log|\det J| = \sum_{j\in b} s_j(h_a)`, whatever the MLP. The inverse needs no inverse of the MLP:
  :math:`h_a = y_a`, :math:`h_b = (y_b - t(y_a))\odot e^{-s(y_a)}`. Here :math:`s = \lambda\odot\tanh(\cdot)` with a
  learned scale :math:`\lambda`, which keeps the exponentials bounded (a stabiliser from RealNVP's code).
* :class:`Permutation`: a fixed reordering of the coordinates, so that the next coupling changes the part this one
  kept; a permutation matrix has :math:`|\det| = 1`, log-det 0.
* :class:`Sigmoid` (last layer for data in the unit cube): :math:`v = (\sigma(h) - \alpha)/(1 - 2\alpha)` maps
  :math:`\mathbb R^D` onto a box slightly larger than :math:`(0, 1)^D`, log-det
  :math:`\sum_j\log[\sigma(h_j)(1-\sigma(h_j))/(1-2\alpha)]`.

**Discrete data** (``n_levels`` :math:`L \ge 2`, e.g. binary pixels, :math:`L = 2`): a density on a continuous space
gives every discrete image probability 0, so images are **dequantised** (Uria et al., 2013; Theis et al., 2016):
pixel level :math:`k\in\{0..L-1\}` becomes :math:`v = (k + u)/L` with :math:`u\sim U[0,1)`. The flow's density
defines a discrete model :math:`P(x) = \int_{\text{cell}(x)} p(v)\,dv`, the mass of the cube of side :math:`1/L`
that :math:`x` stands for, and by Jensen's inequality

.. math:: \log P(x) = \log\mathbb E_{u}\big[p(v)\,L^{-D}\big] \;\ge\; \mathbb E_{u}\big[\log p(v)\big] - D\log L,

a lower bound on the log-likelihood of a model of discrete images, in the same units as the autoregressive
models' exact :math:`\log p(x)` and the VAE's IWAE bound; with :math:`k` draws of :math:`u` it tightens like the IWAE
bound (:meth:`CouplingFlow.log_prob`). The cells cover :math:`[0,1]^D` and the flow puts a little mass outside it,
so :math:`\sum_x P(x)\le 1`: a sub-normalised model, whose likelihood is, if anything, understated.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .. import _validate as check
from ..distributions import log_mean_exp, log_normal_std
from ..models.base import LossTerms, register_model
from ..nets import ACTIVATIONS, MLP
from ..utils import check_positive_int

__all__ = ["AffineCoupling", "Permutation", "Sigmoid", "CouplingFlowConfig", "CouplingFlow", "dequantize",
           "dequantized_bound", "PERMUTATIONS"]

PERMUTATIONS = ("reverse", "random")


class AffineCoupling(nn.Module):
    r"""``y_a = h_a``, ``y_b = h_b * exp(s(h_a)) + t(h_a)``; ``mask`` (D,) is 1 on the kept part :math:`a`.

    ``forward(h)`` and ``inverse(y)`` map ``(B, D)`` to ``((B, D), log_det (B,))``; the forward log-det is
    :math:`\sum_{j\in b}s_j`, the inverse one its negative. The MLP's last layer starts at zero, so a new layer
    is the identity.
    """

    def __init__(self, mask: Tensor, hidden: tuple[int, ...] = (64, 64), activation: str = "relu"):
        super().__init__()
        mask = check.tensor("mask", torch.as_tensor(mask, dtype=torch.float32), min_dim=1)
        if mask.dim() != 1 or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"mask: got shape {tuple(mask.shape)} with values {mask.unique().tolist()}; need a (D,) 0/1 vector")
        d = len(mask)
        self.register_buffer("mask", mask)
        self.net = MLP(d, 2 * d, hidden, activation)                       # (B, D) -> (B, 2D): s and t
        last = self.net.layers[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.scale = nn.Parameter(torch.ones(d))                           # lambda: s = lambda * tanh(.)

    def _s_t(self, h_a: Tensor) -> tuple[Tensor, Tensor]:
        raw_s, t = self.net.layers(h_a).chunk(2, dim=-1)                   # (B, D) each (inputs checked once, in the model)
        keep = 1 - self.mask                                               # only the changed part b moves
        return keep * self.scale * torch.tanh(raw_s), keep * t

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._s_t(h * self.mask)
        return h * torch.exp(s) + t, s.sum(-1)                             # y_a = h_a since s = t = 0 there

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._s_t(y * self.mask)                                    # y_a = h_a: the same s and t
        return (y - t) * torch.exp(-s), -s.sum(-1)


class Permutation(nn.Module):
    """``y = h[:, perm]``: a fixed reordering of the coordinates, log-det 0 (a permutation matrix)."""

    def __init__(self, perm: Tensor):
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        if perm.dim() != 1 or not torch.equal(perm.sort().values, torch.arange(len(perm))):
            raise ValueError(f"perm: got {perm.tolist()[:10]}...; need a permutation of 0..D-1")
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return h[:, self.perm], h.new_zeros(len(h))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y[:, self.inverse_perm], y.new_zeros(len(y))


class Sigmoid(nn.Module):
    r""":math:`v = (\sigma(h) - \alpha)/(1 - 2\alpha)`: :math:`\mathbb R^D` onto :math:`(-\alpha, 1+\alpha)/(1-2\alpha)`;
    the inverse is the logit :math:`h = \operatorname{logit}(\alpha + (1-2\alpha)v)`, finite on :math:`[0, 1]`."""

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha: got {alpha!r}; need 0 < alpha < 0.5")
        self.alpha = float(alpha)

    def _log_det(self, h: Tensor) -> Tensor:
        # log sigma'(h) = log sigma(h) + log(1 - sigma(h)) = -softplus(-h) - softplus(h)
        return (-nn.functional.softplus(-h) - nn.functional.softplus(h) - math.log(1 - 2 * self.alpha)).sum(-1)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return (torch.sigmoid(h) - self.alpha) / (1 - 2 * self.alpha), self._log_det(h)

    def inverse(self, v: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.logit(self.alpha + (1 - 2 * self.alpha) * v)
        return h, -self._log_det(h)


def dequantize(x: Tensor, n_levels: int, *, generator: torch.Generator | None = None, u: Tensor | None = None) -> Tensor:
    r"""Uniform dequantisation: pixel values :math:`x = k/(L-1)`, :math:`k\in\{0..L-1\}`, become :math:`v = (k + u)/L`,
    :math:`u\sim U[0,1)` (or the given ``u``, shape of ``x``). ``x`` any shape; returns ``x``'s shape, in :math:`[0, 1)`."""
    n_levels = check_positive_int("n_levels", n_levels)
    if n_levels < 2:
        raise ValueError(f"n_levels: got {n_levels}; need >= 2 levels (2 for binary pixels)")
    k = torch.round(check.tensor("x", x) * (n_levels - 1))                 # the integer level of each pixel
    if u is None:
        u = torch.rand(x.shape, generator=generator, device=generator.device if generator is not None else x.device)
    return (k + u.to(x.device)) / n_levels


def dequantized_bound(log_density: Tensor, n_dims: int, n_levels: int) -> Tensor:
    r"""From the log-density of a dequantised point to the bound on the discrete log-likelihood, nats:
    :math:`\log p(v) - D\log L` (the cell of :math:`x` has volume :math:`L^{-D}`). ``log_density`` any shape."""
    n_dims, n_levels = check_positive_int("n_dims", n_dims), check_positive_int("n_levels", n_levels)
    return log_density - n_dims * math.log(n_levels)


@dataclass
class CouplingFlowConfig:
    """Everything needed to rebuild a :class:`CouplingFlow` (plain values, stored in checkpoints)."""

    x_shape: tuple[int, ...] = (2,)  # shape of one data point: (2,) for 2-D points, (1, 8, 8) for images
    n_couplings: int = 8  # K coupling layers, each followed by a permutation
    hidden: tuple[int, ...] = (64, 64)  # hidden layers of each coupling's MLP for s and t
    activation: str = "relu"  # the MLPs' nonlinearity
    permutation: str = "reverse"  # "reverse" (swap halves; the 2-D case) or "random" (fixed, drawn from seed)
    n_levels: int = 0  # 0: continuous data; L >= 2: discrete pixels k/(L-1), dequantised, then a Sigmoid last layer
    alpha: float = 0.01  # the Sigmoid layer's margin (discrete data only)
    seed: int = 0  # the random permutations

    def __post_init__(self) -> None:
        self.x_shape = tuple(check_positive_int(f"x_shape[{i}]", s) for i, s in enumerate(self.x_shape))
        self.hidden = tuple(self.hidden)
        if not self.x_shape:
            raise ValueError("x_shape: got (); need the shape of one data point, e.g. (2,) or (1, 8, 8)")
        if math.prod(self.x_shape) < 2:
            raise ValueError(f"x_shape: got {self.x_shape}; a coupling layer needs at least 2 coordinates")
        check_positive_int("n_couplings", self.n_couplings)
        check_positive_int("n_levels", self.n_levels, allow_zero=True)
        check_positive_int("seed", self.seed, allow_zero=True)
        if self.n_levels == 1:
            raise ValueError("n_levels: got 1; need 0 (continuous data) or >= 2 (discrete levels)")
        if self.permutation not in PERMUTATIONS:
            raise ValueError(f"permutation: got {self.permutation!r}; need one of {PERMUTATIONS}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: got {self.activation!r}; need one of {tuple(ACTIVATIONS)}")

    @property
    def x_dim(self) -> int:
        """Coordinates per data point, D."""
        return math.prod(self.x_shape)


@register_model
class CouplingFlow(nn.Module):
    r"""RealNVP-style flow :math:`x = f(z)`, :math:`z\sim\mathcal N(0, I_D)`: ``n_couplings`` blocks
    [:class:`AffineCoupling` (first half kept), :class:`Permutation`], then :class:`Sigmoid` if ``n_levels``.

    ``layers`` holds them in generative order. Built from a :class:`CouplingFlowConfig` or keyword overrides.
    """

    config_class = CouplingFlowConfig

    def __init__(self, config: CouplingFlowConfig | None = None, **overrides):
        super().__init__()
        c = dataclasses.replace(config or CouplingFlowConfig(), **overrides)
        self.config = c
        d = c.x_dim
        mask = (torch.arange(d) < d // 2).float()                          # keep the first half
        g = torch.Generator().manual_seed(c.seed)
        layers: list[nn.Module] = []
        for _ in range(c.n_couplings):
            layers.append(AffineCoupling(mask, c.hidden, c.activation))
            layers.append(Permutation(torch.arange(d).flip(0) if c.permutation == "reverse" else torch.randperm(d, generator=g)))
        if c.n_levels:
            layers.append(Sigmoid(c.alpha))
        self.layers = nn.ModuleList(layers)

    def _flat(self, x: Tensor) -> Tensor:
        check.tensor("x", x, min_dim=1)
        shape, d = self.config.x_shape, self.config.x_dim
        if tuple(x.shape[1:]) != shape and not (x.dim() == 2 and x.shape[1] == d):
            raise ValueError(f"x: got shape {tuple(x.shape)}; need (B, {', '.join(map(str, shape))}) or (B, {d})")
        return x.reshape(len(x), d)

    # ------------------------------------------------------------ the two directions
    def transform(self, z: Tensor, *, upto: int | None = None) -> tuple[Tensor, Tensor]:
        r"""Generative direction :math:`h_j = f_j(h_{j-1})` through the first ``upto`` layers (all by default):
        ``z`` ``(B, D)`` -> (:math:`h_{\text{upto}}` ``(B, D)``, :math:`\sum_j\log|\det J_{f_j}|` ``(B,)``)."""
        h, log_det = z, z.new_zeros(len(z))
        for layer in self.layers[:upto]:
            h, ld = layer(h)
            log_det = log_det + ld
        return h, log_det

    def inverse(self, x: Tensor, *, upto: int | None = None) -> tuple[Tensor, Tensor]:
        r"""Density direction: from :math:`h_{\text{upto}}` ``(B, D)`` back to :math:`z`, and
        :math:`\log|\det J_{f^{-1}}| = -\sum_j\log|\det J_{f_j}|` ``(B,)``."""
        h, log_det = x, x.new_zeros(len(x))
        for layer in reversed(self.layers[:upto]):
            h, ld = layer.inverse(h)
            log_det = log_det + ld
        return h, log_det

    def log_density(self, v: Tensor, *, upto: int | None = None) -> Tensor:
        r"""The continuous log-density :math:`\log p(v) = \log\pi(f^{-1}(v)) + \log|\det J_{f^{-1}}(v)|`, ``(B,)``.

        ``v`` ``(B, *x_shape)`` or ``(B, D)``; with ``upto = j`` the density of :math:`h_j`, the distribution after
        the first ``j`` layers (for figures of the flow layer by layer).
        """
        z, log_det = self.inverse(self._flat(v), upto=upto)
        return log_normal_std(z, validate=False) + log_det

    def log_prob(self, x: Tensor, *, k: int = 1, generator: torch.Generator | None = None) -> Tensor:
        r"""Continuous data: :math:`\log p(x)` (exact, ``k`` ignored). Discrete data (``n_levels`` :math:`L`): the
        dequantisation bound :math:`\log\frac1k\sum_{i=1}^k p(v_i)L^{-D} \le \log P(x)`, :math:`v_i = (\kappa + u_i)/L` for the pixel levels :math:`\kappa` of :math:`x`,
        with ``k`` uniform draws per image (in nats, ``(B,)``), which tightens as ``k`` grows."""
        c = self.config
        if not c.n_levels:
            return self.log_density(x)
        x = self._flat(x)
        k = check_positive_int("k", k)
        draws = torch.stack([self.log_density(dequantize(x, c.n_levels, generator=generator)) for _ in range(k)])
        return dequantized_bound(log_mean_exp(draws, dim=0), c.x_dim, c.n_levels)  # (B,)

    def loss(self, x: Tensor) -> LossTerms:
        """Negative log-likelihood per example (one dequantisation draw for discrete data), mean over the batch."""
        nll = -self.log_prob(x).mean()
        return LossTerms(nll, {"loss": nll, "bits_per_dim": nll / (self.config.x_dim * math.log(2))})

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, z: Tensor | None = None) -> Tensor:
        r""":math:`z\sim\mathcal N(0, I)` (or the given ``z`` ``(n, D)``), :math:`x = f(z)`: one pass through the layers.

        Continuous data: ``(n, *x_shape)``. Discrete data: the level of the cell :math:`v` falls in,
        :math:`\lfloor vL\rfloor/(L-1)` clipped to :math:`[0, 1]`.
        """
        n, c = check_positive_int("n", n), self.config
        device = next(self.parameters()).device
        if z is None:
            z = torch.randn(n, c.x_dim, generator=generator,
                            device=generator.device if generator is not None else device).to(device)
        elif tuple(z.shape) != (n, c.x_dim):
            raise ValueError(f"z: got shape {tuple(z.shape)}; need ({n}, {c.x_dim})")
        x, _ = self.transform(z.to(device))
        if c.n_levels:
            x = torch.floor(x * c.n_levels).clamp(0, c.n_levels - 1) / (c.n_levels - 1)
        return x.reshape(n, *c.x_shape)

    @torch.no_grad()
    def trajectory(self, z: Tensor) -> list[Tensor]:
        r"""The points :math:`h_0 = z, h_1, \dots` after each coupling block (coupling + permutation), ``(B, D)`` each,
        in the model's coordinates (see :meth:`coordinate_order`)."""
        states, h = [z], z
        for j in range(0, 2 * self.config.n_couplings, 2):
            for layer in self.layers[j:j + 2]:
                h, _ = layer(h)
            states.append(h)
        return states

    def coordinate_order(self, upto: int) -> Tensor:
        """``order`` ``(D,)``: column ``c`` of :math:`h_{upto}` holds original coordinate ``order[c]`` (the permutations
        applied so far), so ``h[:, argsort(order)]`` shows a state in the data's own axes."""
        order = torch.arange(self.config.x_dim)
        for layer in self.layers[:upto]:
            if isinstance(layer, Permutation):
                order = order[layer.perm.cpu()]
        return order
