"""The monotonic rational-quadratic spline of neural spline flows (Durkan et al. 2019, §3.1; Gregory &
Delbourgo 1982), elementwise, with identity ("linear") tails.

On ``[-B, B]`` the spline has ``K`` bins with knots ``(x_k, y_k)`` and positive derivatives ``d_k`` at
the knots (``d_0 = d_K = 1`` to meet the identity tails); outside ``[-B, B]`` it is the identity. In
bin ``k`` with ``s_k = (y_{k+1} - y_k) / w_k``, ``xi = (x - x_k) / w_k``:

    y = y_k + h_k (s_k xi^2 + d_k xi (1 - xi)) / (s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi))
    dy/dx = s_k^2 (d_{k+1} xi^2 + 2 s_k xi (1 - xi) + d_k (1 - xi)^2) / (s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi))^2

The inverse solves a quadratic ``a xi^2 + b xi + c = 0`` for ``xi`` in [0, 1], with the root
``xi = 2c / (-b - sqrt(b^2 - 4ac))``, stable as ``a -> 0`` (Durkan et al. 2019, eq. 6 and App. A).
Widths and heights come from a softmax of unconstrained values with a minimum share, derivatives from
a softplus shifted so that zero parameters give ``d = 1`` (the spline is then the identity).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["rational_quadratic_spline", "spline_params_per_dim"]


def spline_params_per_dim(num_bins: int) -> int:
    """Unconstrained parameters per transformed value: ``K`` widths, ``K`` heights, ``K - 1`` inner derivatives."""
    return 3 * num_bins - 1


def _knots(raw: Tensor, bound: float, min_share: float) -> tuple[Tensor, Tensor]:
    """``(..., K)`` unconstrained -> knot positions ``(..., K + 1)`` from ``-B`` to ``B`` and bin sizes ``(..., K)``."""
    k = raw.shape[-1]
    share = min_share + (1 - min_share * k) * F.softmax(raw, dim=-1)
    knots = F.pad(torch.cumsum(share, dim=-1), (1, 0))  # (..., K + 1) from 0 to 1
    knots = 2 * bound * knots - bound
    knots = torch.cat(
        [torch.full_like(knots[..., :1], -bound), knots[..., 1:-1], torch.full_like(knots[..., :1], bound)], -1
    )
    return knots, knots[..., 1:] - knots[..., :-1]


def _gather(t: Tensor, idx: Tensor) -> Tensor:
    return t.gather(-1, idx).squeeze(-1)


def rational_quadratic_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    *,
    inverse: bool = False,
    bound: float = 3.0,
    min_bin_width: float = 1e-3,
    min_bin_height: float = 1e-3,
    min_derivative: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """Apply the spline (or its inverse) to every element of ``x``.

    Args:
        x: values, any shape ``S``.
        widths, heights: unconstrained ``(*S, K)``.
        derivatives: unconstrained ``(*S, K - 1)`` (inner knots).
        inverse: map ``y -> x`` instead.
        bound: ``B``; the identity outside ``[-B, B]``.

    Returns:
        ``(output, log|d output / d input|)``, both of shape ``S``, float32 (float64 for float64 ``x``).
    """
    num_bins = widths.shape[-1]
    if min_bin_width * num_bins > 1 or min_bin_height * num_bins > 1:
        raise ValueError(f"minimum bin width / height times {num_bins} bins must be at most 1")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    x = x.to(dtype)
    inside = (x >= -bound) & (x <= bound)
    xc = x.clamp(-bound, bound)  # spline branch on clamped values: no NaN reaches the gradient of the tails
    cw, w = _knots(widths.to(dtype), bound, min_bin_width)  # (*S, K + 1), (*S, K)
    ch, h = _knots(heights.to(dtype), bound, min_bin_height)
    shift = math.log(math.expm1(1 - min_derivative))  # softplus(0 + shift) + min = 1
    inner = min_derivative + F.softplus(derivatives.to(dtype) + shift)
    ones = torch.ones_like(inner[..., :1])
    d = torch.cat([ones, inner, ones], dim=-1)  # (*S, K + 1), 1 at both ends (identity tails)

    knots = (ch if inverse else cw).detach().clone()
    knots[..., -1] += 1e-6  # the last knot belongs to the last bin
    idx = (torch.sum(xc[..., None] >= knots, dim=-1) - 1).clamp(0, num_bins - 1)[..., None]  # (*S, 1)
    x_k, w_k, y_k, h_k = _gather(cw, idx), _gather(w, idx), _gather(ch, idx), _gather(h, idx)
    d_k, d_k1 = _gather(d, idx), _gather(d[..., 1:], idx)
    s_k = h_k / w_k
    twist = d_k1 + d_k - 2 * s_k

    if inverse:
        dy = xc - y_k
        a = h_k * (s_k - d_k) + dy * twist
        b = h_k * d_k - dy * twist
        c = -s_k * dy
        disc = (b.pow(2) - 4 * a * c).clamp_min(0.0)
        xi = (2 * c / (-b - disc.sqrt())).clamp(0.0, 1.0)
        out = xi * w_k + x_k
    else:
        xi = (xc - x_k) / w_k
    t = xi * (1 - xi)
    denom = s_k + twist * t
    log_deriv = (
        2 * torch.log(s_k) + torch.log(d_k1 * xi.pow(2) + 2 * s_k * t + d_k * (1 - xi).pow(2)) - 2 * torch.log(denom)
    )
    if not inverse:
        out = y_k + h_k * (s_k * xi.pow(2) + d_k * t) / denom
    logdet = -log_deriv if inverse else log_deriv
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))
