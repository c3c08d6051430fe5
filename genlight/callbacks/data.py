"""Where callbacks find real images: a split of the attached datamodule, or the trainer's loaders."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = ["class_labels", "first_images", "ordered_loader", "split_dataset_of"]


def split_dataset_of(trainer: pl.Trainer, split: str) -> Dataset:
    """The full (not per-rank) data set of ``split`` ("train", "val" or "test"), un-augmented and
    deterministic when the datamodule offers it (:meth:`GenerativeDataModule.reference_dataset`), so
    FID references and image grids are the same at every call, in every run and on every rank."""
    dm = getattr(trainer, "datamodule", None)
    if dm is not None and hasattr(dm, "reference_dataset") and getattr(dm, f"{split}_set", None) is not None:
        return dm.reference_dataset(split)
    dataset = getattr(dm, f"{split}_set", None) if dm is not None else None
    if dataset is None and split in ("train", "val"):
        loaders = trainer.train_dataloader if split == "train" else trainer.val_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        dataset = getattr(loader, "dataset", None)
    if dataset is None:
        raise RuntimeError(
            f"no {split!r} data found: attach a genlight datamodule with a {split}_set (or {split} dataloaders)"
        )
    return dataset


def images_of(batch: object) -> Tensor:
    """``x`` of a ``(x, y)`` batch (or the batch itself)."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch  # type: ignore[return-value]


def ordered_loader(dataset: Dataset, batch_size: int) -> DataLoader:
    """An unshuffled loader with its own generator, so iterating it leaves the global RNG untouched."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, generator=torch.Generator())


def first_images(trainer: pl.Trainer, n: int, split: str = "val") -> Tensor:
    """The first ``n`` images of ``split`` (a fixed set, so grids are comparable across epochs)."""
    dataset = split_dataset_of(trainer, split)
    batch = next(iter(ordered_loader(dataset, min(n, len(dataset)))))
    return images_of(batch)


def class_labels(batch: object) -> Tensor | None:
    """``y`` of an ``(x, y)`` batch when it holds integer class labels, one per image; else ``None``."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        return None
    y = batch[1]
    if isinstance(y, Tensor) and y.dim() == 1 and not y.dtype.is_floating_point and len(y) == len(batch[0]):
        return y.long()
    return None
