"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

Two stacks remove PixelCNN's blind spot: a vertical stack sees every row above (a kxk convolution over
rows <= i, shifted down one row before it feeds the horizontal stack), a horizontal stack sees the
current row left of the pixel (1xk, channel-masked at the centre). Gated activations
``tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h)``, with the class embedding ``h`` as a bias inside
the gate of both stacks when ``conditional``; residual connections in the horizontal stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.errors import IncompatibleDataError
from genlight.functional import check_image_shape
from genlight.modules.autoregressive import AutoregressiveImageModel
from genlight.nn.gated import GatedLayer, gate
from genlight.nn.masked import MaskedConv2d
from genlight.nn.pixel_cache import Affine, PixelCache, WindowConv
from genlight.ranges import (
    ClassCount,
    Decay,
    Depth,
    Fraction,
    KernelSize,
    Levels,
    NonNegativeFloat,
    PositiveFloat,
    Size,
)
from genlight.registry import register_model
from genlight.types import class_count


@dataclass
class GatedLayerCache:
    """One :class:`GatedLayer`'s weights at a position and its caches, for :class:`GatedPixelCNNCache`."""

    layer: GatedLayer
    vertical: tuple[Tensor, Tensor | None]  # the V-masked kxk weight's rows up to the centre, and its bias
    horizontal: WindowConv
    out: Affine
    link_row: Tensor  # (B, W, 2F): link(v_pre) of the row above the current one
    rows_in: Tensor  # (B, H + k//2, W + 2(k//2), in): the vertical stack's input, finished rows
    row_in: Tensor  # (B, 1, W + 2(k//2), in): the horizontal stack's input, current row
    class_bias: tuple[Tensor, Tensor] | None  # ((B, 2F), (B, 2F)) inside the vertical, horizontal gates


