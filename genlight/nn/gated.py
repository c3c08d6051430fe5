"""The gated layer of Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with
PixelCNN Decoders"), shared by the ``gated_pixelcnn`` family and the code prior of ``vqvae``.

A vertical stack sees every row above (a kxk convolution over rows <= i, shifted down one row before it
feeds the horizontal stack), a horizontal stack sees the current row left of the pixel (1xk,
channel-masked at the centre). Gated activations ``tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h)``,
with a class embedding ``h`` as a bias inside the gate of both stacks; residual connections in the
horizontal stack.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from genlight.nn.masked import MaskedConv2d, shift_down

__all__ = ["GatedLayer", "gate"]


def gate(x: Tensor) -> Tensor:
    """``tanh(a) * sigmoid(b)`` of the two halves of the features."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer over ``(v, h)``; ``first`` uses a type-A horizontal mask and drops the residual."""

    def __init__(
        self, in_ch: int, width: int, image_channels: int, kernel: int, first: bool, num_classes: int, dropout: float
    ) -> None:
        super().__init__()
        self.first = first
        self.vertical = MaskedConv2d(in_ch, 2 * width, kernel, image_channels, "V")
        mask: Literal["A", "B"] = "A" if first else "B"
        self.horizontal = MaskedConv2d(in_ch, 2 * width, (1, kernel), image_channels, mask, out_chunks=2)
        self.link = nn.Conv2d(2 * width, 2 * width, 1)  # v -> h, before the gate; v comes from rows above
        self.out = MaskedConv2d(width, width, 1, image_channels, "B")
        self.dropout = nn.Dropout(dropout)
        self.embed = nn.Embedding(num_classes, 4 * width) if num_classes > 0 else None

    def forward(self, v: Tensor, h: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        v_pre = self.vertical(v)  # (B, 2F, H, W), rows <= i
        h_pre = self.horizontal(h) + self.link(shift_down(v_pre))  # rows < i from v, row i from h
        if self.embed is not None and y is not None:
            cv, ch = self.embed(y)[:, :, None, None].chunk(2, dim=1)
            v_pre, h_pre = v_pre + cv, h_pre + ch
        h_out = self.out(self.dropout(gate(h_pre)))
        return gate(v_pre), h_out if self.first else h + h_out
