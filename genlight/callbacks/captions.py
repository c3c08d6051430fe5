"""Caption grids: draws of any :class:`~genlight.types.TextConditionalSampler` for a fixed list of
captions, one row each, at the end of training epochs."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from genlight.callbacks.base import EpochImageCallback, evaluating
from genlight.callbacks.image_logging import log_images
from genlight.ranges import Decay, NonNegativeInt, PositiveInt, Seed, check_arguments
from genlight.types import TextConditionalSampler

__all__ = ["CaptionGrid"]


class CaptionGrid(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, draw ``per_caption`` images for each caption with a fixed seed and
    log them as one grid (``caption_samples``), one row per caption.

    ``captions`` ``None``: ``num_captions`` captions of the validation split (the datamodule's
    ``captions("val")``, evenly spaced through its list sorted by class), chosen once at the first draw
    and kept for the whole run, so grids are comparable across epochs. Models that do not take text
    are skipped with one log line. ``every_n_epochs=0`` turns it off.
    """

    capability = TextConditionalSampler
    needs = "sample(n, text=...)"

    def __init__(
        self,
        captions: list[str] | None = None,
        num_captions: PositiveInt = 10,
        per_caption: PositiveInt = 10,
        every_n_epochs: NonNegativeInt = 1,
        seed: Seed = 0,
        max_time_fraction: Decay | None = 0.25,
    ) -> None:
        check_arguments(self, locals())
        super().__init__(every_n_epochs, max_time_fraction)
        self.captions = list(captions) if captions is not None else None
        self.num_captions, self.per_caption, self.seed = num_captions, per_caption, seed
        self.last_path = None

    def chosen_captions(self, trainer: pl.Trainer) -> list[str]:
        """The captions of the grid (fixed at the first call)."""
        if self.captions is None:
            dm = getattr(trainer, "datamodule", None)
            source = getattr(dm, "captions", None)
            if source is None:
                raise ValueError(f"{type(dm).__name__} has no captions: pass CaptionGrid(captions=[...])")
            pool = source("val")
            step = max(1, len(pool) // self.num_captions)
            self.captions = pool[::step][: self.num_captions]
        return self.captions

    def draw(self, pl_module: TextConditionalSampler, captions: list[str]) -> torch.Tensor:
        """``(len(captions) * per_caption, C, H, W)`` seeded images, row by row."""
        texts = [c for c in captions for _ in range(self.per_caption)]
        with evaluating(pl_module, seed=self.seed):  # type: ignore[arg-type]
            return pl_module.sample(len(texts), text=texts)

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        captions = self.chosen_captions(trainer)
        images = self.draw(pl_module, captions)
        rows = "; ".join(f"{i}: {c}" for i, c in enumerate(captions))
        self.last_path = log_images(
            trainer,
            "caption_samples",
            images,
            nrow=self.per_caption,
            row_labels=captions,
            caption=f"rows: {rows}; epoch {trainer.current_epoch}",
        )
