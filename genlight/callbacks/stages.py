"""Sample grids of a model that grows through resolution stages (progressive growing), one per stage."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info

from genlight.callbacks.base import evaluating
from genlight.callbacks.image_logging import log_images
from genlight.ranges import PositiveInt, Seed, check_arguments
from genlight.types import GrowingSampler

__all__ = ["StageSamples"]


class StageSamples(pl.Callback):
    """At the end of every stage of a :class:`~genlight.types.GrowingSampler` (before the first step of the
    next stage's fade-in) and at the end of training, draw ``num_samples`` seeded samples (EMA weights when
    an EMA callback is active) and log them as one grid named ``samples_stage{k}_{R}x{R}`` (a PNG in the
    run folder's ``images/`` and every attached logger; ``_alpha{a}`` is appended when training ends in
    the middle of a fade). The samples are at the model's data size (a low stage's images upsampled by
    the model). Models that do not grow are skipped with one log line.
    """

    def __init__(self, num_samples: PositiveInt = 64, nrow: PositiveInt | None = None, seed: Seed = 0) -> None:
        check_arguments(self, locals())
        self.num_samples, self.nrow, self.seed = num_samples, nrow, seed
        #: the keys logged so far, in order
        self.logged: list[str] = []
        self._last_epoch = 0  # the epoch of the last training step: a grid drawn after it carries its number

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, GrowingSampler):
            rank_zero_info(f"StageSamples: {type(pl_module).__name__} does not grow (no growth(step)); skipped")

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not isinstance(pl_module, GrowingSampler) or pl_module.steps_taken == 0:
            return
        done, upcoming = pl_module.growth()[0], pl_module.growth(pl_module.steps_taken)[0]
        if upcoming != done:
            self.draw(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._last_epoch = trainer.current_epoch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if isinstance(pl_module, GrowingSampler) and pl_module.steps_taken > 0:
            self.draw(trainer, pl_module)

    def draw(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """Log the grid of the stage and alpha of the last training step."""
        stage, alpha = pl_module.growth()
        size = 4 * 2**stage
        key = f"samples_stage{stage}_{size}x{size}" + (f"_alpha{alpha:.2f}" if alpha < 1.0 else "")
        with evaluating(pl_module, seed=self.seed):
            images = pl_module.sample(self.num_samples)
        log_images(
            trainer,
            key,
            images,
            nrow=self.nrow,
            caption=f"stage {stage} ({size}x{size}), alpha {alpha:.2f}",
            epoch=self._last_epoch,
        )  # the same number as the sample grid of the same step
        self.logged.append(key)
