"""Binarised MNIST, 1x28x28 with 2 levels, in its two standard forms:

* ``fixed``: the split of Larochelle & Murray (2011), 50k/10k/10k images binarised once, files
  ``<data_dir>/BinarizedMNIST/binarized_mnist_{train,valid,test}.amat`` (one image per line, 784
  space-separated 0/1 values); no labels (``y = -1``).
* ``stochastic``: MNIST (the IDX files of ``mnist``) with each training pixel drawn ``~ Bernoulli(intensity)``
  afresh every time it is read, so every epoch sees a new binarisation (Salakhutdinov & Murray 2008);
  validation and test images are binarised once with a fixed seed so that scores are comparable.

``binarization="auto"`` uses ``fixed`` when the three ``.amat`` files are present, else ``stochastic``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from genlight.datamodules.base import GenerativeDataModule
from genlight.datamodules.common import (
    TensorImageDataset,
    corrupted,
    download_or_explain,
    require_files,
)
from genlight.datamodules.mnist import have_idx_files, idx_files, load_idx_split
from genlight.registry import register_datamodule

__all__ = ["BinarizedMNISTDataModule", "read_amat"]

FOLDER = "BinarizedMNIST"
AMAT_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
AMAT_FILES = {split: f"binarized_mnist_{split}.amat" for split in ("train", "valid", "test")}


def read_amat(path: Path, how: str = "") -> Tensor:
    """An ``.amat`` file of binary 28x28 images as ``uint8 (N, 1, 28, 28)`` in {0, 1}."""
    rows = []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            values = line.split()
            if not values:
                continue
            if len(values) != 784 or any(v not in ("0", "1") for v in values):
                raise corrupted(
                    "binarized_mnist", path, f"line {i} has {len(values)} values, expected 784 zeros and ones", how
                )
            rows.append([v == "1" for v in values])
    if not rows:
        raise corrupted("binarized_mnist", path, "no images in it", how)
    return torch.tensor(rows, dtype=torch.uint8).view(-1, 1, 28, 28)


class StochasticBinaryDataset(Dataset):
    """Grey images ``uint8 (N, 1, H, W)``; each read returns ``x ~ Bernoulli(pixels / 255)`` afresh."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return torch.bernoulli(self.images[index].float() / 255.0), self.labels[index]


def binarize_once(images: Tensor, seed: int) -> Tensor:
    """``Bernoulli(pixels / 255)`` drawn once with a seeded generator, as ``uint8`` in {0, 1}."""
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(images.float() / 255.0, generator=generator).to(torch.uint8)


@register_datamodule("binarized_mnist")
class BinarizedMNISTDataModule(GenerativeDataModule):
    """Binarised MNIST (1x28x28, ``num_levels=2``): Larochelle's fixed split, or MNIST binarised
    stochastically per epoch; ``num_classes`` is 10 for stochastic (MNIST labels), 0 for fixed.

    Args:
        data_dir: root folder of the ``.amat`` files (fixed) or of MNIST's files (stochastic).
        download: fetch missing files (otherwise a missing file is an error naming it).
        binarization: ``fixed`` (Larochelle's files), ``stochastic`` (MNIST, redrawn every epoch) or ``auto`` (fixed when its files are there).
    """

    image_shape = (1, 28, 28)
    num_levels = 2

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = False,
        binarization: Literal["auto", "fixed", "stochastic"] = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        self.download = download
        if binarization not in ("auto", "fixed", "stochastic"):
            raise ValueError(f"binarization must be auto, fixed or stochastic, got {binarization!r}")
        if binarization == "auto":
            have = all((self.amat_dir / name).exists() for name in AMAT_FILES.values())
            binarization = "fixed" if have else "stochastic"
        self.binarization = binarization
        self.num_classes = 10 if binarization == "stochastic" else 0

    @property
    def amat_dir(self) -> Path:
        return self.data_dir / FOLDER

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    @property
    def how_to_get(self) -> str:
        if self.binarization == "fixed":
            return (
                f"Pass --data.download true, or download {', '.join(AMAT_FILES.values())} from {AMAT_URL} "
                f"into {self.amat_dir}."
            )
        return (
            "Pass --data.download true to fetch MNIST with torchvision.datasets.MNIST, or put the IDX files "
            f"into {self.raw_dir}."
        )

    def prepare_data(self) -> None:
        if not self.download:
            return
        if self.binarization == "fixed":
            missing = [name for name in AMAT_FILES.values() if not (self.amat_dir / name).exists()]
            if missing:
                from torchvision.datasets.utils import download_url

                def fetch() -> None:
                    for name in missing:
                        download_url(AMAT_URL + name, str(self.amat_dir), name)

                download_or_explain("binarized_mnist", self.amat_dir, list(AMAT_FILES.values()), self.how_to_get, fetch)
        elif not have_idx_files(self.raw_dir):
            from torchvision.datasets import MNIST

            download_or_explain(
                "binarized_mnist",
                self.raw_dir,
                idx_files(),
                self.how_to_get,
                lambda: MNIST(str(self.data_dir), train=True, download=True),
            )

    def reference_dataset(self, split: str) -> Dataset:
        """As the base class; the stochastically binarised training split is binarised once, with a
        seed of its own, so FID references and grids are the same at every read."""
        dataset = super().reference_dataset(split)
        if isinstance(dataset, Subset) and isinstance(dataset.dataset, StochasticBinaryDataset):  # ``subset``
            fixed = self._fixed(dataset.dataset)
            return Subset(fixed, dataset.indices)
        return self._fixed(dataset) if isinstance(dataset, StochasticBinaryDataset) else dataset

    def _fixed(self, dataset: StochasticBinaryDataset) -> TensorImageDataset:
        if getattr(self, "_fixed_train", None) is None:
            self._fixed_train = TensorImageDataset(
                binarize_once(dataset.images, self.seed + 3), dataset.labels, num_levels=2
            )
        return self._fixed_train

    def load_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        if self.binarization == "fixed":
            require_files("binarized_mnist", self.amat_dir, list(AMAT_FILES.values()), self.how_to_get)
            x_train, x_val, x_test = (read_amat(self.amat_dir / AMAT_FILES[s], self.how_to_get) for s in AMAT_FILES)
            return (
                TensorImageDataset(x_train, num_levels=2),
                TensorImageDataset(x_val, num_levels=2),
                TensorImageDataset(x_test, num_levels=2),
            )
        images, labels = load_idx_split(self.raw_dir, True, "binarized_mnist", self.how_to_get)
        test_images, test_labels = load_idx_split(self.raw_dir, False, "binarized_mnist", self.how_to_get)
        # the base class's seeded train/val split of the MNIST training set
        train_idx, val_idx = (
            torch.tensor(part.indices, dtype=torch.long) for part in self.split_train_val(TensorImageDataset(images))
        )
        train = StochasticBinaryDataset(images[train_idx], labels[train_idx])
        val = TensorImageDataset(binarize_once(images[val_idx], self.seed), labels[val_idx], num_levels=2)
        test = TensorImageDataset(binarize_once(test_images, self.seed + 2), test_labels, num_levels=2)
        return train, val, test
