"""A Gated PixelCNN over maps of discrete codes (the prior of VQ-VAE, van den Oord et al. 2017, sec. 3.2).

``p(z) = prod_i p(z_i | z_<i)`` over an ``(h, w)`` map of code indices in ``0..K-1``, in raster order: each
code is embedded, the gated layers of :mod:`genlight.nn.gated` (one "channel", type-A mask in the first
layer) keep every conditional causal, and a 1x1 head gives ``K`` logits per position. ``log_prob`` is
exact (a product of softmaxes), so it sums to 1 over all ``K^(h w)`` maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.nn.gated import GatedLayer

__all__ = ["GatedCodePrior"]


class GatedCodePrior(nn.Module):
    """Gated PixelCNN prior over ``(B, h, w)`` code maps of ``num_codes`` codes (``dropout`` on the gated
    features of the horizontal stack, in training)."""

    def __init__(
        self,
        num_codes: int,
        code_shape: tuple[int, int],
        hidden_channels: int,
        num_layers: int,
        kernel_size: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_codes, self.code_shape = num_codes, tuple(code_shape)
        self.embed = nn.Embedding(num_codes, hidden_channels)
        self.layers = nn.ModuleList(
            GatedLayer(hidden_channels, hidden_channels, 1, kernel_size, i == 0, 0, dropout) for i in range(num_layers)
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(hidden_channels, hidden_channels, 1),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, num_codes, 1),
        )

    def logits(self, codes: Tensor) -> Tensor:
        """``(B, K, h, w)``: the logits of ``p(z_i | z_<i)`` at every position, from ``codes`` ``(B, h, w)``."""
        v = h = self.embed(codes).permute(0, 3, 1, 2)  # (B, F, h, w)
        for layer in self.layers:
            v, h = layer(v, h, None)
        return self.head(h)

    def log_prob(self, codes: Tensor) -> Tensor:
        """Exact ``log p(z)`` per map, in nats ``(B,)``."""
        logp = F.log_softmax(self.logits(codes).float(), dim=1)  # (B, K, h, w)
        return logp.gather(1, codes[:, None]).flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, device: torch.device | str = "cpu") -> Tensor:
        """``n`` maps ``(n, h, w)`` by ancestral sampling, one pass per position."""
        h, w = self.code_shape
        codes = torch.zeros(n, h, w, dtype=torch.long, device=device)
        for i in range(h):
            for j in range(w):
                probs = F.softmax(self.logits(codes[:, : i + 1])[:, :, i, j].float(), dim=1)  # (n, K)
                codes[:, i, j] = torch.multinomial(probs, 1).squeeze(1)
        return codes
