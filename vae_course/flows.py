r"""Normalising flows on a VAE's latent space: posteriors richer than a diagonal Gaussian (chapter 9).

Draw :math:`z_0` from a simple density :math:`q_0` (the encoder's diagonal Gaussian) and push it through
invertible maps :math:`z_k = f_k(z_{k-1})`. The change-of-variables formula gives the density of the result,

.. math:: \log q_K(z_K) = \log q_0(z_0) - \sum_{k=1}^K \log\Big|\det\frac{\partial f_k}{\partial z_{k-1}}\Big|,

so a flow posterior costs one log-determinant per layer. Two families, both built so that the determinant is cheap:

* **planar** layers (Rezende & Mohamed, 2015): :math:`f(z) = z + u\,\tanh(w^\top z + b)`. The Jacobian
  :math:`I + u\,\psi^\top` with :math:`\psi = \tanh'(w^\top z + b)\,w` is the identity plus a rank-one matrix, whose
  determinant is :math:`1 + u^\top\psi` (the matrix determinant lemma). The map is invertible when
  :math:`w^\top u \ge -1`, which :func:`planar_invertible_u` enforces;
* **inverse autoregressive** layers (IAF; Kingma et al., 2016): :math:`(m, s) = \mathrm{MADE}(z, h)`, where output
  :math:`i` sees only :math:`z_{<i}` (and a context :math:`h` from the encoder); then
  :math:`z' = \sigma\odot z + (1-\sigma)\odot m` with :math:`\sigma = \mathrm{sigmoid}(s)`. The Jacobian is
  triangular with diagonal :math:`\sigma`, so :math:`\log|\det| = \sum_i\log\sigma_i`.

Every layer maps ``(z, context)`` to ``(z', log_det)``: ``z`` ``(..., B, m)``, ``context`` ``(B, c)`` or None
(broadcast over leading sample dimensions), ``log_det`` ``(..., B)``. :class:`Flow` chains layers and sums their
log-determinants. The tests compare every log-determinant with ``torch.autograd.functional.jacobian``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _validate as check
from .utils import check_positive_int

__all__ = ["planar_invertible_u", "planar_transform", "planar_log_det", "PlanarFlow", "MaskedLinear", "MADE",
           "IAFLayer", "Flow", "build_flow", "FLOWS"]

FLOWS = ("planar", "iaf")
IAF_GATE_BIAS = 2.0  # sigma = sigmoid(s + 2) starts near 0.88: each IAF layer starts close to the identity


# ---------------------------------------------------------------- planar layers
def planar_invertible_u(w: Tensor, u: Tensor) -> Tensor:
    r"""The planar layer's :math:`\hat u` with :math:`w^\top\hat u \ge -1` (Rezende & Mohamed, 2015, appendix A):

    .. math:: \hat u = u + \big(m(w^\top u) - w^\top u\big)\,\frac{w}{\|w\|^2},\qquad m(a) = -1 + \log(1 + e^{a}).

    Then :math:`w^\top\hat u = m(w^\top u) > -1`, so :math:`f(z) = z + \hat u\tanh(w^\top z + b)` is invertible.
    ``w``, ``u``: ``(..., m)``; returns ``(..., m)``.
    """
    wu = (w * u).sum(-1, keepdim=True)  # (..., 1)
    return u + (F.softplus(wu) - 1 - wu) * w / w.pow(2).sum(-1, keepdim=True).clamp_min(1e-12)


def planar_transform(z: Tensor, w: Tensor, u: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    r"""One planar layer :math:`f(z) = z + u\tanh(w^\top z + b)` and its :math:`\log|\det\partial f/\partial z|`.

    .. math:: \log\big|\det(I + u\psi^\top)\big| = \log\big|1 + u^\top\psi\big|,\qquad
              \psi = \big(1 - \tanh^2(w^\top z + b)\big)\,w

    Args:
        z: ``(..., m)`` points; w, u: ``(..., m)`` (broadcast against ``z``; use :func:`planar_invertible_u` for an
            invertible layer); b: ``(...)`` or ``(..., 1)`` biases.
    Returns ``(f(z)`` ``(..., m)``, ``log_det`` ``(...))``.
    """
    b = b if b.dim() == w.dim() and b.shape[-1:] == (1,) else b.unsqueeze(-1)
    h = torch.tanh((z * w).sum(-1, keepdim=True) + b)  # (..., 1)
    psi = (1 - h.pow(2)) * w  # (..., m): tanh'(a) w
    log_det = torch.log((1 + (u * psi).sum(-1)).abs().clamp_min(1e-12))  # (...)
    return z + u * h, log_det


def planar_log_det(z: Tensor, w: Tensor, u: Tensor, b: Tensor) -> Tensor:
    r""":math:`\log|1 + u^\top\tanh'(w^\top z + b)\,w|`: the log-determinant of :func:`planar_transform` alone, ``(...)``."""
    for name, t in (("z", z), ("w", w), ("u", u)):
        check.tensor(name, t, min_dim=1)
    check.tensor("b", b)
    return planar_transform(z, w, u, b)[1]


class PlanarFlow(nn.Module):
    r"""A planar layer on ``z_dim`` latents, invertible by construction (:func:`planar_invertible_u`).

    With ``context_dim = 0`` its :math:`(u, w, b)` are free parameters shared by every :math:`x`; with
    ``context_dim = c > 0`` a linear map of the encoder's features :math:`h(x)` ``(B, c)`` adds to them, so every
    image gets its own layer (the amortised flow of Rezende & Mohamed, 2015).
    """

    def __init__(self, z_dim: int, context_dim: int = 0, *, generator: torch.Generator | None = None):
        super().__init__()
        self.z_dim = check_positive_int("z_dim", z_dim)
        self.context_dim = check_positive_int("context_dim", context_dim, allow_zero=True)
        self.w = nn.Parameter(0.1 * torch.randn(self.z_dim, generator=generator))
        self.u = nn.Parameter(0.1 * torch.randn(self.z_dim, generator=generator))
        self.b = nn.Parameter(torch.zeros(1))
        self.amortize = nn.Linear(self.context_dim, 2 * self.z_dim + 1) if self.context_dim else None
        if self.amortize is not None:  # start at the shared parameters: the context's map starts at zero
            nn.init.zeros_(self.amortize.weight)
            nn.init.zeros_(self.amortize.bias)

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        w, u, b = self.w, self.u, self.b
        if self.amortize is not None:
            if context is None:
                raise ValueError(f"context: got None; this layer was built with context_dim={self.context_dim}")
            dw, du, db = self.amortize(context).split([self.z_dim, self.z_dim, 1], dim=-1)  # (B, m), (B, m), (B, 1)
            w, u, b = w + dw, u + du, b + db
        return planar_transform(z, w, planar_invertible_u(w, u), b)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, context_dim={self.context_dim}"


# ---------------------------------------------------------------- inverse autoregressive layers
class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 ``mask`` ``(out, in)`` (Germain et al., 2015)."""

    def __init__(self, in_features: int, out_features: int, mask: Tensor):
        super().__init__(in_features, out_features)
        if tuple(mask.shape) != (out_features, in_features):
            raise ValueError(f"mask: got shape {tuple(mask.shape)}; need ({out_features}, {in_features})")
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def _made_masks(z_dim: int, hidden: int, reverse: bool) -> tuple[Tensor, Tensor]:
    """Masks ``(hidden, m)`` and ``(2m, hidden)`` such that outputs ``i`` and ``m + i`` see only inputs before ``i``
    (in the order ``0..m-1``, or ``m-1..0`` if ``reverse``)."""
    order = torch.arange(z_dim)
    degree_in = (z_dim - 1 - order) if reverse else order  # (m,): the position of each input in the order
    degree_h = torch.arange(hidden) % max(1, z_dim - 1)  # (hidden,): unit k may see inputs of degree <= its own
    m_in = (degree_h[:, None] >= degree_in[None, :]).float()  # (hidden, m)
    m_out = (degree_in[:, None] > degree_h[None, :]).float()  # (m, hidden): output i sees units of degree < i
    return m_in, m_out.repeat(2, 1)  # the same mask for the m shift and the m gate outputs


