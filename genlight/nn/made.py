"""MADE (Germain et al. 2015): a masked MLP whose output ``d`` depends only on the inputs before ``d``
in a given order, the conditioner of the autoregressive flows (MAF, Papamakarios et al. 2017; the
autoregressive neural spline flow, Durkan et al. 2019).

Degrees: input ``i`` has degree ``m(i)`` in ``1..D`` (its place in the order); hidden units cycle
through ``1..D-1`` (deterministic, so every process and every resumed run builds the same masks);
a hidden unit of degree ``k`` sees inputs and units of degree ``<= k``, an output of degree ``d``
sees hidden units of degree ``< d``. Masks multiply the weight in every forward (functionally, so
checkpoints and EMA copies hold the stored weight and stay causal).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MADE", "MaskedLinear", "made_masks"]


def made_masks(order: Tensor, hidden: int, num_layers: int, params_per_dim: int) -> list[Tensor]:
    """The 0/1 masks ``(out, in)`` of a MADE with ``num_layers`` hidden layers of ``hidden`` units.

    ``order``: ``(D,)`` the degree ``1..D`` of each input. The output layer has ``params_per_dim``
    blocks of ``D`` units, block ``p`` unit ``d`` carrying parameter ``p`` of dimension ``d``."""
    d = order.numel()
    degrees = [order.long()]
    for _ in range(num_layers):
        degrees.append(torch.arange(hidden) % max(1, d - 1) + 1)  # (hidden,) in 1..D-1
    masks = [(out[:, None] >= inp[None, :]).float() for inp, out in zip(degrees[:-1], degrees[1:])]
    out_degrees = order.long().repeat(params_per_dim)  # (P * D,)
    masks.append((out_degrees[:, None] > degrees[-1][None, :]).float())
    return masks


class MaskedLinear(nn.Linear):
    """``y = x (W * M)^T + b`` with a fixed 0/1 mask ``M`` (a buffer rebuilt from the arguments)."""

    def __init__(self, mask: Tensor, bias: bool = True) -> None:
        super().__init__(mask.shape[1], mask.shape[0], bias=bias)
        self.register_buffer("mask", mask.float(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """``(B, D) -> (B, P, D)``: ``P`` parameters per dimension, parameter ``[:, p, d]`` a function of the
    inputs before ``d`` in ``order`` (default ``0..D-1``; ``reverse`` flips it). ReLU hidden layers;
    with ``residual`` every hidden layer after the first adds its input (same degrees, so the masks
    stay valid). The output layer is initialised near zero, so a flow step starts near a fixed map."""

    def __init__(
        self,
        features: int,
        hidden: int,
        num_layers: int,
        params_per_dim: int,
        *,
        reverse: bool = False,
        residual: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if features < 1 or hidden < 1 or num_layers < 1:
            raise ValueError(f"MADE needs features, hidden and num_layers >= 1, got {features}, {hidden}, {num_layers}")
        order = torch.arange(features, 0, -1) if reverse else torch.arange(1, features + 1)
        self.register_buffer("order", order, persistent=False)
        masks = made_masks(order, hidden, num_layers, params_per_dim)
        self.hidden_layers = nn.ModuleList(MaskedLinear(m) for m in masks[:-1])
        self.output = MaskedLinear(masks[-1])
        nn.init.normal_(self.output.weight, std=1e-3)
        nn.init.zeros_(self.output.bias)
        self.features, self.params_per_dim, self.residual = features, params_per_dim, residual
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, layer in enumerate(self.hidden_layers):
            out = F.relu(layer(h))
            h = h + self.dropout(out) if (self.residual and i > 0) else out
        return self.output(h).view(x.shape[0], self.params_per_dim, self.features)  # (B, P, D)
