"""Fixed-step ODE solvers and divergences for continuous flows (flow matching, Lipman et al. 2023).

:func:`solve` integrates ``dx/dt = f(x, t)`` with Euler (1st order), the explicit midpoint rule or
Heun's method (both 2nd order), optionally accumulating a scalar per example along the way, e.g. the
divergence of the instantaneous change of variables (Chen et al. 2018, thm. 1)::

    d log p_t(x(t)) / dt = -tr(∂v/∂x)(x(t), t).

:func:`divergence` computes that trace exactly (one backward pass per dimension: 2-D points) or by
Hutchinson's estimator ``E_ε[εᵀ (∂v/∂x) ε] = tr(∂v/∂x)`` for ``E[ε εᵀ] = I`` (one vector-Jacobian
product; FFJORD, Grathwohl et al. 2019).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

__all__ = ["ODE_METHODS", "Derivative", "divergence", "evaluations", "solve"]

Method = Literal["euler", "midpoint", "heun"]
#: the solvers :func:`solve` knows, and the network evaluations each spends per step
ODE_METHODS: dict[str, int] = {"euler": 1, "midpoint": 2, "heun": 2}
#: ``f(x, t, accumulate) -> (dx/dt, da/dt or None)``: ``t`` a float, ``da/dt`` per example ``(B,)``,
#: asked for only when ``accumulate`` is true
Derivative = Callable[[Tensor, float, bool], tuple[Tensor, Tensor | None]]


def evaluations(method: str, steps: int) -> int:
    """How many times :func:`solve` calls ``f`` for ``steps`` steps of ``method`` (NFE)."""
    return ODE_METHODS[method] * steps


def solve(
    f: Derivative, x: Tensor, t0: float, t1: float, steps: int, method: str = "heun", accumulate: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Integrate ``dx/dt = f(x, t)`` from ``t0`` to ``t1`` (either direction) in ``steps`` equal steps.

    ``euler``: ``x += h f(x, t)``; ``midpoint``: ``x += h f(x + h/2 f(x, t), t + h/2)``; ``heun``:
    ``x += h/2 (k1 + f(x + h k1, t + h))``. With ``accumulate``, ``a = ∫ da/dt dt`` by the same
    quadrature (per example, float64) is returned beside ``x(t1)``; else ``None``."""
    if method not in ODE_METHODS:
        raise ValueError(f"unknown ODE method {method!r}; choose one of {', '.join(ODE_METHODS)}")
    h = (t1 - t0) / steps
    total = torch.zeros(len(x), dtype=torch.float64, device=x.device) if accumulate else None
    for i in range(steps):
        t = t0 + i * h
        if method == "euler":
            k1, a1 = f(x, t, accumulate)
            x = x + h * k1
            rate = a1
        elif method == "midpoint":
            k1, _ = f(x, t, False)
            k2, rate = f(x + 0.5 * h * k1, t + 0.5 * h, accumulate)
            x = x + h * k2
        else:
            k1, a1 = f(x, t, accumulate)
            k2, a2 = f(x + h * k1, t + h, accumulate)
            x = x + 0.5 * h * (k1 + k2)
            rate = 0.5 * (a1 + a2) if accumulate else None  # type: ignore[operator]
        if total is not None:
            total = total + h * rate.double()  # type: ignore[union-attr]
    return x, total


def divergence(
    v: Callable[[Tensor], Tensor], x: Tensor, method: Literal["exact", "hutchinson"], noise: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``(v(x), tr(∂v/∂x))`` per example; ``x`` ``(B, *shape)`` -> ``(B, *shape)``, ``(B,)``.

    ``exact``: the diagonal of the Jacobian, one backward pass per dimension. ``hutchinson``:
    ``εᵀ (∂v/∂x) ε`` for the given ``noise`` ``ε`` (shape of ``x``; Rademacher or standard normal),
    an unbiased estimate of the trace. Where gradients are on (the caller's mode), both results keep
    their graph (double backward: the trace is differentiable in ``v``'s parameters); under
    ``no_grad`` or ``inference_mode`` they are detached, and gradients are opened here just for ``∂v/∂x``."""
    keep = torch.is_grad_enabled()
    with torch.inference_mode(False), torch.enable_grad():
        z = x if keep and x.requires_grad else x.detach().clone().requires_grad_(True)
        out = v(z)
        if method == "hutchinson":
            if noise is None:
                raise ValueError("divergence(..., 'hutchinson') needs the noise vectors")
            (g,) = torch.autograd.grad(out, z, noise.clone(), create_graph=keep)  # εᵀ J, (B, *shape)
            div = (g * noise).flatten(1).sum(1)  # (B,)
        elif method == "exact":
            flat = out.flatten(1)  # (B, D)
            div = torch.zeros(len(z), dtype=out.dtype, device=z.device)
            for i in range(flat.shape[1]):
                last = i + 1 == flat.shape[1]
                (g,) = torch.autograd.grad(flat[:, i].sum(), z, retain_graph=keep or not last, create_graph=keep)
                div = div + g.flatten(1)[:, i]
        else:
            raise ValueError(f"unknown divergence method {method!r}; choose exact or hutchinson")
    return (out, div) if keep else (out.detach(), div.detach())
