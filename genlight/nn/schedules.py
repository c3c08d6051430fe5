"""The learning-rate schedules the families share: linear warm-up, then constant or a cosine decay
(flows, PixelRNN, DDPM); and the linear decay per epoch of the image-to-image GANs (:func:`linear_decay`:
CycleGAN, StarGAN).

The factor multiplies the optimiser's base rate at optimiser step ``s`` (0-based), for ``W`` warm-up
steps, decay from step ``s0`` to the last step ``T``::

    f(s) = w(s) · c(s)
    w(s) = min(1, (s + 1) / W)        (1 when W = 0: no warm-up; the first step runs at 1/W, not 0)
    c(s) = 1/2 (1 + cos(π · min(1, max(0, s - s0) / max(1, T - s0))))      (1 when T is None)

``s0 = W`` (the default) decays over the steps after the warm-up (Loshchilov & Hutter 2017 with a
warm-up, as flows and PixelRNN use it); ``s0 = 0`` lays the cosine over the whole run, overlapping
the warm-up (as DDPM uses it). ``c`` reaches 0 at ``s = T`` and stays there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["linear_decay", "warmup_cosine", "warmup_cosine_scheduler", "warmup_then_schedule"]


def warmup_cosine(step: int, warmup_steps: int, total_steps: int | None, decay_start: int | None = None) -> float:
    """The factor ``f(step)`` above: ``warmup_steps`` ``W`` (negative counts as 0), ``total_steps`` ``T``
    (``None``: no decay, constant after the warm-up), ``decay_start`` ``s0`` (``None``: ``W``)."""
    warmup = max(0, warmup_steps)
    factor = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    if total_steps is None:
        return factor
    start = warmup if decay_start is None else decay_start
    progress = min(1.0, max(0, step - start) / max(1, total_steps - start))
    return factor * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int | None, decay_start: int | None = None
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` of :func:`warmup_cosine` (step it once per optimiser step: ``interval="step"``)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps, decay_start)
    )


def warmup_then_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, schedule: str, run_steps: Callable[[], float]
) -> dict[str, Any]:
    """Lightning's ``lr_scheduler`` entry: a linear warm-up over ``warmup_steps``, then ``constant``, or a
    ``cosine`` spanning the whole run (``run_steps()``, e.g. the Trainer's ``estimated_stepping_batches``, asked
    only for a cosine), overlapping the warm-up (``decay_start=0``); stepped once per optimiser step."""
    total: int | None = None  # constant after the warm-up
    if schedule == "cosine":
        steps = run_steps()
        if not math.isfinite(steps):
            raise ValueError("lr_schedule: cosine needs trainer.max_steps or max_epochs (the decay length)")
        total = int(steps)
    return {"scheduler": warmup_cosine_scheduler(optimizer, warmup_steps, total, decay_start=0), "interval": "step"}


def linear_decay(epoch: int, constant_epochs: int, decay_epochs: int) -> float:
    """The CycleGAN reference's ``linear`` LR factor after ``epoch`` finished epochs: 1 for
    ``constant_epochs`` epochs, then down by ``1 / (decay_epochs + 1)`` per epoch
    (``networks.get_scheduler``, epoch_count 1)."""
    if decay_epochs <= 0:
        return 1.0
    return max(0.0, 1.0 - max(0, epoch + 1 - constant_epochs) / float(decay_epochs + 1))
