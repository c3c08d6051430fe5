"""Multilayer perceptrons the adversarial families share: the layer stack, and the MLP discriminator of
``gan`` (on images or 2-D points) and ``aae`` (on latent codes)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["MLPDiscriminator", "mlp_layers"]


def mlp_layers(sizes: Sequence[int], activation: nn.Module) -> list[nn.Module]:
    """``Linear(sizes[0], sizes[1]), activation, ..., Linear(sizes[-2], sizes[-1])``: no activation after
    the last map (one ``activation`` module, shared: it must hold no state)."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), activation]
    return [*layers, nn.Linear(sizes[-2], sizes[-1])]


class MLPDiscriminator(nn.Module):
    """``x -> logit``: LeakyReLU(0.2) MLP on the flattened input, ``(B, *shape) -> (B,)``."""

    def __init__(self, shape: Sequence[int], hidden: int, layers: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), *mlp_layers([math.prod(shape), *[hidden] * layers, 1], nn.LeakyReLU(0.2))
        )

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer's activations, ``(B, hidden)``: everything but the final linear map."""
        return self.net[:-1](x)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)
