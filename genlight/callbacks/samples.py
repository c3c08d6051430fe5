"""Sample grids: draws from any :class:`~genlight.types.Sampler` at the end of training epochs."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from genlight.callbacks.base import EpochImageCallback, evaluating
from genlight.callbacks.image_logging import log_images
from genlight.ranges import Decay, NonNegativeInt, PositiveInt, Seed, check_arguments
from genlight.types import MultiDomainTranslator, PatchCompleter, Sampler, Translator, is_conditional

__all__ = ["SampleGrid"]


class SampleGrid(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, draw ``num_samples`` images with a fixed seed (so grids are
    comparable across epochs) and log them as one grid (``samples``) to a PNG and every logger.

    Conditional samplers get labels ``0, 1, ..., num_classes-1`` repeated, one class per column.
    Samples that are points, not images (toy2d: shape ``(n, 2)``), are drawn ``num_points`` at a time
    and logged as a scatter plot over the real data points. Slow samplers are held to
    ``max_time_fraction`` of the training time (see :class:`~genlight.callbacks.base.PeriodicCallback`);
    the last epoch always draws. A model that cannot sample but translates (StarGAN, CycleGAN) or
    completes (Puzzle-GAN) gets the grid of :class:`~genlight.callbacks.translation.TranslationGrid` or
    :class:`~genlight.callbacks.completion.PatchCompletions` instead (unless one of those is configured),
    so that every ``genlight fit`` writes an image; other models are skipped with one log line.
    ``every_n_epochs=0`` turns it off.
    """

    capability = (Sampler, Translator, MultiDomainTranslator, PatchCompleter)
    needs = "sample(n), translate(x, ...) or complete(patches)"

    def __init__(
        self,
        num_samples: PositiveInt = 64,
        every_n_epochs: NonNegativeInt = 1,
        nrow: PositiveInt | None = None,
        seed: Seed = 0,
        num_points: PositiveInt = 1000,
        max_time_fraction: Decay | None = 0.25,
    ) -> None:
        check_arguments(self, locals())
        super().__init__(every_n_epochs, max_time_fraction)
        self.num_samples = num_samples
        self.nrow = nrow
        self.seed = seed
        self.num_points = num_points
        self.last_path = None

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not isinstance(pl_module, Sampler):
            self.log_stand_in(trainer, pl_module)
            return
        shape = getattr(getattr(trainer, "datamodule", None), "image_shape", None)
        points = shape is not None and len(tuple(shape)) == 1  # toy2d-style data: a scatter plot
        images, nrow = self.draw(pl_module, self.num_points if points else self.num_samples)
        self.last_path = log_images(trainer, "samples", images, nrow=nrow, caption=f"epoch {trainer.current_epoch}")

    def log_stand_in(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The translation or completion grid of a model that does not sample (none when configured)."""
        from genlight.callbacks.completion import PatchCompletions
        from genlight.callbacks.translation import TranslationGrid

        kind = PatchCompletions if isinstance(pl_module, PatchCompleter) else TranslationGrid
        if any(isinstance(c, kind) for c in trainer.callbacks):  # type: ignore[attr-defined]
            return
        stand_in = kind(max_time_fraction=None)
        stand_in.log_epoch(trainer, pl_module)
        self.last_path = stand_in.last_path

    def draw(self, pl_module: pl.LightningModule, n: int | None = None) -> tuple[torch.Tensor, int | None]:
        """``n`` (default ``num_samples``) seeded samples (the global RNG state is restored afterwards)
        and the grid's row length."""
        n = self.num_samples if n is None else n
        y, nrow = None, self.nrow
        if is_conditional(pl_module):
            y = torch.arange(n, device=pl_module.device) % pl_module.num_classes
            nrow = nrow or pl_module.num_classes
        with evaluating(pl_module, seed=self.seed):
            images = pl_module.sample(n, y=y)
        return images, nrow
