"""The 8x8 digits against outlier sets on the same 17-level grid, for outlier detection
(:mod:`genlight.evaluation`, ``genlight score --task ood``).

Inliers are the digits' test split. Every outlier set is as large as that split (the held-out class
excepted), on the digits' grid {0, 1/16, ..., 1} so that density models can score it, and drawn from
a generator seeded by ``seed`` and the set's name, so that it is the same at every call:

- ``inverted``: ``1 - x`` of the test images;
- ``uniform_noise``: every pixel an independent uniform level;
- ``constant``: every pixel of an image the same level, the levels in turn;
- ``blurred``: a 3x3 box blur of the test images (edges replicated), snapped back to the grid;
- ``pixel_shuffled``: the pixels of each test image in a random order (same histogram, no shape);
- ``held_out_class``: with ``held_out_class=k``, the images of class ``k``, removed from train, val
  and test (the model learns 9 classes).

MNIST against Fashion-MNIST (28x28, 256 levels) is not part of this datamodule.
"""

from __future__ import annotations

import zlib
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Subset

from genlight.datamodules.digits import DigitsDataModule
from genlight.registry import register_datamodule

__all__ = ["OUTLIER_SETS", "DigitOutliersDataModule", "stack_images"]

#: the outlier sets, in the order they are reported
OUTLIER_SETS = ("inverted", "uniform_noise", "constant", "blurred", "pixel_shuffled", "held_out_class")


def stack_images(dataset: Dataset) -> tuple[Tensor, Tensor]:
    """All ``(x, y)`` of a dataset of pairs as two tensors ``(N, C, H, W)`` and ``(N,)``."""
    xs, ys = zip(*(dataset[i][:2] for i in range(len(dataset))))  # type: ignore[arg-type]
    return torch.stack(list(xs)), torch.as_tensor(list(ys)).long()


def _indices_in(part: Dataset, pool: Dataset) -> list[int]:
    """The indices into ``pool`` of ``part``, a (possibly nested) :class:`Subset` of it."""
    if part is pool:
        return list(range(len(pool)))  # type: ignore[arg-type]
    if not isinstance(part, Subset):
        raise TypeError(f"expected a Subset of the digits, got {type(part).__name__}")
    outer = _indices_in(part.dataset, pool)
    return [outer[i] for i in part.indices]


@register_datamodule("digit_outliers")
class DigitOutliersDataModule(DigitsDataModule):
    """The digits (train, val and test splits as ``digits`` with the same ``seed``) with outlier sets
    on the same level grid: see the module docstring. Batches are the digits' ``(x, y)``.

    Args:
        held_out_class: a digit (0-9) left out of train, val and test and offered as the outlier set
            ``held_out_class``; ``None`` keeps all ten classes.
    """

    def __init__(self, held_out_class: Literal[0, 1, 2, 3, 4, 5, 6, 7, 8, 9] | None = None, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.held_out_class = held_out_class
        self.held_out: Subset | None = None

    @property
    def outlier_set_names(self) -> tuple[str, ...]:
        """The outlier sets this instance offers (``held_out_class`` only with a held-out class)."""
        return tuple(n for n in OUTLIER_SETS if n != "held_out_class" or self.held_out_class is not None)

    def split_pool(self, pool: Dataset, test: Dataset | None = None) -> tuple[Dataset, Dataset, Dataset]:
        """The digits' splits; with ``held_out_class`` its images leave all three (kept as ``held_out``)."""
        train, val, test_set = super().split_pool(pool, test)
        if self.held_out_class is None:
            return train, val, test_set
        labels = pool.tensors[1] if hasattr(pool, "tensors") else stack_images(pool)[1]  # type: ignore[attr-defined]
        held, kept = [], []
        for part in (train, val, test_set):
            indices = _indices_in(part, pool)
            held += [i for i in indices if int(labels[i]) == self.held_out_class]
            kept.append(Subset(pool, [i for i in indices if int(labels[i]) != self.held_out_class]))
        self.held_out = Subset(pool, sorted(held))
        return kept[0], kept[1], kept[2]

    def inliers(self) -> tuple[Tensor, Tensor]:
        """The test split's images ``(N, 1, 8, 8)`` and labels ``(N,)``."""
        return stack_images(self.reference_dataset("test"))

    def outlier_set(self, name: str) -> Tensor:
        """The images ``(M, 1, 8, 8)`` of outlier set ``name`` (one of :attr:`outlier_set_names`)."""
        if name not in self.outlier_set_names:
            hint = " (set held_out_class to a digit for it)" if name == "held_out_class" else ""
            raise ValueError(f"unknown outlier set {name!r}{hint}; choose from {', '.join(self.outlier_set_names)}")
        x, _ = self.inliers()
        levels = self.num_levels - 1
        g = torch.Generator().manual_seed(self.seed * 1000 + zlib.crc32(name.encode()) % 1000)
        if name == "inverted":
            return 1.0 - x
        if name == "uniform_noise":
            return torch.randint(self.num_levels, x.shape, generator=g).float() / levels
        if name == "constant":
            values = torch.randperm(self.num_levels, generator=g).repeat(len(x) // self.num_levels + 1)[: len(x)]
            return (values.float() / levels)[:, None, None, None].expand_as(x).clone()
        if name == "blurred":
            padded = F.pad(x, (1, 1, 1, 1), mode="replicate")  # (N, 1, 10, 10)
            return (F.avg_pool2d(padded, 3, stride=1) * levels).round() / levels
        if name == "pixel_shuffled":
            flat = x.flatten(1)  # (N, 64)
            order = torch.stack([torch.randperm(flat.shape[1], generator=g) for _ in range(len(x))])
            return flat.gather(1, order).view_as(x)
        assert self.held_out is not None
        if self.train_set is None:
            self.setup("fit")
        return stack_images(self.held_out)[0]

    def outlier_sets(self) -> dict[str, Tensor]:
        """Every outlier set this instance offers, by name."""
        return {name: self.outlier_set(name) for name in self.outlier_set_names}
