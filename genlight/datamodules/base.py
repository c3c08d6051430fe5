"""``GenerativeDataModule``, the base of every genlight datamodule, and its dataset helpers: seeded
splits and a dataset with a transform on its images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from genlight.ranges import Fraction, NonNegativeInt, PositiveInt, Seed, check_arguments

__all__ = ["GenerativeDataModule", "TransformedDataset", "split_dataset"]


def split_dataset(dataset: Dataset, fractions: Sequence[float], seed: int) -> list[Subset]:
    """Split ``dataset`` into parts of the given fractions (the last takes the rest), by a seeded permutation."""
    n = len(dataset)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    parts, start = [], 0
    for i, frac in enumerate(fractions):
        stop = n if i == len(fractions) - 1 else start + round(frac * n)
        parts.append(Subset(dataset, perm[start:stop]))
        start = stop
    return parts


class TransformedDataset(Dataset):
    """``dataset`` with ``transform`` applied to the first element of every item (the image ``x``)."""

    def __init__(self, dataset: Dataset, transform: Callable[[Tensor], Tensor]) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        x, *rest = self.dataset[index]
        return (self.transform(x), *rest)


class GenerativeDataModule(pl.LightningDataModule):
    """Base class of every genlight datamodule.

    Batches are ``(x, y)``: ``x`` float in [0, 1] of shape ``(B, *image_shape)``, ``y`` class ids
    (or -1). Subclasses set ``image_shape``, ``num_classes`` and ``num_levels`` and implement
    :meth:`load_datasets`; the base makes deterministic train/val/test splits by ``seed``, keeps
    the first ``subset`` training examples if asked, and builds the dataloaders (Lightning adds the
    distributed sampler under DDP).

    The loader arguments below are declared here once: a subclass takes its own arguments and
    ``**kwargs``, and passes ``**kwargs`` to ``super().__init__`` (jsonargparse follows them here, so
    ``--data.help`` and ``--print_config`` list these too). The base saves the hyper-parameters of the
    whole ``__init__`` chain and checks every numeric argument against the range of its type
    (:func:`genlight.ranges.check_arguments`); subclasses call neither ``save_hyperparameters`` nor
    ``check_arguments`` again.

    Args:
        batch_size: examples per batch (>= 1).
        num_workers: dataloader worker processes (0 loads in the main process).
        pin_memory: page-locked host memory for faster copies to a GPU.
        persistent_workers: keep the worker processes alive between epochs (with ``num_workers > 0``).
        val_fraction: share of the training data held out for validation, in [0, 1).
        subset: keep only the first ``subset`` training examples (``None``: all), for quick runs.
        seed: seed of the train/val/test splits, in [0, 2**32 - 1].
    """

    image_shape: tuple[int, ...] = ()
    num_classes: int = 0
    num_levels: int = 256
    #: what a batch holds: ``images`` (``(x, y)``), ``points`` (``(x, -1)``, 2-D), ``unpaired`` (``(x_a, x_b)``)
    #: ``domains`` (``(x, y, domain)``; validation/test add every domain's copy: ``digit_domains``)
    batch_kind: ClassVar[str] = "images"
    #: fraction held out as test data when the source has no official test split
    test_fraction: float = 0.0

    def __init__(
        self,
        batch_size: PositiveInt = 64,
        num_workers: NonNegativeInt = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        val_fraction: Fraction = 0.1,
        subset: PositiveInt | None = None,
        seed: Seed = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.val_fraction = val_fraction
        self.subset = subset
        self.seed = seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self._plain_train_set: Dataset | None = None

    @classmethod
    def smoke(cls, root: Path, **kwargs: Any) -> GenerativeDataModule:
        """A tiny instance for smoke tests, with any files it needs written under ``root`` (a temp
        folder): the datamodule a family names as its ``smoke_data``. Bundled data needs no files."""
        return cls(**{"batch_size": 16, **kwargs})

    def load_datasets(self) -> tuple[Dataset, Dataset | None] | tuple[Dataset, Dataset, Dataset]:
        """Return ``(train_pool, test)``; ``test`` is ``None`` when the source has no official split.

        A source with an official validation split may return ``(train, val, test)`` instead; then
        ``val_fraction`` is not used.
        """
        raise NotImplementedError

    def train_transform(self) -> Callable[[Tensor], Tensor] | None:
        """A random augmentation of ``x`` applied to the training split only (``None``: no augmentation)."""
        return None

    def split_train_val(self, pool: Dataset) -> tuple[Subset, Subset]:
        """``val_fraction`` of ``pool`` held out as validation, by a permutation seeded with ``seed + 1``."""
        train, val = split_dataset(pool, [1.0 - self.val_fraction, self.val_fraction], self.seed + 1)
        return train, val

    def split_pool(self, pool: Dataset, test: Dataset | None = None) -> tuple[Dataset, Dataset, Dataset]:
        """Seeded ``(train, val, test)``: without an official ``test``, ``test_fraction`` of ``pool`` is
        held out first (seeded with ``seed``), then :meth:`split_train_val` splits the rest."""
        if test is None:
            if not self.test_fraction:
                raise ValueError(f"{type(self).__name__} has no test split; set test_fraction")
            pool, test = split_dataset(pool, [1.0 - self.test_fraction, self.test_fraction], self.seed)
        return (*self.split_train_val(pool), test)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        parts = self.load_datasets()
        train, val, test = parts if len(parts) == 3 else self.split_pool(*parts)
        if self.subset is not None:
            train = Subset(train, range(min(self.subset, len(train))))
        self._plain_train_set = train
        transform = self.train_transform()
        if transform is not None:
            train = TransformedDataset(train, transform)
        self.train_set, self.val_set, self.test_set = train, val, test

    def reference_dataset(self, split: str) -> Dataset:
        """``split`` (``train``, ``val`` or ``test``) without augmentation or any other randomness:
        reading it twice gives the same images and leaves the global RNG untouched. What FID reference
        statistics and image grids are computed from. Datamodules whose data are random per read
        (stochastic binarisation) override this with a fixed draw."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got {split!r}")
        if self.train_set is None:
            self.setup("fit")
        dataset = self._plain_train_set if split == "train" else getattr(self, f"{split}_set")
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__} has no {split} split")
        return dataset

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not run; call dm.setup() first")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
