"""Sample grids: draws from any :class:`~genlight.types.Sampler` at the end of training epochs."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

from genlight.callbacks.image_logging import log_images
from genlight.types import ConditionalSampler, Sampler

__all__ = ["SampleGrid"]


class SampleGrid(pl.Callback):
    """Every ``every_n_epochs`` epochs, draw ``num_samples`` images with a fixed seed (so grids are
    comparable across epochs) and log them as one grid (``samples``) to a PNG and every logger.

    Conditional samplers get labels ``0, 1, ..., num_classes-1`` repeated, one class per column.
    Models that cannot sample are skipped with one log line. ``every_n_epochs=0`` turns it off.
    """

    def __init__(self, num_samples: int = 64, every_n_epochs: int = 1, nrow: int | None = None, seed: int = 0) -> None:
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow
        self.seed = seed
        self._warned = False
        self.last_path = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_epochs <= 0 or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        if not isinstance(pl_module, Sampler):
            if not self._warned:
                rank_zero_info(f"SampleGrid: {type(pl_module).__name__} has no sample(n); no sample grids are logged")
                self._warned = True
            return
        if not trainer.is_global_zero:
            return
        images, nrow = self.draw(pl_module)
        self.last_path = log_images(trainer, "samples", images, nrow=nrow, caption=f"epoch {trainer.current_epoch}")

    def draw(self, pl_module: pl.LightningModule) -> tuple[torch.Tensor, int | None]:
        """Seeded samples (the global RNG state is restored afterwards) and the grid's row length."""
        y, nrow = None, self.nrow
        if isinstance(pl_module, ConditionalSampler) and pl_module.num_classes > 0:
            y = torch.arange(self.num_samples, device=pl_module.device) % pl_module.num_classes
            nrow = nrow or pl_module.num_classes
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                torch.manual_seed(self.seed)
                images = pl_module.sample(self.num_samples, y=y)
        finally:
            pl_module.train(was_training)
        return images, nrow
