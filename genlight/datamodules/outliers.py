"""Outlier sets beside a datamodule's test split, for outlier detection (:mod:`genlight.evaluation`).

:class:`OutlierSets` is mixed into a datamodule (``digit_outliers``, ``fashion_outliers``). Inliers are
the test split; the synthetic sets are as large as it, on the data's level grid so that density models
can score them, and drawn from a generator seeded by ``seed`` and the set's name, so that they are
the same at every call:

- ``inverted``: ``1 - x`` of the test images;
- ``uniform_noise``: every value an independent uniform level;
- ``constant``: every value of an image the same level, the levels in a random order, in turn;
- ``blurred``: a 3x3 box blur of the test images (edges replicated), snapped back to the grid;
- ``pixel_shuffled``: the pixels of each test image in a random order (same histogram, no shape).

A datamodule adds its own sets by overriding :meth:`OutlierSets.extra_outlier_sets` and
:meth:`OutlierSets.extra_outlier_set`.
"""

from __future__ import annotations

import zlib

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["SYNTHETIC_SETS", "OutlierSets", "stack_images", "synthetic_outliers"]

#: the outlier sets made from the test images, in the order they are reported
SYNTHETIC_SETS = ("inverted", "uniform_noise", "constant", "blurred", "pixel_shuffled")


def stack_images(dataset: Dataset) -> tuple[Tensor, Tensor]:
    """All ``(x, y)`` of a dataset of pairs as two tensors ``(N, C, H, W)`` and ``(N,)``."""
    xs, ys = zip(*(dataset[i][:2] for i in range(len(dataset))))
    return torch.stack(list(xs)), torch.as_tensor(list(ys)).long()


def synthetic_outliers(x: Tensor, name: str, num_levels: int, generator: torch.Generator) -> Tensor:
    """The synthetic outlier set ``name`` (one of :data:`SYNTHETIC_SETS`) made from images ``x``
    (``(N, C, H, W)`` on the grid of ``num_levels`` levels), of the same shape and on the same grid."""
    levels = num_levels - 1
    if name == "inverted":
        return 1.0 - x
    if name == "uniform_noise":
        return torch.randint(num_levels, x.shape, generator=generator).float() / levels
    if name == "constant":
        values = torch.randperm(num_levels, generator=generator).repeat(len(x) // num_levels + 1)[: len(x)]
        return (values.float() / levels)[:, None, None, None].expand_as(x).clone()
    if name == "blurred":
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")  # (N, C, H+2, W+2)
        return (F.avg_pool2d(padded, 3, stride=1) * levels).round() / levels
    if name == "pixel_shuffled":
        flat = x.flatten(2)  # (N, C, H*W): the same positions for every channel
        order = torch.stack([torch.randperm(flat.shape[2], generator=generator) for _ in range(len(x))])
        return flat.gather(2, order[:, None, :].expand_as(flat)).view_as(x)
    raise ValueError(f"unknown synthetic outlier set {name!r}; choose from {', '.join(SYNTHETIC_SETS)}")


class OutlierSets:
    """Mixed into a :class:`~genlight.datamodules.base.GenerativeDataModule`: its test split as inliers
    and named outlier sets (see the module docstring)."""

    seed: int
    num_levels: int

    def extra_outlier_sets(self) -> tuple[str, ...]:
        """Names of the sets this datamodule adds to :data:`SYNTHETIC_SETS`."""
        return ()

    def extra_outlier_set(self, name: str) -> Tensor:
        """The images of an added set (one of :meth:`extra_outlier_sets`)."""
        raise ValueError(f"unknown outlier set {name!r}")

    @property
    def outlier_set_names(self) -> tuple[str, ...]:
        """Every outlier set this instance offers, in report order."""
        return (*SYNTHETIC_SETS, *self.extra_outlier_sets())

    def unknown_set_hint(self, name: str) -> str:
        """Why a set name is not offered (empty: it does not exist)."""
        return ""

    def inliers(self) -> tuple[Tensor, Tensor]:
        """The test split's images ``(N, C, H, W)`` and labels ``(N,)``."""
        return stack_images(self.reference_dataset("test"))  # type: ignore[attr-defined]

    def outlier_set(self, name: str) -> Tensor:
        """The images ``(M, C, H, W)`` of outlier set ``name`` (one of :attr:`outlier_set_names`)."""
        if name not in self.outlier_set_names:
            raise ValueError(
                f"unknown outlier set {name!r}{self.unknown_set_hint(name)}; choose from "
                f"{', '.join(self.outlier_set_names)}"
            )
        if name not in SYNTHETIC_SETS:
            return self.extra_outlier_set(name)
        generator = torch.Generator().manual_seed(self.seed * 1000 + zlib.crc32(name.encode()) % 1000)
        return synthetic_outliers(self.inliers()[0], name, self.num_levels, generator)

    def outlier_sets(self) -> dict[str, Tensor]:
        """Every outlier set this instance offers, by name."""
        return {name: self.outlier_set(name) for name in self.outlier_set_names}
