"""Autoregressive flow steps on vectors ``(B, D)``: MAF's affine step (Papamakarios et al. 2017) and the
autoregressive rational-quadratic spline step (Durkan et al. 2019), each conditioned by a
:class:`~genlight.nn.made.MADE`; and :class:`Flatten`, which lets them run on images.

Direction: ``forward`` maps data to noise in one pass of the MADE (the density is fast), ``inverse``
takes ``D`` passes, one per dimension in the MADE's order (sampling is slow), as in MAF (§3.1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genlight.nn.flow_steps import FlowStep
from genlight.nn.made import MADE
from genlight.nn.splines import rational_quadratic_spline, spline_params_per_dim

__all__ = ["Flatten", "MaskedAffineAutoregressive", "MaskedSplineAutoregressive"]


class Flatten(FlowStep):
    """``(B, *shape) -> (B, D)``; volume-preserving."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.flatten(1), x.new_zeros(x.shape[0], dtype=torch.float32)

    def inverse(self, y: Tensor) -> Tensor:
        return y.reshape(y.shape[0], *self.shape)


class _MaskedAutoregressive(FlowStep):
    """A MADE-conditioned elementwise transform ``u_d = tau(x_d; theta_d(x_<d))``; subclasses give ``tau``."""

    def __init__(
        self, features: int, params_per_dim: int, hidden: int, num_layers: int, reverse: bool, dropout: float
    ) -> None:
        super().__init__()
        self.features = features
        self.net = MADE(features, hidden, num_layers, params_per_dim, reverse=reverse, dropout=dropout)

    def _transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.float()
        u, logdet = self._transform(x, self.net(x), inverse=False)
        return u, logdet.sum(1)

    def inverse(self, u: Tensor) -> Tensor:
        """``D`` passes: after pass ``i`` the dimensions of order ``<= i`` are exact (and stay so)."""
        u = u.float()
        x = torch.zeros_like(u)
        for _ in range(self.features):
            x = self._transform(u, self.net(x), inverse=True)[0]
        return x


class MaskedAffineAutoregressive(_MaskedAutoregressive):
    """MAF's step (Papamakarios et al. 2017, eq. 3-5): ``x_d = u_d exp(alpha_d) + mu_d`` with
    ``(mu_d, alpha_d)`` from ``x_<d``; forward ``u_d = (x_d - mu_d) exp(-alpha_d)``,
    ``log|det du/dx| = -sum alpha_d``. ``alpha`` is soft-limited to ``(-5, 5)`` by ``5 tanh(./5)``."""

    alpha_limit = 5.0

    def __init__(
        self, features: int, hidden: int, num_layers: int = 2, reverse: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__(features, 2, hidden, num_layers, reverse, dropout)

    def _transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        params = params.float()
        mu, alpha = params[:, 0], self.alpha_limit * torch.tanh(params[:, 1] / self.alpha_limit)  # (B, D) each
        if inverse:
            return x * alpha.exp() + mu, alpha
        return (x - mu) * (-alpha).exp(), -alpha


class MaskedSplineAutoregressive(_MaskedAutoregressive):
    """The autoregressive neural spline flow's step (Durkan et al. 2019, §3.2): ``u_d = g(x_d; theta_d(x_<d))``
    with ``g`` a rational-quadratic spline of ``num_bins`` bins on ``[-bound, bound]``, identity outside
    (:func:`~genlight.nn.splines.rational_quadratic_spline`)."""

    def __init__(
        self,
        features: int,
        hidden: int,
        num_layers: int = 2,
        reverse: bool = False,
        num_bins: int = 8,
        bound: float = 3.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(features, spline_params_per_dim(num_bins), hidden, num_layers, reverse, dropout)
        self.num_bins, self.bound = num_bins, float(bound)
        self.scale = 1.0 / math.sqrt(hidden)  # unnormalised widths / heights scaled down (as nflows)

    def _transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        k = self.num_bins
        p = params.float().transpose(1, 2)  # (B, P, D) -> (B, D, P)
        return rational_quadratic_spline(
            x,
            p[..., :k] * self.scale,
            p[..., k : 2 * k] * self.scale,
            p[..., 2 * k :],
            inverse=inverse,
            bound=self.bound,
        )
