"""How the checks describe inputs and results in words: short renderings, and where two tensors differ.

A feedback message must let the student find the mistake: for a scalar it prints enough digits for the two
numbers to differ on the page (``expected 0.0701346, got 0.0701128``), for a tensor it names the first entries
that differ, how many do, and the largest difference, instead of ``tensor of shape (3, 3)`` on both sides.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["short", "scalar_pair", "difference", "index_text"]

MAX_SHOWN = 6     # tensors with at most this many entries are printed in full
FIRST_SHOWN = 3   # differing entries listed one by one


def _digits_apart(a: float, b: float, low: int = 4, high: int = 12) -> int:
    """The fewest significant digits (at least ``low``) at which ``a`` and ``b`` print differently."""
    for d in range(low, high + 1):
        if f"{a:.{d}g}" != f"{b:.{d}g}":
            return d
    return high


def short(value: Any, digits: int = 4) -> str:
    """A compact rendering of an input or output: numbers to ``digits`` significant digits, tensors of at most
    six entries in full, larger ones by shape and dtype."""
    if isinstance(value, Tensor):
        v = value.detach().cpu()
        if v.numel() == 1:
            return f"{v.item():.{digits}g}" if v.is_floating_point() else str(v.item())
        if v.numel() <= MAX_SHOWN:
            if not v.is_floating_point():
                return str(v.tolist())
            return np.array2string(v.double().numpy(), precision=digits, separator=", ",
                                   suppress_small=True).replace("\n", "")
        return f"tensor of shape {tuple(v.shape)}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, np.ndarray):
        return f"numpy array of shape {value.shape}"
    if callable(value):
        return getattr(value, "__name__", "a function")
    return repr(value)


def scalar_pair(expected: float, got: float) -> tuple[str, str]:
    """``expected`` and ``got`` printed with enough digits to tell them apart."""
    d = _digits_apart(float(expected), float(got), low=6)
    return f"{float(expected):.{d}g}", f"{float(got):.{d}g}"


def index_text(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def difference(got: Tensor, expected: Tensor, *, rtol: float, atol: float) -> str:
    """Where ``got`` and ``expected`` (same shape) differ beyond ``atol + rtol * |expected|``: one phrase.

    Scalars: both values with enough digits. Up to six entries: both tensors in full and the largest difference.
    More: the number of differing entries, the first few (index, expected, got) and the largest difference.
    """
    g = got.detach().cpu().double()
    e = expected.detach().cpu().double()
    if g.numel() == 1:
        a, b = scalar_pair(e.item(), g.item())
        return f"expected {a}, got {b}"
    close = torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    bad = (~close).nonzero().tolist()
    gap = (g - e).abs().nan_to_num(nan=float("inf"))
    worst = tuple(int(i) for i in np.unravel_index(int(gap.argmax()), tuple(g.shape)))
    wa, wb = scalar_pair(e[worst].item(), g[worst].item())
    largest = f"largest difference {gap[worst].item():.3g} at {index_text(worst)} (expected {wa}, got {wb})"
    if g.numel() <= MAX_SHOWN:
        d = max(_digits_apart(float(e[tuple(i)]), float(g[tuple(i)]), low=4) for i in bad) if bad else 6
        return f"expected {short(e, d)}, got {short(g, d)}; {largest}"
    listed = []
    for i in bad[:FIRST_SHOWN]:
        a, b = scalar_pair(e[tuple(i)].item(), g[tuple(i)].item())
        listed.append(f"at {index_text(tuple(i))} expected {a}, got {b}")
    more = f" (and {len(bad) - FIRST_SHOWN} more)" if len(bad) > FIRST_SHOWN else ""
    return (f"{len(bad)} of {g.numel()} entries of the {tuple(g.shape)} result differ: " + "; ".join(listed) + more
            + f"; {largest}")
