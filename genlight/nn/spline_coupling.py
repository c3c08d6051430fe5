"""The rational-quadratic spline coupling layer of neural spline flows (Durkan et al. 2019, §3.1): half
the input ``x_a`` (a channel half, or a checkerboard of pixels) passes unchanged and sets the
parameters of a monotonic spline applied to each element of the rest, ``y_b = g(x_b; theta(x_a))``;
``log|det| = sum log g'(x_b)`` (:func:`~genlight.nn.splines.rational_quadratic_spline`)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from genlight.nn.coupling import checkerboard_mask
from genlight.nn.flow_steps import FlowStep, NetFactory, _per_example
from genlight.nn.splines import rational_quadratic_spline, spline_params_per_dim

__all__ = ["SplineCoupling"]


class SplineCoupling(FlowStep):
    """Spline coupling on images ``(B, C, H, W)`` (``channel`` or ``checkerboard`` mask) or vectors
    ``(B, D)`` (``channel``: the first / second half by ``parity``).

    ``make_net(in_channels, out_channels)`` builds the conditioner (as for
    :class:`~genlight.nn.coupling.AffineCoupling`); it returns ``3K - 1`` parameters per transformed
    value. Zero parameters give the identity (uniform bins, unit derivatives)."""

    def __init__(
        self,
        channels: int,
        make_net: NetFactory,
        mask: Literal["checkerboard", "channel"] = "channel",
        parity: int = 0,
        num_bins: int = 8,
        bound: float = 3.0,
    ) -> None:
        super().__init__()
        if mask == "channel" and channels < 2:
            raise ValueError(f"a channel coupling needs at least 2 channels, got {channels}; use a checkerboard mask")
        if mask not in ("channel", "checkerboard"):
            raise ValueError(f"mask must be 'channel' or 'checkerboard', got {mask!r}")
        self.mask, self.parity, self.num_bins, self.bound = mask, parity % 2, num_bins, float(bound)
        self.params_per_value = spline_params_per_dim(num_bins)
        if mask == "channel":
            first = channels // 2
            self.sizes = [first, channels - first]
            c_in, c_out = self.sizes[self.parity], self.sizes[1 - self.parity]
        else:
            c_in, c_out = channels + 1, channels  # masked image + the mask itself
        self.out_channels = c_out
        self.net = make_net(c_in, c_out * self.params_per_value)

    def _spline(self, x_b: Tensor, h: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        k = self.num_bins
        b = h.shape[0]
        p = h.float().view(b, self.out_channels, self.params_per_value, *h.shape[2:]).movedim(2, -1)  # (B, C, ..., P)
        return rational_quadratic_spline(
            x_b, p[..., :k], p[..., k : 2 * k], p[..., 2 * k :], inverse=inverse, bound=self.bound
        )

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        first, rest = x.split(self.sizes, dim=1)
        return (first, rest) if self.parity == 0 else (rest, first)

    def _join(self, x_a: Tensor, x_b: Tensor) -> Tensor:
        return torch.cat([x_a, x_b] if self.parity == 0 else [x_b, x_a], dim=1)

    def _couple(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        x = x.float()
        if self.mask == "checkerboard":
            keep = checkerboard_mask(x.shape[2], x.shape[3], self.parity, x.device)  # (1, 1, H, W)
            h = self.net(torch.cat([x * keep, keep.expand(x.shape[0], 1, -1, -1)], 1))
            y, ld = self._spline(x, h, inverse)
            changed = keep == 0
            return torch.where(changed, y, x), _per_example(ld * changed)
        x_a, x_b = self._split(x)
        y_b, ld = self._spline(x_b, self.net(x_a), inverse)
        return self._join(x_a, y_b), _per_example(ld)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(x, inverse=False)

    def inverse(self, y: Tensor) -> Tensor:
        return self._couple(y, inverse=True)[0]
