"""Image files in and out of the commands that apply a checkpoint (``genlight sample``, ``translate``,
``complete``): the user's ``--image`` files read as a batch, a grid written as a PNG or JPEG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from genlight.errors import ConfigError

__all__ = ["check_out", "free_path", "output_path", "read_images", "save_grid", "write_output"]

#: what ``genlight sample --out`` writes: an image grid, or the raw tensor (``.pt``)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


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


def check_out(out: Path) -> None:
    """``--out`` names an image (``.png``/``.jpg``) or a tensor file (``.pt``) in a folder that can exist."""
    if out.suffix.lower() not in (*IMAGE_SUFFIXES, ".pt"):
        raise ConfigError(
            f"--out {out}: the file name must end in .png or .jpg (an image grid) or .pt (the "
            f"raw tensor), e.g. --out samples.png"
        )
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: name a file in it, e.g. --out {out / 'samples.png'}")
    blocker = next((p for p in out.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ConfigError(f"--out {out}: {blocker} is a file, not a folder; choose another path, e.g. --out {out.name}")


def free_path(path: Path) -> Path:
    """``path`` if no file is there, else the first free numbered name beside it (``samples_2.png``, ...)."""
    n = 1
    found = path
    while found.exists():
        n += 1
        found = path.with_name(f"{path.stem}_{n}{path.suffix}")
    return found


def output_path(given: str | None, default: str) -> tuple[Path, str]:
    """Where a command writes (checked: :func:`check_out`) and the notice to print: a given ``--out`` is
    replaced with a notice; the default name is numbered beside an earlier file (never overwritten)."""
    out = Path(given) if given is not None else free_path(Path(default))
    check_out(out)
    if given is not None:
        return out, (f"note: replaced the earlier {out}" if out.is_file() else "")
    return out, (
        f"note: kept the earlier {default}; this one is {out} (--out FILE to choose)" if out.name != default else ""
    )


def write_output(images: Any, out: Path, line: str, notice: str) -> int:
    """Save ``images`` (a grid ``(3, H, W)``, or any tensor to a ``.pt`` file) to ``out``, print ``line``
    and ``notice``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(images.cpu(), out) if out.suffix == ".pt" else save_grid(images, out)
    print(line)
    if notice:
        print(notice)
    return 0
