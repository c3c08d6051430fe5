"""Gaussian diffusion pieces (Ho et al. 2020; Nichol & Dhariwal 2021): noise schedules, Gaussian KL,
and the discretised Gaussian decoder ``p(x_0 | x_1)`` over pixel levels. Pure functions, float64
where precision matters (schedules, KLs of nearly equal Gaussians)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["beta_schedule", "ddim_timesteps", "discretized_gaussian_log_prob", "normal_kl"]


def beta_schedule(kind: str, timesteps: int) -> Tensor:
    """``β_1..β_T`` (float64, shape ``(T,)``).

    * ``linear``: from ``1e-4`` to ``0.02`` at ``T = 1000`` (Ho et al.), both ends scaled by ``1000 / T``
      so that other ``T`` destroy the signal equally (Nichol & Dhariwal 2021, ``get_named_beta_schedule``).
    * ``cosine``: ``ᾱ(t) = cos²((t/T + s)/(1 + s) · π/2)``, ``s = 0.008``, ``β_t = 1 - ᾱ_t/ᾱ_{t-1}``
      clipped at 0.999 (Nichol & Dhariwal 2021, eq. 17).
    """
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    if kind == "linear":
        scale = 1000.0 / timesteps
        return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), timesteps, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        alpha_bar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown beta schedule {kind!r}; choose linear or cosine")


def normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """Elementwise ``KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2)))`` in nats."""
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def _log_ndtr(x: Tensor) -> Tensor:
    return torch.special.log_ndtr(x)


def discretized_gaussian_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor, num_levels: int) -> Tensor:
    """Elementwise ``log P(x)`` of levels ``x`` in ``[-1, 1]`` (grid ``-1 + 2k/(L-1)``) under
    ``N(mean, exp(log_scale)²)`` integrated over each level's bin, the outer bins extended to ±∞
    (Ho et al. 2020, eq. 13). Computed with ``log_ndtr`` so tiny scales stay finite."""
    half = 1.0 / (num_levels - 1)  # half a bin in [-1, 1] units
    inv = torch.exp(-log_scale)
    upper = (x + half - mean) * inv
    lower = (x - half - mean) * inv
    log_cdf_upper = _log_ndtr(upper)  # log Φ(upper): the lowest level's bin (-inf, x + h]
    log_sf_lower = _log_ndtr(-lower)  # log (1 - Φ(lower)): the highest level's bin [x - h, inf)
    # log(Φ(u) - Φ(l)) stably: on whichever side of the mean the bin lies, use the thinner tail
    right = lower > 0  # the whole bin right of the mean: 1-Φ(l) - (1-Φ(u))
    a = torch.where(right, _log_ndtr(-lower), _log_ndtr(upper))
    b = torch.where(right, _log_ndtr(-upper), _log_ndtr(lower))
    log_mid = a + torch.log1p(-torch.exp((b - a).clamp(max=-1e-12)))
    top, bottom = x > 1.0 - half, x < -1.0 + half
    return torch.where(bottom, log_cdf_upper, torch.where(top, log_sf_lower, log_mid))


def ddim_timesteps(timesteps: int, steps: int) -> Tensor:
    """``steps`` distinct 0-indexed timesteps, evenly spread over ``0 .. T-1`` and including both ends,
    descending (``steps = T`` gives every timestep, so DDIM with ``η = 1`` is DDPM's ancestral chain)."""
    steps = max(1, min(steps, timesteps))
    if steps == 1:
        return torch.tensor([timesteps - 1])
    return torch.linspace(0, timesteps - 1, steps, dtype=torch.float64).round().long().flip(0)
