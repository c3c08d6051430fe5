"""Input vs. reconstruction grids for any :class:`~genlight.types.Autoencoder`."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

from genlight.callbacks.data import first_images
from genlight.callbacks.image_logging import log_images
from genlight.types import Autoencoder

__all__ = ["Reconstructions"]


class Reconstructions(pl.Callback):
    """Every ``every_n_epochs`` epochs, log the first ``num_images`` images of ``split`` (top row) above
    ``decode(encode(x))`` (bottom row) as ``reconstructions``, to a PNG and every logger.

    Models without ``encode``/``decode`` are skipped with one log line. ``every_n_epochs=0`` turns it off.
    """

    def __init__(self, num_images: int = 16, every_n_epochs: int = 1, split: str = "val") -> None:
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs
        self.split = split
        self.last_path = None
        self._warned = False

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_epochs <= 0 or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        if not isinstance(pl_module, Autoencoder):
            if not self._warned:
                rank_zero_info(f"Reconstructions: {type(pl_module).__name__} has no encode/decode; none are logged")
                self._warned = True
            return
        if not trainer.is_global_zero:
            return
        x = first_images(trainer, self.num_images, self.split).to(pl_module.device)
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                x_hat = pl_module.decode(pl_module.encode(x))
        finally:
            pl_module.train(was_training)
        grid = torch.cat([x, x_hat.to(x.dtype)])
        self.last_path = log_images(
            trainer, "reconstructions", grid, nrow=len(x), caption=f"inputs (top) vs reconstructions, epoch {trainer.current_epoch}"
        )
