"""DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
Probabilistic Models", Algorithm 2) on a discrete-time variance-preserving diffusion.

With ``α_t = √ᾱ_t``, ``σ_t = √(1-ᾱ_t)`` and the log-SNR ``λ_t = log(α_t/σ_t)``, the probability-flow ODE in
data prediction ``x_θ(x, t)`` (the model's ``x̂_0``) is solved exactly in its linear part; one step from
``s`` to ``t``, ``h = λ_t - λ_s``::

    x_t = (σ_t/σ_s) x_s - α_t (e^{-h} - 1) D                   D = x_θ(x_s, s)          (1st order, = DDIM η=0)
    D   = (1 + 1/(2r)) x_θ(x_s, s) - 1/(2r) x_θ(x_{s'}, s')     r = h_prev / h           (2M: the previous step's
                                                                                          model output reused)

so each step costs one model call. The first step is 1st order (no previous output yet).

Discrete time (the paper's handling of discrete-time models, DPM-Solver's ``NoiseScheduleVP('discrete')``):
the timestep index ``t`` is made continuous on ``[0, T-1]`` and ``log α_t`` is interpolated piecewise-linearly
between the integer indices; ``σ_t = √(1 - α_t²)``. The network is called at real-valued ``t`` (its
sinusoidal embedding takes real timesteps); at integer ``t`` everything equals the discrete model.

Spacings (the ``steps`` times, from ``T-1`` down to ``0``):

* ``time``: DDIM's grid, :func:`~genlight.nn.diffusion.ddim_timesteps` (integer timesteps, evenly spread);
* ``logsnr``: uniform in ``λ`` between ``λ_{T-1}`` and ``λ_0`` (the paper's default), real-valued times.

The last model call is at ``t = 0``; its data prediction is the sample (the final step to ``σ = 0``, where
``h = ∞``, is 1st order: ``x = D``), so ``steps`` model calls in all, as DDIM with ``steps`` steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from genlight.nn.diffusion import ddim_timesteps

__all__ = ["SPACINGS", "dpm_solver_pp_2m", "interp_log_alpha", "log_snr", "solver_times", "time_of_log_alpha"]

#: the time-step spacings :func:`solver_times` knows
SPACINGS = ("time", "logsnr")


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear ``f(x)`` through the points ``(xp, fp)`` (``xp`` increasing), extrapolated linearly
    beyond the ends (as DPM-Solver's ``interpolate_fn``)."""
    i = (torch.searchsorted(xp, x.contiguous()) - 1).clamp(0, len(xp) - 2)
    x0, x1, f0, f1 = xp[i], xp[i + 1], fp[i], fp[i + 1]
    return f0 + (x - x0) * (f1 - f0) / (x1 - x0)


def interp_log_alpha(t: Tensor, log_alphas: Tensor) -> Tensor:
    """``log α_t`` at real-valued timestep indices ``t`` (float64), piecewise-linear between the
    integer indices' ``log_alphas = ½ log ᾱ`` ``(T,)``."""
    if len(log_alphas) == 1:
        return log_alphas.expand_as(t).to(torch.float64)
    grid = torch.arange(len(log_alphas), dtype=torch.float64)
    return _interp(t.to(torch.float64), grid, log_alphas.to(torch.float64))


def time_of_log_alpha(log_alpha: Tensor, log_alphas: Tensor) -> Tensor:
    """The inverse of :func:`interp_log_alpha` (``log α`` decreases with ``t``): real timestep indices."""
    grid = torch.arange(len(log_alphas), dtype=torch.float64)
    return _interp(log_alpha.to(torch.float64), log_alphas.to(torch.float64).flip(0), grid.flip(0))


def log_snr(log_alpha: Tensor) -> Tensor:
    """``λ = log α - log σ`` with ``σ = √(1 - α²)``."""
    return log_alpha - 0.5 * torch.log(-torch.expm1(2.0 * log_alpha))


def solver_times(log_alphas: Tensor, steps: int, spacing: str = "logsnr") -> Tensor:
    """``steps`` descending real timestep indices from ``T-1`` to ``0`` (float64, ``(steps,)``), spaced by
    ``spacing`` (module docstring); one step: ``[T-1]``."""
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; choose {' or '.join(SPACINGS)}")
    T = len(log_alphas)
    if spacing == "time" or steps <= 1 or T == 1:
        return ddim_timesteps(T, steps).to(torch.float64)
    ends = log_snr(log_alphas.to(torch.float64)[[T - 1, 0]])
    lam = torch.linspace(float(ends[0]), float(ends[1]), steps, dtype=torch.float64)
    log_alpha = -0.5 * torch.log1p(torch.exp(-2.0 * lam))  # α² = sigmoid(2λ)
    times = time_of_log_alpha(log_alpha, log_alphas).clamp(0.0, T - 1.0)
    times[0], times[-1] = T - 1.0, 0.0  # exactly the ends
    return times


def dpm_solver_pp_2m(
    x: Tensor, denoise: Callable[[Tensor, float], Tensor], times: Tensor, log_alphas: Tensor
) -> Tensor:
    """Solve the probability-flow ODE from ``x`` at ``times[0]`` down to ``times[-1]`` with DPM-Solver++(2M),
    then return the data prediction there (the module docstring). ``denoise(x, t)`` is ``x_θ(x, t)`` at the
    real timestep ``t`` (guided, clipped, ... as the caller wants); one call per entry of ``times``."""
    log_alpha = interp_log_alpha(times, log_alphas)  # (S,) float64
    alpha = log_alpha.exp()
    sigma = (-torch.expm1(2.0 * log_alpha)).sqrt()
    lam = log_alpha - sigma.log()
    prev_d: Tensor | None = None
    h_prev = 0.0
    for i in range(len(times) - 1):
        d = denoise(x, float(times[i]))
        h = float(lam[i + 1] - lam[i])
        if prev_d is None:
            update = d
        else:
            r = h_prev / h
            update = (1.0 + 0.5 / r) * d - (0.5 / r) * prev_d
        x = float(sigma[i + 1] / sigma[i]) * x - float(alpha[i + 1] * torch.expm1(torch.tensor(-h))) * update
        prev_d, h_prev = d, h
    return denoise(x, float(times[-1]))
