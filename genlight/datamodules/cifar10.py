"""CIFAR-10 (Krizhevsky 2009): 32x32 RGB, 10 classes, 50k train / 10k test.

Files in torchvision's layout: ``<data_dir>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``,
each a pickled dict with ``data`` (uint8, N x 3072, channel-major rows) and ``labels``. They are read
here with strict checks (shape, dtype, label range) and, by default, the md5 sums torchvision lists;
``check_md5=False`` skips only the md5 (for re-packed or test files), never the structural checks.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from genlight.datamodules.base import GenerativeDataModule
from genlight.datamodules.common import (
    DataFilesError,
    TensorImageDataset,
    corrupted,
    download_or_explain,
    random_hflip,
    require_files,
)
from genlight.registry import register_datamodule

__all__ = ["CIFAR10DataModule", "read_cifar_batch"]

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
META_FILE = "batches.meta"


def _md5s() -> dict[str, str]:
    from torchvision.datasets import CIFAR10

    sums = {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}
    sums[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    return sums


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_cifar_batch(path: Path, how: str = "") -> tuple[Tensor, Tensor]:
    """One pickled CIFAR batch as ``(images uint8 (N, 3, 32, 32), labels long (N,))``."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except Exception as err:
        raise corrupted("cifar10", path, f"not a readable pickle: {type(err).__name__}: {err}", how) from err
    if not isinstance(entry, dict):
        raise corrupted("cifar10", path, f"expected a dict, got {type(entry).__name__}", how)
    entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
    if "data" not in entry or "labels" not in entry:
        raise corrupted("cifar10", path, f"expected keys 'data' and 'labels', got {sorted(entry)}", how)
    data, labels = np.asarray(entry["data"]), np.asarray(entry["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise corrupted("cifar10", path, f"data has shape {data.shape} of {data.dtype}, expected N x 3072 uint8", how)
    if labels.shape != (len(data),) or len(data) == 0:
        raise corrupted("cifar10", path, f"{len(data)} images but labels of shape {labels.shape}", how)
    if labels.min() < 0 or labels.max() > 9:
        raise corrupted("cifar10", path, f"labels outside 0..9 ({labels.min()}..{labels.max()})", how)
    images = torch.from_numpy(data.copy()).view(-1, 3, 32, 32)
    return images, torch.from_numpy(labels.astype(np.int64))


@register_datamodule("cifar10")
class CIFAR10DataModule(GenerativeDataModule):
    """CIFAR-10, 3x32x32, 256 levels, 10 classes; official 50k/10k split, ``val_fraction`` of the
    training set held out by ``seed``; ``random_flip`` flips training images left-right.

    Args:
        data_dir: root folder; the files are read from ``<data_dir>/cifar-10-batches-py``.
        download: fetch missing files with torchvision.
        check_md5: verify the files' md5 sums (``false`` for re-packed files; structure is always checked).
        random_flip: flip training images left-right at random.
    """

    image_shape = (3, 32, 32)
    num_classes = 10
    num_levels = 256

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = False,
        check_md5: bool = True,
        random_flip: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        self.download = download
        self.check_md5 = check_md5
        self.random_flip = random_flip

    @property
    def folder(self) -> Path:
        return self.data_dir / FOLDER

    @property
    def how_to_get(self) -> str:
        return (
            "Pass --data.download true to fetch them with torchvision.datasets.CIFAR10, or extract "
            f"cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html into {self.data_dir}."
        )

    def prepare_data(self) -> None:
        files = TRAIN_FILES + TEST_FILES + [META_FILE]
        if self.download and not all((self.folder / f).exists() for f in files):
            from torchvision.datasets import CIFAR10

            download_or_explain(
                "cifar10", self.folder, files, self.how_to_get, lambda: CIFAR10(str(self.data_dir), download=True)
            )

    def _read(self, names: list[str]) -> TensorImageDataset:
        images, labels = zip(*(read_cifar_batch(self.folder / name, self.how_to_get) for name in names))
        return TensorImageDataset(torch.cat(images), torch.cat(labels))

    def load_datasets(self) -> tuple[Dataset, Dataset | None]:
        require_files("cifar10", self.folder, TRAIN_FILES + TEST_FILES + [META_FILE], self.how_to_get)
        if self.check_md5:
            sums = _md5s()
            for name in TRAIN_FILES + TEST_FILES + [META_FILE]:
                if _md5(self.folder / name) != sums[name]:
                    raise DataFilesError(
                        f"cifar10: {self.folder / name} does not have the md5 of the official file "
                        f"({sums[name]}); it is truncated, corrupted or not CIFAR-10. Delete it and get it "
                        f"again ({self.how_to_get}), or pass --data.check_md5 false for a re-packed copy."
                    )
        return self._read(TRAIN_FILES), self._read(TEST_FILES)

    def train_transform(self) -> Callable[[Tensor], Tensor] | None:
        return random_hflip if self.random_flip else None
