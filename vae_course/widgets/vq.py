"""Chapter 8 widget: change one block of a code map and watch what the decoder draws.

The static version is :func:`vae_course.plotting.code_edit` at one fixed setting (the HTML book shows that).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from torch import Tensor

from .. import plotting

__all__ = ["code_edit_widget"]


def code_edit_widget(model, codes: Tensor, *, size: int = 2) -> widgets.interactive:
    """Sliders for the image (a row of ``codes`` ``(N, h, w)``), the block's position and the code written into a
    ``size x size`` block; shows :func:`vae_course.plotting.code_edit`. Returns the widget."""
    if codes.dim() != 3:
        raise ValueError(f"codes: got shape {tuple(codes.shape)}; need code maps (N, h, w)")
    n, h, w = codes.shape
    codes = codes.detach().cpu()

    def show(image: int = 0, row: int = 2, col: int = 2, code: int = 0, block: int = size):
        plotting.code_edit(model, codes[image], min(row, h - block), min(col, w - block), code, size=block)
        plt.show()

    ints = dict(continuous_update=False)
    return widgets.interactive(
        show,
        image=widgets.IntSlider(value=0, min=0, max=n - 1, description="image", **ints),
        row=widgets.IntSlider(value=min(2, h - 1), min=0, max=h - 1, description="row", **ints),
        col=widgets.IntSlider(value=min(2, w - 1), min=0, max=w - 1, description="column", **ints),
        code=widgets.IntSlider(value=0, min=0, max=model.config.n_codes - 1, description="code k", **ints),
        block=widgets.IntSlider(value=size, min=1, max=min(h, w), description="block size", **ints),
    )
