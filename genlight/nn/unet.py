"""A time-conditioned U-Net for diffusion models (Ho et al. 2020, appendix B; Ronneberger et al. 2015).

Residual blocks with GroupNorm and a projected timestep embedding (sinusoidal, as in the
Transformer), self-attention at the coarse resolutions, skip connections between the
down- and up-sampling paths. Sized from the image: :func:`unet_channel_mults` picks how many
resolutions (each down-sampling halves H and W) from ``image_shape``, so 8x8 digits, 28x28 MNIST
and 32x32 / 64x64 RGB images get a sensible network from the same arguments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNet", "timestep_embedding", "unet_channel_mults"]


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (integer or real) timesteps ``t`` ``(B,)`` -> ``(B, dim)``, float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


def unet_channel_mults(image_shape: Sequence[int]) -> tuple[int, ...]:
    """Channel multipliers per resolution for ``(C, H, W)``: down-sample while H and W stay even and
    at least 4 after halving (8x8 -> 8,4; 28x28 -> 28,14,7; 32x32 -> 32,16,8,4; 64x64 -> 64,...,4)."""
    _, h, w = image_shape
    levels = 1
    while h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= 4 and levels < 5:
        h, w, levels = h // 2, w // 2, levels + 1
    return (1, 2, 2, 2, 4)[:levels] if levels > 1 else (1,)


def _groups(channels: int) -> int:
    for g in (32, 16, 8, 4, 2):
        if channels % g == 0 and channels // g >= 2:
            return g
    return 1


class ResBlock(nn.Module):
    """``x + conv(SiLU(GN(conv(SiLU(GN(x))) + W t_emb)))`` (with a 1x1 skip when widths differ)."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2 = nn.GroupNorm(_groups(out_ch), out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over the H*W positions, residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)  # 3 x (B, HW, C)
        a = F.scaled_dot_product_attention(q, k, v)  # (B, HW, C)
        return x + self.out(a.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """ε-prediction network ``net(x_t, t, y) -> (B, C, H, W)``.

    Args:
        image_shape: ``(C, H, W)``.
        channels: width at full resolution.
        channel_mults: width multiplier per resolution (``None``: :func:`unet_channel_mults`).
        num_res_blocks: residual blocks per resolution on the way down (one more on the way up).
        attention_levels: indices of the resolutions with self-attention (``None``: the coarsest,
            when it is at most 8x8 ... 16x16 of a 64x64 image).
        dropout: dropout inside the residual blocks.
        num_classes: class labels embedded and added to the time embedding (0 = unconditional); label
            ``num_classes`` is the "no label" token of classifier-free guidance.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        channels: int = 32,
        channel_mults: Sequence[int] | None = None,
        num_res_blocks: int = 1,
        attention_levels: Sequence[int] | None = None,
        dropout: float = 0.0,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        c_in, _, _ = image_shape
        mults = tuple(channel_mults) if channel_mults else unet_channel_mults(image_shape)
        if attention_levels is None:
            attention_levels = (len(mults) - 1,) if len(mults) > 1 else ()
        emb_dim = 4 * channels
        self.channels = channels
        self.time_mlp = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes > 0 else None
        self.stem = nn.Conv2d(c_in, channels, 3, padding=1)

        self.down = nn.ModuleList()
        widths, ch = [channels], channels
        for level, mult in enumerate(mults):
            out = channels * mult
            for _ in range(num_res_blocks):
                blocks: list[nn.Module] = [ResBlock(ch, out, emb_dim, dropout)]
                if level in attention_levels:
                    blocks.append(Attention(out))
                self.down.append(nn.ModuleList(blocks))
                ch = out
                widths.append(ch)
            if level < len(mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                widths.append(ch)
        self.mid = nn.ModuleList(
            [ResBlock(ch, ch, emb_dim, dropout), Attention(ch), ResBlock(ch, ch, emb_dim, dropout)]
        )

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            out = channels * mult
            for _ in range(num_res_blocks + 1):
                blocks = [ResBlock(ch + widths.pop(), out, emb_dim, dropout)]
                if level in attention_levels:
                    blocks.append(Attention(out))
                self.up.append(nn.ModuleList(blocks))
                ch = out
            if level > 0:
                self.up.append(
                    nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1)])
                )
        self.head = nn.Sequential(nn.GroupNorm(_groups(ch), ch), nn.SiLU(), nn.Conv2d(ch, c_in, 3, padding=1))
        with torch.no_grad():  # start near ε = 0 (Ho et al. zero the last layer; small, so gradients flow)
            self.head[-1].weight.mul_(0.1)
            self.head[-1].bias.zero_()

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        h, skips, emb = self.down_path(x, t, y)
        for blocks in self.up:
            if isinstance(blocks[0], ResBlock):  # type: ignore[index]
                h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:  # type: ignore[attr-defined]
                h = block(h, emb) if isinstance(block, (ResBlock, Attention)) else block(h)
        return self.head(h)

    def down_path(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> tuple[Tensor, list[Tensor], Tensor]:
        """The contracting half and the middle blocks: ``(h, skips, emb)``, ``h`` the middle feature map
        ``(B, ch, H / 2^k, W / 2^k)``; ``y=None`` in a conditional net is the null label."""
        emb = self.time_mlp(timestep_embedding(t, self.channels))  # (B, 4ch)
        if self.label_emb is not None:
            if y is None:
                y = torch.full((len(x),), self.label_emb.num_embeddings - 1, device=x.device, dtype=torch.long)
            emb = emb + self.label_emb(y)
        h = self.stem(x)
        skips = [h]
        for blocks in self.down:
            for block in blocks:  # type: ignore[attr-defined]
                h = block(h, emb) if isinstance(block, (ResBlock, Attention)) else block(h)
            skips.append(h)
        for block in self.mid:
            h = block(h, emb)
        return h, skips, emb
