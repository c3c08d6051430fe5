"""Exponential moving average of weights (Polyak & Juditsky 1992; the EMA of DDPM, GAN and Glow recipes).

After every optimizer step, ``w_ema <- d * w_ema + (1 - d) * w`` over the parameters and floating
buffers of the model's ``ema_target`` sub-module (the generator of a GAN; the whole model by default),
with ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates when ``warmup`` is on (TensorFlow's
``ExponentialMovingAverage(num_updates=...)``), so short runs are not dominated by the initial weights.

Where the averaged weights are used, whatever the callback order:

* validation and test loops: swapped in at ``on_validation_start`` and out at ``on_validation_end``;
* every genlight callback that samples (grids, FID, reconstructions, interpolations): its
  :func:`~genlight.callbacks.base.evaluating` context swaps them in for the duration of the draw;
* checkpoints: ``state_dict`` holds the averaged weights (so ``genlight test``, ``genlight sample`` and
  :func:`~genlight.load_model` use them) and ``checkpoint["genlight_ema"]["live_state_dict"]`` the
  training weights; resuming a fit restores both, ``load_model(path, ema=False)`` returns the live ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from genlight._compat import attached_trainer
from genlight.identity import EMA_KEY
from genlight.ranges import Fraction, NonNegativeInt, PositiveInt, check_arguments

__all__ = ["EMA", "find_ema"]


class EMA(pl.Callback):
    """Keeps an exponential moving average of a model's weights (see the module docstring).

    Args:
        decay: averaging decay per update; ``None`` takes the family's ``ema_decay`` (0 = off).
        target: attribute name of the averaged sub-module; ``None`` takes the family's ``ema_target``
            (itself ``None`` = the whole model).
        warmup: use ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates.
        update_every_n_steps: update after every n-th optimizer step (``trainer.global_step``).
        start_step: no update before this global step (the average tracks the weights exactly until then).
    """

    def __init__(
        self,
        decay: Fraction | None = None,
        target: str | None = None,
        warmup: bool = True,
        update_every_n_steps: PositiveInt = 1,
        start_step: NonNegativeInt = 0,
    ) -> None:
        check_arguments(self, locals())
        self.decay_arg = decay
        self.target_arg = target
        self.warmup = warmup
        self.update_every_n_steps = update_every_n_steps
        self.start_step = start_step
        self.decay = 0.0
        self.target: str | None = None
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {}  # full state_dict keys -> averaged values
        self.swapped = False
        self._last_step = -1

    # ------------------------------------------------------------------ set-up
    @property
    def active(self) -> bool:
        return self.decay > 0.0 and bool(self.shadow)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.decay = float(self.decay_arg if self.decay_arg is not None else getattr(pl_module, "ema_decay", 0.0))
        self.target = self.target_arg if self.target_arg is not None else getattr(pl_module, "ema_target", None)
        if self.decay > 0.0 and stage == "fit":
            self._ensure(pl_module)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.decay > 0.0:
            self._ensure(pl_module)  # the strategy has moved the model to its device by now

    def _ensure(self, pl_module: pl.LightningModule) -> None:
        """Create the average (a copy of the current weights) or move it to the model's device."""
        if self.shadow:
            live = self._live(pl_module)
            for k, v in self.shadow.items():
                if v.device != live[k].device:
                    self.shadow[k] = v.to(live[k].device)
            return
        if self.target:
            try:
                pl_module.get_submodule(self.target)
            except AttributeError as err:
                raise ValueError(
                    f"EMA target {self.target!r} is not a sub-module of {type(pl_module).__name__}; "
                    f"use one of {[n for n, _ in pl_module.named_children()]} or None for the whole model"
                ) from err
        self.shadow = {k: v.detach().clone() for k, v in self._live(pl_module).items()}
        rank_zero_info(f"EMA: decay {self.decay} over {self.target or 'the whole model'} ({len(self.shadow)} tensors)")

    def _live(self, pl_module: torch.nn.Module) -> dict[str, Tensor]:
        """The averaged entries of the model's state: ``{full key: tensor}`` (views, not copies)."""
        state = pl_module.state_dict(keep_vars=False)
        prefix = f"{self.target}." if self.target else ""
        return {k: v for k, v in state.items() if k.startswith(prefix) and isinstance(v, Tensor)}  # not extra states

    # ------------------------------------------------------------------ averaging
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if not self.active or step == self._last_step or step < self.start_step or step % self.update_every_n_steps:
            return
        self._last_step = step
        self.update(pl_module)

    @torch.no_grad()
    def update(self, pl_module: pl.LightningModule) -> None:
        """One averaging step towards the model's current (live) weights."""
        if self.swapped:
            raise RuntimeError("EMA.update called while the averaged weights are swapped in")
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates)) if self.warmup else self.decay
        live = self._live(pl_module)
        floats = [k for k, v in self.shadow.items() if v.is_floating_point()]
        if floats:
            torch._foreach_lerp_([self.shadow[k] for k in floats], [live[k].detach() for k in floats], 1.0 - d)
        for k, v in self.shadow.items():
            if not v.is_floating_point():  # counters such as BatchNorm's num_batches_tracked
                v.copy_(live[k])
        self.num_updates += 1

    # ------------------------------------------------------------------ using the average
    @torch.no_grad()
    def swap(self, pl_module: torch.nn.Module) -> None:
        """Exchange the live and the averaged weights in place (call twice to undo)."""
        live = self._live(pl_module)
        for k, avg in self.shadow.items():
            tmp = live[k].detach().clone()
            live[k].copy_(avg)
            avg.copy_(tmp)
        self.swapped = not self.swapped

    @contextmanager
    def averaged(self, pl_module: torch.nn.Module) -> Iterator[None]:
        """The averaged weights in the model inside the block (re-entrant; a no-op when EMA is off)."""
        if not self.active or self.swapped:
            yield
            return
        self.swap(pl_module)
        try:
            yield
        finally:
            self.swap(pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.active and not self.swapped:
            self.swap(pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.active and self.swapped:
            self.swap(pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``test`` scores the averaged weights, as validation, sample grids and FID do."""
        self.on_validation_start(trainer, pl_module)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.on_validation_end(trainer, pl_module)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.on_validation_end(trainer, pl_module)  # never leave the averaged weights in the live model

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if not self.active:
            return
        current = self._live(pl_module)
        averaged, live = (current, self.shadow) if self.swapped else (self.shadow, current)
        checkpoint["state_dict"] = {**checkpoint["state_dict"], **{k: v.detach().clone() for k, v in averaged.items()}}
        checkpoint[EMA_KEY] = {
            "live_state_dict": {k: v.detach().clone() for k, v in live.items()},
            "num_updates": self.num_updates,
            "decay": self.decay,
            "target": self.target,
            "last_step": self._last_step,
        }

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Resume: the model was loaded from ``state_dict`` (the average); restore the live weights into
        the model and the average into this callback."""
        saved = checkpoint.get(EMA_KEY)
        if not saved or self.decay <= 0.0:
            return
        self._ensure(pl_module)
        if saved.get("target") != self.target:
            raise ValueError(f"checkpoint's EMA averages {saved.get('target')!r}, this run {self.target!r}")
        with torch.no_grad():
            current = self._live(pl_module)
            for k, avg in self.shadow.items():
                avg.copy_(current[k])  # the average, as loaded from state_dict
            pl_module.load_state_dict({**pl_module.state_dict(), **saved["live_state_dict"]})
        self.swapped = False
        self.num_updates = int(saved["num_updates"])
        self._last_step = int(saved.get("last_step", -1))


def find_ema(pl_module: torch.nn.Module) -> EMA | None:
    """The active :class:`EMA` callback of the trainer ``pl_module`` is attached to, if any."""
    trainer = attached_trainer(pl_module)
    for callback in getattr(trainer, "callbacks", None) or []:
        if isinstance(callback, EMA) and callback.active:
            return callback
    return None
