r"""Two autoregressive models of binary images (appendix A): finite memory, and a recurrent net (GRU).

Order the :math:`D` pixels of an image in raster order (row by row, left to right). The product rule gives,
with no assumption at all,

.. math:: p(x) = \prod_{i=1}^{D} p\big(x_i \mid x_{<i}\big), \qquad
          \log p(x) = \sum_{i=1}^{D} \log \mathrm{Bern}\big(x_i;\ \sigma(\ell_i(x_{<i}))\big),

so a model needs one Bernoulli logit :math:`\ell_i` per pixel that depends only on the pixels before it. Each
factor is normalised, hence so is the product: the likelihood is **exact**, and training is plain maximum
likelihood, a sum of :math:`D` binary cross-entropies computed in one pass (teacher forcing). Sampling has to
follow the order: pixel :math:`i` can be drawn only once :math:`x_{<i}` exists, :math:`D` steps one after another.
The two models here differ in what :math:`\ell_i` may look at (Tomczak, 2022, ch. 2):

* :class:`FiniteMemoryAR` (**finite memory**): only the previous :math:`k` pixels,
  :math:`p(x_i\mid x_{<i}) = p(x_i\mid x_{i-k},\dots,x_{i-1})`, through one small MLP shared by every position,
  written as a causal 1-D convolution of width :math:`k` (plus a learned bias per position, so a border pixel
  may be usually white). Cheap and easy to train, but blind to anything more than :math:`k` pixels back: with
  :math:`k < W` it does not even see the pixel above.
* :class:`GRUAR` (**long-range memory**): a GRU (Cho et al., 2014) reads :math:`x_1, x_2, \dots` and its state
  :math:`h_{i}` summarises all of :math:`x_{<i}`; :math:`\ell_i` is a linear read-out of :math:`h_{i}`. The price is
  a recurrence: even the likelihood is computed step by step, and gradients pass through :math:`D` steps.

Both take images ``(B, C, H, W)`` (or flat ``(B, D)``) of 0/1 pixels, implement the fit protocol of
:mod:`vae_course.models.base` (``loss(x) -> LossTerms``, registered for checkpoints), and provide
``log_prob(x)`` ``(B,)`` in nats and ``sample(n, generator=...)``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.base import LossTerms, register_model
from ..nets import ACTIVATIONS
from ..utils import check_positive_int

__all__ = ["finite_memory_mask", "FiniteMemoryARConfig", "FiniteMemoryAR", "GRUARConfig", "GRUAR"]


def finite_memory_mask(n_pixels: int, memory: int) -> Tensor:
    r"""The ``(D, D)`` 0/1 matrix :math:`M` of which pixel a finite-memory conditional may read:
    :math:`M_{ij} = 1` iff :math:`i - k \le j < i` (row :math:`i` is the conditional of pixel :math:`i`,
    0-based, raster order). Strictly lower triangular, a band of width ``memory`` = :math:`k` below the diagonal.
    """
    d = check_positive_int("n_pixels", n_pixels)
    k = check_positive_int("memory", memory, allow_zero=True)
    i = torch.arange(d)[:, None]
    j = torch.arange(d)[None, :]
    return ((j < i) & (j >= i - k)).float()


def _check_shape(x_shape: tuple) -> tuple[int, int, int]:
    x_shape = tuple(x_shape)
    if len(x_shape) != 3:
        raise ValueError(f"x_shape: got {x_shape}; need (C, H, W), e.g. (1, 8, 8)")
    return tuple(check_positive_int(f"x_shape[{i}]", s) for i, s in enumerate(x_shape))  # type: ignore[return-value]


class _PixelSequence(nn.Module):
    """What both models share: the raster order, the Bernoulli likelihood, the loss and sequential sampling.

    Subclasses implement ``logits(x)`` ``(B, D) -> (B, D)`` (teacher forcing; logit ``i`` sees ``x[:, :i]`` only)
    and ``_start(n)`` / ``_step(state, x_prev, i) -> (logit (n,), state)`` for sampling.
    """

    config: object

    @property
    def n_pixels(self) -> int:
        c, h, w = self.config.x_shape
        return c * h * w

    def _flat(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` or ``(B, D)`` of 0/1 values -> ``(B, D)`` in raster order."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            got = type(x).__name__ if not isinstance(x, Tensor) else f"a tensor of dtype {x.dtype}"
            raise TypeError(f"x: got {got}; need a floating tensor of binary images")
        shape, d = tuple(self.config.x_shape), self.n_pixels
        if not ((x.dim() == 4 and tuple(x.shape[1:]) == shape) or (x.dim() == 2 and x.shape[1] == d)):
            raise ValueError(f"x: got shape {tuple(x.shape)}; need (B, {', '.join(map(str, shape))}) or (B, {d})")
        if x.numel() and not bool(((x == 0) | (x == 1)).all()):
            raise ValueError("x: got values other than 0 and 1; this model is a distribution over binary images "
                             "(binarise with vc.data.digits(binarize='static') or vc.data.draw_binary)")
        return x.reshape(len(x), d)

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\log p(x) = \sum_i \log\mathrm{Bern}(x_i;\sigma(\ell_i))` per image, ``(B,)``, in nats (exact)."""
        x = self._flat(x)
        return -F.binary_cross_entropy_with_logits(self.logits(x), x, reduction="none").sum(-1)

    def loss(self, x: Tensor) -> LossTerms:
        """Negative log-likelihood, mean over the batch (nats per image), and the same in bits per pixel."""
        nll = -self.log_prob(x).mean()
        return LossTerms(nll, {"loss": nll, "bits_per_dim": nll / (self.n_pixels * math.log(2))})

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        r"""Ancestral sampling in raster order: :math:`x_i\sim\mathrm{Bern}(\sigma(\ell_i(x_{<i})))`, :math:`D` steps.

        Returns ``(n, C, H, W)`` of 0/1 floats. ``generator`` drives the uniforms :math:`u_i`, :math:`x_i = 1[u_i < p_i]`.
        """
        n = check_positive_int("n", n)
        device = next(self.parameters()).device
        u = torch.rand(n, self.n_pixels, generator=generator,
                       device=generator.device if generator is not None else device).to(device)  # (n, D)
        was_training = self.training
        self.eval()
        try:
            x = torch.zeros(n, self.n_pixels, device=device)
            state = self._start(n, device)
            for i in range(self.n_pixels):
                logit, state = self._step(state, x, i)              # (n,): depends on x[:, :i] only
                x[:, i] = (u[:, i] < torch.sigmoid(logit)).float()
        finally:
            self.train(was_training)
        return x.reshape(n, *self.config.x_shape)


