"""Convolutional encoder / decoder pairs sized from an image shape (any H, W).

The encoder halves H and W with stride-2 convolutions while both stay even and at least
``min_size``; the decoder mirrors it exactly, so ``decoder(encoder(x))`` has the shape of ``x``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["ConvDecoder", "ConvEncoder", "downsample_plan"]


def downsample_plan(height: int, width: int, *, min_size: int = 4, max_steps: int = 4) -> list[tuple[int, int]]:
    """Spatial sizes after each stride-2 step, e.g. ``28x28 -> [(14, 14), (7, 7)]``."""
    sizes: list[tuple[int, int]] = []
    while (
        len(sizes) < max_steps
        and height % 2 == 0
        and width % 2 == 0
        and height // 2 >= min_size
        and width // 2 >= min_size
    ):
        height, width = height // 2, width // 2
        sizes.append((height, width))
    return sizes


def _widths(hidden_channels: int, steps: int) -> list[int]:
    """Channel widths per resolution: doubling per step, capped at 4x."""
    return [hidden_channels * min(2**i, 4) for i in range(steps + 1)]


class ConvEncoder(nn.Module):
    """``(B, C, H, W)`` -> ``(B, out_features)``."""

    def __init__(self, image_shape: Sequence[int], hidden_channels: int, out_features: int) -> None:
        super().__init__()
        c, h, w = image_shape
        plan = downsample_plan(h, w)
        widths = _widths(hidden_channels, len(plan))
        layers: list[nn.Module] = [nn.Conv2d(c, widths[0], 3, padding=1), nn.SiLU()]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.SiLU()]
        layers += [nn.Conv2d(widths[-1], widths[-1], 3, padding=1), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        fh, fw = plan[-1] if plan else (h, w)
        self.head = nn.Linear(widths[-1] * fh * fw, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))


class ConvDecoder(nn.Module):
    """``(B, in_features)`` -> ``(B, out_channels, H, W)``, mirroring :class:`ConvEncoder`."""

    def __init__(self, in_features: int, image_shape: Sequence[int], hidden_channels: int, out_channels: int) -> None:
        super().__init__()
        _, h, w = image_shape
        plan = downsample_plan(h, w)
        widths = _widths(hidden_channels, len(plan))[::-1]
        self.start_shape = (widths[0], *(plan[-1] if plan else (h, w)))
        self.head = nn.Linear(in_features, widths[0] * self.start_shape[1] * self.start_shape[2])
        layers: list[nn.Module] = [nn.SiLU(), nn.Conv2d(widths[0], widths[0], 3, padding=1), nn.SiLU()]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.SiLU()]
        layers.append(nn.Conv2d(widths[-1], out_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.head(z).view(-1, *self.start_shape))
