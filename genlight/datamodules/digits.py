"""scikit-learn's bundled 8x8 handwritten digits: 1797 images, 17 grey levels, no download."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, TensorDataset

from genlight.datamodules.base import GenerativeDataModule
from genlight.registry import register_datamodule


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as ``x`` in {0, 1/16, ..., 1} of shape ``(1797, 1, 8, 8)`` and labels ``y``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().div_(16.0).unsqueeze(1)
    y = torch.from_numpy(bunch.target).long()
    return x, y


@register_datamodule("digits")
class DigitsDataModule(GenerativeDataModule):
    """UCI/scikit-learn 8x8 digits (pixel values 0..16, so ``num_levels=17``), split by ``seed``.

    There is no official test split: 20% is held out as test, then ``val_fraction`` of the rest.
    """

    image_shape: tuple[int, ...] = (1, 8, 8)
    num_classes = 10
    num_levels = 17
    test_fraction = 0.2

    def load_datasets(self) -> tuple[Dataset, Dataset | None] | tuple[Dataset, Dataset, Dataset]:
        return TensorDataset(*load_digits_tensors()), None
