r"""Vector quantisation with a learned codebook (van den Oord, Vinyals & Kavukcuoglu, 2017), taught in chapter 8.

An encoder produces one vector :math:`z_e\in\mathbb R^D` per position of a feature map. A codebook holds
:math:`K` codewords :math:`e_1,\dots,e_K\in\mathbb R^D`, and every vector is replaced by its nearest codeword:

.. math:: k(z_e) = \arg\min_k \lVert z_e - e_k\rVert^2, \qquad z_q = e_{k(z_e)}.

The argmin has no useful gradient, so the **straight-through** estimator (chapter 4) copies the gradient
that arrives at :math:`z_q` to :math:`z_e` unchanged: :math:`z_q^{\rm st} = z_e + \mathrm{sg}[z_q - z_e]`, which
is :func:`vae_course.estimators.straight_through` with ``hard = z_q`` and ``soft = z_e``
(:math:`\mathrm{sg}` = stop-gradient, ``.detach()``).

Two terms train the codebook and keep the encoder near it (:func:`vq_loss`, per image, summed over the
positions and the :math:`D` coordinates):

* **codebook loss** :math:`\lVert \mathrm{sg}[z_e] - e\rVert^2`: moves each chosen codeword towards the
  encoder outputs assigned to it; the encoder gets no gradient from it;
* **commitment loss** :math:`\beta\lVert z_e - \mathrm{sg}[e]\rVert^2` (:math:`\beta = 0.25` in the paper):
  pulls the encoder towards its codeword, so its outputs cannot drift away from the codebook; the codebook
  gets no gradient from it.

**EMA codebook** (``ema=True``; paper, appendix A.1): instead of the codebook loss, each codeword is the
running mean of the encoder outputs assigned to it (:func:`ema_update`),

.. math:: N_k \leftarrow \gamma N_k + (1-\gamma)\,n_k,\qquad m_k \leftarrow \gamma m_k + (1-\gamma)\!\!\sum_{i:k(i)=k}\!\! z_{e,i},
          \qquad e_k = m_k / N_k,

with :math:`n_k` the number of vectors of the batch assigned to code :math:`k` and decay :math:`\gamma`.

**Dead codes and restarts**: a codeword that is nobody's nearest neighbour gets no update and stays unused
for good. The quantiser keeps a running count of uses per batch (``usage``, decay ``usage_decay``); with
``restart_every = n > 0``, on the first training step and then every ``n`` steps, each code used less than
``dead_threshold`` times per batch is moved onto a randomly chosen encoder output of the current batch
(:meth:`VectorQuantizer.restart_dead_codes`; Dhariwal et al., 2020, Jukebox, use the same idea).

**Where the state changes**: the EMA update, the usage count and the restarts happen inside ``forward`` when
the module is in training mode, which is the case during :func:`vae_course.train.fit`'s steps; evaluation
(:func:`vae_course.train.evaluate_loss`, :func:`vae_course.vq.encode_codes`) runs in eval mode and changes nothing.

**Usage**: :func:`perplexity` :math:`=\exp(-\sum_k p_k\log p_k)` of the code frequencies :math:`p_k` is the
effective number of codes in use (:math:`K` for uniform use, 1 for a single code); :func:`dead_fraction` is
the fraction of codes never used.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import _validate as check
from ..estimators import straight_through
from ..utils import check_positive_int

__all__ = ["VQLoss", "Quantized", "EMAState", "squared_distances", "nearest_code", "vq_loss", "ema_update",
           "code_counts", "perplexity", "dead_fraction", "VectorQuantizer"]


class VQLoss(NamedTuple):
    """The two quantiser terms, scalars (mean over the batch of per-image sums).

    ``codebook``: :math:`\\lVert\\mathrm{sg}[z_e]-e\\rVert^2` (zero for the EMA codebook, which is not trained by
    gradients); ``commitment``: :math:`\\beta\\lVert z_e-\\mathrm{sg}[e]\\rVert^2` (already weighted by beta).
    """

    codebook: Tensor
    commitment: Tensor

    @property
    def total(self) -> Tensor:
        return self.codebook + self.commitment


class Quantized(NamedTuple):
    """What :class:`VectorQuantizer` returns: ``quantized`` (the codewords, straight-through, shape of the input),
    ``indices`` (long, the input's shape without the code dimension) and ``loss`` (:class:`VQLoss`)."""

    quantized: Tensor
    indices: Tensor
    loss: VQLoss


class EMAState(NamedTuple):
    """Running statistics of the EMA codebook: ``cluster_size`` :math:`N` ``(K,)``, ``embed_sum`` :math:`m` ``(K, D)``
    and the resulting ``codebook`` :math:`e_k = m_k/N_k` ``(K, D)``."""

    cluster_size: Tensor
    embed_sum: Tensor
    codebook: Tensor


# ---------------------------------------------------------------- pure functions
def squared_distances(z: Tensor, codebook: Tensor, *, validate: bool = True) -> Tensor:
    r""":math:`\lVert z_i - e_k\rVert^2 = \lVert z_i\rVert^2 - 2 z_i^\top e_k + \lVert e_k\rVert^2`; ``z`` ``(N, D)``,
    ``codebook`` ``(K, D)`` -> ``(N, K)``. The expansion costs one matrix product instead of an ``(N, K, D)`` tensor."""
    if validate:
        _check_codes_shapes(z, codebook)
    return z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(1)  # (N, K)


def _check_codes_shapes(z: Tensor, codebook: Tensor) -> None:
    check.tensor("z", z)
    check.tensor("codebook", codebook)
    if z.dim() != 2 or codebook.dim() != 2 or z.shape[1] != codebook.shape[1] or not len(codebook):
        raise ValueError(f"z, codebook: got shapes {tuple(z.shape)} and {tuple(codebook.shape)}; need (N, D) and (K, D), K >= 1")


def nearest_code(z: Tensor, codebook: Tensor, *, validate: bool = True) -> Tensor:
    r""":math:`k(z_i) = \arg\min_k\lVert z_i - e_k\rVert^2`; ``z`` ``(N, D)``, ``codebook`` ``(K, D)`` -> ``(N,)`` long."""
    if validate:
        _check_codes_shapes(z, codebook)
    with torch.no_grad():
        return squared_distances(z, codebook, validate=False).argmin(1)


def vq_loss(z_e: Tensor, z_q: Tensor, beta: float = 0.25) -> VQLoss:
    r"""Codebook and commitment terms of van den Oord et al. (2017), eq. (3), per image, mean over the batch.

    .. math:: \text{codebook} = \lVert\mathrm{sg}[z_e] - z_q\rVert^2,\qquad
              \text{commitment} = \beta\,\lVert z_e - \mathrm{sg}[z_q]\rVert^2

    Args:
        z_e: encoder outputs ``(B, ...)``; z_q: the chosen codewords (not straight-through), same shape.
        beta: commitment weight (0.25 in the paper; results were robust for 0.1 to 2).
    The squared norms are summed over every dimension but the first (positions and code coordinates).
    """
    check.positive_float("beta", beta, allow_zero=True)
    if z_e.shape != z_q.shape:
        raise ValueError(f"z_e, z_q: got shapes {tuple(z_e.shape)} and {tuple(z_q.shape)}; need the same shape")
    dims = tuple(range(1, z_e.dim()))
    codebook = (z_e.detach() - z_q).pow(2).sum(dims).mean()  # gradient to the codewords only
    commitment = beta * (z_e - z_q.detach()).pow(2).sum(dims).mean()  # gradient to the encoder only
    return VQLoss(codebook, commitment)


def _check_ema(cluster_size: Tensor, embed_sum: Tensor, codebook: Tensor, z: Tensor, indices: Tensor,
               decay: float) -> None:
    check.tensor("cluster_size", cluster_size, min_dim=1)
    k = cluster_size.shape[0]
    for name, t in (("embed_sum", embed_sum), ("codebook", codebook)):
        check.tensor(name, t)
        if t.dim() != 2 or t.shape[0] != k:
            raise ValueError(f"{name}: got shape {tuple(t.shape)}; need (K, D) with K = {k} (cluster_size's length)")
    _check_codes_shapes(z, codebook)
    check.index_tensor("indices", indices, k)
    if indices.shape != z.shape[:1]:
        raise ValueError(f"indices: got shape {tuple(indices.shape)}; need ({z.shape[0]},), one code per row of z")
    check.number("decay", decay, low=0.0, high=1.0, low_open=True, high_open=True)


def ema_update(cluster_size: Tensor, embed_sum: Tensor, codebook: Tensor, z: Tensor, indices: Tensor,
               decay: float = 0.99, *, validate: bool = True) -> EMAState:
    r"""One EMA step of the codebook (van den Oord et al., 2017, appendix A.1); returns new tensors.

    .. math:: N_k \leftarrow \gamma N_k + (1-\gamma) n_k,\quad m_k \leftarrow \gamma m_k + (1-\gamma)\sum_{i:k(i)=k} z_i,
              \quad e_k = m_k/N_k \;(\text{kept as it is while } N_k = 0)

    Args:
        cluster_size: :math:`N` ``(K,)``; embed_sum: :math:`m` ``(K, D)``; codebook: current :math:`e` ``(K, D)``.
        z: the batch's encoder outputs ``(N, D)``; indices: their codes ``(N,)``; decay: :math:`\gamma\in(0, 1)`.
    """
    if validate:
        _check_ema(cluster_size, embed_sum, codebook, z, indices, decay)
    n_codes = cluster_size.shape[0]
    one_hot = torch.nn.functional.one_hot(indices, n_codes).to(z.dtype)  # (N, K)
    n_k = one_hot.sum(0)  # (K,)
    sums = one_hot.T @ z  # (K, D): sum of the vectors assigned to each code
    cluster_size = decay * cluster_size + (1 - decay) * n_k
    embed_sum = decay * embed_sum + (1 - decay) * sums
    alive = cluster_size > 0
    new = torch.where(alive[:, None], embed_sum / cluster_size.clamp_min(1e-30)[:, None], codebook)
    return EMAState(cluster_size, embed_sum, new)


def code_counts(indices: Tensor, n_codes: int) -> Tensor:
    """How often each code occurs in ``indices`` (any shape, integer, values in ``[0, n_codes)``): ``(K,)`` float."""
    n_codes = check_positive_int("n_codes", n_codes)
    check.index_tensor("indices", indices, n_codes, per_batch=True)
    return _counts(indices, n_codes)


def _counts(indices: Tensor, n_codes: int) -> Tensor:
    return torch.bincount(indices.reshape(-1), minlength=n_codes).float()


def perplexity(counts: Tensor) -> Tensor:
    r""":math:`\exp\big(-\sum_k p_k\log p_k\big)` with :math:`p_k = c_k/\sum_j c_j` (:math:`0\log 0 = 0`), from
    ``counts`` (or probabilities) ``(K,)``. Equals :math:`K` for uniform use and 1 when one code is used."""
    check.tensor("counts", counts, min_dim=1, per_batch=True)
    if check.should_scan(counts, True) and (bool((counts < 0).any()) or float(counts.sum()) <= 0):
        raise ValueError(f"counts: got minimum {counts.min().item():g} and sum {counts.sum().item():g}; need non-negative "
                         "counts with a positive sum")
    p = counts / counts.sum()
    entropy = -torch.where(p > 0, p * torch.log(p.clamp_min(1e-30)), torch.zeros_like(p)).sum()
    return torch.exp(entropy)


def dead_fraction(counts: Tensor) -> Tensor:
    """Fraction of codes with zero count in ``counts`` ``(K,)`` (non-negative, at least one code)."""
    check.tensor("counts", counts, min_dim=1, per_batch=True)
    if counts.dim() != 1 or not len(counts):
        raise ValueError(f"counts: got shape {tuple(counts.shape)}; need counts (K,) of K >= 1 codes")
    if check.should_scan(counts, True) and bool((counts < 0).any()):
        raise ValueError(f"counts: got a minimum of {counts.min().item():g}; need non-negative counts")
    return (counts == 0).float().mean()


# ---------------------------------------------------------------- the module
class VectorQuantizer(nn.Module):
    r"""Nearest-codeword quantisation with straight-through gradients, a codebook trained by the codebook loss
    (``ema=False``) or by exponential moving averages (``ema=True``), and optional dead-code restarts.

    Input ``z_e`` ``(B, D, ...)`` (code coordinates in dim 1, like a conv feature map) or ``(N, D)``.
    The codebook starts uniform in :math:`[-1/K, 1/K]` (as in the paper's code): small next to typical encoder
    outputs, which is why many codes can stay unused without restarts.

    Args:
        n_codes: :math:`K`. code_dim: :math:`D`. beta: commitment weight.
        ema: EMA codebook instead of the codebook loss. decay: :math:`\gamma` of the EMA codebook.
        restart_every: restart dead codes every this many training steps (and on the first one); 0: never.
        dead_threshold: a code used fewer times per batch than this (running mean) counts as dead.
        usage_decay: decay of the running count of uses per batch.
    """

    def __init__(self, n_codes: int, code_dim: int, beta: float = 0.25, *, ema: bool = False, decay: float = 0.99,
                 restart_every: int = 0, dead_threshold: float = 1.0, usage_decay: float = 0.95):
        super().__init__()
        self.n_codes = check_positive_int("n_codes", n_codes)
        self.code_dim = check_positive_int("code_dim", code_dim)
        for name, value in (("decay", decay), ("usage_decay", usage_decay)):
            check.number(name, value, low=0.0, high=1.0, low_open=True, high_open=True)
        check.positive_float("beta", beta, allow_zero=True)
        check.positive_float("dead_threshold", dead_threshold, allow_zero=True)
        self.beta, self.ema, self.decay = float(beta), bool(ema), float(decay)
        self.restart_every = check_positive_int("restart_every", restart_every, allow_zero=True)
        self.dead_threshold, self.usage_decay = float(dead_threshold), float(usage_decay)
        init = torch.empty(n_codes, code_dim).uniform_(-1.0 / n_codes, 1.0 / n_codes)
        if self.ema:
            self.register_buffer("codebook", init)
            self.register_buffer("cluster_size", torch.zeros(n_codes))
            self.register_buffer("embed_sum", torch.zeros(n_codes, code_dim))
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("usage", torch.zeros(n_codes))  # running uses per batch
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))  # codes restarted so far

    def _flat(self, z_e: Tensor) -> Tensor:
        if not isinstance(z_e, Tensor) or not z_e.is_floating_point() or z_e.dim() < 2 or z_e.shape[1] != self.code_dim:
            got = tuple(z_e.shape) if isinstance(z_e, Tensor) else type(z_e).__name__
            raise ValueError(f"z_e: got {got}; need a floating tensor (B, {self.code_dim}, ...) or (N, {self.code_dim})")
        check.tensor("z_e", z_e, per_batch=True)
        return z_e.movedim(1, -1).reshape(-1, self.code_dim)  # (N, D), N = B * positions

    def forward(self, z_e: Tensor) -> Quantized:
        """Quantise ``z_e`` ``(B, D, ...)``; in training mode also update the usage, the EMA codebook, restarts."""
        z = self._flat(z_e)  # (N, D)
        idx = nearest_code(z.detach(), self.codebook.detach(), validate=False)  # (N,)
        z_q = self.codebook[idx].reshape(*z_e.movedim(1, -1).shape).movedim(-1, 1)  # (B, D, ...)
        loss = vq_loss(z_e, z_q, self.beta)
        if self.ema:  # the codebook follows the EMA, not a gradient
            loss = VQLoss(torch.zeros_like(loss.codebook), loss.commitment)
        indices = idx.reshape(z_e.shape[:1] + z_e.shape[2:])  # (B, ...)
        if self.training:
            self._update(z.detach(), idx)
        return Quantized(straight_through(z_q, z_e, validate=False), indices, loss)

    @torch.no_grad()
    def _update(self, z: Tensor, idx: Tensor) -> None:
        counts = _counts(idx, self.n_codes)
        self.usage.mul_(self.usage_decay).add_((1 - self.usage_decay) * counts)
        if self.ema:
            state = ema_update(self.cluster_size, self.embed_sum, self.codebook, z, idx, self.decay, validate=False)
            self.cluster_size.copy_(state.cluster_size)
            self.embed_sum.copy_(state.embed_sum)
            self.codebook.copy_(state.codebook)
        self.steps += 1
        step = int(self.steps)
        if self.restart_every and (step == 1 or step % self.restart_every == 0):
            self._restart(z, None)

    def usage_per_batch(self) -> Tensor:
        r"""Running mean of each code's uses per training batch ``(K,)``, bias-corrected: the running sum
        :math:`u\leftarrow\rho u + (1-\rho)c` starts at 0, so it is divided by :math:`1-\rho^{t}` after :math:`t` steps."""
        t = int(self.steps)
        return self.usage / (1 - self.usage_decay ** t) if t > 0 else self.usage.clone()

    @torch.no_grad()
    def restart_dead_codes(self, z: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Move every code whose running use per batch (:meth:`usage_per_batch`) is below ``dead_threshold`` onto a
        random row of ``z`` ``(N, D)`` (recent encoder outputs); returns the indices of the restarted codes.

        Training calls it on the first step too: no code has been used yet, so every code that the first batch
        leaves unused starts at an encoder output (a data-dependent initialisation)."""
        check.tensor("z", z, min_dim=2)
        if z.dim() != 2 or z.shape[1] != self.code_dim:
            raise ValueError(f"z: got shape {tuple(z.shape)}; need encoder outputs (N, {self.code_dim})")
        return self._restart(z, check.generator("generator", generator))

    def _restart(self, z: Tensor, generator: torch.Generator | None) -> Tensor:
        dead = torch.nonzero(self.usage_per_batch() < self.dead_threshold).flatten()
        if len(dead) == 0 or len(z) == 0:
            return dead
        if len(z) >= len(dead):
            rows = torch.randperm(len(z), generator=generator, device=generator.device if generator else z.device)[:len(dead)]
        else:
            rows = torch.randint(len(z), (len(dead),), generator=generator, device=generator.device if generator else z.device)
        new = z[rows.to(z.device)].to(self.codebook.dtype)  # (n_dead, D)
        self.codebook.data[dead] = new
        t = max(int(self.steps), 1)
        self.usage[dead] = self.dead_threshold * (1 - self.usage_decay ** t)  # corrected value = the threshold
        if self.ema:
            self.cluster_size[dead] = self.dead_threshold
            self.embed_sum[dead] = self.dead_threshold * new
        self.restarts += len(dead)
        return dead

    def extra_repr(self) -> str:
        return (f"n_codes={self.n_codes}, code_dim={self.code_dim}, beta={self.beta}, ema={self.ema}, "
                f"restart_every={self.restart_every}")
