"""DCGAN generator and discriminator (Radford et al. 2016) sized from an image shape, 8x8 to 64x64.

The generator projects ``z`` to a ``b x b`` map (``H = b 2^k``, ``b >= 4``), then doubles the size
``k`` times with stride-2 transposed convolutions, batch norm and ReLU, halving the width each time,
and ends in a 3x3 convolution and ``tanh`` (images in [-1, 1]). The discriminator mirrors it: stride-2
convolutions with LeakyReLU(0.2), no normalisation on the first layer, then a linear map to one logit.

Options used by the conditional and Wasserstein families:

* ``num_classes > 0`` in the generator: conditional batch norm (Miyato & Koyama 2018) everywhere;
* ``norm`` in the discriminator: ``batch`` (DCGAN), ``spectral`` (SNGAN), ``layer`` (WGAN-GP: batch
  norm couples the examples the gradient penalty treats one by one) or ``none``;
* ``num_classes > 0`` in the discriminator: the projection term ``⟨embed(y), Σ_hw h⟩`` (Miyato &
  Koyama 2018), with the features sum-pooled;
* ``extra_layers``: stride-1 3x3 blocks at every resolution (more depth for small images).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from genlight.nn.adversarial import ConditionalBatchNorm2d
from genlight.nn.conv import downsample_plan

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "dcgan_plan"]


def dcgan_plan(image_shape: Sequence[int], width: int) -> tuple[tuple[int, int], list[int]]:
    """``((b_h, b_w), widths)``: the smallest map size (at least 4, reached by halving) and the channel
    widths from that size up to the full image (``width * 2^i``, widest at the smallest map)."""
    _, h, w = image_shape
    plan = downsample_plan(h, w, min_size=4)
    base = plan[-1] if plan else (h, w)
    steps = len(plan)
    return base, [width * 2 ** (steps - i) for i in range(steps + 1)]


class _GeneratorBlock(nn.Module):
    """Norm (conditional or not), ReLU, then a (transposed) convolution."""

    def __init__(self, c_in: int, c_out: int, num_classes: int, upsample: bool) -> None:
        super().__init__()
        self.norm = ConditionalBatchNorm2d(c_in, num_classes) if num_classes else nn.BatchNorm2d(c_in)
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1) if upsample else nn.Conv2d(c_in, c_out, 3, 1, 1)

    def forward(self, h: Tensor, y: Tensor | None) -> Tensor:
        h = self.norm(h, y) if isinstance(self.norm, ConditionalBatchNorm2d) else self.norm(h)
        return self.conv(torch.relu(h))


class DCGANGenerator(nn.Module):
    """``G(z[, y])``: ``(B, latent_dim)`` -> ``(B, C, H, W)`` in [-1, 1]; class-conditional batch norm
    when ``num_classes > 0``."""

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        width: int = 64,
        *,
        num_classes: int = 0,
        extra_layers: int = 0,
    ) -> None:
        super().__init__()
        c = image_shape[0]
        self.num_classes = num_classes
        (bh, bw), widths = dcgan_plan(image_shape, width)
        self.start = (widths[0], bh, bw)
        self.project = nn.Linear(latent_dim, widths[0] * bh * bw)
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:]):
            blocks += [_GeneratorBlock(c_in, c_in, num_classes, False) for _ in range(extra_layers)]
            blocks.append(_GeneratorBlock(c_in, c_out, num_classes, True))
        blocks += [_GeneratorBlock(widths[-1], widths[-1], num_classes, False) for _ in range(extra_layers)]
        self.blocks = nn.ModuleList(blocks)
        self.out = _GeneratorBlock(widths[-1], c, num_classes, False)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.num_classes and y is None:
            raise ValueError("this generator is class-conditional: pass labels y")
        h = self.project(z).view(-1, *self.start)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out(h, y))


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind in ("spectral", "none"):
        return nn.Identity()
    raise ValueError(f"unknown discriminator norm {kind!r}; choose batch, layer, spectral or none")


class DCGANDiscriminator(nn.Module):
    """``D(x[, y])``: ``(B, C, H, W)`` in [-1, 1] -> ``(B,)`` logits (critic values); the projection
    term when ``num_classes > 0``. :meth:`features` gives the trunk's feature map (InfoGAN's Q head).
    ``head_bias=False`` for a Wasserstein critic, whose loss does not depend on a constant offset."""

    def __init__(
        self,
        image_shape: Sequence[int],
        width: int = 64,
        *,
        norm: str = "batch",
        num_classes: int = 0,
        extra_layers: int = 0,
        head_bias: bool = True,
    ) -> None:
        super().__init__()
        c = image_shape[0]
        _norm(norm, 1)  # validates the name
        sn = spectral_norm if norm == "spectral" else (lambda m: m)
        (bh, bw), widths = dcgan_plan(image_shape, width)
        widths = widths[::-1]
        layers: list[nn.Module] = [sn(nn.Conv2d(c, widths[0], 3, 1, 1)), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(widths, widths[1:]):
            for _ in range(extra_layers):
                layers += [sn(nn.Conv2d(c_in, c_in, 3, 1, 1)), _norm(norm, c_in), nn.LeakyReLU(0.2)]
            layers += [sn(nn.Conv2d(c_in, c_out, 4, 2, 1)), _norm(norm, c_out), nn.LeakyReLU(0.2)]
        for _ in range(extra_layers):
            layers += [sn(nn.Conv2d(widths[-1], widths[-1], 3, 1, 1)), _norm(norm, widths[-1]), nn.LeakyReLU(0.2)]
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = widths[-1] * bh * bw
        self.head = sn(nn.Linear(self.feature_dim, 1, bias=head_bias))
        self.num_classes = num_classes
        self.embed = sn(nn.Embedding(num_classes, widths[-1])) if num_classes else None

    def features(self, x: Tensor) -> Tensor:
        """The trunk's output, ``(B, widths[-1], b_h, b_w)``."""
        return self.trunk(x)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.features(x)
        out = self.head(h.flatten(1)).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is class-conditional (projection): pass labels y")
            out = out + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return out
