"""CelebA (Liu et al. 2015), aligned and cropped faces: 202,599 JPEGs of 178x218, with the official
train/valid/test partition (162,770 / 19,867 / 19,962).

Files in torchvision's layout under ``<data_dir>/celeba/``: ``img_align_celeba/*.jpg``,
``list_eval_partition.txt`` (``<file> <0|1|2>`` per line) and, when ``attribute`` is set,
``list_attr_celeba.txt`` (count line, header of 40 names, then ``<file> <±1 x 40>``). Images are read
lazily, center-cropped to ``crop_size`` and resized to ``image_size`` (64 by default).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from genlight.datamodules.base import GenerativeDataModule
from genlight.datamodules.common import (
    DataFilesError,
    ImageFileDataset,
    corrupted,
    download_or_explain,
    random_hflip,
    require_files,
)
from genlight.ranges import Size
from genlight.registry import register_datamodule

__all__ = ["CelebADataModule", "read_attributes", "read_partition"]

FOLDER = "celeba"
IMAGES = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
ATTRIBUTES = "list_attr_celeba.txt"


def read_partition(path: Path, how: str = "") -> dict[str, int]:
    """``list_eval_partition.txt`` as ``{file name: 0 (train) | 1 (valid) | 2 (test)}``."""
    out: dict[str, int] = {}
    with open(path) as f:
        for i, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise corrupted("celeba", path, f"line {i} is {line.strip()!r}, expected '<file> <0|1|2>'", how)
            out[parts[0]] = int(parts[1])
    if not out:
        raise corrupted("celeba", path, "it lists no images", how)
    return out


def read_attributes(path: Path, attribute: str, how: str = "") -> dict[str, int]:
    """One attribute of ``list_attr_celeba.txt`` as ``{file name: 0 | 1}`` (the file stores -1 / 1)."""
    with open(path) as f:
        lines = [line.split() for line in f if line.strip()]
    if len(lines) < 3:
        raise corrupted("celeba", path, "expected a count line, a header line and rows", how)
    names = lines[1]
    if attribute not in names:
        raise ValueError(f"celeba has no attribute {attribute!r}; it has: {', '.join(names)}")
    col = names.index(attribute) + 1
    out = {}
    for i, row in enumerate(lines[2:], 3):
        if len(row) != len(names) + 1 or row[col] not in ("1", "-1"):
            raise corrupted("celeba", path, f"row {i} does not have {len(names)} values of -1/1", how)
        out[row[0]] = int(row[col] == "1")
    return out


@register_datamodule("celeba")
class CelebADataModule(GenerativeDataModule):
    """CelebA faces, 3 x image_size x image_size, 256 levels; the official train/valid/test partition.

    ``y`` is -1 (``num_classes=0``), or the 0/1 value of ``attribute`` (e.g. ``Smiling``;
    ``num_classes=2``) for conditional models. ``random_flip`` flips training images left-right.

    Args:
        data_dir: root folder; the files are read from ``<data_dir>/celeba``.
        download: fetch missing files with torchvision (needs ``gdown``).
        image_size: side of the square images after resizing.
        crop_size: side of the center crop taken before resizing (148 for the aligned faces).
        attribute: a CelebA attribute (e.g. ``Smiling``) used as the 0/1 label, or ``None`` for no labels.
        random_flip: flip training images left-right at random.
    """

    num_classes = 0
    num_levels = 256

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = False,
        image_size: Size = 64,
        crop_size: Size = 148,
        attribute: str | None = None,
        random_flip: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        self.download = download
        self.image_size = image_size
        self.crop_size = crop_size
        self.attribute = attribute
        self.random_flip = random_flip
        self.image_shape = (3, image_size, image_size)
        self.num_classes = 2 if attribute else 0

    @property
    def folder(self) -> Path:
        return self.data_dir / FOLDER

    @property
    def how_to_get(self) -> str:
        return (
            "Pass --data.download true to fetch them with torchvision.datasets.CelebA (needs the gdown package; "
            "Google Drive often refuses), or download img_align_celeba.zip and the list_*.txt files from "
            f"https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and unzip them into {self.folder}."
        )

    def _files(self) -> list[str]:
        return [IMAGES, PARTITION] + ([ATTRIBUTES] if self.attribute else [])

    def prepare_data(self) -> None:
        if self.download and not all((self.folder / f).exists() for f in self._files()):
            from torchvision.datasets import CelebA

            download_or_explain(
                "celeba",
                self.folder,
                self._files(),
                self.how_to_get,
                lambda: CelebA(str(self.data_dir), split="all", download=True),
            )

    def load_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        require_files("celeba", self.folder, self._files(), self.how_to_get)
        partition = read_partition(self.folder / PARTITION, self.how_to_get)
        present = set(os.listdir(self.folder / IMAGES))
        missing = [name for name in partition if name not in present]
        if missing:
            raise DataFilesError(
                f"celeba: {len(missing)} of the {len(partition)} images listed in {self.folder / PARTITION} "
                f"are missing from {self.folder / IMAGES} (e.g. {', '.join(missing[:3])}). {self.how_to_get}"
            )
        labels = read_attributes(self.folder / ATTRIBUTES, self.attribute, self.how_to_get) if self.attribute else {}
        if self.attribute and (absent := [n for n in partition if n not in labels]):
            raise DataFilesError(
                f"celeba: {self.folder / ATTRIBUTES} has no row for {len(absent)} images, e.g. {absent[0]}"
            )
        splits = []
        for split in (0, 1, 2):
            names = sorted(n for n, s in partition.items() if s == split)
            if not names:
                raise DataFilesError(f"celeba: {self.folder / PARTITION} puts no image in split {split} (0/1/2)")
            splits.append(
                ImageFileDataset(
                    [self.folder / IMAGES / n for n in names],
                    [labels[n] for n in names] if self.attribute else None,
                    image_size=self.image_size,
                    crop_size=self.crop_size,
                    dataset="celeba",
                )
            )
        return splits[0], splits[1], splits[2]

    def train_transform(self) -> Callable[[Tensor], Tensor] | None:
        return random_hflip if self.random_flip else None
