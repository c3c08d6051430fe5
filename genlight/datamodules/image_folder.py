"""Any folder of images (PNG, JPEG, ...), flat or with one sub-folder per class (torchvision's
``ImageFolder`` layout ``<data_dir>/<class>/<image>``), read lazily, center-cropped and resized."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from genlight.datamodules.base import GenerativeDataModule
from genlight.datamodules.common import IMAGE_EXTENSIONS, DataFilesError, ImageFileDataset, check_images, list_images
from genlight.ranges import OpenUnitInterval, Size
from genlight.registry import register_datamodule

__all__ = ["ImageFolderDataModule", "scan_image_folder"]


def scan_image_folder(
    root: Path, dataset: str = "image_folder", option: str = "--data.data_dir"
) -> tuple[list[Path], list[int] | None, list[str]]:
    """``(paths, labels, class names)``: with class sub-folders (sorted, labelled 0..K-1; loose files in
    ``root`` are then ignored), else the images directly in ``root`` with ``labels=None``. ``option`` is
    the setting that names ``root``, for the message when it does not exist."""
    if not root.is_dir():
        raise DataFilesError(
            f"{dataset}: image folder {root} does not exist. Point {option} at a folder of images "
            f"({', '.join(IMAGE_EXTENSIONS[:4])}, ...), flat or with one sub-folder per class."
        )
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and list_images(d))
    if classes:
        paths, labels = [], []
        for k, name in enumerate(classes):
            images = list_images(root / name)
            paths += images
            labels += [k] * len(images)
        return paths, labels, classes
    paths = list_images(root)
    if not paths:
        raise DataFilesError(
            f"{dataset}: no images in {root} nor in its sub-folders (expected files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}); point {option} at a folder of images."
        )
    return paths, None, []


@register_datamodule("image_folder")
class ImageFolderDataModule(GenerativeDataModule):
    """Images from ``data_dir`` as ``channels x image_size x image_size``, 256 levels; ``num_classes``
    is the number of class sub-folders (``y`` their sorted index), or 0 with ``y = -1`` for a flat
    folder. ``test_fraction`` then ``val_fraction`` are held out by ``seed``.

    Every file's header is checked at ``setup`` (PIL ``open`` + ``verify``, no decoding): an unreadable
    image stops the run there, naming the file, unless ``skip_bad`` (``--data.skip_bad true``), which
    leaves such files out and logs how many.

    Args:
        data_dir: the folder of images, flat or with one sub-folder per class.
        image_size: side of the square images after resizing.
        channels: 1 (grey) or 3 (RGB).
        crop_size: side of the center crop taken before resizing (``None``: the largest square).
        test_fraction: share of the images held out as the test split, in (0, 1).
        skip_bad: skip unreadable images (counted in the log) instead of stopping at ``setup``.
    """

    num_levels = 256

    def __init__(
        self,
        data_dir: str = "data/images",
        image_size: Size = 64,
        channels: Literal[1, 3] = 3,
        crop_size: Size | None = None,
        test_fraction: OpenUnitInterval = 0.1,
        skip_bad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        self.image_size = image_size
        self.channels = channels
        self.crop_size = crop_size
        self.test_fraction = test_fraction
        self.skip_bad = skip_bad
        self.paths, self.labels, self.classes = scan_image_folder(self.data_dir)
        self.image_shape = (channels, image_size, image_size)
        self.num_classes = len(self.classes)

    def load_datasets(self) -> tuple[Dataset, Dataset | None]:
        keep = check_images(self.paths, "image_folder", self.skip_bad)
        paths = [self.paths[i] for i in keep]
        labels = None if self.labels is None else [self.labels[i] for i in keep]
        dataset = ImageFileDataset(
            paths,
            labels,
            image_size=self.image_size,
            channels=self.channels,
            crop_size=self.crop_size,
            dataset="image_folder",
        )
        return dataset, None
