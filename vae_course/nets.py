"""The fully connected network and the nonlinearities that the chapters' models are built from.

:class:`MLP` is chapter 1's :math:`G_\\theta`, reused by chapter 3's amortised encoder; :data:`ACTIVATIONS`
names every nonlinearity a config may ask for (the VAE encoders and decoders of chapter 5 too).
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from . import _validate as check
from .utils import check_positive_int

__all__ = ["ACTIVATIONS", "activation", "MLP"]

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU,
               "softplus": nn.Softplus, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}


def activation(name: str) -> nn.Module:
    """A fresh nonlinearity module by its name in :data:`ACTIVATIONS`."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: got {name!r}; need one of {tuple(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """A fully connected network ``in_dim -> hidden... -> out_dim`` (the generator's :math:`G_\\theta`).

    Args:
        in_dim, out_dim: input and output sizes (positive ints).
        hidden: sizes of the hidden layers (may be empty: then a single linear map).
        activation: one of :data:`ACTIVATIONS`, applied after every hidden layer (not the output).
    Input ``(..., in_dim)``, output ``(..., out_dim)``.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh"):
        super().__init__()
        self.in_dim = check_positive_int("in_dim", in_dim)
        self.out_dim = check_positive_int("out_dim", out_dim)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise TypeError(f"hidden: got {hidden!r}; need a tuple of positive ints such as (64, 64), or ()")
        sizes = [self.in_dim] + [check_positive_int(f"hidden[{i}]", h) for i, h in enumerate(hidden)] + [self.out_dim]
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: got {activation!r}; need one of {tuple(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        check.tensor("x", x, min_dim=1)
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"x: got last dimension {x.shape[-1]} (shape {tuple(x.shape)}); need {self.in_dim}")
        return self.layers(check.like("x", x, self.layers[0].weight))  # float64 input is cast to the weights' dtype
