"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017): 28x28 grey, 60k train / 10k test.

Files in torchvision's layout, IDX format: ``<data_dir>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``
(or the ``.gz`` files beside them); ``FashionMNIST/raw/...`` for Fashion-MNIST. Held in memory as uint8.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor
from torch.utils.data import Dataset

from genlight.datamodules.base import GenerativeDataModule
from genlight.datamodules.common import DataFilesError, TensorImageDataset, download_or_explain
from genlight.datamodules.idx import find_idx, read_idx
from genlight.registry import register_datamodule

__all__ = ["FashionMNISTDataModule", "MNISTDataModule", "have_idx_files", "load_idx_split"]

IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_files() -> list[str]:
    return [name for pair in IDX_FILES.values() for name in pair]


def have_idx_files(raw: Path) -> bool:
    """Whether all four IDX files (raw or ``.gz``) are in ``raw``."""
    return all(find_idx(raw, name) is not None for name in idx_files())


def load_idx_split(raw: Path, train: bool, dataset: str, how: str) -> tuple[Tensor, Tensor]:
    """``(images uint8 (N, 1, 28, 28), labels long (N,))`` of one split from the IDX files in ``raw``."""
    paths = []
    for name in IDX_FILES[train]:
        path = find_idx(raw, name)
        if path is None:
            raise DataFilesError(
                f"{dataset}: missing data file {raw / name} (or {name}.gz). Expected under {raw}: "
                f"{', '.join(idx_files())} (raw or .gz). {how}"
            )
        paths.append(path)
    images = read_idx(paths[0], 3, dataset, how)
    labels = read_idx(paths[1], 1, dataset, how)
    if len(images) != len(labels):
        raise DataFilesError(
            f"{dataset}: {paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels; "
            f"one of them is truncated or from another data set. {how}"
        )
    if int(labels.max()) > 9:
        raise DataFilesError(f"{dataset}: {paths[1]} has label {int(labels.max())} > 9; the file is corrupted. {how}")
    return images.unsqueeze(1), labels.long()


@register_datamodule("mnist")
class MNISTDataModule(GenerativeDataModule):
    """MNIST handwritten digits, 1x28x28, 256 grey levels, 10 classes; official 60k/10k split,
    ``val_fraction`` of the training set held out for validation (by ``seed``).

    Args:
        data_dir: root folder; the files are read from ``<data_dir>/<MNIST or FashionMNIST>/raw``.
        download: fetch missing files with torchvision (otherwise a missing file is an error naming it).
    """

    image_shape = (1, 28, 28)
    num_classes = 10
    num_levels = 256
    #: torchvision's dataset class and the folder under ``data_dir`` it uses
    torchvision_name: ClassVar[str] = "MNIST"
    display_name: ClassVar[str] = "mnist"

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        self.download = download

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.torchvision_name / "raw"

    @property
    def how_to_get(self) -> str:
        return (
            f"Pass --data.download true to fetch them with torchvision.datasets.{self.torchvision_name}, "
            f"or put the files from the official site into {self.raw_dir}."
        )

    def prepare_data(self) -> None:
        if self.download and not have_idx_files(self.raw_dir):
            import torchvision.datasets

            tv_cls = getattr(torchvision.datasets, self.torchvision_name)
            download_or_explain(
                self.display_name,
                self.raw_dir,
                idx_files(),
                self.how_to_get,
                lambda: tv_cls(str(self.data_dir), train=True, download=True),
            )

    def load_datasets(self) -> tuple[Dataset, Dataset | None]:
        train = load_idx_split(self.raw_dir, True, self.display_name, self.how_to_get)
        test = load_idx_split(self.raw_dir, False, self.display_name, self.how_to_get)
        return TensorImageDataset(*train), TensorImageDataset(*test)


@register_datamodule("fashion_mnist")
class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST (Zalando clothing), 1x28x28, 256 grey levels, 10 classes; the MNIST file format."""

    torchvision_name = "FashionMNIST"
    display_name = "fashion_mnist"
