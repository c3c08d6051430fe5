"""Shared helpers of the metric and callback tests (no conftest.py: another test module owns it)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from genlight import create_datamodule, create_model


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


def tiny_vae(seed: int = 0) -> pl.LightningModule:
    """A small VAE with seeded (untrained) weights."""
    torch.manual_seed(seed)
    return create_model("vae", latent_dim=4, hidden_channels=8)


def digits(batch_size: int = 128) -> pl.LightningDataModule:
    return create_datamodule("digits", batch_size=batch_size)


def cpu_trainer(root: str, **kwargs) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    return pl.Trainer(**{**defaults, **kwargs})
