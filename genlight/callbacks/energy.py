"""Energy landscapes of energy-based models on 2-D points (toy2d): ``E(x)`` on a grid over the box the
chains live in, as a heat map (bright = low energy = likely) with the real data drawn in red."""

from __future__ import annotations

import lightning.pytorch as pl

from genlight.callbacks.base import EpochImageCallback
from genlight.callbacks.image_logging import log_images, reference_points
from genlight.modules.ebm import EBM, energy_image

__all__ = ["EnergyLandscape"]


class EnergyLandscape(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, log the energy landscape (``energy``) of a 2-D :class:`EBM` at
    ``resolution``² grid points over ``[-box, box]²``, with up to ``num_points`` train points on top.
    EBMs of images and other models are skipped with one log line."""

    capability = EBM
    needs = "2-D energy (an ebm on toy2d points)"

    def __init__(
        self, resolution: int = 128, num_points: int = 1000, every_n_epochs: int = 1, max_time_fraction: float | None = 0.25
    ) -> None:
        super().__init__(every_n_epochs, max_time_fraction)
        self.resolution, self.num_points = resolution, num_points
        self.last_path = None

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not getattr(pl_module, "points", False):
            return
        image = energy_image(pl_module, reference_points(trainer, self.num_points), resolution=self.resolution)
        self.last_path = log_images(
            trainer, "energy", image[None], nrow=1,
            caption=f"energy (bright = low) and data, epoch {trainer.current_epoch}",
        )  # fmt: skip
