"""Image-to-image networks of CycleGAN (Zhu et al. 2017, appendix 7.2), sized from an image shape.

* :class:`ResnetGenerator` (Johnson et al. 2016, as in junyanz/pytorch-CycleGAN-and-pix2pix
  ``networks.ResnetGenerator``): a 7x7 stem, ``k`` stride-2 down-samplings, ``n_blocks`` residual
  blocks, ``k`` stride-2 transposed convolutions back up, a 7x7 convolution and ``tanh``; reflection
  padding, instance norm, ReLU. ``k`` is at most 2 (the paper's) and smaller for small images: the map
  never goes below 4x4 (8x8 digits: one down-sampling; 16x16 and up: two).
* :class:`PatchDiscriminator` (pix2pix's 70x70 PatchGAN, ``networks.NLayerDiscriminator``): ``n_layers``
  stride-2 4x4 convolutions (widths ``width * 2^i``, at most ``8 * width``), one stride-1 4x4
  convolution and a stride-1 4x4 convolution to one logit per patch, LeakyReLU(0.2), no norm on the
  first layer. ``n_layers`` is capped the same way for small images (8x8: one, giving 2x2 patches).

Convolutions followed by a normalisation have no bias (the norm removes it; a bias there would never
get a gradient). ``norm``: ``instance`` (the paper's, with batch size 1), ``batch`` or ``none``.
Initialise with :func:`~genlight.nn.adversarial.dcgan_init_` (``N(0, 0.02)``, as the reference does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from torch import Tensor, nn

from genlight.nn.conv import downsample_plan

__all__ = ["ImageNorm", "PatchDiscriminator", "ResnetBlock", "ResnetGenerator", "image_norm", "num_halvings"]

#: the normalisation layer of the image-to-image networks (see :func:`image_norm`)
ImageNorm = Literal["instance", "batch", "none"]
NORMS: tuple[str, ...] = get_args(ImageNorm)


def image_norm(kind: str, channels: int) -> nn.Module:
    """``instance`` (no affine, no running statistics: the CycleGAN default), ``batch`` or ``none``."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


def num_halvings(image_shape: Sequence[int], most: int, min_size: int = 4) -> int:
    """How many stride-2 halvings fit, at most ``most``, keeping the map at least ``min_size``."""
    _, h, w = image_shape
    return len(downsample_plan(h, w, min_size=min_size, max_steps=most))


class ResnetBlock(nn.Module):
    """``x + conv(relu(norm(conv(x))))`` with reflection padding and a norm after each 3x3 convolution."""

    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        bias = norm == "none"
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            image_norm(norm, channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            image_norm(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """``G(x)``: ``(B, C, H, W)`` in [-1, 1] -> the same shape in [-1, 1] (see the module docstring).

    Args:
        image_shape: ``(C, H, W)`` of both domains.
        width: channels of the stem; doubled at each down-sampling.
        n_blocks: residual blocks at the lowest resolution (the paper: 6 at 128x128, 9 at 256x256).
        max_downsamplings: at most this many halvings (2 in the paper); fewer for small images.
        stem_kernel: size of the first and last convolutions (7 in the paper); with fewer halvings and
            blocks, a smaller one keeps the receptive field local on small images.
        norm: ``instance`` | ``batch`` | ``none``.
        out_channels: channels of the output (``None``: those of the input; StarGAN's generator takes
            the image plus the target-domain channels and returns the image's).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        width: int = 64,
        n_blocks: int = 9,
        *,
        max_downsamplings: int = 2,
        stem_kernel: int = 7,
        norm: str = "instance",
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        if n_blocks < 0 or width < 1 or max_downsamplings < 0:
            raise ValueError(
                f"ResnetGenerator needs width >= 1, n_blocks >= 0 and max_downsamplings >= 0, got "
                f"width={width}, n_blocks={n_blocks}, max_downsamplings={max_downsamplings}"
            )
        if stem_kernel < 1 or stem_kernel % 2 == 0 or stem_kernel // 2 >= min(h, w):
            raise ValueError(
                f"stem_kernel must be odd and its half smaller than the image ({h}x{w}), got {stem_kernel}"
            )
        self.num_downsamplings = k = num_halvings(image_shape, max_downsamplings)
        pad = stem_kernel // 2  # reflection padding must be smaller than the map
        bias = norm == "none"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(pad),
            nn.Conv2d(c, width, 2 * pad + 1, bias=bias),
            image_norm(norm, width),
            nn.ReLU(True),
        ]
        for i in range(k):
            c_in, c_out = width * 2**i, width * 2 ** (i + 1)
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=bias),
                image_norm(norm, c_out),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(width * 2**k, norm) for _ in range(n_blocks)]
        for i in range(k, 0, -1):
            c_in, c_out = width * 2**i, width * 2 ** (i - 1)
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=bias),
                image_norm(norm, c_out),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(pad), nn.Conv2d(width, out_channels or c, 2 * pad + 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """``D(x)``: ``(B, C, H, W)`` in [-1, 1] -> ``(B, 1, h, w)`` logits, one per overlapping patch.

    Args:
        image_shape: ``(C, H, W)``.
        width: channels of the first layer (doubled per stride-2 layer, at most ``8 * width``).
        n_layers: stride-2 layers (3 in the paper: 70x70 patches); fewer for small images.
        norm: ``instance`` | ``batch`` | ``none`` (never on the first layer).
    """

    def __init__(
        self, image_shape: Sequence[int], width: int = 64, n_layers: int = 3, *, norm: str = "instance"
    ) -> None:
        super().__init__()
        c = image_shape[0]
        if n_layers < 1 or width < 1:
            raise ValueError(
                f"PatchDiscriminator needs width >= 1 and n_layers >= 1, got width={width}, n_layers={n_layers}"
            )
        self.n_layers = n = max(1, num_halvings(image_shape, n_layers))
        bias = norm == "none"
        layers: list[nn.Module] = [nn.Conv2d(c, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        c_in = width
        for i in range(1, n):
            c_out = width * min(2**i, 8)
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=bias),
                image_norm(norm, c_out),
                nn.LeakyReLU(0.2, True),
            ]
            c_in = c_out
        c_out = width * min(2**n, 8)
        layers += [
            nn.Conv2d(c_in, c_out, 4, stride=1, padding=1, bias=bias),
            image_norm(norm, c_out),
            nn.LeakyReLU(0.2, True),
        ]
        layers.append(nn.Conv2d(c_out, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
