"""Layers of progressive growing (Karras et al. 2018, "Progressive Growing of GANs", section 4):
equalized learning rate, pixel-wise feature normalisation and the minibatch standard deviation.

* :class:`EqualizedLinear`, :class:`EqualizedConv2d`: weights stored ``N(0, 1)`` and multiplied at RUN
  time by He's constant ``c = gain / sqrt(fan_in)`` (``gain = sqrt(2)`` for layers followed by a leaky
  ReLU), so Adam's per-parameter step sizes act on weights of one scale (section 4.1). Scaling once at
  initialisation would be a different model: the gradient steps would then not be rescaled.
* :class:`PixelNorm`: ``b = a / sqrt(mean_c(a²) + 1e-8)`` at every pixel (section 4.2, eq. 1).
* :class:`MinibatchStdDev`: one extra feature map, the standard deviation of each feature over a group
  of examples averaged over features and pixels (section 3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["EqualizedConv2d", "EqualizedLinear", "MinibatchStdDev", "PixelNorm", "group_size_for"]


class EqualizedLinear(nn.Module):
    """``y = x (c W)ᵀ + b`` with ``W ~ N(0, 1)``, ``c = gain / sqrt(in_features)`` applied in every
    forward, ``b = 0`` at init (biases are not scaled)."""

    def __init__(self, in_features: int, out_features: int, *, gain: float = math.sqrt(2.0), bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Module):
    """A stride-1 convolution with "same" padding whose ``N(0, 1)`` weights are multiplied in every
    forward by ``c = gain / sqrt(in_channels * k * k)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, gain: float = math.sqrt(2.0)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """Normalise the feature vector of every pixel (or of every example, for ``(B, C)`` input) to unit
    root-mean-square over the channel axis: ``a / sqrt(mean_c(a²) + eps)``."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


def group_size_for(batch: int, group_size: int) -> int:
    """The group size :class:`MinibatchStdDev` uses for a batch of ``batch``: ``group_size`` when it
    divides the batch, else the largest divisor of ``batch`` below it (a last, smaller batch of an epoch
    still works; a prime batch size falls back to groups of 1, whose deviation is 0)."""
    g = min(group_size, batch)
    while batch % g:
        g -= 1
    return g


class MinibatchStdDev(nn.Module):
    """``(B, C, H, W) -> (B, C + 1, H, W)``: split the batch into groups of ``group_size`` examples
    (:func:`group_size_for` when it does not divide the batch), take each feature's standard deviation
    over the group (biased, as Karras et al.'s ``tf.reduce_mean(tf.square(...))``), average it over
    channels and pixels, and append that number as a constant feature map to every example of the group."""

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size, self.eps = int(group_size), eps

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        g = group_size_for(b, self.group_size)
        y = x.float().reshape(g, b // g, c, h, w)  # example i is in group i % (b // g)
        std = (y.var(dim=0, unbiased=False) + self.eps).sqrt()  # (B/g, C, H, W)
        feature = std.mean(dim=(1, 2, 3)).to(x.dtype)  # (B/g,)
        feature = feature.repeat(g)[:, None, None, None].expand(b, 1, h, w)  # (B, 1, H, W)
        return torch.cat([x, feature], dim=1)