# ---------------------------------------------------------------- finite memory
@dataclass
class FiniteMemoryARConfig:
    """Everything needed to rebuild a :class:`FiniteMemoryAR` (plain values, stored in checkpoints)."""

    x_shape: tuple[int, int, int] = (1, 8, 8)  # (C, H, W) of one binary image; D = C*H*W pixels in raster order
    memory: int = 8  # k: pixel i sees x_{i-k}, ..., x_{i-1}; 0 gives independent pixels (one logit per position)
    hidden: int = 64  # units of the two hidden layers of the shared MLP
    activation: str = "relu"  # the MLP's nonlinearity

    def __post_init__(self) -> None:
        self.x_shape = _check_shape(self.x_shape)
        check_positive_int("memory", self.memory, allow_zero=True)
        check_positive_int("hidden", self.hidden)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: got {self.activation!r}; need one of {tuple(ACTIVATIONS)}")


@register_model
class FiniteMemoryAR(_PixelSequence):
    r"""Finite-memory autoregressive model: :math:`\ell_i = \mathrm{MLP}(x_{i-k..i-1})` with a bias per position.

    .. math:: h_i = a\big(W\,[x_{i-k},\dots,x_{i-1}] + b_i\big),\qquad \ell_i = v^\top a(U h_i + c) + e,

    pixels before the first one read as 0 (the position bias :math:`b_i` tells the net where it is). All :math:`D`
    windows at once are the rows of the left-padded sequence unfolded with width :math:`k` (a causal 1-D
    convolution of width :math:`k`, written as a matrix product). Built from a :class:`FiniteMemoryARConfig` or
    keyword overrides.
    """

    config_class = FiniteMemoryARConfig

    def __init__(self, config: FiniteMemoryARConfig | None = None, **overrides):
        super().__init__()
        c = dataclasses.replace(config or FiniteMemoryARConfig(), **overrides)
        self.config = c
        d, k = self.n_pixels, c.memory
        self.window = nn.Linear(k, c.hidden, bias=False) if k else None    # W: (hidden, k)
        self.position = nn.Parameter(torch.zeros(d, c.hidden))             # b_i: (D, hidden)
        self.head = nn.Sequential(ACTIVATIONS[c.activation](), nn.Linear(c.hidden, c.hidden),
                                  ACTIVATIONS[c.activation](), nn.Linear(c.hidden, 1))  # shared by every position

    def logits(self, x: Tensor) -> Tensor:
        """Logits ``(B, D)`` of every conditional in one pass; logit ``i`` reads ``x[:, i-k:i]`` only."""
        k, d = self.config.memory, self.n_pixels
        h = self.position.expand(len(x), -1, -1)                           # (B, D, hidden)
        if self.window is not None:
            windows = F.pad(x, (k, 0)).unfold(1, k, 1)[:, :d]              # (B, D, k): row i is x[i-k .. i-1]
            h = h + self.window(windows)
        return self.head(h)[..., 0]                                        # (B, D)

    def _start(self, n: int, device) -> None:
        return None

    def _step(self, state, x: Tensor, i: int) -> tuple[Tensor, None]:
        k = self.config.memory
        h = self.position[i].expand(len(x), -1)                            # (n, hidden)
        if self.window is not None:
            h = h + self.window(F.pad(x[:, max(0, i - k):i], (k - min(i, k), 0)))  # the window, zero-padded: (n, k)
        return self.head(h)[:, 0], None