class MADE(nn.Module):
    r"""An autoregressive network :math:`z\mapsto(m, s)` (Germain et al., 2015): output :math:`i` depends only on
    :math:`z_{<i}` (and on the ``context``, which enters the hidden layer unmasked). ``z`` ``(..., m)`` ->
    two ``(..., m)`` tensors. ``reverse`` flips the order, so stacked layers alternate which coordinate sees which."""

    def __init__(self, z_dim: int, hidden: int = 64, context_dim: int = 0, *, reverse: bool = False):
        super().__init__()
        self.z_dim = check_positive_int("z_dim", z_dim)
        hidden = check_positive_int("hidden", hidden)
        m_in, m_out = _made_masks(self.z_dim, hidden, reverse)
        self.inp = MaskedLinear(self.z_dim, hidden, m_in)
        self.context = nn.Linear(context_dim, hidden, bias=False) if context_dim else None
        self.out = MaskedLinear(hidden, 2 * self.z_dim, m_out)
        nn.init.zeros_(self.out.weight)  # start with m = 0 and s = 0 for every z: a near-identity layer
        nn.init.zeros_(self.out.bias)

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        a = self.inp(z)  # (..., hidden)
        if self.context is not None:
            if context is None:
                raise ValueError("context: got None; this MADE was built with a context_dim > 0")
            a = a + self.context(context)
        shift, gate = self.out(F.elu(a)).chunk(2, dim=-1)  # (..., m) each
        return shift, gate


