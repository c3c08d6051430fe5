"""The one learning-rate schedule (genlight.nn.schedules) gives each family the curve it had before.

The three reference functions are the families' own schedules as they were written before the helper
(DDPM: warm-up times a cosine over the whole run; flows: warm-up, then constant or a cosine over the
rest; PixelRNN: the flows' cosine with the warm-up capped at half the run), copied verbatim.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest

from genlight import create_model
from genlight.nn.schedules import warmup_cosine

STEPS = 400


# ------------------------------------------------------------------ the old formulas (references)
def old_ddpm(step: int, warmup_steps: int, lr_schedule: str, total: int) -> float:
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    if lr_schedule == "cosine":
        return warm * 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, total))))
    return warm


def old_flow(step: int, warmup_steps: int, lr_schedule: str, total: int) -> float:
    warmup, cosine = max(0, warmup_steps), lr_schedule == "cosine"
    if step < warmup:
        return (step + 1) / warmup
    if not cosine:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def old_pixelrnn(step: int, warmup_steps: int, total: int) -> float:
    warmup = min(warmup_steps, total // 2)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


# the families' defaults and example settings, and the edges: no warm-up, a warm-up longer than the run
WARMUPS = [0, 1, 50, 100, 500]
TOTALS = [1, 2, 37, 300, 1000]


@pytest.mark.parametrize("total", TOTALS)
@pytest.mark.parametrize("warmup", WARMUPS)
def test_the_helper_reproduces_every_old_curve(warmup, total):
    steps = range(STEPS + total)  # past the end: the factor stays at its last value
    for schedule in ("constant", "cosine"):
        cosine_total = total if schedule == "cosine" else None
        assert [warmup_cosine(s, warmup, cosine_total, decay_start=0) for s in steps] == [
            old_ddpm(s, warmup, schedule, total) for s in steps
        ], ("ddpm", schedule)
        assert [warmup_cosine(s, warmup, cosine_total) for s in steps] == [
            old_flow(s, warmup, schedule, total) for s in steps
        ], ("flow", schedule)
    capped = min(warmup, total // 2)
    assert [warmup_cosine(s, capped, total) for s in steps] == [old_pixelrnn(s, warmup, total) for s in steps]


def test_the_equation_at_its_landmarks():
    assert warmup_cosine(0, 4, None) == 0.25 and warmup_cosine(3, 4, None) == 1.0  # starts at 1/W, not 0
    assert warmup_cosine(0, 0, 10) == 1.0 and warmup_cosine(10, 0, 10) == 0.0  # cosine from 1 to 0
    assert warmup_cosine(4 + 5, 4, 14) == pytest.approx(0.5)  # halfway through the decay after the warm-up
    assert warmup_cosine(5, 4, 10, decay_start=0) == pytest.approx(0.5)  # halfway through the run
    assert warmup_cosine(3, -2, None) == 1.0  # a negative warm-up is no warm-up


FAMILIES = {
    "ddpm": dict(timesteps=10, channels=8),
    "realnvp": dict(num_scales=1, num_couplings=1, hidden=8, num_blocks=1),
    "pixelrnn_row": dict(hidden_channels=4, head_channels=4, num_layers=1),
}


def _factors(name: str, total: int, **hparams) -> list[float] | None:
    """The factors of the scheduler ``name``'s ``configure_optimizers`` returns for a run of ``total`` steps."""
    model = create_model(name, **FAMILIES[name], **hparams)
    model.trainer = pl.Trainer(max_steps=total, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    config = model.configure_optimizers()
    if not isinstance(config, dict):
        return None  # no scheduler: the optimiser's rate throughout
    curves = [[factor(s) for s in range(total + 10)] for factor in config["lr_scheduler"]["scheduler"].lr_lambdas]
    assert all(curve == curves[0] for curve in curves)  # one schedule for every parameter group
    return curves[0]


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("total", [7, 120])
def test_each_family_schedules_as_before(schedule, total):
    steps = range(total + 10)
    assert _factors("ddpm", total, lr_schedule=schedule, warmup_steps=20) == [
        old_ddpm(s, 20, schedule, total) for s in steps
    ]
    assert _factors("realnvp", total, lr_schedule=schedule, warmup_steps=20) == [
        old_flow(s, 20, schedule, total) for s in steps
    ]
    expected = [old_pixelrnn(s, 20, total) for s in steps] if schedule == "cosine" else None
    assert _factors("pixelrnn_row", total, lr_schedule=schedule, warmup_steps=20) == expected
