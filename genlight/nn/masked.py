"""Masked convolutions for autoregressive image models (PixelCNN, Gated PixelCNN, PixelRNN).

Order: raster over pixels (row by row, left to right) and, inside a pixel, channel by channel
(R -> G -> B), as in van den Oord et al. 2016. Every feature map of ``n`` features is split into
``channels`` contiguous groups (``group(f) = f * channels // n``): group ``c`` may only see the
image's channels ``< c`` of the current pixel (mask ``A``, the first layer) or ``<= c`` (mask
``B``, every later layer, 1x1 convolutions included). A ``C * L`` output map therefore holds the
``L`` logits of channel ``c`` at features ``c*L .. c*L+L-1`` (the layout of
:class:`~genlight.nn.Categorical`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MaskedConv2d", "causal_mask", "channel_groups", "group_mask", "shift_down"]

MaskType = Literal["A", "B", "V"]


def channel_groups(num_features: int, channels: int, chunks: int = 1) -> Tensor:
    """The image channel each of ``num_features`` features belongs to: ``chunks`` equal parts (the
    halves of a gate, say), each split into ``channels`` contiguous groups."""
    if num_features % chunks or num_features // chunks < channels:
        raise ValueError(f"{num_features} features cannot be split into {chunks} chunks of {channels} channel groups")
    per_chunk = num_features // chunks
    f = torch.arange(num_features) % per_chunk
    return f * channels // per_chunk


def causal_mask(
    kernel: int | tuple[int, int],
    in_ch: int,
    out_ch: int,
    channels: int = 1,
    mask_type: MaskType = "B",
    *,
    out_chunks: int = 1,
) -> Tensor:
    """A ``(out_ch, in_ch, kh, kw)`` 0/1 mask for a convolution centred on the current pixel.

    ``A``/``B``: rows above the centre, and the centre row left of the centre, are visible; at the
    centre a feature of channel group ``g_out`` sees input groups ``< g_out`` (A) or ``<= g_out`` (B).
    ``V`` (the vertical stack of Gated PixelCNN): rows up to and including the centre row, all columns
    (that stack is shifted down one row before it feeds anything that predicts the current row).
    """
    return group_mask(kernel, channel_groups(in_ch, channels), channel_groups(out_ch, channels, out_chunks), mask_type)


def group_mask(
    kernel: int | tuple[int, int], in_groups: Tensor, out_groups: Tensor, mask_type: MaskType = "B"
) -> Tensor:
    """:func:`causal_mask` for explicit channel-group ids of the input and output features (e.g. the
    four gates of an LSTM, each split into colour groups): ``(len(out_groups), len(in_groups), kh, kw)``."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"masked convolutions need odd kernel sizes, got {kh}x{kw}")
    if mask_type not in ("A", "B", "V"):
        raise ValueError(f"mask_type must be A, B or V, got {mask_type!r}")
    ci, cj = kh // 2, kw // 2
    mask = torch.zeros(len(out_groups), len(in_groups), kh, kw)
    if mask_type == "V":
        mask[:, :, : ci + 1, :] = 1
        return mask
    mask[:, :, :ci, :] = 1
    mask[:, :, ci, :cj] = 1
    centre = in_groups[None, :] < out_groups[:, None] if mask_type == "A" else in_groups[None, :] <= out_groups[:, None]
    mask[:, :, ci, cj] = centre.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A "same"-padded convolution whose weight is multiplied by :func:`causal_mask` in every forward
    (functionally: the stored weight is never edited, so EMA copies and checkpoints stay causal).
    ``out_groups`` / ``in_groups`` give explicit channel-group ids instead (:func:`group_mask`)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int | tuple[int, int],
        channels: int = 1,
        mask_type: MaskType = "B",
        *,
        out_chunks: int = 1,
        bias: bool = True,
        out_groups: Tensor | None = None,
        in_groups: Tensor | None = None,
    ) -> None:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        super().__init__(in_ch, out_ch, (kh, kw), padding=(kh // 2, kw // 2), bias=bias)
        self.mask_type = mask_type
        out_groups = channel_groups(out_ch, channels, out_chunks) if out_groups is None else out_groups
        in_groups = channel_groups(in_ch, channels) if in_groups is None else in_groups
        mask = group_mask((kh, kw), in_groups, out_groups, mask_type)
        self.register_buffer("mask", mask.bool(), persistent=False)  # rebuilt from the arguments, never averaged

    def masked_weight(self) -> Tensor:
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.masked_weight(), self.bias, self.stride, self.padding)

    def at(self, patch: Tensor) -> Tensor:
        """The output at one position from its ``(B, in, kh, kw)`` input patch (zero-padded at the
        borders, as in :meth:`forward`): ``(B, out)``. Future positions of the patch are ignored."""
        return F.conv2d(patch, self.masked_weight(), self.bias).flatten(1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mask_type={self.mask_type}"


def shift_down(x: Tensor, rows: int = 1) -> Tensor:
    """``(B, C, H, W)`` moved down by ``rows`` (zeros enter at the top): row ``i`` then holds row ``i - rows``."""
    return F.pad(x, (0, 0, rows, 0))[:, :, : x.shape[2], :]
