"""PixelRNN building blocks (van den Oord et al. 2016, "Pixel Recurrent Neural Networks").

* :class:`RowLSTM`: a convolutional LSTM run row by row (top to bottom); gates of row ``i`` are
  ``K_is * x_i`` (a 1xk convolution over the current row, masked to columns ``<= j``) plus
  ``K_ss * h_{i-1}`` (a 1xk convolution over the previous row's hidden state): a triangular field.
* :class:`DiagonalBiLSTM`: the map is skewed (row ``i`` shifted right by ``i``) so diagonals become
  columns; an LSTM runs column by column with a 2x1 state-to-state convolution over the previous
  column, i.e. the neighbours above and to the left. A second direction runs on the mirrored map and
  its output is shifted down one row, so together every pixel above and to the left is seen. As the
  shifted direction's row ``i - 1`` feeds only row ``i``, it also reads the image of its own row
  whole (``context``): otherwise the last pixel of row ``i - 1``, which no mask-A/B feature of its own
  row contains, would be a blind spot for the first columns of row ``i``.

Both LSTMs compute ``c = f * c_prev + i * g``, ``h = o * tanh(c)`` (Hochreiter & Schmidhuber 1997)
and add ``K_out * h`` (a 1x1 convolution) to their input (the paper's residual connections).

Channel groups. For images with ``C`` channels ordered R -> G -> B inside a pixel, every feature map
of width ``F`` is split into ``C`` contiguous blocks (``channel_groups``): block ``g`` at pixel
``(i, j)`` may see image channels ``< g`` of that pixel (mask A in the first layer) and feature
blocks ``<= g`` of that pixel (mask B afterwards); earlier pixels are seen whole. Every gate of the
LSTMs (``i, f, o, g``) has its own ``F``-channel block with the same grouping, so one convolution
producing all ``4F`` gates keeps the groups aligned; the output head's ``C * L`` logits are grouped
the same way, which is the layout :class:`~genlight.nn.Categorical` reads.

The recurrences run in float32 with autocast off (the cell state is a running sum).
Each block also exposes the single-position pieces a sampler needs to update one pixel at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.nn.masked import MaskedConv2d, channel_groups

__all__ = ["DiagonalBiLSTM", "RowLSTM", "lstm_cell", "skew", "unskew"]


def lstm_cell(gates: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
    """``gates`` ``(B, 4h, ...)`` in the order ``i, f, o, g`` -> ``(h, c)``, each ``(B, h, ...)``."""
    i, f, o, g = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def skew(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, C, H, W + H - 1)``, row ``i`` shifted right by ``i`` (zeros elsewhere)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (0, h))  # (B, C, H, W + H)
    return padded.flatten(2)[:, :, : h * (w + h - 1)].view(b, c, h, w + h - 1)


def unskew(x: Tensor) -> Tensor:
    """Inverse of :func:`skew`: ``(B, C, H, W + H - 1)`` -> ``(B, C, H, W)``."""
    b, c, h, wh = x.shape
    w = wh - h + 1
    flat = F.pad(x.flatten(2), (0, h))  # (B, C, H * (W + H))
    return flat.view(b, c, h, w + h)[..., :w]


class _ResidualLSTM(nn.Module):
    """What both PixelRNN LSTMs share: the residual output ``x + K_out * dropout(h)``."""

    def __init__(self, channels: int, image_channels: int, dropout: float) -> None:
        super().__init__()
        self.channels = channels
        self.out = MaskedConv2d(channels, channels, 1, image_channels, "B")
        self.dropout = nn.Dropout(dropout)

    def residual(self, x: Tensor, h: Tensor) -> Tensor:
        return x + self.out(self.dropout(h).to(x.dtype))

    def residual_at(self, x: Tensor, h: Tensor) -> Tensor:
        """:meth:`residual` at one position: ``x``, ``h`` are ``(B, F)``."""
        return x + self.out.at(h[..., None, None])

    def gate_groups(self, image_channels: int, directions: int = 1) -> Tensor:
        """Groups of the ``4F`` gate channels (per direction): each gate block grouped like ``h``."""
        return channel_groups(self.channels, image_channels).repeat(4 * directions)


class RowLSTM(_ResidualLSTM):
    """Row LSTM layer, ``(B, F, H, W)`` -> ``(B, F, H, W)``; hidden state of width ``F``.

    ``gates_i = K_is (*) x_i + K_ss (*) h_{i-1}``: ``K_is`` is a 1xk convolution over row ``i`` masked
    to columns ``<= j`` (mask B), ``K_ss`` an unmasked 1xk convolution over row ``i - 1``.
    """

    def __init__(self, channels: int, image_channels: int, kernel_size: int = 3, dropout: float = 0.0) -> None:
        super().__init__(channels, image_channels, dropout)
        groups = self.gate_groups(image_channels)
        self.input_to_state = MaskedConv2d(
            channels, 4 * channels, (1, kernel_size), image_channels, "B", out_groups=groups
        )
        self.state_to_state = nn.Conv1d(channels, 4 * channels, kernel_size, padding=kernel_size // 2)
        with torch.no_grad():  # forget gate bias 1 (Gers et al. 2000)
            self.input_to_state.bias[channels : 2 * channels].fill_(1.0)  # type: ignore[index]

    def forward(self, x: Tensor) -> Tensor:
        b, f, _, width = x.shape
        with torch.autocast(x.device.type, enabled=False):
            gates_in = self.input_to_state(x.float())  # (B, 4F, H, W)
            h = c = gates_in.new_zeros(b, f, width)
            rows = []
            for gates_row in gates_in.unbind(2):  # unbind, not slicing: one cheap backward for all rows
                h, c = lstm_cell(gates_row + self.row_gates(h), c)
                rows.append(h)
            hidden = torch.stack(rows, dim=2)  # (B, F, H, W)
        return self.residual(x, hidden)

    # -- one pixel at a time (sampling)
    def row_gates(self, h_prev: Tensor) -> Tensor:
        """State-to-state gates of a row from the previous row's ``h``: ``(B, F, W)`` -> ``(B, 4F, W)``.
        ``state_to_state`` as one matrix product over the stacked taps (much faster than a 1-D
        convolution's backward on CPU)."""
        conv = self.state_to_state
        k, width = conv.kernel_size[0], h_prev.shape[-1]
        padded = F.pad(h_prev, (k // 2, k // 2))
        taps = torch.cat([padded[..., t : t + width] for t in range(k)], dim=1)  # (B, kF, W), tap-major
        weight = conv.weight.permute(0, 2, 1).reshape(conv.out_channels, -1)  # (4F, kF), tap-major
        return torch.einsum("og,bgw->bow", weight, taps) + conv.bias[:, None]  # type: ignore[index]

    def input_gates_at(self, row_patch: Tensor) -> Tensor:
        """Input-to-state gates at one column from its ``(B, F, 1, k)`` row patch: ``(B, 4F)``."""
        return self.input_to_state.at(row_patch)


class DiagonalBiLSTM(_ResidualLSTM):
    """Diagonal BiLSTM layer, ``(B, F, H, W)`` -> ``(B, F, H, W)``; each direction of width ``F``.

    ``K_is`` is a 1x1 convolution (mask B) giving the gates of both directions; ``K_ss`` a 2x1
    convolution over the previous column of the skewed map (neighbours above and to the left; for the
    mirrored direction above and to the right). The mirrored direction's output is shifted down one
    row before the two are added, so position ``(i, j)`` sees only rows ``< i`` from it.
    """

    def __init__(self, channels: int, image_channels: int, dropout: float = 0.0, context_channels: int = 0) -> None:
        super().__init__(channels, image_channels, dropout)
        groups = self.gate_groups(image_channels, directions=2)
        self.input_to_state = MaskedConv2d(channels, 8 * channels, 1, image_channels, "B", out_groups=groups)
        # the mirrored direction's output is shifted down a row, so it may read every sub-pixel of its
        # own row: without this the last pixel of row i-1 would be a blind spot of row i's first columns
        self.context_to_state = nn.Conv2d(context_channels, 4 * channels, 1, bias=False) if context_channels else None
        # both directions in one grouped convolution; tap 0 = the row above, tap 1 = the same row
        self.state_to_state = nn.Conv1d(2 * channels, 8 * channels, 2, groups=2)
        with torch.no_grad():
            for d in range(2):
                self.input_to_state.bias[(4 * d + 1) * channels : (4 * d + 2) * channels].fill_(1.0)  # type: ignore[index]

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``x`` ``(B, F, H, W)``; ``context`` ``(B, context_channels, H, W)`` (the image), read whole by
        the mirrored direction only."""
        b, f, height, width = x.shape
        with torch.autocast(x.device.type, enabled=False):
            gates_in = self.input_to_state(x.float())  # (B, 8F, H, W)
            fwd, rev = gates_in[:, : 4 * f], gates_in[:, 4 * f :]
            if self.context_to_state is not None:
                rev = rev + self.context_to_state(context.float())  # type: ignore[union-attr]
            rev = rev.flip(-1)
            skewed = torch.stack([skew(fwd), skew(rev)], dim=1)  # (B, 2, 4F, H, W + H - 1)
            cols = torch.arange(width + height - 1, device=x.device)
            rows = torch.arange(height, device=x.device)
            valid = ((cols[None] >= rows[:, None]) & (cols[None] < rows[:, None] + width)).float()  # (H, W+H-1)
            h = c = x.new_zeros(b, 2 * f, height, dtype=torch.float32)
            # state_to_state as one batched matrix product per direction over the stacked taps (above, same row)
            weight = self.state_to_state.weight.view(2, 4 * f, f, 2).permute(0, 1, 3, 2).reshape(2, 4 * f, 2 * f)
            bias = self.state_to_state.bias.view(1, 2, 4 * f, 1)  # type: ignore[union-attr]
            outs = []
            for k, gates_col in enumerate(skewed.unbind(-1)):  # unbind, not slicing: one cheap backward
                above = F.pad(h[..., :-1], (1, 0))  # (B, 2F, H): the state of the row above
                ss = torch.einsum(
                    "dog,bdgh->bdoh", weight, torch.cat([above.view(b, 2, f, height), h.view(b, 2, f, height)], 2)
                )
                ss = ss + bias
                gates = (gates_col + ss).reshape(2 * b, 4 * f, height)  # (B*2, 4F, H), direction-minor
                h_new, c_new = lstm_cell(gates, c.view(2 * b, f, height))
                h = h_new.view(b, 2 * f, height) * valid[:, k]
                c = c_new.view(b, 2 * f, height) * valid[:, k]
                outs.append(h)
            hidden = unskew(torch.stack(outs, dim=-1))  # (B, 2F, H, W)
            h_fwd, h_rev = hidden[:, :f], hidden[:, f:].flip(-1)
            h_rev = F.pad(h_rev, (0, 0, 1, 0))[:, :, :height]  # shifted down one row
        return self.residual(x, h_fwd + h_rev)

    # -- one pixel at a time (sampling)
    def input_gates(self, x: Tensor, direction: int, context: Tensor | None = None) -> Tensor:
        """Input-to-state gates of one direction (0 = left-to-right, 1 = mirrored, which also reads
        ``context``) at any positions: ``(B, F, ...)`` -> ``(B, 4F, ...)``."""
        f = self.channels
        w = self.input_to_state.masked_weight()[direction * 4 * f : (direction + 1) * 4 * f, :, 0, 0]
        bias = self.input_to_state.bias[direction * 4 * f : (direction + 1) * 4 * f]  # type: ignore[index]
        out = torch.einsum("of,bf...->bo...", w, x) + bias.view(-1, *([1] * (x.dim() - 2)))
        if direction == 1 and self.context_to_state is not None:
            out = out + torch.einsum("oc,bc...->bo...", self.context_to_state.weight[:, :, 0, 0], context)
        return out

    def state_gates(self, h_above: Tensor, h_beside: Tensor, direction: int) -> Tensor:
        """State-to-state gates of one direction from the neighbours' ``h`` (``(B, F, ...)`` each):
        the one above and the one before in the direction of the scan."""
        f = self.channels
        w = self.state_to_state.weight[direction * 4 * f : (direction + 1) * 4 * f]  # (4F, F, 2)
        bias = self.state_to_state.bias[direction * 4 * f : (direction + 1) * 4 * f]  # type: ignore[index]
        out = torch.einsum("of,bf...->bo...", w[..., 0], h_above) + torch.einsum("of,bf...->bo...", w[..., 1], h_beside)
        return out + bias.view(-1, *([1] * (h_above.dim() - 2)))
