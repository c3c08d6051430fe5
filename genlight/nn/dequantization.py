"""Dequantisation of images on an ``L``-level grid for continuous flows: uniform noise (Theis et al. 2016)
and Flow++'s variational dequantisation (Ho et al. 2019), each giving ``log q(u|x)`` so that
``log P(k) >= E_q[log p_Y((k + u) / L) - log q(u|x)] - D log L``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.functional import to_levels
from genlight.nn.coupling import AffineCoupling, ConvCouplingNet
from genlight.nn.flow_steps import _per_example, standard_normal_log_prob

__all__ = ["UniformDequantization", "VariationalDequantization"]


class UniformDequantization(nn.Module):
    """``y = (k + u) / L`` with ``u ~ U[0, 1)^D`` for images in [0, 1] on an ``L``-level grid (``k`` the
    level); ``log q(u|x) = 0``. ``log P(k) >= E_u[log p_Y(y)] - D log L`` (Theis et al. 2016)."""

    def __init__(self, num_levels: int) -> None:
        super().__init__()
        self.num_levels = num_levels

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (y in (0, 1), log q(u|x) per example)``."""
        k = to_levels(x, self.num_levels).float()
        y = (k + torch.rand_like(k)) / self.num_levels
        return y, y.new_zeros(y.shape[0])


class VariationalDequantization(nn.Module):
    """Flow++'s variational dequantisation (Ho et al. 2019, §3.1): ``u = sigmoid(f(eps; x))`` with
    ``eps ~ N(0, I)`` and ``f`` a conditional flow of checkerboard affine couplings whose s,t nets see
    features of ``x``; ``log q(u|x) = log N(eps) - log|det f| - sum log sigmoid'(.)``. Trained jointly,
    ``log P(k) >= E_q[log p_Y((k + u) / L) - log q(u|x)] - D log L``, tighter than uniform noise."""

    def __init__(
        self, image_shape: Sequence[int], num_levels: int, hidden: int = 32, num_couplings: int = 4, num_blocks: int = 1
    ) -> None:
        super().__init__()
        channels = int(image_shape[0])
        self.num_levels = num_levels
        self.context = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU()
        )

        def make_net(c_in: int, c_out: int) -> nn.Module:
            return ConvCouplingNet(c_in, c_out, hidden, num_blocks)

        self.couplings = nn.ModuleList(
            AffineCoupling(channels, make_net, "checkerboard", i % 2, "tanh", context_channels=hidden)
            for i in range(num_couplings)
        )

    def noise_to_u(self, eps: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """The conditional bijection ``eps -> u`` in (0, 1) given images ``x``: ``(u, log|du/deps|)``."""
        k = to_levels(x, self.num_levels).float()
        context = self.context(k / (self.num_levels - 1) - 0.5)
        logdet = eps.new_zeros(eps.shape[0], dtype=torch.float32)
        h = eps.float()
        for coupling in self.couplings:
            h, ld = coupling(h, context)
            logdet = logdet + ld
        return torch.sigmoid(h), logdet + _per_example(F.logsigmoid(h) + F.logsigmoid(-h))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (y = (k + u) / L, log q(u|x) per example)``."""
        eps = torch.randn(x.shape, device=x.device)
        u, logdet = self.noise_to_u(eps, x)
        k = to_levels(x, self.num_levels).float()
        return (k + u) / self.num_levels, standard_normal_log_prob(eps) - logdet
