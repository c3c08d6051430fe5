"""Image files in and out of the commands that apply a checkpoint (``genlight sample``, ``translate``,
``complete``): the user's ``--image`` files read as a batch, a grid written as a PNG or JPEG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from genlight.errors import ConfigError

__all__ = ["read_images", "save_grid"]


def read_images(paths: Sequence[str | Path], shape: Sequence[int]) -> Tensor:
    """The ``--image`` files as ``(n, C, H, W)`` in [0, 1]: each converted to ``C`` channels (grey or
    RGB) and resized to ``H x W``; a file that cannot be read is refused in one line naming it."""
    c, h, w = (int(v) for v in shape)
    images = []
    for path in paths:
        try:
            picture = Image.open(path).convert("L" if c == 1 else "RGB")
        except (OSError, UnidentifiedImageError) as err:
            reason = " ".join(str(err).split())
            raise ConfigError(
                f"--image {path}: cannot be read as an image ({reason}); pass a PNG or JPEG file"
            ) from err
        array = np.asarray(picture.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        images.append(torch.from_numpy(array).reshape(h, w, -1).permute(2, 0, 1))  # (C, H, W)
    return torch.stack(images)  # (n, C, H, W)


def save_grid(grid: Tensor, path: str | Path) -> None:
    """Write a ``(3, H, W)`` grid in [0, 1] as an image file (PNG or JPEG, by the suffix)."""
    Image.fromarray((grid.permute(1, 2, 0) * 255).round().byte().cpu().numpy()).save(path)
