"""Input vs. reconstruction grids for any :class:`~genlight.types.Autoencoder`."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import Tensor

from genlight.callbacks.base import EpochImageCallback, first_batch, label_kwargs
from genlight.callbacks.image_logging import log_images
from genlight.ranges import Decay, NonNegativeInt, PositiveInt, check_arguments
from genlight.types import Autoencoder

__all__ = ["Reconstructions", "reconstruct"]


def reconstruct(pl_module: Autoencoder, x: Tensor, y: Tensor | None = None) -> Tensor:
    """``decode(encode(x))``, passing the labels ``y`` to a conditional model's ``encode``/``decode``
    where they take ``y=``."""
    z = pl_module.encode(x, **label_kwargs(pl_module, pl_module.encode, y))
    return pl_module.decode(z, **label_kwargs(pl_module, pl_module.decode, y))


class Reconstructions(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, log the first ``num_images`` images of ``split`` (top row) above
    ``decode(encode(x))`` (bottom row) as ``reconstructions``, to a PNG and every logger. Conditional
    autoencoders get the images' labels (``encode(x, y=y)``, ``decode(z, y=y)``). For points (toy2d)
    the reconstructions are plotted over their inputs.

    Models without ``encode``/``decode`` are skipped with one log line. ``every_n_epochs=0`` turns it off.
    """

    capability = Autoencoder
    needs = "encode/decode"

    def __init__(
        self,
        num_images: PositiveInt = 16,
        every_n_epochs: NonNegativeInt = 1,
        split: str = "val",
        max_time_fraction: Decay | None = 0.25,
    ) -> None:
        check_arguments(self, locals())
        super().__init__(every_n_epochs, max_time_fraction)
        self.num_images = num_images
        self.split = split
        self.last_path = None

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        x, y = first_batch(trainer, self.num_images, self.split)
        x = x.to(pl_module.device)
        y = y.to(pl_module.device) if isinstance(y, Tensor) else None
        x_hat = reconstruct(pl_module, x, y).to(x.dtype)
        epoch = trainer.current_epoch
        if x.dim() == 2:  # points: reconstructions (blue) over their inputs (grey)
            self.last_path = log_images(
                trainer, "reconstructions", x_hat, reference=x, caption=f"reconstructions, epoch {epoch}"
            )
            return
        self.last_path = log_images(
            trainer,
            "reconstructions",
            torch.cat([x, x_hat]),
            nrow=len(x),
            caption=f"inputs (top) vs reconstructions, epoch {epoch}",
        )
