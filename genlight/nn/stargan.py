"""StarGAN's networks (Choi et al. 2018, §3 and appendix; yunjey/stargan ``model.py``), sized from an image shape.

* :class:`DomainGenerator`: ``G(x, c)``, the target domain's one-hot ``c`` tiled to ``H x W`` and
  concatenated to the image as ``K`` extra channels, then CycleGAN's ResNet generator
  (:class:`~genlight.nn.image_to_image.ResnetGenerator`) back to the image's channels, ``tanh``. Its
  stem pads with ZEROS, as the reference's (``Conv2d(..., padding=3)``): the tiled channels are
  constant, so with reflection padding the stem's output from them would be constant too and the
  instance norm after it would subtract all of it, leaving G blind to the target; with zero padding
  the label reaches the network through the border, where the constant channels meet the padding.
* :class:`DomainDiscriminator`: a PatchGAN trunk of stride-2 4x4 convolutions (LeakyReLU 0.01, no
  normalisation: the gradient penalty is per example) and two heads: ``src``, a 3x3 convolution to one
  critic value per patch, and ``cls``, a convolution over the whole remaining map to ``K`` domain logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.nn.image_to_image import ResnetGenerator, num_halvings

__all__ = ["DomainDiscriminator", "DomainGenerator"]


class DomainGenerator(nn.Module):
    """``G(x, c)``: ``x`` ``(B, C, H, W)`` in [-1, 1], ``c`` ``(B,)`` target-domain indices -> ``(B, C, H, W)``
    in [-1, 1]. The arguments after ``num_domains`` are :class:`ResnetGenerator`'s."""

    def __init__(
        self,
        image_shape: Sequence[int],
        num_domains: int,
        width: int = 64,
        n_blocks: int = 6,
        *,
        max_downsamplings: int = 2,
        stem_kernel: int = 7,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        self.num_domains = int(num_domains)
        self.net = ResnetGenerator(
            (c + self.num_domains, h, w), width, n_blocks, max_downsamplings=max_downsamplings,
            stem_kernel=stem_kernel, norm=norm, out_channels=c,
        )
        stem_pad = self.net.net[0]
        assert isinstance(stem_pad, nn.ReflectionPad2d)
        self.net.net[0] = nn.ZeroPad2d(stem_pad.padding)  # see the module docstring

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        onehot = F.one_hot(c.long(), self.num_domains).to(x.dtype)  # (B, K)
        tiled = onehot[:, :, None, None].expand(-1, -1, *x.shape[-2:])  # (B, K, H, W)
        return self.net(torch.cat([x, tiled], dim=1))  # (B, C + K, H, W) -> (B, C, H, W)


class DomainDiscriminator(nn.Module):
    """``D(x)`` -> ``(src, cls)``: ``src`` ``(B, 1, h, w)`` critic values per patch, ``cls`` ``(B, K)``
    domain logits.

    Args:
        image_shape: ``(C, H, W)``.
        num_domains: ``K``.
        width: channels of the first layer, doubled per stride-2 layer.
        n_layers: stride-2 layers at most (6 at 128x128 in the paper); fewer for small images, the map
            never below 4x4 (8x8: one).
        n_extra: stride-1 3x3 convolutions after the last stride-2 one (capacity for small images).
    """

    def __init__(
        self, image_shape: Sequence[int], num_domains: int, width: int = 64, n_layers: int = 6, n_extra: int = 1
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        n = max(1, num_halvings(image_shape, n_layers))
        layers: list[nn.Module] = []
        c_in, c_out = c, width
        for i in range(n):
            c_out = width * 2**i
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            c_in = c_out
        for _ in range(n_extra):
            layers += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.LeakyReLU(0.01)]
        self.trunk = nn.Sequential(*layers)
        size = (h // 2**n, w // 2**n)
        self.src = nn.Conv2d(c_in, 1, 3, padding=1, bias=False)
        self.cls = nn.Conv2d(c_in, num_domains, size, bias=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)  # (B, width * 2^(n-1), H / 2^n, W / 2^n)
        return self.src(h), self.cls(h).flatten(1)  # (B, 1, h, w), (B, K)
