"""PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", section 3.5).

``p(x) = prod_{i,j} p(R_ij | x_<ij) p(G_ij | x_<ij, R_ij) p(B_ij | x_<ij, R_ij, G_ij)``: a 7x7 type-A
masked convolution, residual blocks of type-B masked convolutions (1x1 -> 3x3 -> 1x1, channel masks in
every layer, 1x1 included), and a softmax over the levels of each sub-pixel (Bernoulli for binary data).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, cast

import torch
from torch import Tensor, nn

from genlight.modules.autoregressive import AutoregressiveImageModel
from genlight.nn.masked import MaskedConv2d
from genlight.nn.pixel_cache import Affine, PixelCache, WindowConv
from genlight.ranges import Decay, Depth, Fraction, KernelSize, Levels, NonNegativeFloat, PositiveFloat, Size
from genlight.registry import register_model


class MaskedResidualBlock(nn.Module):
    """``x + W3 relu(W2 relu(W1 relu(x)))`` with type-B masks: 1x1 (h -> h/2), kxk, 1x1 (h/2 -> h)."""

    def __init__(self, channels: int, hidden: int, image_channels: int, kernel: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(channels, hidden, 1, image_channels, "B"),
            nn.ReLU(),
            MaskedConv2d(hidden, hidden, kernel, image_channels, "B"),
            nn.ReLU(),
            nn.Dropout(dropout),
            MaskedConv2d(hidden, channels, 1, image_channels, "B"),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)  # the one residual (EugenHotaj's PixelCNN adds it twice)


class PixelCNNCache(PixelCache):
    """:class:`PixelCNN` one pixel at a time: each block caches the input map of its ``k x k``
    convolution (the only layer that reads other positions besides the input convolution, which
    reads the image); the residual stream and the 1x1 layers are computed at the new pixel only."""

    def __init__(self, model: PixelCNN, x: Tensor) -> None:
        super().__init__(x, model.input.kernel_size[0] // 2)
        self.first = WindowConv(model.input)
        self.blocks: list[tuple[Affine, WindowConv, Affine, Tensor, int]] = []
        for block in model.blocks:
            first, conv, last = (cast(MaskedConv2d, block.net[k]) for k in (1, 3, 6))
            pad = conv.kernel_size[0] // 2
            cached = self.new_map(conv.in_channels, pad, pad)  # relu(1x1(relu(stream))) of every drawn pixel
            self.blocks.append((Affine.pointwise(first), WindowConv(conv), Affine.pointwise(last), cached, pad))
        self.head = (
            Affine.pointwise(cast(MaskedConv2d, model.head[1])),
            Affine.pointwise(cast(MaskedConv2d, model.head[4])),
        )

    def params(self, i: int, j: int) -> Tensor:
        self.refresh(i, j)
        s = self.first.at(self.inputs, i, j)  # (B, F): the residual stream at (i, j)
        for first, conv, last, cached, pad in self.blocks:
            cached[:, i + pad, j + pad] = torch.relu(first(torch.relu(s)))  # (B, F/2)
            s = s + last(torch.relu(conv.at(cached, i, j)))
        return self.head[1](torch.relu(self.head[0](torch.relu(s))))  # (B, C*P)


@register_model("pixelcnn")
class PixelCNN(AutoregressiveImageModel):
    """PixelCNN with residual blocks and a per-sub-pixel softmax over the levels.

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        num_levels: discrete levels per sub-pixel (17 digits, 2 binarised, 256 8-bit).
        hidden_channels: features of the residual stream (>= C; a multiple of C splits them evenly); blocks work at half of it.
        num_blocks: residual blocks after the 7x7 type-A input convolution.
        first_kernel: size of the type-A input convolution (odd).
        kernel_size: size of the type-B convolution in each block (odd).
        head_channels: features of the 1x1 output layers before the softmax.
        dropout: dropout inside every block and in the head.
        output: ``softmax`` over the levels (the paper) or ``logistic_mixture`` (PixelCNN++'s discretised
            logistic mixture, shared across neighbouring levels; more than 2 levels).
        components: logistics in the mixture.
        lr, weight_decay: AdamW settings (decoupled weight decay).
        lr_decay: the learning rate is multiplied by it after every epoch (1 = constant).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"hidden_channels": 8, "num_blocks": 1, "head_channels": 8}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        hidden_channels: Size = 64,
        num_blocks: Depth = 6,
        first_kernel: KernelSize = 7,
        kernel_size: KernelSize = 3,
        head_channels: Size = 64,
        dropout: Fraction = 0.0,
        output: Literal["softmax", "logistic_mixture"] = "softmax",
        components: Size = 5,
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.0,
        lr_decay: Decay = 1.0,
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, lr_decay=lr_decay)
        self.setup_autoregressive(image_shape, num_levels, output=output, components=components)
        c = self.shape[0]
        for name, width in (("hidden_channels", hidden_channels), ("head_channels", head_channels)):
            if width < c:
                raise ValueError(
                    f"{name} must be at least the {c} image channels (one feature group each), got {width}"
                )
        half = max(c, hidden_channels // 2)
        self.input = MaskedConv2d(c, hidden_channels, first_kernel, c, "A")
        self.blocks = nn.Sequential(
            *(MaskedResidualBlock(hidden_channels, half, c, kernel_size, dropout) for _ in range(num_blocks))
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(hidden_channels, head_channels, 1, c, "B"),
            nn.ReLU(),
            nn.Dropout(dropout),
            MaskedConv2d(head_channels, c * self.params_per_channel, 1, c, "B"),
        )
        self.receptive_rows = first_kernel // 2 + num_blocks * (kernel_size // 2)
        self.example_input_array = torch.zeros(2, *self.shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.conditional_logits(x)

    def cache_refusal(self) -> str | None:
        if type(self).conditional_logits is not PixelCNN.conditional_logits:
            return f"for {type(self).__name__}: it overrides conditional_logits"
        if self.training and any(isinstance(m, nn.Dropout) and m.p > 0 for m in self.modules()):
            return "with dropout active (training mode): call model.eval() first"
        return None

    def sample(self, n: int, *, y: Tensor | None = None, sampler: Literal["cached", "naive"] = "cached") -> Tensor:
        """``n`` images in [0, 1]: ``sampler="cached"`` computes every layer at the new pixel only
        (Ramachandran et al. 2017; a configuration it cannot serve falls back to naive with a warning),
        ``"naive"`` re-runs the network for every sub-pixel; the same seed draws the same images."""
        return self.raster_sample(n, y=y, sampler=sampler)

    def pixel_cache(self, x: Tensor, y: Tensor | None) -> PixelCache | None:
        return PixelCNNCache(self, x)

    def conditional_logits(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.input(2.0 * x - 1.0)  # (B, F, H, W)
        return self.head(self.blocks(h))  # (B, C*P, H, W)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: the hidden maps after the middle residual block (``ceil(num_blocks / 2)``
        blocks), averaged over positions, ``(B, hidden_channels)`` (middle layers, mean-pooled, as
        in Chen et al. 2020, "Generative Pretraining from Pixels")."""
        h = self.input(2.0 * x - 1.0)  # (B, F, H, W)
        h = self.blocks[: (len(self.blocks) + 1) // 2](h)
        return h.mean(dim=(2, 3))  # (B, F)
