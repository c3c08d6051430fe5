"""Affine coupling layers (Dinh et al. 2017; Kingma & Dhariwal 2018): half of the input, chosen by a
checkerboard or channel mask, is scaled and shifted by functions of the other half,
``y_b = x_b * s(x_a) + t(x_a)``, ``log|det| = sum log s``; and the small s,t networks they use."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.nn.flow_steps import FlowStep, NetFactory, Scale, _channel_view, _per_example

__all__ = ["AffineCoupling", "ConvCouplingNet", "MLPCouplingNet", "checkerboard_mask"]


def checkerboard_mask(height: int, width: int, parity: int, device: torch.device | None = None) -> Tensor:
    """``(1, 1, H, W)`` float mask, 1 where ``(i + j) % 2 == parity`` (the pixels kept fixed)."""
    i = torch.arange(height, device=device).view(-1, 1)
    j = torch.arange(width, device=device).view(1, -1)
    return ((i + j) % 2 == parity).float().view(1, 1, height, width)


class _ResBlock(nn.Module):
    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _small_init(layer: nn.Module, std: float = 1e-3) -> nn.Module:
    """Near-zero output layer, so every coupling starts close to the identity (Glow's zero init; not
    exactly zero, so a learned scale factor on the output still gets a gradient on the first step)."""
    nn.init.normal_(layer.weight, std=std)
    nn.init.zeros_(layer.bias)
    return layer


class ConvCouplingNet(nn.Sequential):
    """The s,t network of image couplings: 3x3 conv, ``num_blocks`` residual blocks (ReLU, conv3x3,
    ReLU, dropout, conv3x3), ReLU, near-zero 3x3 output conv; ``num_blocks=0`` is Glow's network
    (3x3 conv, ReLU, 1x1 conv, ReLU, 3x3 output conv). No normalisation layers, so training and
    evaluation compute the same function (FAMILIES.md §5)."""

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int = 64, num_blocks: int = 1, dropout: float = 0.0
    ):
        middle: list[nn.Module] = [_ResBlock(hidden, dropout) for _ in range(num_blocks)] or [
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1),
        ]
        super().__init__(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            *middle,
            nn.ReLU(),
            _small_init(nn.Conv2d(hidden, out_channels, 3, padding=1)),
        )


class MLPCouplingNet(nn.Sequential):
    """The s,t network of vector couplings: ``num_layers`` hidden ReLU layers, near-zero output layer."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 64, num_layers: int = 2):
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers += [nn.Linear(in_features if i == 0 else hidden, hidden), nn.ReLU()]
        super().__init__(*layers, _small_init(nn.Linear(hidden, out_features)))


class AffineCoupling(FlowStep):
    """Coupling layer (Dinh et al. 2017): a part ``x_a`` of the input passes unchanged and conditions an
    elementwise affine map of the rest, ``y_b = x_b * exp(log_s(x_a)) + t(x_a)``; ``log|det| = sum log_s``.

    * ``mask``: ``checkerboard`` (images; alternate pixels by ``parity``, the net sees the masked image
      and the mask) or ``channel`` (the first / second half of the channels by ``parity``; images or
      vectors).
    * ``scale``: ``tanh`` (RealNVP: ``log_s = g * tanh(h)``, ``g`` a learned per-channel factor),
      ``sigmoid`` (Glow's official code: ``s = sigmoid(h + 2)``) or ``additive`` (NICE / Glow's
      default: ``log_s = 0``).
    * ``context_channels``: extra conditioning input passed to ``forward(x, context)`` (the
      conditional flow of variational dequantisation); image couplings only.

    ``make_net(in_channels, out_channels)`` builds the s,t network (:class:`ConvCouplingNet`,
    :class:`MLPCouplingNet`). Log-scales and shifts are computed in float32 even under autocast.
    """

    def __init__(
        self,
        channels: int,
        make_net: NetFactory,
        mask: Literal["checkerboard", "channel"] = "channel",
        parity: int = 0,
        scale: Scale = "tanh",
        context_channels: int = 0,
    ) -> None:
        super().__init__()
        if mask == "channel" and channels < 2:
            raise ValueError(f"a channel coupling needs at least 2 channels, got {channels}; use a checkerboard mask")
        if scale not in ("tanh", "sigmoid", "additive"):
            raise ValueError(f"scale must be tanh, sigmoid or additive, got {scale!r}")
        self.mask, self.parity, self.scale = mask, parity % 2, scale
        if mask == "channel":
            first = channels // 2
            self.sizes = [first, channels - first]  # the [first, rest] split of the channels
            c_in, c_out = self.sizes[self.parity], self.sizes[1 - self.parity]
        else:
            c_in, c_out = channels + 1, channels  # masked image + the mask itself
        self.out_channels = c_out
        self.net = make_net(c_in + context_channels, c_out * (1 if scale == "additive" else 2))
        if scale == "tanh":
            self.scale_factor = nn.Parameter(torch.ones(c_out))

    def _log_scale_shift(self, h: Tensor) -> tuple[Tensor, Tensor]:
        h = h.float()
        if self.scale == "additive":
            return torch.zeros_like(h), h
        raw, shift = h.chunk(2, dim=1)
        if self.scale == "sigmoid":
            return F.logsigmoid(raw + 2.0), shift
        return _channel_view(self.scale_factor.float(), raw) * torch.tanh(raw), shift

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(conditioning part, transformed part) of a channel coupling."""
        first, rest = x.split(self.sizes, dim=1)
        return (first, rest) if self.parity == 0 else (rest, first)

    def _join(self, x_a: Tensor, x_b: Tensor) -> Tensor:
        return torch.cat([x_a, x_b] if self.parity == 0 else [x_b, x_a], dim=1)

    def _net(self, x_a: Tensor, context: Tensor | None) -> Tensor:
        return self.net(x_a if context is None else torch.cat([x_a, context.to(x_a.dtype)], dim=1))

    def _params(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Checkerboard: ``(keep mask, masked log_s, masked t)`` for the whole image."""
        keep = checkerboard_mask(x.shape[2], x.shape[3], self.parity, x.device)
        x_a = x * keep
        log_s, t = self._log_scale_shift(self._net(torch.cat([x_a, keep.expand(x.shape[0], 1, -1, -1)], 1), context))
        return keep, log_s * (1 - keep), t * (1 - keep)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = x.float()
        if self.mask == "checkerboard":
            _, log_s, t = self._params(x, context)
            return x * log_s.exp() + t, _per_example(log_s)
        x_a, x_b = self._split(x)
        log_s, t = self._log_scale_shift(self._net(x_a, context))
        return self._join(x_a, x_b * log_s.exp() + t), _per_example(log_s)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        y = y.float()
        if self.mask == "checkerboard":
            _, log_s, t = self._params(y, context)  # the kept pixels of y are those of x
            return (y - t) * (-log_s).exp()
        y_a, y_b = self._split(y)
        log_s, t = self._log_scale_shift(self._net(y_a, context))
        return self._join(y_a, (y_b - t) * (-log_s).exp())


# ---------------------------------------------------------------------------------------------- priors
