"""Small helpers shared by the tests. The family-contract helpers (``smoke_setup``, ``linked_kwargs``,
``cpu_trainer``, ``tiny_trainer``, ``RecordRank``) live in :mod:`genlight.testing` and are re-exported here."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.strategies import DDPStrategy
import torch
from torch import Tensor, nn

from genlight import create_datamodule, create_model
from genlight.registry import MODELS
from genlight.testing import RecordRank, cpu_trainer, linked_kwargs, smoke_setup, tiny_trainer

__all__ = [
    "Identity", "RecordRank", "build_model", "cpu_trainer", "digits_datamodule", "gaussian_features",
    "linked_kwargs", "smoke_setup", "tiny_trainer", "tiny_vae", "validation_ddp",
]  # fmt: skip


def build_model(name: str, datamodule: Any, **overrides: Any) -> pl.LightningModule:
    """The registered model ``name`` with its tiny ``smoke_kwargs``, shaped for ``datamodule``."""
    cls = MODELS.get(name)
    return cls(**{**cls.smoke_kwargs, **linked_kwargs(cls, datamodule), **overrides})


def validation_ddp() -> DDPStrategy:
    """Two-process DDP for tests that only validate: the ranks fork from the session's fork server
    (its imports preloaded in conftest), seconds instead of two fresh interpreters each time. Not for
    training: Lightning un-shares a CPU model's parameters between ranks only under ``spawn``."""
    return DDPStrategy(start_method="forkserver")


def digits_datamodule(batch_size: int = 128) -> pl.LightningDataModule:
    return create_datamodule("digits", batch_size=batch_size)


def tiny_vae(seed: int = 0) -> pl.LightningModule:
    """A small VAE with seeded (untrained) weights."""
    torch.manual_seed(seed)
    return create_model("vae", latent_dim=4, hidden_channels=8)


class Identity(nn.Module):
    """A "feature extractor" that returns its input: lets torchmetrics compare metrics on given features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def gaussian_features(n: int, d: int, seed: int, shift: float = 0.0) -> Tensor:
    """Correlated Gaussian features (a fixed random mixing matrix), float64."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=torch.Generator().manual_seed(123)) / d**0.5
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix.double()) + shift
