"""Sample grids: draws from any :class:`~genlight.types.Sampler` at the end of training epochs."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from genlight.callbacks.base import EpochImageCallback, evaluating
from genlight.callbacks.image_logging import log_images
from genlight.types import ConditionalSampler, Sampler

__all__ = ["SampleGrid"]


class SampleGrid(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, draw ``num_samples`` images with a fixed seed (so grids are
    comparable across epochs) and log them as one grid (``samples``) to a PNG and every logger.

    Conditional samplers get labels ``0, 1, ..., num_classes-1`` repeated, one class per column.
    Models that cannot sample are skipped with one log line. ``every_n_epochs=0`` turns it off.
    """

    capability = Sampler
    needs = "sample(n)"

    def __init__(self, num_samples: int = 64, every_n_epochs: int = 1, nrow: int | None = None, seed: int = 0) -> None:
        super().__init__(every_n_epochs)
        self.num_samples = num_samples
        self.nrow = nrow
        self.seed = seed
        self.last_path = None

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        images, nrow = self.draw(pl_module)
        self.last_path = log_images(trainer, "samples", images, nrow=nrow, caption=f"epoch {trainer.current_epoch}")

    def draw(self, pl_module: pl.LightningModule) -> tuple[torch.Tensor, int | None]:
        """Seeded samples (the global RNG state is restored afterwards) and the grid's row length."""
        y, nrow = None, self.nrow
        if isinstance(pl_module, ConditionalSampler) and pl_module.num_classes > 0:
            y = torch.arange(self.num_samples, device=pl_module.device) % pl_module.num_classes
            nrow = nrow or pl_module.num_classes
        with evaluating(pl_module, seed=self.seed):
            images = pl_module.sample(self.num_samples, y=y)
        return images, nrow
