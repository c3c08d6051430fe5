"""Helpers shared by the datamodules: the missing/corrupted-files error, in-memory and per-file
image datasets, and the horizontal-flip augmentation. No data source lives here."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_info
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from genlight.errors import DataFilesError

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataFilesError",
    "ImageFileDataset",
    "TensorImageDataset",
    "check_images",
    "download_or_explain",
    "list_images",
    "random_hflip",
    "require_files",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def require_files(dataset: str, root: Path, files: Sequence[str], how: str) -> None:
    """Raise :class:`DataFilesError` listing every file of ``files`` (relative to ``root``) that is missing."""
    missing = [f for f in files if not (root / f).exists()]
    if len(missing) == len(files):
        raise DataFilesError(f"{dataset}: no data files under {root} (expected: {', '.join(files)}). {how}")
    if missing:
        raise DataFilesError(
            f"{dataset}: missing data files under {root}: {', '.join(missing)} (expected: {', '.join(files)}). {how}"
        )


def download_or_explain(
    dataset: str, root: Path, files: Sequence[str], how: str, download: Callable[[], object]
) -> None:
    """Run ``download()``; any failure (no network, bad checksum) becomes a :class:`DataFilesError`."""
    try:
        download()
    except Exception as err:
        raise DataFilesError(
            f"{dataset}: download failed ({type(err).__name__}: {str(err).strip()[:300]}). "
            f"Expected files under {root}: {', '.join(files)}. Without network, get them by hand: {how}"
        ) from err


def corrupted(dataset: str, path: Path, what: str, how: str) -> DataFilesError:
    """The error for a file that exists but cannot be read as ``what``."""
    return DataFilesError(f"{dataset}: {path} is truncated or corrupted ({what}). Delete it and get it again. {how}")


def random_hflip(x: Tensor) -> Tensor:
    """Flip ``(C, H, W)`` left-right with probability 1/2."""
    return x.flip(-1) if torch.rand(()) < 0.5 else x


class TensorImageDataset(Dataset):
    """Images held in memory as ``uint8`` ``(N, C, H, W)`` (4x smaller than float), returned as
    ``x = pixels / (num_levels - 1)`` in [0, 1] with ``y`` long (or -1 when ``labels`` is None)."""

    def __init__(self, images: Tensor, labels: Tensor | None = None, num_levels: int = 256) -> None:
        if images.dim() != 4:
            raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long() if labels is not None else torch.full((len(images),), -1, dtype=torch.long)
        self.scale = 1.0 / (num_levels - 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index].float().mul_(self.scale), self.labels[index]


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (so the order, and the split, is reproducible)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _unreadable(path: Path) -> str | None:
    """Why ``path`` is not a readable image (``None`` when it is): PIL's ``open`` + ``verify``, which
    read the header (and a PNG's chunk checksums) without decoding the pixels."""
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as err:  # noqa: BLE001 - any failure to read is the answer
        return f"{type(err).__name__}: {err}"
    return None


def check_images(paths: Sequence[Path], dataset: str, skip_bad: bool = False) -> list[int]:
    """Check every image file's header now (at ``setup``), not when an epoch reaches it: the indices of
    the readable ``paths``. An unreadable file raises :class:`DataFilesError` naming it and the fix, or,
    with ``skip_bad``, is left out and counted in one log line."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 1)) as pool:
        reasons = list(pool.map(_unreadable, paths, chunksize=64))
    bad = [i for i, reason in enumerate(reasons) if reason is not None]
    if bad and not skip_bad:
        first = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataFilesError(
            f"{dataset}: {paths[first]} is not a readable image ({reasons[first]}){more}; remove the file, or pass "
            "--data.skip_bad true to skip unreadable images"
        )
    if bad:
        rank_zero_info(
            f"{dataset}: skipped {len(bad)} unreadable image(s) of {len(paths)} (skip_bad), e.g. {paths[bad[0]]}"
        )
    return [i for i, reason in enumerate(reasons) if reason is None]


class ImageFileDataset(Dataset):
    """Images read lazily from files: converted to ``channels`` (1 grey, 3 RGB), center-cropped to a
    square of ``crop_size`` (the short side when None or larger), resized to ``image_size``."""

    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int] | None = None,
        *,
        image_size: int = 64,
        channels: int = 3,
        crop_size: int | None = None,
        dataset: str = "images",
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
        self.paths = list(paths)
        self.labels = torch.tensor(list(labels) if labels is not None else [-1] * len(self.paths), dtype=torch.long)
        self.image_size = image_size
        self.mode = "L" if channels == 1 else "RGB"
        self.crop_size = crop_size
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, path: Path) -> Tensor:
        """One image as ``(C, image_size, image_size)`` float in [0, 1]."""
        try:
            with Image.open(path) as img:
                img = img.convert(self.mode)
        except FileNotFoundError as err:
            raise DataFilesError(f"{self.dataset}: image file {path} is missing") from err
        except (OSError, UnidentifiedImageError, SyntaxError) as err:
            raise corrupted(self.dataset, path, f"{type(err).__name__}: {err}", "") from err
        w, h = img.size
        side = min(w, h) if self.crop_size is None else min(self.crop_size, w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
        if side != self.image_size:
            img = img.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR, reducing_gap=None)
        x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        return x.view(self.image_size, self.image_size, -1).permute(2, 0, 1).float().div_(255.0)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.load(self.paths[index]), self.labels[index]
