"""Discretised logistic probabilities of ``L`` levels on the grid ``k / (L-1)`` (Salimans et al. 2017,
PixelCNN++ eq. 2), pure functions shared by :class:`~genlight.nn.likelihoods.DiscretizedLogistic` and
:class:`~genlight.nn.logistic_mixture.LogisticMixture`.

Bin edges ``e_k = (k - 1/2) / (L-1)``; the outer bins are open, ``(-inf, e_1]`` and ``[e_{L-1}, inf)``,
so the probabilities of the ``L`` levels sum to one for every location and scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LOG_SCALE_RANGE", "log_sigmoid_difference", "logistic_mixture_log_prob_at", "logistic_mixture_log_probs"]

#: log-scales are clamped to this range: ``exp(-log_scale)`` stays a normal float in float32
LOG_SCALE_RANGE = (-7.0, 7.0)


def log_sigmoid_difference(a: Tensor, b: Tensor, gap: Tensor | None = None) -> Tensor:
    """``log(sigma(b) - sigma(a))`` for ``b > a``, exact in both tails and for thin bins.

    Uses ``sigma(b) - sigma(a) = sigma(b) sigma(-a) (1 - exp(a - b))``: no difference of nearly equal
    numbers is taken. ``gap = b - a`` may be passed when it is known more accurately than the
    difference of ``a`` and ``b`` (a bin's width times the inverse scale)."""
    gap = b - a if gap is None else gap
    return F.logsigmoid(b) + F.logsigmoid(-a) + torch.log(-torch.expm1(-gap))


def logistic_mixture_log_probs(params: Tensor, num_levels: int) -> Tensor:
    """``(..., 3M)`` parameters -> ``(..., L)`` log-probabilities of the levels.

    The outer bins are open (``P(0) = sigma(z_1)``, ``P(L-1) = 1 - sigma(z_{L-1})``), so the ``L``
    probabilities sum to one for every parameter value; log-scales are clamped to
    :data:`LOG_SCALE_RANGE`."""
    params = params if params.dtype == torch.float64 else params.float()
    logits, mean, log_scale = params.chunk(3, dim=-1)  # (..., M)
    inv_s = torch.exp(-log_scale.clamp(*LOG_SCALE_RANGE)).unsqueeze(-1)  # (..., M, 1)
    k = torch.arange(1, num_levels, device=params.device, dtype=params.dtype)
    z = ((k - 0.5) / (num_levels - 1) - mean.unsqueeze(-1)) * inv_s  # the L-1 inner edges, (..., M, L-1)
    first = F.logsigmoid(z[..., :1])  # (-inf, e_1]
    last = F.logsigmoid(-z[..., -1:])  # [e_{L-1}, inf)
    middle = log_sigmoid_difference(z[..., :-1], z[..., 1:], inv_s / (num_levels - 1))  # (..., M, L-2)
    per_component = torch.cat([first, middle, last], dim=-1)  # (..., M, L)
    return torch.logsumexp(F.log_softmax(logits, -1).unsqueeze(-1) + per_component, dim=-2)


def logistic_mixture_log_prob_at(params: Tensor, levels: Tensor, num_levels: int) -> Tensor:
    """``(..., 3M)`` parameters and integer ``levels`` ``(...)`` -> ``(...)``: the log-probability of each
    observed level only, equal to ``logistic_mixture_log_probs(params, L).gather(-1, levels)`` at ``1/L``
    of its cost (no ``(..., M, L)`` tensor: at 256 levels the full table dominates a training step)."""
    params = params if params.dtype == torch.float64 else params.float()
    logits, mean, log_scale = params.chunk(3, dim=-1)  # (..., M)
    inv_s = torch.exp(-log_scale.clamp(*LOG_SCALE_RANGE))
    k = levels.unsqueeze(-1).to(params.dtype)  # (..., 1)
    lower = ((k - 0.5) / (num_levels - 1) - mean) * inv_s  # the bin's edges, (..., M)
    upper = ((k + 0.5) / (num_levels - 1) - mean) * inv_s
    inner = log_sigmoid_difference(lower, upper, inv_s / (num_levels - 1))
    # the open outer bins; where() evaluates every branch, so each is kept finite
    per_component = torch.where(
        k == 0, F.logsigmoid(upper), torch.where(k == num_levels - 1, F.logsigmoid(-lower), inner)
    )
    return torch.logsumexp(F.log_softmax(logits, -1) + per_component, dim=-1)