class GatedPixelCNNCache(PixelCache):
    """:class:`GatedPixelCNN` one pixel at a time. The vertical stack at row ``i`` sees rows ``<= i``
    (every column), so it runs once per finished row, a ``k//2+1``-row slab per layer, and its link
    into the horizontal stack is kept for row ``i + 1`` (the down-shift: row 0 gets the link's bias
    alone). The horizontal stack at ``(i, j)`` sees its own row left of ``j`` only: one row of inputs
    per layer is cached and each new pixel runs a ``1 x k`` window per layer."""

    def __init__(self, model: GatedPixelCNN, x: Tensor, y: Tensor | None) -> None:
        super().__init__(x, model.layers[0].vertical.kernel_size[0] // 2)
        n, _, _, w = x.shape
        self.layers: list[GatedLayerCache] = []
        for layer in cast(list[GatedLayer], model.layers):
            width, vertical = layer.out.in_channels, layer.vertical
            zeros = x.new_zeros(n, 2 * width, 1, w)  # row 0's shifted-in v_pre
            self.layers.append(
                GatedLayerCache(
                    layer=layer,
                    vertical=(vertical.masked_weight()[:, :, : self.pad + 1], vertical.bias),
                    horizontal=WindowConv(layer.horizontal),
                    out=Affine.pointwise(layer.out),
                    link_row=self.link(layer, zeros),
                    rows_in=self.inputs if layer.first else self.new_map(vertical.in_channels, self.pad, self.pad),
                    row_in=x.new_zeros(n, 1, w + 2 * self.pad, layer.horizontal.in_channels),
                    class_bias=layer.embed(y).chunk(2, dim=1) if layer.embed is not None and y is not None else None,
                )
            )
        self.head = (
            Affine.pointwise(cast(MaskedConv2d, model.head[1])),
            Affine.pointwise(cast(MaskedConv2d, model.head[3])),
        )

    @staticmethod
    def link(layer: GatedLayer, v_pre: Tensor) -> Tensor:
        """``(B, 2F, 1, W)`` pre-gate vertical features of a row -> the link's ``(B, W, 2F)`` for the row below."""
        return F.conv2d(v_pre, layer.link.weight, layer.link.bias)[:, :, 0].transpose(1, 2)

    def params(self, i: int, j: int) -> Tensor:
        self.refresh(i, j)
        h = self.inputs[:, self.pad + i, self.pad + j]  # the first layer has no residual: never added
        for cache in self.layers:
            if cache.layer.first:
                h_pre = cache.horizontal.at(self.inputs, self.pad + i, j)  # (B, 2F)
            else:
                cache.row_in[:, 0, self.pad + j] = h
                h_pre = cache.horizontal.at(cache.row_in, 0, j)
            h_pre = h_pre + cache.link_row[:, j]
            if cache.class_bias is not None:
                h_pre = h_pre + cache.class_bias[1]
            h_out = cache.out(gate(h_pre))  # (B, F)
            h = h_out if cache.layer.first else h + h_out
        return self.head[1](torch.relu(self.head[0](torch.relu(h))))  # (B, C*P)

    def row_done(self, i: int) -> None:
        super().row_done(i)
        p, w = self.pad, self.x.shape[3]
        for cache, above in zip(self.layers, [*self.layers[1:], None]):
            slab = cache.rows_in[:, i : i + p + 1].permute(0, 3, 1, 2)  # (B, in, k//2+1, W+2p): rows i-p..i
            v_pre = F.conv2d(slab, *cache.vertical)  # (B, 2F, 1, W)
            cache.link_row = self.link(cache.layer, v_pre)
            if above is not None:  # the last layer's vertical output feeds nothing
                v = v_pre if cache.class_bias is None else v_pre + cache.class_bias[0][:, :, None, None]
                above.rows_in[:, p + i, p : p + w] = gate(v)[:, :, 0].transpose(1, 2)  # (B, W, F)


@register_model("gated_pixelcnn")
class GatedPixelCNN(AutoregressiveImageModel):
    """Gated PixelCNN with vertical and horizontal stacks (no blind spot), optionally class-conditional.

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        num_levels: discrete levels per sub-pixel.
        num_classes: classes of the data (linked by the CLI); used when ``conditional``.
        conditional: condition on the class label: ``sample(n, y=labels)``; ``log_prob(x)`` is then the
            exact mixture over classes with a uniform prior, ``log_prob(x, y)`` the class-conditional.
        hidden_channels: features per stack (>= C; a multiple of C splits them evenly).
        num_layers: gated layers.
        kernel_size: size of the vertical (kxk) and horizontal (1xk) convolutions (odd).
        head_channels: features of the 1x1 output layer before the softmax.
        dropout: dropout on the gated features of the horizontal stack.
        output: ``softmax`` over the levels (the paper) or ``logistic_mixture`` (PixelCNN++'s discretised
            logistic mixture, shared across neighbouring levels; more than 2 levels).
        components: logistics in the mixture.
        lr, weight_decay: AdamW settings; lr_decay: multiplied into the rate every epoch.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {
        "hidden_channels": 8,
        "num_layers": 2,
        "head_channels": 8,
        "conditional": True,
    }
    conditional_with: ClassVar[str | None] = "--model.conditional true"

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        num_classes: ClassCount = 0,
        conditional: bool = False,
        hidden_channels: Size = 64,
        num_layers: Depth = 8,
        kernel_size: KernelSize = 5,
        head_channels: Size = 64,
        dropout: Fraction = 0.0,
        output: Literal["softmax", "logistic_mixture"] = "softmax",
        components: Size = 5,
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.0,
        lr_decay: Decay = 1.0,
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, lr_decay=lr_decay)
        check_image_shape(image_shape, type(self).__name__)  # the shape first: its error names the sizes that fit
        if conditional and num_classes < 2:
            raise IncompatibleDataError(
                f"conditional GatedPixelCNN needs labelled data (num_classes >= 2), got num_classes={num_classes}; "
                "use a labelled datamodule (digits, mnist, cifar10) or conditional=false"
            )
        self.setup_autoregressive(image_shape, num_levels, num_classes if conditional else 0, output, components)
        c = self.shape[0]
        for name, width in (("hidden_channels", hidden_channels), ("head_channels", head_channels)):
            if width < c:
                raise ValueError(
                    f"{name} must be at least the {c} image channels (one feature group each), got {width}"
                )
        self.layers = nn.ModuleList(
            GatedLayer(
                c if i == 0 else hidden_channels, hidden_channels, c, kernel_size, i == 0, class_count(self), dropout
            )
            for i in range(num_layers)
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(hidden_channels, head_channels, 1, c, "B"),
            nn.ReLU(),
            MaskedConv2d(head_channels, c * self.params_per_channel, 1, c, "B"),
        )
        self.receptive_rows = 1 + num_layers * (kernel_size // 2)
        self.example_input_array = torch.zeros(2, *self.shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.conditional_logits(x)

    def cache_refusal(self) -> str | None:
        if type(self).conditional_logits is not GatedPixelCNN.conditional_logits:
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
        return GatedPixelCNNCache(self, x, y)

    def conditional_logits(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        v = h = 2.0 * x - 1.0  # (B, C, H, W)
        for layer in self.layers:
            v, h = layer(v, h, y)
        return self.head(h)  # (B, C*P, H, W)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen, label-free representation: the horizontal stack after the middle gated layer
        (``ceil(num_layers / 2)`` layers), averaged over positions, ``(B, hidden_channels)`` (middle
        layers, mean-pooled, as in Chen et al. 2020); a class-conditional model runs without its label bias."""
        v = h = 2.0 * x - 1.0  # (B, C, H, W)
        for layer in self.layers[: (len(self.layers) + 1) // 2]:
            v, h = layer(v, h, None)
        return h.mean(dim=(2, 3))  # (B, F)
