"""Completion grids for any :class:`~genlight.types.PatchCompleter` (Puzzle-GAN): the patches, the
completed images and masks beside the true images and masks."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import Tensor

from genlight.callbacks.base import EpochImageCallback, first_batch
from genlight.callbacks.image_logging import log_images
from genlight.nn.puzzle import paste_patches
from genlight.ranges import Decay, NonNegativeInt, PositiveInt, Seed, check_arguments
from genlight.types import PatchCompleter

__all__ = ["PatchCompletions", "completion_rows", "patch_strip"]

#: what the rows of :func:`completion_rows` show, top to bottom
ROWS = "true image, patches (unplaced), completion, predicted mask, true mask"


def patch_strip(patches: Tensor, image_hw: tuple[int, int], background: float = 0.5) -> Tensor:
    """The patches ``(n, k, C, p, p)`` laid out left to right, then top to bottom, one pixel apart, on
    an image-sized ``background`` canvas ``(n, C, H, W)``: how the model receives them, without their
    positions (slots that do not fit are moved back inside, overlapping)."""
    n, k, c, p, _ = patches.shape
    h, w = image_hw
    per_row = max(1, (w + 1) // (p + 1))
    slots = torch.tensor(
        [[min((i // per_row) * (p + 1), h - p), min((i % per_row) * (p + 1), w - p)] for i in range(k)]
    )
    canvas = torch.full((n, c, h, w), background, dtype=patches.dtype, device=patches.device)
    return paste_patches(canvas, patches, slots.to(patches.device).expand(n, k, 2))


def completion_rows(model: PatchCompleter, x: Tensor, seed: int = 0) -> Tensor:
    """Five rows of ``len(x)`` images, ``(5n, C, H, W)`` (:data:`ROWS`): patches cut from ``x`` at
    positions drawn with ``seed`` and completed with the global RNG seeded ``seed`` (and then restored); masks repeated over the channels."""
    generator = torch.Generator().manual_seed(seed)
    patches, true_mask = model.cut_patches(x, generator)
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)  # the completion's own draws (noise), the global RNG left as it was
        images, masks = model.complete(patches)
    c = x.shape[1]
    strip = patch_strip(patches, (x.shape[2], x.shape[3]))
    return torch.cat(
        [
            x,
            strip,
            images.to(x.dtype),
            masks.to(x.dtype).expand(-1, c, -1, -1),
            true_mask.to(x.dtype).expand(-1, c, -1, -1),
        ]
    )


class PatchCompletions(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, log the first ``num_images`` images of ``split`` as five rows (as
    ``completions``): the true images, their patches as the model receives them (unplaced), the
    completions, the predicted masks and the true masks. Patch positions are drawn with ``seed``, the
    same every epoch.

    Models without ``complete`` / ``cut_patches`` are skipped with one log line. ``every_n_epochs=0``
    turns it off.
    """

    capability = PatchCompleter
    needs = "complete(patches) and cut_patches(x)"

    def __init__(
        self,
        num_images: PositiveInt = 8,
        every_n_epochs: NonNegativeInt = 1,
        split: str = "val",
        seed: Seed = 0,
        max_time_fraction: Decay | None = 0.25,
    ) -> None:
        check_arguments(self, locals())
        super().__init__(every_n_epochs, max_time_fraction)
        self.num_images, self.split, self.seed = num_images, split, seed
        self.last_path = None

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        x, _ = first_batch(trainer, self.num_images, self.split)
        grid = completion_rows(pl_module, x.to(pl_module.device), self.seed)
        self.last_path = log_images(
            trainer,
            "completions",
            grid,
            nrow=len(x),
            caption=f"rows: {ROWS}; epoch {trainer.current_epoch}",
            row_labels=ROWS.split(", "),
        )
