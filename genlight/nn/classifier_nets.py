"""Small image classifiers after Foster, *Generative Deep Learning* (2nd ed.), ch. 2.

Each net is ``body`` (input -> penultimate features) followed by ``head`` (features -> logits), so
the same network serves as a classifier and as a domain feature extractor for FID.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["CNNNet", "MLPNet"]


def _dense(c_in: int, c_out: int, batch_norm: bool, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(c_in, c_out)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(c_out))
    layers.append(nn.LeakyReLU(0.2))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


class MLPNet(nn.Module):
    """Flatten -> Dense(200) -> Dense(150) -> Dense(num_classes) (Foster's MLP), optional BN/dropout."""

    def __init__(
        self,
        image_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (200, 150),
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = [nn.Flatten()]
        widths = [c * h * w, *hidden]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += _dense(c_in, c_out, batch_norm, dropout)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], num_classes)
        self.num_features = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class CNNNet(nn.Module):
    """Foster's CNN: 4 x [Conv3x3 (stride 1, 2, 1, 2) -> BN -> LeakyReLU] -> Dense(128) -> BN -> LeakyReLU
    -> Dropout -> Dense(num_classes). Stride-2 convs only where the map stays >= 2x2 (8x8 digits: 2 steps)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 32, 64, 64),
        hidden: int = 128,
        batch_norm: bool = True,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = []
        c_in = c
        for i, c_out in enumerate(channels):
            stride = 2 if i % 2 == 1 and h >= 4 and w >= 4 else 1
            layers.append(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
            h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
            c_in = c_out
        layers.append(nn.Flatten())
        layers += _dense(c_in * h * w, hidden, batch_norm, dropout)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, num_classes)
        self.num_features = hidden

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))
