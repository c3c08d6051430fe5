"""One place that turns a batch of images into a grid, a PNG in the run folder, and logger calls.

Every image callback goes through :func:`log_images`, so images reach W&B (``log_image``),
TensorBoard (``add_image``) and, whatever the logger (CSV too), a PNG file under
``<run dir>/images/``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

__all__ = ["image_grid", "log_images", "run_dir"]


def run_dir(trainer: pl.Trainer) -> Path:
    """The folder of this run: the CSV/TensorBoard version folder, ``<save_dir>/<project>/<id>`` for
    W&B (where Lightning puts its checkpoints), else ``default_root_dir``. Call it on rank 0."""
    for logger in trainer.loggers:
        if isinstance(logger, (CSVLogger, TensorBoardLogger)):
            return Path(logger.log_dir)
        if isinstance(logger, WandbLogger):
            return Path(logger.save_dir or trainer.default_root_dir, str(logger.name), str(logger.version))
    return Path(trainer.default_root_dir)


def image_grid(images: Tensor, nrow: int | None = None, min_width: int = 256) -> Tensor:
    """``(N, C, H, W)`` in [0, 1] -> one ``(3, h, w)`` grid, enlarged (nearest) to at least ``min_width``."""
    images = images.detach().float().clamp(0, 1).cpu()
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    grid = make_grid(images, nrow=nrow, padding=1, pad_value=1.0)
    scale = max(1, math.ceil(min_width / grid.shape[-1]))
    if scale > 1:
        grid = torch.nn.functional.interpolate(grid[None], scale_factor=scale, mode="nearest")[0]
    return grid


def log_images(
    trainer: pl.Trainer, key: str, images: Tensor, *, nrow: int | None = None, caption: str | None = None
) -> Path | None:
    """Save ``images`` as a grid PNG in the run folder and hand the grid to every attached logger.

    Returns the PNG's path on rank 0 and ``None`` elsewhere (only rank 0 writes and logs).
    """
    if not trainer.is_global_zero:
        return None
    grid = image_grid(images, nrow)
    array = (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    folder = run_dir(trainer) / "images"
    os.makedirs(folder, exist_ok=True)
    stem = key.replace("/", "_")
    path = folder / f"{stem}_epoch{trainer.current_epoch:03d}_step{trainer.global_step:06d}.png"
    Image.fromarray(array).save(path)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key, [array], step=trainer.global_step, caption=[caption or path.name])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, global_step=trainer.global_step)
    return path
