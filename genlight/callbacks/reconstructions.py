"""Input vs. reconstruction grids for any :class:`~genlight.types.Autoencoder`."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from genlight.callbacks.base import EpochImageCallback
from genlight.callbacks.data import first_images
from genlight.callbacks.image_logging import log_images
from genlight.types import Autoencoder

__all__ = ["Reconstructions"]


class Reconstructions(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, log the first ``num_images`` images of ``split`` (top row) above
    ``decode(encode(x))`` (bottom row) as ``reconstructions``, to a PNG and every logger.

    Models without ``encode``/``decode`` are skipped with one log line. ``every_n_epochs=0`` turns it off.
    """

    capability = Autoencoder
    needs = "encode/decode"

    def __init__(self, num_images: int = 16, every_n_epochs: int = 1, split: str = "val") -> None:
        super().__init__(every_n_epochs)
        self.num_images = num_images
        self.split = split
        self.last_path = None

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        x = first_images(trainer, self.num_images, self.split).to(pl_module.device)
        x_hat = pl_module.decode(pl_module.encode(x))
        grid = torch.cat([x, x_hat.to(x.dtype)])
        self.last_path = log_images(
            trainer, "reconstructions", grid, nrow=len(x), caption=f"inputs (top) vs reconstructions, epoch {trainer.current_epoch}"
        )