# ---------------------------------------------------------------- recurrent
@dataclass
class GRUARConfig:
    """Everything needed to rebuild a :class:`GRUAR` (plain values, stored in checkpoints)."""

    x_shape: tuple[int, int, int] = (1, 8, 8)  # (C, H, W) of one binary image; D = C*H*W pixels in raster order
    hidden: int = 64  # size of the GRU state h_i
    position_dim: int = 8  # size of the learned position embedding fed with each input pixel (0: none)

    def __post_init__(self) -> None:
        self.x_shape = _check_shape(self.x_shape)
        check_positive_int("hidden", self.hidden)
        check_positive_int("position_dim", self.position_dim, allow_zero=True)


@register_model
class GRUAR(_PixelSequence):
    r"""RNN autoregressive model: a GRU over the pixel sequence, :math:`\ell_i = v^\top h_i + c`.

    .. math:: h_i = \mathrm{GRU}\big(h_{i-1},\ [x_{i-1}, e_i]\big),\quad h_0 = 0,\ x_0 = 0,

    where :math:`e_i` is a learned embedding of the position :math:`i` (so the net need not count to know where it
    is). :math:`h_i` has read :math:`x_1..x_{i-1}` and nothing else. Built from a :class:`GRUARConfig` or keyword
    overrides.
    """

    config_class = GRUARConfig

    def __init__(self, config: GRUARConfig | None = None, **overrides):
        super().__init__()
        c = dataclasses.replace(config or GRUARConfig(), **overrides)
        self.config = c
        self.position = nn.Parameter(0.1 * torch.randn(self.n_pixels, c.position_dim))  # e_i: (D, position_dim)
        self.rnn = nn.GRU(1 + c.position_dim, c.hidden, batch_first=True)
        self.head = nn.Linear(c.hidden, 1)

    def _inputs(self, x_prev: Tensor, positions: slice | int) -> Tensor:
        e = self.position[positions]                                       # (T, position_dim) or (position_dim,)
        return torch.cat([x_prev[..., None], e.expand(*x_prev.shape, -1)], -1)  # (B, T, 1 + position_dim)

    def logits(self, x: Tensor) -> Tensor:
        """Logits ``(B, D)``: the GRU reads the sequence shifted by one (``x_0 = 0``), so logit ``i`` sees ``x[:, :i]``."""
        shifted = F.pad(x[:, :-1], (1, 0))                                 # (B, D): x_{i-1}, 0 in front
        h, _ = self.rnn(self._inputs(shifted, slice(None)))                # (B, D, hidden)
        return self.head(h)[..., 0]

    def _start(self, n: int, device) -> Tensor:
        return torch.zeros(1, n, self.config.hidden, device=device)

    def _step(self, state: Tensor, x: Tensor, i: int) -> tuple[Tensor, Tensor]:
        x_prev = x[:, i - 1] if i else torch.zeros(len(x), device=x.device)  # (n,)
        h, state = self.rnn(self._inputs(x_prev[:, None], slice(i, i + 1)), state)  # one step of the recurrence
        return self.head(h[:, 0])[:, 0], state
