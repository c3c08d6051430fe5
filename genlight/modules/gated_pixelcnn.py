"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

Two stacks remove PixelCNN's blind spot: a vertical stack sees every row above (a kxk convolution over
rows <= i, shifted down one row before it feeds the horizontal stack), a horizontal stack sees the
current row left of the pixel (1xk, channel-masked at the centre). Gated activations
``tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h)``, with the class embedding ``h`` as a bias inside
the gate of both stacks when ``conditional``; residual connections in the horizontal stack.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genlight.errors import IncompatibleDataError
from genlight.functional import check_image_shape
from genlight.modules.autoregressive import AutoregressiveImageModel
from genlight.nn.gated import GatedLayer
from genlight.nn.masked import MaskedConv2d
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
