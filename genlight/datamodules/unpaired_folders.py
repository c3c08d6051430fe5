"""Two unpaired image folders A and B for domain translation (CycleGAN, Zhu et al. 2017), e.g.
``horse2zebra/trainA`` and ``trainB``. Batches are ``(x_a, x_b)``, both in [0, 1]."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genlight.datamodules.base import GenerativeDataModule
from genlight.datamodules.common import DataFilesError, ImageFileDataset, check_images
from genlight.datamodules.image_folder import scan_image_folder
from genlight.ranges import OpenUnitInterval, PositiveInt, Size
from genlight.registry import register_datamodule

__all__ = ["UnpairedDataset", "UnpairedFoldersDataModule"]


class UnpairedDataset(Dataset):
    """``len = max(len(a), len(b))``; item ``i`` is ``(a[i mod |a|], b[j])`` with ``j = i mod |b|``,
    or ``j`` drawn at random per read when ``random_pairs`` (CycleGAN's unaligned mode)."""

    def __init__(self, a: Dataset, b: Dataset, random_pairs: bool = False) -> None:
        self.a, self.b, self.random_pairs = a, b, random_pairs
        self.len_a, self.len_b = len(a), len(b)

    def __len__(self) -> int:
        return max(self.len_a, self.len_b)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        j = int(torch.randint(self.len_b, ())) if self.random_pairs else index % self.len_b
        return self.a[index % self.len_a][0], self.b[j][0]


@register_datamodule("unpaired_folders")
class UnpairedFoldersDataModule(GenerativeDataModule):
    """Domains A (``dir_a``) and B (``dir_b``) as ``channels x image_size x image_size`` images.

    Each domain is split on its own by ``seed`` (no image is in two splits); with ``test_dir_a`` and
    ``test_dir_b`` (CycleGAN's ``testA``/``testB``) those are the test split instead. Training pairs
    are re-drawn at random every read; validation/test pairs are fixed. ``num_classes`` is 0.

    Every file's header is checked at ``setup`` (PIL ``open`` + ``verify``, no decoding): an unreadable
    image stops the run there, naming the file, unless ``skip_bad`` (``--data.skip_bad true``), which
    leaves such files out and logs how many.

    Args:
        dir_a: folder of domain A's training images.
        dir_b: folder of domain B's training images.
        test_dir_a: folder of domain A's test images (``None``: held out from ``dir_a``).
        test_dir_b: folder of domain B's test images (``None``: held out from ``dir_b``).
        image_size: side of the square images after resizing.
        channels: 1 (grey) or 3 (RGB).
        test_fraction: share of each domain held out as test when no test folders are given, in (0, 1).
        batch_size: pairs per batch (1, as in CycleGAN).
        skip_bad: skip unreadable images (counted in the log) instead of stopping at ``setup``.
    """

    batch_kind = "unpaired"
    num_classes = 0
    num_levels = 256

    def __init__(
        self,
        dir_a: str = "data/trainA",
        dir_b: str = "data/trainB",
        test_dir_a: str | None = None,
        test_dir_b: str | None = None,
        image_size: Size = 64,
        channels: Literal[1, 3] = 3,
        test_fraction: OpenUnitInterval = 0.1,
        batch_size: PositiveInt = 1,
        skip_bad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        if (test_dir_a is None) != (test_dir_b is None):
            raise ValueError("give both test_dir_a and test_dir_b, or neither")
        self.dirs = {"a": Path(dir_a), "b": Path(dir_b)}
        self.test_dirs = {"a": Path(test_dir_a), "b": Path(test_dir_b)} if test_dir_a and test_dir_b else None
        self.image_size = image_size
        self.channels = channels
        self.test_fraction = test_fraction
        self.skip_bad = skip_bad
        self.image_shape = (channels, image_size, image_size)

    @classmethod
    def smoke(cls, root: Path, **kwargs: Any) -> UnpairedFoldersDataModule:
        """Domain A: 40 bundled 8x8 digits as PNGs; domain B: the same digits inverted (no download)."""
        from PIL import Image
        from sklearn.datasets import load_digits

        images = (load_digits().images[:40] * (255.0 / 16.0)).round().astype("uint8")
        for domain, arrays in (("a", images), ("b", 255 - images)):
            folder = Path(root) / f"smoke_{domain}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, array in enumerate(arrays):
                Image.fromarray(array).save(folder / f"{i:03d}.png")
        defaults = {
            "dir_a": str(Path(root) / "smoke_a"),
            "dir_b": str(Path(root) / "smoke_b"),
            "image_size": 8,
            "channels": 1,
            "batch_size": 8,
        }
        return cls(**{**defaults, **kwargs})

    def _images(self, folder: Path, domain: str, option: str) -> ImageFileDataset:
        name = f"unpaired_folders (domain {domain.upper()})"
        paths, _, _ = scan_image_folder(folder, name, option)
        paths = [paths[i] for i in check_images(paths, name, self.skip_bad)]
        return ImageFileDataset(paths, image_size=self.image_size, channels=self.channels, dataset="unpaired_folders")

    def load_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        parts = {}
        for domain, folder in self.dirs.items():
            test: Any = (
                None
                if self.test_dirs is None
                else self._images(self.test_dirs[domain], domain, f"--data.test_dir_{domain}")
            )
            train, val, test = self.split_pool(self._images(folder, domain, f"--data.dir_{domain}"), test)
            for name, part in (("train", train), ("val", val), ("test", test)):
                if len(part) == 0:
                    raise DataFilesError(
                        f"unpaired_folders: domain {domain.upper()} ({folder}) has too few images for a {name} split; "
                        "add images or lower val_fraction/test_fraction"
                    )
            parts[domain] = (train, val, test)
        train, val, test = (UnpairedDataset(parts["a"][i], parts["b"][i], random_pairs=i == 0) for i in range(3))
        return train, val, test