class IAFLayer(nn.Module):
    r"""One inverse autoregressive layer (Kingma et al., 2016, algorithm 1), the gated update

    .. math:: (m, s) = \mathrm{MADE}(z, h),\quad \sigma = \mathrm{sigmoid}(s + 2),\quad z' = \sigma\odot z + (1-\sigma)\odot m,
              \quad \log|\det| = \sum_i \log\sigma_i .

    ``reverse`` alternates the autoregressive order between stacked layers.
    """

    def __init__(self, z_dim: int, hidden: int = 64, context_dim: int = 0, *, reverse: bool = False):
        super().__init__()
        self.made = MADE(z_dim, hidden, context_dim, reverse=reverse)

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        shift, gate = self.made(z, context)
        log_sigma = F.logsigmoid(gate + IAF_GATE_BIAS)  # (..., m)
        sigma = log_sigma.exp()
        return sigma * z + (1 - sigma) * shift, log_sigma.sum(-1)


# ---------------------------------------------------------------- a stack of layers
class Flow(nn.Module):
    r""":math:`f_K\circ\dots\circ f_1`: ``forward(z0, context)`` returns :math:`z_K` ``(..., B, m)`` and
    :math:`\sum_k\log|\det\partial f_k/\partial z_{k-1}|` ``(..., B)``. No layers is the identity (log-det 0)."""

    def __init__(self, layers: list[nn.Module] | tuple[nn.Module, ...] = ()):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        for layer in self.layers:
            z, log_det = layer(z, context)
            total = total + log_det
        return z, total


def build_flow(kind: str, z_dim: int, n_layers: int, *, context_dim: int = 0, hidden: int = 64,
               seed: int = 0) -> Flow:
    """``n_layers`` layers of ``kind`` (one of :data:`FLOWS`) on ``z_dim`` latents; IAF layers alternate their order,
    planar layers draw their initial :math:`(u, w)` from ``seed``. ``n_layers = 0`` gives the identity."""
    if kind not in FLOWS:
        raise ValueError(f"flow: got {kind!r}; need one of {FLOWS}")
    n_layers = check_positive_int("flow_layers", n_layers, allow_zero=True)
    g = torch.Generator().manual_seed(seed)
    if kind == "planar":
        return Flow([PlanarFlow(z_dim, context_dim, generator=g) for _ in range(n_layers)])
    return Flow([IAFLayer(z_dim, hidden, context_dim, reverse=bool(k % 2)) for k in range(n_layers)])
