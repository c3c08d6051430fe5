"""Cached sampling of raster-causal convolutional networks (Ramachandran et al. 2017, "Fast Generation
for Convolutional Autoregressive Models").

Every layer of a PixelCNN is raster-causal: its output at pixel ``p`` depends on its input at pixels
``<= p`` only. While an image is drawn, each layer's output is therefore needed at the new pixel
only, from inputs that are already final: a cache holds each layer's input map, and each new pixel
costs one window product per layer, ``O(H W layers)`` per image instead of ``O((H W)^2 layers)``.

:class:`PixelCache` is the interface the sampling loop of
:class:`~genlight.modules.autoregressive.AutoregressiveImageModel` drives; :class:`WindowConv` and
:class:`Affine` evaluate a :class:`~genlight.nn.masked.MaskedConv2d` at one position.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genlight.nn.masked import MaskedConv2d

__all__ = ["Affine", "PixelCache", "WindowConv"]


class Affine:
    """``x W^T + b`` on ``(B, in)`` rows, with ``W^T`` stored contiguous (one ``addmm`` per call)."""

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        self.weight_t = weight.t().contiguous()  # (in, out)
        self.bias = bias if bias is not None else weight.new_zeros(weight.shape[0])

    @classmethod
    def pointwise(cls, conv: MaskedConv2d) -> Affine:
        """A masked 1x1 convolution at one position."""
        return cls(conv.masked_weight()[:, :, 0, 0], conv.bias)

    def __call__(self, x: Tensor) -> Tensor:
        return torch.addmm(self.bias, x, self.weight_t)


class WindowConv(Affine):
    """A type-A/B masked ``kh x kw`` convolution at one position, from the rows up to its centre.

    Reads a channels-last map ``(B, H + kh//2, W + 2 (kw//2), in)``, padded by ``kh // 2`` rows on top
    and ``kw // 2`` columns on each side (:meth:`PixelCache.new_map`); entries right of the centre in
    the centre row are masked to zero, so whatever the cache holds there is ignored."""

    def __init__(self, conv: MaskedConv2d) -> None:
        kh, kw = conv.kernel_size
        self.rows, self.cols = kh // 2 + 1, kw
        weight = conv.masked_weight()[:, :, : self.rows].permute(0, 2, 3, 1)  # (out, rows, kw, in)
        super().__init__(weight.reshape(conv.out_channels, -1), conv.bias)

    def at(self, padded: Tensor, i: int, j: int) -> Tensor:
        """The output at ``(i, j)``, ``(B, out)``."""
        return self(padded[:, i : i + self.rows, j : j + self.cols].reshape(len(padded), -1))


class PixelCache:
    """The state of a network while one batch of images ``x`` ``(B, C, H, W)`` is drawn in raster order.

    The sampling loop calls :meth:`params` once per sub-pixel, before drawing it, and :meth:`row_done`
    after each finished row; ``x`` is the loop's image tensor, written in place. ``inputs`` holds the
    network input ``2x - 1`` of the sub-pixels drawn so far, channels-last, padded by ``pad`` (zeros)
    as the first layer's convolution pads. Maps are channels-last so that a window is a few
    contiguous runs of memory."""

    def __init__(self, x: Tensor, pad: int) -> None:
        self.x, self.pad = x, pad
        self.inputs = self.new_map(x.shape[1], pad, pad)

    def new_map(self, channels: int, pad_rows: int, pad_cols: int) -> Tensor:
        """A zero map ``(B, H + pad_rows, W + 2 pad_cols, channels)`` (top and side padding)."""
        n, _, h, w = self.x.shape
        return self.x.new_zeros(n, h + pad_rows, w + 2 * pad_cols, channels)

    def refresh(self, i: int, j: int) -> None:
        """Copy row ``i`` of ``x`` up to column ``j`` (the current pixel's drawn channels included) into ``inputs``."""
        p = self.pad
        self.inputs[:, p + i, p : p + j + 1] = (2.0 * self.x[:, :, i, : j + 1] - 1.0).transpose(1, 2)

    def params(self, i: int, j: int) -> Tensor:
        """``(B, C*P)``: the conditional parameters of pixel ``(i, j)``'s sub-pixels, given what is drawn."""
        raise NotImplementedError

    def row_done(self, i: int) -> None:
        """Row ``i`` of ``x`` is complete: copy it in (subclasses also update per-row state)."""
        self.refresh(i, self.x.shape[3] - 1)
