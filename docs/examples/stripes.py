"""A synthetic datamodule: the worked example of "Write a datamodule" (docs/write-a-datamodule.md),
checked in tests/test_docs_datamodule.py.

Binary 8x8 images of stripes, horizontal (label 0) or vertical (label 1), of random period and phase,
drawn once from ``seed``: a data set that needs no download and that any image family can fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset

from genlight.datamodules.base import GenerativeDataModule
from genlight.ranges import DataSize, Seed
from genlight.registry import register_datamodule


@register_datamodule("stripes")
class StripesDataModule(GenerativeDataModule):
    """Horizontal or vertical binary stripes.

    Args:
        num_examples: images drawn (train, validation and test together).
        data_seed: seed of the draw.
        **kwargs: the loader arguments of :class:`~genlight.datamodules.base.GenerativeDataModule`.
    """

    image_shape = (1, 8, 8)  # linked into every family's image_shape by the CLI
    num_classes = 2  # ... num_classes, where the family takes it
    num_levels = 2  # ... num_levels: pixels are 0 or 1
    test_fraction = 0.2  # no official test split: hold out 20% (seeded), then val_fraction of the rest

    def __init__(self, num_examples: DataSize = 2000, data_seed: Seed = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # saves every argument of the chain and checks each range
        self.num_examples, self.data_seed = num_examples, data_seed

    def load_datasets(self) -> tuple[Dataset, Dataset | None]:
        """``(pool, None)``: the base splits the pool into train / val / test by ``seed``."""
        g = torch.Generator().manual_seed(self.data_seed)
        n = self.num_examples
        period = torch.randint(2, 5, (n, 1), generator=g)  # stripes 1 to 2 pixels wide
        phase = torch.randint(0, 4, (n, 1), generator=g)
        y = torch.randint(0, 2, (n,), generator=g)
        ramp = torch.arange(8).expand(n, 8)  # (n, 8)
        stripe = (((ramp + phase) // (period // 2).clamp_min(1)) % 2).float()  # (n, 8): 0/1 along one axis
        rows = stripe[:, :, None].expand(n, 8, 8)  # horizontal stripes: constant along a row
        x = torch.where(y[:, None, None] == 0, rows, rows.transpose(1, 2)).unsqueeze(1)  # (n, 1, 8, 8)
        return TensorDataset(x, y), None

    @classmethod
    def smoke(cls, root: Path, **kwargs: Any) -> StripesDataModule:
        """A small instance for a family's smoke test (``smoke_data = "stripes"``)."""
        return cls(**{"num_examples": 200, "batch_size": 16, **kwargs})
