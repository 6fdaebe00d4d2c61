r"""Masked convolutions and a small PixelCNN (van den Oord et al., 2016): an autoregressive model of images.

An autoregressive model orders the pixels in raster order (row by row, left to right) and factorises

.. math:: p(x) = \prod_{i=1}^{D} p\big(x_i \mid x_{<i}\big),

each factor a Bernoulli (binary pixels) or a categorical (discrete codes, chapter 8). A PixelCNN computes
all :math:`D` conditionals in one pass of a convolutional net whose kernels are **masked** so that the
output at pixel :math:`i` sees only the pixels before :math:`i`:

* mask ``"A"`` (first layer): the kernel is zero at the centre and at every position after it, so the
  output at :math:`i` does not see :math:`x_i` itself;
* mask ``"B"`` (later layers): the centre is kept; a hidden unit at :math:`i` already depends only on
  :math:`x_{<i}`, so it may pass its own value on.

Stacking masked layers keeps the property (a tested fact: the gradient of output :math:`i` with respect to
every input :math:`j \ge i` is exactly zero). Stacked 3x3 masks leave a "blind spot" to the upper right
that the gated PixelCNN removes; with a large first kernel it is small on 8x8 images.

**Conditioning** (the conditional PixelCNN, van den Oord et al., 2016b): a vector ``cond`` ``(B, cond_dim)``,
e.g. a VAE's latent :math:`z`, is mapped by a linear layer to one bias per channel and added in every
layer, so :math:`p(x\mid z) = \prod_i p(x_i\mid x_{<i}, z)`. A map ``(B, cond_dim, H, W)`` (e.g. computed
from :math:`z` by a small network) gives a bias per channel *and position* instead, so the condition can say
where strokes go, as an ordinary decoder does. Such a decoder can model the image without
using :math:`z` at all, which is the reason for posterior collapse (chapter 7).

Training is one forward pass (teacher forcing); sampling takes :math:`H\cdot W` passes, one pixel each.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import _validate as check
from ..utils import check_positive_int

__all__ = ["MaskedConv2d", "PixelCNN", "causal_mask", "MASK_TYPES"]

MASK_TYPES = ("A", "B")


def causal_mask(kernel_size: int, mask_type: str) -> Tensor:
    r"""The ``(k, k)`` 0/1 mask of a raster-order masked convolution.

    Rows above the centre are kept; in the centre row, positions left of the centre are kept, the
    centre itself only for mask ``"B"``; everything after the centre is zero.
    """
    k = check_positive_int("kernel_size", kernel_size)
    if k % 2 == 0:
        raise ValueError(f"kernel_size: got {k}; need an odd size so the kernel has a centre")
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type: got {mask_type!r}; need 'A' (excludes the centre) or 'B' (includes it)")
    mask = torch.ones(k, k)
    c = k // 2
    mask[c, c + (mask_type == "B"):] = 0  # the centre row from the centre ("A") or after it ("B")
    mask[c + 1:] = 0  # all rows below
    return mask


class MaskedConv2d(nn.Conv2d):
    r"""A same-size 2-D convolution whose kernel is multiplied by :func:`causal_mask` on every call.

    ``(B, in_ch, H, W)`` -> ``(B, out_ch, H, W)``. Output at pixel :math:`(r, c)` depends on inputs at
    :math:`(r', c')` with :math:`r' < r`, or :math:`r' = r, c' < c` (mask "A"), or :math:`c' \le c` (mask "B").
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, mask_type: str):
        mask = causal_mask(kernel_size, mask_type)
        super().__init__(check_positive_int("in_ch", in_ch), check_positive_int("out_ch", out_ch), kernel_size,
                         padding=kernel_size // 2)
        self.mask_type = mask_type
        self.register_buffer("mask", mask[None, None], persistent=False)  # (1, 1, k, k)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class _Block(nn.Module):
    """ReLU -> masked conv (mask B) -> + conditioning bias; residual."""

    def __init__(self, hidden: int, kernel_size: int, cond_dim: int | None):
        super().__init__()
        self.conv = MaskedConv2d(hidden, hidden, kernel_size, "B")
        self.cond = nn.Conv2d(cond_dim, hidden, 1) if cond_dim else None  # 1x1: per position, no mixing

    def forward(self, h: Tensor, cond: Tensor | None) -> Tensor:
        out = self.conv(F.relu(h))  # (B, hidden, H, W)
        if self.cond is not None:
            out = out + self.cond(cond)  # (B, hidden, 1 or H, 1 or W): a bias from z
        return h + out


class PixelCNN(nn.Module):
    r"""A small PixelCNN: mask-A input layer, ``n_layers`` residual mask-B layers, 1x1 output layers.

    Two kinds of pixels:

    * ``categorical=False`` (binary images): input ``x`` float ``(B, in_channels, H, W)`` in {0, 1};
      ``forward`` returns Bernoulli logits ``(B, n_out_per_pixel, H, W)`` with
      ``n_out_per_pixel = in_channels`` (the channels of one pixel are independent given the pixels before it).
    * ``categorical=True`` (code maps, e.g. the VQ-VAE prior over K codes): ``in_channels = K``; input ``x`` an
      integer map ``(B, H, W)`` with values in ``[0, K)``, one-hot encoded inside; ``forward`` returns the logits
      ``(B, K, H, W)`` of a categorical per pixel (``n_out_per_pixel = K``).

    Args:
        in_channels: image channels, or the number of categories K.
        hidden: channels of the hidden layers. n_layers: residual mask-B layers after the first layer.
        n_out_per_pixel: outputs per pixel (default: ``in_channels``).
        cond_dim: size of a conditioning vector ``(B, cond_dim)`` (a latent z) or channels of a conditioning map
            ``(B, cond_dim, H, W)``; None: unconditional.
        categorical: see above. first_kernel, kernel: kernel sizes of the mask-A layer and of the mask-B layers.
    """

    def __init__(self, in_channels: int = 1, hidden: int = 32, n_layers: int = 4, n_out_per_pixel: int | None = None,
                 cond_dim: int | None = None, *, categorical: bool = False, first_kernel: int = 5, kernel: int = 3):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.categorical = bool(categorical)
        n_out = in_channels if n_out_per_pixel is None else check_positive_int("n_out_per_pixel", n_out_per_pixel)
        if self.categorical and n_out != in_channels:
            raise ValueError(f"n_out_per_pixel: got {n_out} with categorical=True and in_channels (K) = {in_channels}; "
                             "a categorical over K codes needs K logits per pixel")
        if not self.categorical and n_out != in_channels:
            raise ValueError(f"n_out_per_pixel: got {n_out} with in_channels = {in_channels}; Bernoulli pixels need one "
                             "logit per channel")
        self.n_out = n_out
        self.cond_dim = None if cond_dim is None else check_positive_int("cond_dim", cond_dim)
        n_layers = check_positive_int("n_layers", n_layers, allow_zero=True)
        hidden = check_positive_int("hidden", hidden)
        self.input = MaskedConv2d(in_channels, hidden, first_kernel, "A")
        self.input_cond = nn.Conv2d(self.cond_dim, hidden, 1) if self.cond_dim else None
        self.blocks = nn.ModuleList(_Block(hidden, kernel, self.cond_dim) for _ in range(n_layers))
        self.output = nn.Sequential(nn.ReLU(), nn.Conv2d(hidden, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, n_out, 1))

    # ------------------------------------------------------------ one pass: every conditional at once
    def _one_hot(self, x: Tensor) -> Tensor:
        if x.is_floating_point() or x.dim() != 3:
            raise ValueError(f"x: got dtype {x.dtype} and shape {tuple(x.shape)}; categorical=True needs an integer "
                             f"code map (B, H, W) with values in [0, {self.in_channels})")
        if x.numel() and check.should_scan(x, True) and (int(x.min()) < 0 or int(x.max()) >= self.in_channels):
            raise ValueError(f"x: codes in [{int(x.min())}, {int(x.max())}]; need values in [0, {self.in_channels})")
        return F.one_hot(x.long(), self.in_channels).permute(0, 3, 1, 2).float()  # (B, K, H, W)

    def _check_cond(self, cond: Tensor | None, batch: int, size: tuple[int, int]) -> Tensor | None:
        """``cond`` as a ``(B, cond_dim, 1, 1)`` (vector) or ``(B, cond_dim, H, W)`` (map) tensor."""
        if self.cond_dim is None:
            if cond is not None:
                raise ValueError("cond: this PixelCNN is unconditional (cond_dim=None); pass cond=None")
            return None
        if cond is not None and cond.dim() == 2 and tuple(cond.shape) == (batch, self.cond_dim):
            return cond[:, :, None, None]
        if cond is not None and cond.dim() == 4 and tuple(cond.shape) == (batch, self.cond_dim, *size):
            return cond
        got = None if cond is None else tuple(cond.shape)
        raise ValueError(f"cond: got {got}; need a vector ({batch}, {self.cond_dim}) or a map "
                         f"({batch}, {self.cond_dim}, {size[0]}, {size[1]})")

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        r"""Logits of :math:`p(x_i\mid x_{<i}, \text{cond})` for every pixel: ``(B, n_out_per_pixel, H, W)``."""
        if self.categorical:
            x = self._one_hot(x)
        elif x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x: got shape {tuple(x.shape)}; need (B, {self.in_channels}, H, W)")
        else:
            check.pixels("x", x, per_batch=True)  # binary pixels (or grey levels) in [0, 1]
        cond = self._check_cond(cond, x.shape[0], tuple(x.shape[-2:]))
        h = self.input(x)  # (B, hidden, H, W)
        if self.input_cond is not None:
            h = h + self.input_cond(cond)
        for block in self.blocks:
            h = block(h, cond)
        return self.output(h)  # (B, n_out, H, W)

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        r""":math:`\log p(x\mid\text{cond}) = \sum_i \log p(x_i\mid x_{<i}, \text{cond})` per image, ``(B,)``, nats."""
        logits = self(x, cond)
        if self.categorical:
            return -F.cross_entropy(logits, x.long(), reduction="none").sum((-2, -1))
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((-3, -2, -1))

    # ------------------------------------------------------------ sampling: one pixel per pass
    @torch.no_grad()
    def sample(self, shape: tuple[int, ...], cond: Tensor | None = None, generator: torch.Generator | None = None,
               *, noise: Tensor | None = None) -> Tensor:
        r"""Draw images pixel by pixel in raster order.

        Args:
            shape: ``(B, C, H, W)`` for binary pixels, ``(B, H, W)`` for code maps.
            cond: ``(B, cond_dim)``, ``(B, cond_dim, H, W)`` or None.
            noise: uniforms in [0, 1) that drive the draws, broadcastable to ``(B, C, H, W)`` (binary:
                :math:`x = 1[u < p]`) or ``(B, H, W)`` (codes: inverse CDF). Passing the same ``noise`` with
                different ``cond`` isolates what ``cond`` changes. None: drawn with ``generator``.
        Returns a float ``(B, C, H, W)`` tensor of 0/1, or a long ``(B, H, W)`` code map.
        """
        shape = tuple(int(s) for s in shape)
        want = 3 if self.categorical else 4
        if len(shape) != want or (not self.categorical and shape[1] != self.in_channels):
            need = "(B, H, W)" if self.categorical else f"(B, {self.in_channels}, H, W)"
            raise ValueError(f"shape: got {shape}; need {need}")
        device = next(self.parameters()).device
        if noise is None:
            noise = torch.rand(shape, generator=generator, device=generator.device if generator is not None else device)
        noise = noise.to(device).expand(shape)
        cond = None if cond is None else cond.to(device)
        self._check_cond(cond, shape[0], shape[-2:])
        was_training = self.training
        self.eval()
        x = torch.zeros(shape, device=device, dtype=torch.long if self.categorical else torch.float32)
        h, w = shape[-2:]
        try:
            for r in range(h):
                for c in range(w):
                    logits = self(x, cond)[..., r, c]  # (B, n_out): only the pixels before (r, c) matter
                    u = noise[..., r, c]
                    if self.categorical:
                        cdf = torch.softmax(logits, dim=1).cumsum(1)  # (B, K)
                        x[:, r, c] = (cdf < u[:, None]).sum(1).clamp_max(self.in_channels - 1)
                    else:
                        x[:, :, r, c] = (u < torch.sigmoid(logits)).float()
        finally:
            self.train(was_training)
        return x

    def extra_repr(self) -> str:
        kind = "categorical" if self.categorical else "bernoulli"
        return f"{kind}, in_channels={self.in_channels}, cond_dim={self.cond_dim}"

